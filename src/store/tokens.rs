//! Token rows: the email each delivery id names ([`crate::token`]), for
//! the unsubscribe links and bounces that carry it.
//!
//! The ids are keyed hashes, so rows kept by id land on random pages of
//! their B-tree: written with each trip's claims, every commit rewrote a
//! page for nearly every row it added (a third of a trip's database time).
//! So a claim appends its rows to `new_tokens` instead, in the order they
//! come (the last page or two), and the end of each run files them into
//! `tokens` in id order, each page once. A lookup reads both
//! ([`super::addresses`]); `new_tokens` only ever holds the rows of the
//! runs since the last one that finished.

use sqlx::Executor as _;

use super::Result;
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;

/// The rows not yet filed, in both backends: no key, appended in order.
pub(super) const MIGRATION: &str = "
CREATE TABLE new_tokens (
    id       TEXT NOT NULL,
    sequence TEXT NOT NULL,
    email    TEXT NOT NULL,
    step     TEXT NOT NULL
);";

/// What a lookup of `$1` reads, filed or not.
pub(super) const LOOKUP: &str = "
SELECT sequence, email, step FROM tokens WHERE id = $1
UNION ALL
SELECT sequence, email, step FROM new_tokens WHERE id = $1
LIMIT 1";

impl SqliteStore {
    /// Files the rows appended since the last run finished. One process
    /// sends at a time, so nothing is appended meanwhile.
    pub(super) async fn file_tokens(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        tx.execute(
            "INSERT INTO tokens (id, sequence, email, step)
             SELECT id, sequence, email, step FROM new_tokens WHERE true ORDER BY id
             ON CONFLICT (id) DO NOTHING;
             DELETE FROM new_tokens;",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PostgresStore {
    /// Files the rows appended since the last run finished: exactly the
    /// rows this statement deletes, so one another instance appends
    /// meanwhile waits for the next filing.
    pub(super) async fn file_tokens(&self) -> Result<()> {
        self.pool
            .execute(
                "WITH filed AS (DELETE FROM new_tokens RETURNING id, sequence, email, step)
                 INSERT INTO tokens (id, sequence, email, step)
                 SELECT id, sequence, email, step FROM filed ORDER BY id
                 ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        Ok(())
    }
}
