//! `dripline state copy`: a SQLite state moved, row for row, into an
//! empty PostgreSQL database, so an operator can go from one host to
//! several without losing who got what.
//!
//! The SQLite file is locked for the copy (no `run` or `serve` changes it
//! meanwhile), and the target is written in one transaction: a copy that
//! fails leaves it empty. Deliveries left `claimed` by a dead run stay
//! claimed, by no live instance, so the first instance resends them with
//! their Message-IDs, as the SQLite state would have.

use anyhow::Context as _;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{Access, PostgresTarget, StateSettings, StateStore};

/// Every row of a state, as stored.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// (sequence, email, enrolled_at)
    pub enrollments: Vec<(String, String, i64)>,
    pub deliveries: Vec<DeliveryRow>,
    /// (email, reason, at, detail)
    pub suppressions: Vec<(String, String, i64, String)>,
    /// (id, sequence, email, step): what each token stands for.
    pub tokens: Vec<(String, String, String, String)>,
    /// (email, reference, at)
    pub soft_bounces: Vec<(String, String, i64)>,
    /// (started_at, finished_at, sent, failed, deferred)
    pub runs: Vec<(i64, Option<i64>, i64, i64, i64)>,
    pub signups: Vec<SignupRow>,
}

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
    let snapshot = source
        .snapshot()
        .await
        .context("cannot read the state file")?;
    let copied = Copied {
        enrollments: snapshot.enrollments.len(),
        deliveries: snapshot.deliveries.len(),
        suppressions: snapshot.suppressions.len(),
        runs: snapshot.runs.len(),
        signups: snapshot.signups.len(),
    };
    target
        .import(&snapshot)
        .await
        .with_context(|| format!("cannot write to {}; it was left as it was", to.shown))?;
    Ok(copied)
}
