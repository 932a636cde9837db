//! What a sequence's state is, read from the tables both backends share:
//! enrollments, then the sent steps and unfinished deliveries from the
//! deliveries themselves, and the suppressions. [`states!`] writes `load`
//! and `suppressions` once for each backend's `impl Store` block; the
//! roster's pages ([`super::roster`]) add their rows with the same
//! functions.

use chrono::{DateTime, Utc};

use super::{Pending, PendingStatus, Reason, SequenceState, Suppression};

/// The columns [`add_delivery`] reads, attempts as a 64-bit integer on both.
pub(super) const DELIVERY_STATE: &str =
    "email, step, status, CAST(attempts AS BIGINT) AS attempts, sent_at, retry_at";

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Adds a delivery row of [`DELIVERY_STATE`] to `state`: a sent step to
/// the subscriber's enrollment (rows come in the order sent), anything
/// else to their pending deliveries.
pub(super) fn add_delivery<R: sqlx::Row>(state: &mut SequenceState, row: &R)
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let email: String = row.get("email");
    let status: String = row.get("status");
    if status == "sent" {
        if let Some(enrollment) = state.enrollments.get_mut(&email) {
            let sent_at = row.get::<Option<i64>, _>("sent_at").map(time);
            enrollment.sent_steps.push(row.get("step"));
            enrollment.last_sent_at = enrollment.last_sent_at.max(sent_at);
        }
        return;
    }
    let status = match status.as_str() {
        "claimed" => PendingStatus::Claimed,
        "retry" => PendingStatus::Retry(time(row.get::<Option<i64>, _>("retry_at").unwrap_or(0))),
        _ => PendingStatus::Failed,
    };
    state.pending.entry(email).or_default().push(Pending {
        step: row.get("step"),
        status,
        attempts: row.get::<i64, _>("attempts") as u32,
    });
}

/// A suppression row (`reason, at, detail`).
pub(super) fn suppression<R: sqlx::Row>(row: &R) -> Suppression
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Suppression {
        reason: Reason::parse(&row.get::<String, _>("reason")),
        at: time(row.get("at")),
        detail: row.get("detail"),
    }
}

/// `load` and `suppressions` of [`super::Store`] for the backend whose
/// database is `$db`, to be expanded inside its `impl Store` block.
macro_rules! states {
    ($db:ty) => {
        async fn load(&self, sequence: &str) -> Result<SequenceState> {
            let mut conn = self.pool.acquire().await?;
            let mut state = SequenceState::default();
            // Streamed row by row: a large list must not be held twice.
            let mut rows = sqlx::query::<$db>(
                "SELECT email, enrolled_at FROM enrollments WHERE sequence = $1",
            )
            .bind(sequence)
            .fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                state.enrollments.insert(
                    row.get("email"),
                    Enrollment {
                        enrolled_at: time(row.get("enrolled_at")),
                        sent_steps: Vec::new(),
                        last_sent_at: None,
                    },
                );
            }
            drop(rows);
            let sql = format!(
                "SELECT {} FROM deliveries WHERE sequence = $1 ORDER BY email, sent_at, step",
                super::states::DELIVERY_STATE
            );
            let mut rows = sqlx::query::<$db>(&sql).bind(sequence).fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                super::states::add_delivery(&mut state, &row);
            }
            Ok(state)
        }

        async fn suppressions(&self) -> Result<HashMap<String, Suppression>> {
            let rows = sqlx::query::<$db>("SELECT email, reason, at, detail FROM suppressions")
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .iter()
                .map(|row| (row.get("email"), super::states::suppression(row)))
                .collect())
        }
    };
}
