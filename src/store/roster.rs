//! The roster: each drip's members as the state keeps them, in step with
//! its list file, and when each of them is next worth a look.
//!
//! A pass asks the roster who is due now ([`Roster::due`]) and loads only
//! them ([`Roster::page`]), so a pass over a list where nothing is due
//! costs an index lookup, not the list. The list file is read again only
//! when its stamp ([`ListStamp`]) changed, and then a row at a time against
//! the stored row hashes ([`crate::roster`] does that). This file owns the
//! [`Roster`] trait and its one implementation, written once for both
//! backends (the SQL is the same; `$n` placeholders work in SQLite too).
//!
//! `next_due_at` is a lower bound: a member may be looked at too early
//! (and then waits again), never too late. Whatever could bring their
//! next email forward resets it to 0 and counts a new `version`: a new or
//! changed row, a lifted suppression. After a change to the sequence's
//! timing (its fingerprint) a pass looks at every member once.
//! A pass writes what it learned only onto the version it loaded, so a
//! reset that lands meanwhile is never undone.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::roster::row::RowHashes;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{Enrollment, Result, SequenceState, StateStore, Suppression};

/// The schema change that adds the roster (SQLite).
pub(super) const SQLITE_MIGRATION: &str = r#"
CREATE TABLE members (
    sequence    TEXT NOT NULL,
    list        TEXT NOT NULL,
    email       TEXT NOT NULL,
    row_hash    INTEGER,
    active      INTEGER NOT NULL,
    row         TEXT NOT NULL,
    position    INTEGER NOT NULL,
    next_due_at INTEGER,
    version     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sequence, list, email)
) WITHOUT ROWID;
CREATE INDEX members_due ON members (sequence, list, next_due_at) WHERE active = 1;
CREATE INDEX members_rows ON members (sequence, list, row_hash);
CREATE INDEX members_by_email ON members (email);

CREATE TABLE list_stamps (
    sequence TEXT NOT NULL,
    list     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    content  TEXT NOT NULL,
    layout   TEXT NOT NULL,
    problems TEXT NOT NULL,
    bad_rows INTEGER NOT NULL,
    PRIMARY KEY (sequence, list)
) WITHOUT ROWID;

CREATE TABLE timings (
    sequence    TEXT NOT NULL,
    list        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (sequence, list)
) WITHOUT ROWID;
"#;

/// The schema change that adds the roster (PostgreSQL).
pub(super) const POSTGRES_MIGRATION: &str = r#"
CREATE TABLE members (
    sequence    text NOT NULL,
    list        text NOT NULL,
    email       text NOT NULL,
    row_hash    bigint,
    active      bigint NOT NULL,
    row         text NOT NULL,
    position    bigint NOT NULL,
    next_due_at bigint,
    version     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sequence, list, email)
);
CREATE INDEX members_due ON members (sequence, list, next_due_at) WHERE active = 1;
CREATE INDEX members_rows ON members (sequence, list, row_hash);
CREATE INDEX members_by_email ON members (email);

CREATE TABLE list_stamps (
    sequence text NOT NULL,
    list     text NOT NULL,
    size     bigint NOT NULL,
    modified bigint NOT NULL,
    content  text NOT NULL,
    layout   text NOT NULL,
    problems text NOT NULL,
    bad_rows bigint NOT NULL,
    PRIMARY KEY (sequence, list)
);

CREATE TABLE timings (
    sequence    text NOT NULL,
    list        text NOT NULL,
    fingerprint text NOT NULL,
    PRIMARY KEY (sequence, list)
);
"#;

/// Rows in one multi-row statement: 8,000 parameters at most, below the
/// limits of SQLite (32,766) and PostgreSQL (65,535).
const ROWS_PER_STATEMENT: usize = 1000;

/// A drip's place in the roster: its sequence and its list, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DripKey {
    pub sequence: String,
    pub list: String,
}

/// What a list file looked like when it was last read into the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStamp {
    pub size: i64,
    /// Modification time, in nanoseconds since the epoch.
    pub modified: i64,
    /// A hash of the whole file.
    pub content: String,
    /// What its columns meant ([`crate::subscribers::Reader::layout`]).
    pub layout: String,
    /// The problems reading it found, one a line, shown again by every
    /// pass that does not read it.
    pub problems: String,
    pub bad_rows: i64,
}

/// A row of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The subscriber key (lower-case address).
    pub email: String,
    /// The hash of the list row it came from; `None` for a signup.
    pub row_hash: Option<i64>,
    /// To be sent to: on the list (or confirmed), not unsubscribed there.
    pub active: bool,
    /// The subscriber, as [`crate::roster`] stores them.
    pub row: String,
    /// Where they come in a pass: their line in the list when it was
    /// stored (signups after every row).
    pub position: i64,
}

/// Due members and what the state holds about them: a slice of a pass.
#[derive(Debug, Default)]
pub struct Page {
    /// Key, stored row and version of each, in the order asked.
    pub members: Vec<(String, String, i64)>,
    pub state: SequenceState,
    pub suppressed: HashMap<String, Suppression>,
    /// When each last got an email from any sequence.
    pub last_sent: HashMap<String, DateTime<Utc>>,
}

/// When a member is next worth a look: key, the version it was decided
/// on, and the time (`None`: never).
pub type Look = (String, i64, Option<DateTime<Utc>>);

/// The roster of every drip. Every method is one transaction.
pub trait Roster {
    /// The stamp of the drip's list when it was last read.
    fn stamp(&self, drip: &DripKey) -> impl Future<Output = Result<Option<ListStamp>>> + Send;

    /// Records the stamp of the list just read.
    fn save_stamp(
        &self,
        drip: &DripKey,
        stamp: &ListStamp,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The hashes of the list rows the roster holds.
    fn row_hashes(&self, drip: &DripKey) -> impl Future<Output = Result<RowHashes>> + Send;

    /// The stored row hash of each of `emails` that has one.
    fn stored_hashes(
        &self,
        drip: &DripKey,
        emails: &[String],
    ) -> impl Future<Output = Result<HashMap<String, i64>>> + Send;

    /// Adds or replaces members (new or changed rows): due to be looked at.
    fn upsert(&self, drip: &DripKey, members: &[Member])
    -> impl Future<Output = Result<()>> + Send;

    /// Adds members that are not there yet (confirmed signups: a list row wins).
    fn add_absent(
        &self,
        drip: &DripKey,
        members: &[Member],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Stops the members whose rows, by hash, left the list.
    fn remove_rows(&self, drip: &DripKey, gone: &[i64]) -> impl Future<Output = Result<()>> + Send;

    /// The fingerprint of the timing the drip's next-due times follow.
    fn timing(&self, drip: &DripKey) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Records the timing fingerprint the drip's next-due times now
    /// follow: every member was looked at under it.
    fn save_timing(
        &self,
        drip: &DripKey,
        fingerprint: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The active members to look at by `until` (every one when `None`),
    /// by key, in list order.
    fn due(
        &self,
        drip: &DripKey,
        until: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// The members `emails` with their state.
    fn page(&self, drip: &DripKey, emails: &[String]) -> impl Future<Output = Result<Page>> + Send;

    /// Sets when each member (key, version loaded) is next worth a look
    /// (`None`: never, until something resets it), unless their version
    /// changed since.
    fn reschedule(&self, drip: &DripKey, next: &[Look]) -> impl Future<Output = Result<()>> + Send;
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Writes the [`Roster`] implementation of one backend: the same SQL,
/// compiled for its database. A list of keys goes in as one bound value,
/// made by `keys`, that `among` (a format with the parameter's place)
/// tests an address against: a statement of the same text for every
/// page, prepared once, instead of one parameter per key.
macro_rules! roster {
    ($store:ty, $db:ty, keys: $keys:path, among: $among:literal) => {
        impl Roster for $store {
            async fn stamp(&self, drip: &DripKey) -> Result<Option<ListStamp>> {
                let row = sqlx::query::<$db>(
                    "SELECT size, modified, content, layout, problems, bad_rows FROM list_stamps
                     WHERE sequence = $1 AND list = $2",
                )
                .bind(&drip.sequence)
                .bind(&drip.list)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|row| ListStamp {
                    size: row.get("size"),
                    modified: row.get("modified"),
                    content: row.get("content"),
                    layout: row.get("layout"),
                    problems: row.get("problems"),
                    bad_rows: row.get("bad_rows"),
                }))
            }

            async fn save_stamp(&self, drip: &DripKey, stamp: &ListStamp) -> Result<()> {
                sqlx::query::<$db>(
                    "INSERT INTO list_stamps (sequence, list, size, modified, content, layout, problems, bad_rows)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (sequence, list) DO UPDATE SET size = excluded.size,
                       modified = excluded.modified, content = excluded.content,
                       layout = excluded.layout, problems = excluded.problems,
                       bad_rows = excluded.bad_rows",
                )
                .bind(&drip.sequence)
                .bind(&drip.list)
                .bind(stamp.size)
                .bind(stamp.modified)
                .bind(&stamp.content)
                .bind(&stamp.layout)
                .bind(&stamp.problems)
                .bind(stamp.bad_rows)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn row_hashes(&self, drip: &DripKey) -> Result<RowHashes> {
                // As one value, not a row per member: handed over one by
                // one, a million rows took twice as long as reading them.
                let joined = sqlx::query_scalar::<$db, Option<String>>(
                    "SELECT string_agg(CAST(row_hash AS TEXT), ',') FROM members
                     WHERE sequence = $1 AND list = $2 AND row_hash IS NOT NULL",
                )
                .bind(&drip.sequence)
                .bind(&drip.list)
                .fetch_one(&self.pool)
                .await?;
                let joined = joined.unwrap_or_default();
                let count = joined.bytes().filter(|&byte| byte == b',').count() + 1;
                let mut hashes = RowHashes::with_capacity_and_hasher(count, Default::default());
                for hash in joined.split_terminator(',') {
                    hashes.insert(hash.parse().map_err(|err| {
                        anyhow::anyhow!("a stored row hash `{hash}` is not a number: {err}")
                    })?);
                }
                Ok(hashes)
            }

            async fn stored_hashes(
                &self,
                drip: &DripKey,
                emails: &[String],
            ) -> Result<HashMap<String, i64>> {
                let mut stored = HashMap::new();
                let sql = format!(
                    "SELECT email, row_hash FROM members
                     WHERE row_hash IS NOT NULL AND sequence = $1 AND list = $2 AND email {}",
                    format_args!($among, "$3")
                );
                for chunk in emails.chunks(ROWS_PER_STATEMENT) {
                    let rows = sqlx::query::<$db>(&sql)
                        .bind(&drip.sequence)
                        .bind(&drip.list)
                        .bind($keys(chunk)?)
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        stored.insert(row.get("email"), row.get("row_hash"));
                    }
                }
                Ok(stored)
            }

            async fn upsert(&self, drip: &DripKey, members: &[Member]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for chunk in members.chunks(ROWS_PER_STATEMENT) {
                    let mut query = insert::<$db>(drip, chunk);
                    query.push(
                        " ON CONFLICT (sequence, list, email) DO UPDATE SET row_hash = excluded.row_hash,
                           active = excluded.active, row = excluded.row, position = excluded.position,
                           next_due_at = 0, version = members.version + 1",
                    );
                    query.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn add_absent(&self, drip: &DripKey, members: &[Member]) -> Result<u64> {
                let mut tx = self.pool.begin().await?;
                let mut added = 0;
                for chunk in members.chunks(ROWS_PER_STATEMENT) {
                    let mut query = insert::<$db>(drip, chunk);
                    query.push(" ON CONFLICT (sequence, list, email) DO NOTHING");
                    added += query.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn remove_rows(&self, drip: &DripKey, gone: &[i64]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for chunk in gone.chunks(ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::<$db>::new(
                        "UPDATE members SET active = 0, row_hash = NULL WHERE sequence = ",
                    );
                    query.push_bind(&drip.sequence).push(" AND list = ").push_bind(&drip.list);
                    query.push(" AND row_hash IN (");
                    let mut hashes = query.separated(", ");
                    for hash in chunk {
                        hashes.push_bind(*hash);
                    }
                    query.push(")");
                    query.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn timing(&self, drip: &DripKey) -> Result<Option<String>> {
                Ok(sqlx::query_scalar::<$db, String>(
                    "SELECT fingerprint FROM timings WHERE sequence = $1 AND list = $2",
                )
                .bind(&drip.sequence)
                .bind(&drip.list)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn save_timing(&self, drip: &DripKey, fingerprint: &str) -> Result<()> {
                sqlx::query::<$db>(
                    "INSERT INTO timings (sequence, list, fingerprint) VALUES ($1, $2, $3)
                     ON CONFLICT (sequence, list) DO UPDATE SET fingerprint = excluded.fingerprint",
                )
                .bind(&drip.sequence)
                .bind(&drip.list)
                .bind(fingerprint)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn due(
                &self,
                drip: &DripKey,
                until: Option<DateTime<Utc>>,
            ) -> Result<Vec<String>> {
                // Two statements, so the due one keeps to its index.
                let sql = match until {
                    Some(_) => {
                        "SELECT email FROM members
                         WHERE sequence = $1 AND list = $2 AND active = 1 AND next_due_at <= $3
                         ORDER BY position, email"
                    }
                    None => {
                        "SELECT email FROM members
                         WHERE sequence = $1 AND list = $2 AND active = 1 AND $3 IS NULL
                         ORDER BY position, email"
                    }
                };
                Ok(sqlx::query_scalar::<$db, String>(sql)
                    .bind(&drip.sequence)
                    .bind(&drip.list)
                    .bind(until.map(|until| until.timestamp()))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn page(&self, drip: &DripKey, emails: &[String]) -> Result<Page> {
                let mut conn = self.pool.acquire().await?;
                let mut page = Page::default();
                // One statement per table, each for the keys of the page,
                // bound as one value.
                let keys = $keys(emails)?;
                let among = |param: &str| format!($among, param);
                let sql = format!(
                    "SELECT email, row, version FROM members
                     WHERE sequence = $1 AND list = $2 AND email {}",
                    among("$3")
                );
                let mut rows: HashMap<String, (String, i64)> = HashMap::new();
                for row in sqlx::query::<$db>(&sql)
                    .bind(&drip.sequence)
                    .bind(&drip.list)
                    .bind(&keys)
                    .fetch_all(&mut *conn)
                    .await?
                {
                    rows.insert(row.get("email"), (row.get("row"), row.get("version")));
                }
                page.members = emails
                    .iter()
                    .filter_map(|email| {
                        let (row, version) = rows.remove(email)?;
                        Some((email.clone(), row, version))
                    })
                    .collect();
                let sql = format!(
                    "SELECT email, enrolled_at FROM enrollments WHERE sequence = $1 AND email {}",
                    among("$2")
                );
                for row in by_sequence::<$db, _>(&sql, &drip.sequence, &keys)
                    .fetch_all(&mut *conn)
                    .await?
                {
                    page.state.enrollments.insert(
                        row.get("email"),
                        Enrollment {
                            enrolled_at: time(row.get("enrolled_at")),
                            sent_steps: Vec::new(),
                            last_sent_at: None,
                        },
                    );
                }
                let sql = format!(
                    "SELECT {} FROM deliveries WHERE sequence = $1 AND email {}
                     ORDER BY email, sent_at, step",
                    super::states::DELIVERY_STATE,
                    among("$2")
                );
                for row in by_sequence::<$db, _>(&sql, &drip.sequence, &keys)
                    .fetch_all(&mut *conn)
                    .await?
                {
                    super::states::add_delivery(&mut page.state, &row);
                }
                let sql = format!(
                    "SELECT email, MAX(sent_at) AS at FROM deliveries
                     WHERE status = 'sent' AND email {} GROUP BY email",
                    among("$1")
                );
                for row in sqlx::query::<$db>(&sql).bind(&keys).fetch_all(&mut *conn).await? {
                    if let Some(at) = row.get::<Option<i64>, _>("at") {
                        page.last_sent.insert(row.get("email"), time(at));
                    }
                }
                let sql = format!(
                    "SELECT email, reason, at, detail FROM suppressions WHERE email {}",
                    among("$1")
                );
                for row in sqlx::query::<$db>(&sql).bind(&keys).fetch_all(&mut *conn).await? {
                    page.suppressed
                        .insert(row.get("email"), super::states::suppression(&row));
                }
                Ok(page)
            }

            async fn reschedule(&self, drip: &DripKey, next: &[Look]) -> Result<()> {
                // In key order: two instances never wait on each other's rows
                // in opposite orders.
                let mut next: Vec<&Look> = next.iter().collect();
                next.sort_by(|a, b| a.0.cmp(&b.0));
                let mut tx = self.pool.begin().await?;
                for chunk in next.chunks(ROWS_PER_STATEMENT) {
                    // VALUES columns are column1, column2, … in both databases.
                    let mut query = QueryBuilder::<$db>::new(
                        "UPDATE members SET next_due_at = v.column3 FROM (",
                    );
                    query.push_values(chunk, |mut row, (email, version, at)| {
                        row.push_bind(email)
                            .push_bind(*version)
                            .push_bind(at.map(|at| at.timestamp()));
                    });
                    query.push(") AS v WHERE members.sequence = ");
                    query.push_bind(&drip.sequence);
                    query.push(" AND members.list = ").push_bind(&drip.list);
                    query.push(" AND members.email = v.column1 AND members.version = v.column2");
                    query.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

/// `sql` with a sequence as `$1` and a page's keys as `$2`.
fn by_sequence<'q, DB: sqlx::Database, K>(
    sql: &'q str,
    sequence: &'q str,
    keys: K,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    K: 'q + sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query::<DB>(sql).bind(sequence).bind(keys)
}

/// `INSERT INTO members … VALUES …` for `members` of `drip`, due at once.
fn insert<DB: sqlx::Database>(drip: &DripKey, members: &[Member]) -> QueryBuilder<'static, DB>
where
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::<DB>::new(
        "INSERT INTO members (sequence, list, email, row_hash, active, row, position, next_due_at) ",
    );
    query.push_values(members, |mut row, member| {
        row.push_bind(drip.sequence.clone())
            .push_bind(drip.list.clone())
            .push_bind(member.email.clone())
            .push_bind(member.row_hash)
            .push_bind(i64::from(member.active))
            .push_bind(member.row.clone())
            .push_bind(member.position)
            .push_bind(0_i64);
    });
    query
}

/// A list of keys as SQLite takes it in one bound value: a JSON array,
/// read with `json_each`.
fn json_keys(emails: &[String]) -> Result<String> {
    Ok(serde_json::to_string(emails)?)
}

/// A list of keys as PostgreSQL takes it in one bound value: an array.
fn array_keys(emails: &[String]) -> Result<&[String]> {
    Ok(emails)
}

roster!(SqliteStore, sqlx::Sqlite, keys: json_keys, among: "IN (SELECT value FROM json_each({}))");
roster!(PostgresStore, sqlx::Postgres, keys: array_keys, among: "= ANY({}::text[])");

impl Roster for StateStore {
    async fn stamp(&self, drip: &DripKey) -> Result<Option<ListStamp>> {
        forward!(self, store => store.stamp(drip))
    }
    async fn save_stamp(&self, drip: &DripKey, stamp: &ListStamp) -> Result<()> {
        forward!(self, store => store.save_stamp(drip, stamp))
    }
    async fn row_hashes(&self, drip: &DripKey) -> Result<RowHashes> {
        forward!(self, store => store.row_hashes(drip))
    }
    async fn stored_hashes(
        &self,
        drip: &DripKey,
        emails: &[String],
    ) -> Result<HashMap<String, i64>> {
        forward!(self, store => store.stored_hashes(drip, emails))
    }
    async fn upsert(&self, drip: &DripKey, members: &[Member]) -> Result<()> {
        forward!(self, store => store.upsert(drip, members))
    }
    async fn add_absent(&self, drip: &DripKey, members: &[Member]) -> Result<u64> {
        forward!(self, store => store.add_absent(drip, members))
    }
    async fn remove_rows(&self, drip: &DripKey, gone: &[i64]) -> Result<()> {
        forward!(self, store => store.remove_rows(drip, gone))
    }
    async fn timing(&self, drip: &DripKey) -> Result<Option<String>> {
        forward!(self, store => store.timing(drip))
    }
    async fn save_timing(&self, drip: &DripKey, fingerprint: &str) -> Result<()> {
        forward!(self, store => store.save_timing(drip, fingerprint))
    }
    async fn due(&self, drip: &DripKey, until: Option<DateTime<Utc>>) -> Result<Vec<String>> {
        forward!(self, store => store.due(drip, until))
    }
    async fn page(&self, drip: &DripKey, emails: &[String]) -> Result<Page> {
        forward!(self, store => store.page(drip, emails))
    }
    async fn reschedule(&self, drip: &DripKey, next: &[Look]) -> Result<()> {
        forward!(self, store => store.reschedule(drip, next))
    }
}
