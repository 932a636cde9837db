//! The SQLite store: one file, WAL, `synchronous = FULL` so a commit that
//! returned survives a crash, and migrations compiled into the binary.
//! One process sends at a time (the lock beside the file), so a delivery
//! left `claimed` is always a dead run's: any claim may take it over.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::lock::StateLock;
use super::{
    Addressed, Claim, Claimed, DeliveryRecord, Enrollment, Held, InstanceRecord, Outcome, Quota,
    Reason, Result, RunCounts, RunRecord, SequenceState, StepCount, Store, Suppression,
};

mod trip;

/// Schema changes, in order; `PRAGMA user_version` counts those applied.
/// 2: how each suppression came about (and the `complained` reason), the
/// delivery ids that tokens carry, and transient bounces.
/// 3: signups and their consent ([`super::signups`]).
/// 4: no list of sent steps beside the deliveries that record them.
/// 5: the roster of each drip and when each member is next due ([`super::roster`]).
/// 6: token rows appended by the claims, filed when a run ends ([`super::tokens`]).
/// 7: no last sending time beside the deliveries that record it.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE enrollments (
    sequence     TEXT NOT NULL,
    email        TEXT NOT NULL,
    enrolled_at  INTEGER NOT NULL,
    sent_steps   TEXT NOT NULL DEFAULT '',
    last_sent_at INTEGER,
    PRIMARY KEY (sequence, email)
) WITHOUT ROWID;

CREATE TABLE deliveries (
    sequence   TEXT NOT NULL,
    email      TEXT NOT NULL,
    step       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('claimed', 'sent', 'retry', 'failed')),
    attempts   INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    sent_at    INTEGER,
    retry_at   INTEGER,
    reply      TEXT,
    PRIMARY KEY (sequence, email, step)
) WITHOUT ROWID;

CREATE INDEX deliveries_unfinished ON deliveries (sequence, status) WHERE status != 'sent';
CREATE INDEX deliveries_by_email ON deliveries (email);

CREATE TABLE suppressions (
    email  TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    sent        INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    deferred    INTEGER NOT NULL DEFAULT 0
);
"#,
    r#"
ALTER TABLE suppressions ADD COLUMN detail TEXT NOT NULL DEFAULT '';

CREATE TABLE tokens (
    id       TEXT PRIMARY KEY,
    sequence TEXT NOT NULL,
    email    TEXT NOT NULL,
    step     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE soft_bounces (
    email     TEXT NOT NULL,
    reference TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (email, reference)
) WITHOUT ROWID;
"#,
    super::signups::SQLITE_MIGRATION,
    // Sent steps are read from the deliveries themselves.
    "ALTER TABLE enrollments DROP COLUMN sent_steps;",
    super::roster::SQLITE_MIGRATION,
    super::tokens::MIGRATION,
    // An address's last sending time is read from its deliveries: a sent
    // email writes one row less.
    "ALTER TABLE enrollments DROP COLUMN last_sent_at;",
];

/// Rows a query's results may run ahead of the pass that reads them: a
/// page of due members.
const ROWS_HANDED_OVER: usize = 4096;

/// Rows in one multi-row statement: far below SQLite's parameter limit.
const ROWS_PER_STATEMENT: usize = 128;

/// Send state in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// The one connection a pass's trips take ([`trip`]): no other
    /// connection writes between two of them, so its page cache stays
    /// valid instead of being read again from the file each time. Its
    /// statement journals and temporary tables stay in memory (a trip's
    /// statements touch dozens of pages each, which would otherwise go to
    /// a temporary file made and removed every trip), and it is not
    /// pinged before each trip.
    sender: SqlitePool,
    /// Held by the one process that sends; released with the last clone.
    _lock: Option<Arc<StateLock>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the state file at `path` and brings its
    /// schema up to date; `lock`, when given, is held until it closes.
    pub(super) async fn open(path: &Path, lock: Option<StateLock>) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Rows that sqlx's SQLite thread may hand over before the pass
            // takes them: with sqlx's 50, that thread stopped every 50 rows
            // of a page of 4,096, to be woken again by the pass.
            .row_buffer_size(ROWS_HANDED_OVER);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the state file {}", path.display()))?;
        let sender = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, trip::TEMP_TABLES)
                        .await
                        .map(drop)
                })
            })
            .connect_lazy_with(options.pragma("temp_store", "memory"));
        let store = SqliteStore {
            pool,
            sender,
            _lock: lock.map(Arc::new),
        };
        store
            .migrate()
            .await
            .with_context(|| format!("cannot prepare the state file {}", path.display()))?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            anyhow::bail!(
                "it was written by a newer dripline (schema {version}, this one knows {known}); upgrade dripline"
            );
        }
        if version == known {
            // Up to date: stay a reader, so opening the state never waits
            // for (or fails on) a writer such as a running `dripline serve`.
            tx.rollback().await?;
            return Ok(());
        }
        for migration in &MIGRATIONS[version as usize..] {
            sqlx::raw_sql(migration).execute(&mut *tx).await?;
        }
        sqlx::raw_sql(&format!("PRAGMA user_version = {known}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The connection pool, for the store's other tables ([`super::signups`]).
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.sender.close().await;
        self.pool.close().await;
    }
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn optional_time(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.map(time)
}

/// Emails sent or in flight after `hour` and after `day`.
async fn used_since(conn: &mut sqlx::SqliteConnection, hour: i64, day: i64) -> Result<(u64, u64)> {
    let (in_hour, in_day): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE at > ?1), COUNT(*) FILTER (WHERE at > ?2) FROM (
             SELECT sent_at AS at FROM deliveries WHERE status = 'sent' AND sent_at > ?2
             UNION ALL
             SELECT claimed_at FROM deliveries WHERE status = 'claimed' AND claimed_at > ?2)",
    )
    .bind(hour)
    .bind(day)
    .fetch_one(conn)
    .await?;
    Ok((in_hour as u64, in_day as u64))
}

/// Signup confirmations sent after `hour` and after `day`: they spend the
/// same quotas as course emails (`engine::budget`).
async fn confirmations_since(
    conn: &mut sqlx::SqliteConnection,
    hour: i64,
    day: i64,
) -> Result<(u64, u64)> {
    let (in_hour, in_day): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE mailed_at > ?1), COUNT(*) FROM signups WHERE mailed_at > ?2",
    )
    .bind(hour)
    .bind(day)
    .fetch_one(conn)
    .await?;
    Ok((in_hour as u64, in_day as u64))
}

async fn suppress_in(
    tx: &mut Transaction<'_, Sqlite>,
    email: &str,
    reason: Reason,
    detail: &str,
    now: i64,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO suppressions (email, reason, at, detail) VALUES (?, ?, ?, ?)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(email)
    .bind(reason.as_str())
    .bind(now)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

impl Store for SqliteStore {
    states!(sqlx::Sqlite);

    async fn last_sent(&self) -> Result<HashMap<String, DateTime<Utc>>> {
        let mut rows = sqlx::query(
            "SELECT email, MAX(sent_at) AS at FROM deliveries
             WHERE status = 'sent' GROUP BY email",
        )
        .fetch(&self.pool);
        let mut last_sent = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            last_sent.insert(row.get("email"), time(row.get("at")));
        }
        Ok(last_sent)
    }

    async fn enroll(&self, sequence: &str, new: &[(String, DateTime<Utc>)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO enrollments (sequence, email, enrolled_at) ",
            );
            query.push_values(chunk, |mut row, (email, enrolled_at)| {
                row.push_bind(sequence)
                    .push_bind(email)
                    .push_bind(enrolled_at.timestamp());
            });
            query.push(" ON CONFLICT (sequence, email) DO NOTHING");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(&self, claims: Vec<Claim>, now: DateTime<Utc>, quota: Quota) -> Result<Claimed> {
        self.settle(&[], &[], claims, now, quota).await
    }

    async fn release(&self, held: &[Held]) -> Result<()> {
        trip::release(&self.sender, held).await
    }

    async fn sent_since(&self, since: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        let (used, _) = used_since(&mut conn, since.timestamp(), since.timestamp()).await?;
        Ok(used)
    }

    async fn record(&self, results: &[(Held, Outcome)], now: DateTime<Utc>) -> Result<()> {
        self.settle(results, &[], Vec::new(), now, Quota::default())
            .await
            .map(drop)
    }

    /// One transaction, one commit: the answers of a batch and the claims
    /// of the next become durable together.
    async fn settle(
        &self,
        results: &[(Held, Outcome)],
        released: &[Held],
        claims: Vec<Claim>,
        now: DateTime<Utc>,
        quota: Quota,
    ) -> Result<Claimed> {
        trip::take(
            &self.sender,
            results,
            released,
            claims,
            now.timestamp(),
            quota,
        )
        .await
    }

    async fn suppress(
        &self,
        email: &str,
        reason: Reason,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = suppress_in(&mut tx, email, reason, detail, now.timestamp()).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    addresses!(sqlx::Sqlite);

    async fn begin_run(&self, now: DateTime<Utc>) -> Result<i64> {
        let id = sqlx::query("INSERT INTO runs (started_at) VALUES (?)")
            .bind(now.timestamp())
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(id)
    }

    reports!(sqlx::Sqlite);

    async fn instances(&self) -> Result<Vec<InstanceRecord>> {
        // One sender at a time, held by the file lock: none to list.
        Ok(Vec::new())
    }

    fn walk_offset(&self) -> u64 {
        0
    }

    async fn run_starts(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DateTime<Utc>>> {
        let rows = sqlx::query(
            "SELECT started_at FROM runs WHERE started_at < ? ORDER BY started_at DESC LIMIT ?",
        )
        .bind(before.timestamp())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| time(row.get("started_at"))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        time(seconds)
    }

    #[tokio::test]
    async fn a_schema_1_state_file_is_upgraded_keeping_its_suppressions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dripline.db");
        {
            let options = SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            sqlx::raw_sql(MIGRATIONS[0]).execute(&pool).await.unwrap();
            sqlx::raw_sql(
                "PRAGMA user_version = 1;
                 INSERT INTO suppressions (email, reason, at) VALUES ('old@example.com', 'bounced', 10);",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteStore::open(&path, None).await.unwrap();
        let old = &store.suppressions().await.unwrap()["old@example.com"];
        assert_eq!(
            (old.reason.as_str(), old.at, old.detail.as_str()),
            ("bounced", at(10), "")
        );

        assert!(
            store
                .suppress(
                    "new@example.com",
                    Reason::Complained,
                    "ARF abuse report",
                    at(20)
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .suppress("new@example.com", Reason::Bounced, "later", at(30))
                .await
                .unwrap()
        );
        let new = &store.suppressions().await.unwrap()["new@example.com"];
        assert_eq!(
            (new.reason.as_str(), new.detail.as_str()),
            ("complained", "ARF abuse report")
        );

        store
            .enroll("s", &[("ada@example.com".to_owned(), at(0))])
            .await
            .unwrap();
        let claim = Claim {
            sequence: "s".to_owned(),
            email: "ada@example.com".to_owned(),
            step: "one".to_owned(),
            message_id: "<m@x>".to_owned(),
            delivery_id: "aaaabbbbccccdddd".to_owned(),
            day_start: at(0),
        };
        let quota = Quota::default();
        for now in [at(1), at(2)] {
            let claimed = store.claim(vec![claim.clone()], now, quota).await.unwrap();
            assert_eq!(claimed.won.len(), 1, "a dead run's claim is taken over");
        }
        assert_eq!(
            store.addressed("aaaabbbbccccdddd").await.unwrap(),
            Some(Addressed {
                sequence: "s".to_owned(),
                email: "ada@example.com".to_owned(),
                step: "one".to_owned()
            })
        );
        assert_eq!(store.addressed("unknown").await.unwrap(), None);

        let since = at(0);
        assert_eq!(
            store
                .soft_bounce("ada@example.com", "s/one", at(5), since)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .soft_bounce("ada@example.com", "s/one", at(6), since)
                .await
                .unwrap(),
            1,
            "the same email counts once"
        );
        assert_eq!(
            store
                .soft_bounce("ada@example.com", "s/two", at(7), since)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .soft_bounce("ada@example.com", "s/three", at(8), at(6))
                .await
                .unwrap(),
            2,
            "older ones fall out of the window"
        );
        store.close().await;
    }
}
