//! `dripline state copy`: a SQLite state moved, row for row, into an
//! empty PostgreSQL database, so an operator can go from one host to
//! several without losing who got what.
//!
//! The SQLite file is locked for the copy (no `run` or `serve` changes it
//! meanwhile), the rows stream through a chunk at a time (a state of
//! millions of rows copies in the memory of one chunk), and the target is
//! written in one transaction: a copy that fails leaves it empty. Deliveries left `claimed` by a dead run stay
//! claimed, by no live instance, so the first instance resends them with
//! their Message-IDs, as the SQLite state would have.

mod read;
mod write;

use anyhow::Context as _;
use futures_util::TryStreamExt as _;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{Access, PostgresTarget, StateSettings, StateStore};

/// One signup, every column.
#[derive(Debug, Clone)]
pub struct SignupRow {
    pub sequence: String,
    pub email: String,
    pub address: String,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub fields: String,
    pub token_id: String,
    pub requested_at: i64,
    pub requested_ip: String,
    pub form: String,
    pub expires_at: i64,
    pub mail_status: String,
    pub mail_attempts: i64,
    pub mailed_at: Option<i64>,
    pub confirmed_at: Option<i64>,
    pub confirmed_ip: Option<String>,
    pub confirmed_form: Option<String>,
}

/// One delivery, every column.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub sequence: String,
    pub email: String,
    pub step: String,
    pub status: String,
    pub attempts: i64,
    pub message_id: String,
    pub claimed_at: i64,
    pub sent_at: Option<i64>,
    pub retry_at: Option<i64>,
    pub reply: Option<String>,
}

/// What a copy moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub enrollments: usize,
    pub deliveries: usize,
    pub suppressions: usize,
    pub runs: usize,
    pub signups: usize,
}

/// Copies the SQLite state `from` into the empty PostgreSQL database `to`.
pub async fn copy(from: &StateSettings, to: &PostgresTarget) -> anyhow::Result<Copied> {
    let StateSettings::Sqlite { path } = from else {
        anyhow::bail!(
            "the project's state is already in PostgreSQL ({}); state copy moves a SQLite state",
            from.describe()
        );
    };
    if !path.is_file() {
        anyhow::bail!("there is no state file {} to copy", path.display());
    }
    let StateStore::Sqlite(source) = super::open(from, Access::Send).await? else {
        unreachable!("SQLite settings open a SQLite store");
    };
    let target = PostgresStore::open(to, false).await?;
    let copied = move_rows(&source, &target, to).await;
    target.close().await;
    source.close().await;
    copied
}

/// Rows held in memory at a time: a copy of any size runs in the same room.
const CHUNK: usize = 1000;

/// Every row of `source`, streamed into the empty `target` in one
/// transaction: a copy that fails leaves the target as it was.
async fn move_rows(
    source: &SqliteStore,
    target: &PostgresStore,
    to: &PostgresTarget,
) -> anyhow::Result<Copied> {
    if !target.is_empty().await? {
        anyhow::bail!(
            "{} already holds dripline state; copy only into an empty database (nothing was changed)",
            to.shown
        );
    }
    let mut reading = source
        .pool
        .begin()
        .await
        .context("cannot read the state file")?;
    let mut writing = target
        .pool
        .begin()
        .await
        .with_context(|| format!("cannot write to {}", to.shown))?;
    let copied = pipe_tables(&mut reading, &mut writing)
        .await
        .with_context(|| format!("cannot copy into {}; it was left as it was", to.shown))?;
    writing
        .commit()
        .await
        .with_context(|| format!("cannot write to {}; it was left as it was", to.shown))?;
    reading.rollback().await?;
    Ok(copied)
}

/// Each table in turn, a chunk at a time.
async fn pipe_tables(
    from: &mut sqlx::SqliteConnection,
    to: &mut sqlx::PgConnection,
) -> super::Result<Copied> {
    let enrollments = pipe(read::enrollments(from), async |c| {
        write::enrollments(to, c).await
    })
    .await?;
    let deliveries = pipe(read::deliveries(from), async |c| {
        write::deliveries(to, c).await
    })
    .await?;
    let suppressions = pipe(read::suppressions(from), async |c| {
        write::suppressions(to, c).await
    })
    .await?;
    pipe(read::tokens(from), async |c| write::tokens(to, c).await).await?;
    pipe(read::soft_bounces(from), async |c| {
        write::soft_bounces(to, c).await
    })
    .await?;
    let runs = pipe(read::runs(from), async |c| write::runs(to, c).await).await?;
    let signups = pipe(read::signups(from), async |c| write::signups(to, c).await).await?;
    write::recipients(to).await?;
    Ok(Copied {
        enrollments,
        deliveries,
        suppressions,
        runs,
        signups,
    })
}

/// Hands `rows` to `write` [`CHUNK`] at a time; returns how many there were.
async fn pipe<T>(
    mut rows: read::Rows<'_, T>,
    mut write: impl AsyncFnMut(&[T]) -> super::Result<()>,
) -> super::Result<usize> {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut total = 0;
    loop {
        let row = rows.try_next().await?;
        let end = row.is_none();
        chunk.extend(row);
        if chunk.len() == CHUNK || (end && !chunk.is_empty()) {
            write(&chunk).await?;
            total += chunk.len();
            chunk.clear();
        }
        if end {
            return Ok(total);
        }
    }
}
