//! What `status` reads from the state: per-step counts, unfinished
//! deliveries, one subscriber's deliveries and the last run (and how a
//! run's row is finished, which that last report reads). The SQL is the
//! same on both backends (`$n` placeholders work in SQLite too), so it is
//! written once and [`reports!`] puts it into each backend's [`super::Store`]
//! implementation.

/// The columns of a delivery record, attempts as a 64-bit integer on both.
pub(super) const DELIVERY_COLUMNS: &str = "sequence, email, step, status, CAST(attempts AS BIGINT) AS attempts, message_id, sent_at, retry_at, reply";

/// A delivery record from a row of [`DELIVERY_COLUMNS`].
pub(super) fn delivery<R: sqlx::Row>(row: &R) -> super::DeliveryRecord
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let time =
        |seconds: Option<i64>| seconds.and_then(|at| chrono::DateTime::from_timestamp(at, 0));
    super::DeliveryRecord {
        sequence: row.get("sequence"),
        email: row.get("email"),
        step: row.get("step"),
        status: super::DeliveryStatus::parse(&row.get::<String, _>("status")),
        attempts: row.get::<i64, _>("attempts") as u32,
        message_id: row.get("message_id"),
        sent_at: time(row.get("sent_at")),
        retry_at: time(row.get("retry_at")),
        reply: row.get("reply"),
    }
}

/// The reading methods of [`super::Store`] for the backend whose database
/// is `$db`, to be expanded inside its `impl Store` block.
macro_rules! reports {
    ($db:ty) => {
        async fn step_counts(&self) -> Result<Vec<StepCount>> {
            let rows = sqlx::query::<$db>(
                "SELECT sequence, step,
                        SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END) AS sent,
                        SUM(CASE WHEN status IN ('claimed', 'retry') THEN 1 ELSE 0 END) AS pending,
                        SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed
                 FROM deliveries GROUP BY sequence, step ORDER BY sequence, step",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(|row| StepCount {
                    sequence: row.get("sequence"),
                    step: row.get("step"),
                    sent: row.get::<i64, _>("sent") as u64,
                    pending: row.get::<i64, _>("pending") as u64,
                    failed: row.get::<i64, _>("failed") as u64,
                })
                .collect())
        }

        async fn failures(&self) -> Result<Vec<DeliveryRecord>> {
            let rows = sqlx::query::<$db>(&format!(
                "SELECT {} FROM deliveries WHERE status IN ('retry', 'failed')
                 ORDER BY sequence, email",
                super::reports::DELIVERY_COLUMNS
            ))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(super::reports::delivery).collect())
        }

        async fn deliveries_to(&self, email: &str) -> Result<Vec<DeliveryRecord>> {
            let rows = sqlx::query::<$db>(&format!(
                "SELECT {} FROM deliveries WHERE email = $1 ORDER BY claimed_at, sequence",
                super::reports::DELIVERY_COLUMNS
            ))
            .bind(email)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(super::reports::delivery).collect())
        }

        async fn finish_run(
            &self,
            id: i64,
            finished: DateTime<Utc>,
            counts: RunCounts,
        ) -> Result<()> {
            sqlx::query::<$db>(
                "UPDATE runs SET finished_at = $1, sent = $2, failed = $3, deferred = $4
                 WHERE id = $5",
            )
            .bind(finished.timestamp())
            .bind(counts.sent as i64)
            .bind(counts.failed as i64)
            .bind(counts.deferred as i64)
            .bind(id)
            .execute(&self.pool)
            .await?;
            self.file_tokens().await
        }

        async fn last_run(&self) -> Result<Option<RunRecord>> {
            let row = sqlx::query::<$db>(
                "SELECT started_at, finished_at, sent, failed, deferred FROM runs ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|row| RunRecord {
                started_at: time(row.get("started_at")),
                finished_at: optional_time(row.get("finished_at")),
                sent: row.get::<i64, _>("sent") as u64,
                failed: row.get::<i64, _>("failed") as u64,
                deferred: row.get::<i64, _>("deferred") as u64,
            }))
        }
    };
}
