//! What the state does with an address after the handover: the email a
//! token names, transient bounces counted once per reference, and lifting
//! a suppression. The SQL is the same on both backends (`$n` placeholders
//! work in SQLite too), so [`addresses!`] writes these [`super::Store`]
//! methods once for each backend's `impl Store` block.

macro_rules! addresses {
    ($db:ty) => {
        async fn addressed(&self, delivery_id: &str) -> Result<Option<Addressed>> {
            let row = sqlx::query::<$db>(super::tokens::LOOKUP)
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|row| Addressed {
                sequence: row.get("sequence"),
                email: row.get("email"),
                step: row.get("step"),
            }))
        }

        async fn soft_bounce(
            &self,
            email: &str,
            reference: &str,
            now: DateTime<Utc>,
            since: DateTime<Utc>,
        ) -> Result<u64> {
            let mut tx = self.pool.begin().await?;
            sqlx::query::<$db>(
                "INSERT INTO soft_bounces (email, reference, at) VALUES ($1, $2, $3)
                 ON CONFLICT (email, reference) DO NOTHING",
            )
            .bind(email)
            .bind(reference)
            .bind(now.timestamp())
            .execute(&mut *tx)
            .await?;
            let count: i64 = sqlx::query_scalar::<$db, i64>(
                "SELECT COUNT(*) FROM soft_bounces WHERE email = $1 AND at > $2",
            )
            .bind(email)
            .bind(since.timestamp())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(count as u64)
        }

        async fn resubscribe(&self, email: &str) -> Result<bool> {
            let mut tx = self.pool.begin().await?;
            let deleted = sqlx::query::<$db>("DELETE FROM suppressions WHERE email = $1")
                .bind(email)
                .execute(&mut *tx)
                .await?;
            // Emails that failed for good get a fresh start, attempts and all.
            let failed =
                sqlx::query::<$db>("DELETE FROM deliveries WHERE email = $1 AND status = 'failed'")
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            // Old transient bounces do not count against a fresh start.
            sqlx::query::<$db>("DELETE FROM soft_bounces WHERE email = $1")
                .bind(email)
                .execute(&mut *tx)
                .await?;
            // Their next emails may be due at once: the roster looks again.
            sqlx::query::<$db>(
                "UPDATE members SET next_due_at = 0, version = version + 1 WHERE email = $1",
            )
            .bind(email)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(deleted.rows_affected() + failed.rows_affected() > 0)
        }
    };
}
