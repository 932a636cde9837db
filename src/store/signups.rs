//! Signups in the state: requests waiting for their confirmation, and
//! confirmed subscribers with their consent record (DESIGN.md 9, `export`).
//!
//! They live in the state, not a file, so that every instance of
//! `dripline serve` sees the same ones. A signup is keyed by sequence and
//! subscriber key (lower-case address): one row per person per course,
//! holding the latest request (its token id, expiry and confirmation
//! email) and, once confirmed, the consent (time, client address, form).
//! This file owns the [`Signups`] trait and its SQLite implementation
//! (PostgreSQL's is in `postgres_signups`); it decides nothing about who may sign up ([`crate::signup`] does).

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::roster::DripKey;
use super::sqlite::SqliteStore;
use super::{Result, StateStore};

/// The schema change that adds signups (SQLite), applied after the others.
pub(super) const SQLITE_MIGRATION: &str = r#"
CREATE TABLE signups (
    sequence       TEXT NOT NULL,
    email          TEXT NOT NULL,
    address        TEXT NOT NULL,
    name           TEXT,
    timezone       TEXT,
    fields         TEXT NOT NULL DEFAULT '{}',
    token_id       TEXT NOT NULL,
    requested_at   INTEGER NOT NULL,
    requested_ip   TEXT NOT NULL,
    form           TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    mail_status    TEXT NOT NULL CHECK (mail_status IN ('due', 'sending', 'sent', 'failed')),
    mail_attempts  INTEGER NOT NULL DEFAULT 0,
    mailed_at      INTEGER,
    confirmed_at   INTEGER,
    confirmed_ip   TEXT,
    confirmed_form TEXT,
    PRIMARY KEY (sequence, email)
) WITHOUT ROWID;

CREATE UNIQUE INDEX signups_by_token ON signups (token_id);
CREATE INDEX signups_mail_due ON signups (mail_status) WHERE mail_status != 'sent';
"#;

/// A signup request, as the form posted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub sequence: String,
    /// The subscriber key (lower-case address).
    pub email: String,
    /// The address as typed.
    pub address: String,
    pub name: Option<String>,
    /// An IANA zone name, already checked.
    pub timezone: Option<String>,
    /// Custom fields of the form, by name.
    pub fields: BTreeMap<String, String>,
    /// The id its confirmation token carries.
    pub token_id: String,
    pub at: DateTime<Utc>,
    /// The client address it came from.
    pub ip: String,
    /// Which form: `hosted`, or the origin of the site that embeds it.
    pub form: String,
    pub expires_at: DateTime<Utc>,
}

/// Where an address stands on one sequence, for the signup rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// When it confirmed, if it ever did.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When its latest request came.
    pub requested_at: DateTime<Utc>,
    /// When its latest request's confirmation link stops working.
    pub expires_at: DateTime<Utc>,
}

/// A confirmed signup: a subscriber of its sequence, with the consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub email: String,
    pub address: String,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub fields: BTreeMap<String, String>,
    /// When the address signed up (the latest request).
    pub requested_at: DateTime<Utc>,
    /// The consent: when, from which client address, through which form.
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_ip: String,
    pub confirmed_form: String,
}

/// A confirmation email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub sequence: String,
    pub email: String,
    pub address: String,
    pub name: Option<String>,
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
    /// Attempts so far, counting this one.
    pub attempt: u32,
}

/// What happened to a confirmation email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailed {
    Sent,
    /// Try again at the next round.
    Retry,
    /// Given up on.
    Failed,
}

/// A pending signup that a token points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointed {
    pub sequence: String,
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub form: String,
    /// Set once it was confirmed with this token.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// Counts for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignupCount {
    pub sequence: String,
    pub confirmed: u64,
    /// Waiting for their confirmation, link not yet expired.
    pub pending: u64,
}

/// Signups in the state. Every method is one transaction.
pub trait Signups {
    /// Where `email` stands on `sequence`; `None` if it never signed up.
    fn standing(
        &self,
        sequence: &str,
        email: &str,
    ) -> impl Future<Output = Result<Option<Standing>>> + Send;

    /// How many requests of `sequence` wait for their confirmation at `now`.
    fn pending_count(
        &self,
        sequence: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Records a request (replacing the previous one of the same address,
    /// and keeping its consent if it had one); its confirmation email is due.
    fn request(&self, request: &Request) -> impl Future<Output = Result<()>> + Send;

    /// Why `email` is suppressed (`unsubscribed`, `bounced`, ...), if it is.
    fn suppression_reason(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Makes confirmation emails that a stopped service was sending due
    /// again. Only for a service that holds the state alone (SQLite);
    /// PostgreSQL takes an abandoned one again by its age instead.
    fn resume_outgoing(&self) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` confirmation emails that are due, marked as being sent.
    fn take_outgoing(&self, limit: u32) -> impl Future<Output = Result<Vec<Outgoing>>> + Send;

    /// Records what happened to a confirmation email.
    fn mailed(
        &self,
        token_id: &str,
        result: Mailed,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Confirmation emails sent after `since`: for the hour and day quotas.
    fn mailed_since(&self, since: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;

    /// The signup whose latest request carries `token_id`.
    fn pointed(&self, token_id: &str) -> impl Future<Output = Result<Option<Pointed>>> + Send;

    /// Confirms the request that carries `token_id`, recording the consent
    /// and enrolling the address in its sequence with its clock starting
    /// `now`; false when there is no such request (or it was confirmed
    /// before, which changes nothing).
    fn confirm(
        &self,
        token_id: &str,
        now: DateTime<Utc>,
        ip: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The confirmed signups of `sequence`, by address.
    fn confirmed(&self, sequence: &str) -> impl Future<Output = Result<Vec<Confirmed>>> + Send;

    /// The confirmed signups of the drip's sequence that its roster does
    /// not hold yet, by address: what a pass adds, without reading the
    /// signups it added before.
    fn confirmed_outside(
        &self,
        drip: &DripKey,
    ) -> impl Future<Output = Result<Vec<Confirmed>>> + Send;

    /// Per-sequence counts at `now`.
    fn signup_counts(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<SignupCount>>> + Send;
}

impl Signups for StateStore {
    async fn standing(&self, sequence: &str, email: &str) -> Result<Option<Standing>> {
        forward!(self, store => store.standing(sequence, email))
    }
    async fn pending_count(&self, sequence: &str, now: DateTime<Utc>) -> Result<u64> {
        forward!(self, store => store.pending_count(sequence, now))
    }
    async fn request(&self, request: &Request) -> Result<()> {
        forward!(self, store => store.request(request))
    }
    async fn suppression_reason(&self, email: &str) -> Result<Option<String>> {
        forward!(self, store => store.suppression_reason(email))
    }
    async fn resume_outgoing(&self) -> Result<()> {
        forward!(self, store => store.resume_outgoing())
    }
    async fn take_outgoing(&self, limit: u32) -> Result<Vec<Outgoing>> {
        forward!(self, store => store.take_outgoing(limit))
    }
    async fn mailed(&self, token_id: &str, result: Mailed, now: DateTime<Utc>) -> Result<()> {
        forward!(self, store => store.mailed(token_id, result, now))
    }
    async fn mailed_since(&self, since: DateTime<Utc>) -> Result<u64> {
        forward!(self, store => store.mailed_since(since))
    }
    async fn pointed(&self, token_id: &str) -> Result<Option<Pointed>> {
        forward!(self, store => store.pointed(token_id))
    }
    async fn confirm(&self, token_id: &str, now: DateTime<Utc>, ip: &str) -> Result<bool> {
        forward!(self, store => store.confirm(token_id, now, ip))
    }
    async fn confirmed(&self, sequence: &str) -> Result<Vec<Confirmed>> {
        forward!(self, store => store.confirmed(sequence))
    }
    async fn confirmed_outside(&self, drip: &DripKey) -> Result<Vec<Confirmed>> {
        forward!(self, store => store.confirmed_outside(drip))
    }
    async fn signup_counts(&self, now: DateTime<Utc>) -> Result<Vec<SignupCount>> {
        forward!(self, store => store.signup_counts(now))
    }
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

impl Signups for SqliteStore {
    async fn standing(&self, sequence: &str, email: &str) -> Result<Option<Standing>> {
        let row = sqlx::query(
            "SELECT confirmed_at, requested_at, expires_at FROM signups WHERE sequence = ? AND email = ?",
        )
        .bind(sequence)
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| Standing {
            confirmed_at: row.get::<Option<i64>, _>(0).map(time),
            requested_at: time(row.get(1)),
            expires_at: time(row.get(2)),
        }))
    }

    async fn pending_count(&self, sequence: &str, now: DateTime<Utc>) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signups WHERE sequence = ? AND expires_at > ?
               AND (confirmed_at IS NULL OR confirmed_at < requested_at)",
        )
        .bind(sequence)
        .bind(now.timestamp())
        .fetch_one(self.pool())
        .await?;
        Ok(count.max(0) as u64)
    }

    async fn request(&self, request: &Request) -> Result<()> {
        let fields = serde_json::to_string(&request.fields)?;
        sqlx::query(
            "INSERT INTO signups (sequence, email, address, name, timezone, fields, token_id,
                requested_at, requested_ip, form, expires_at, mail_status)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'due')
             ON CONFLICT (sequence, email) DO UPDATE SET
                address = excluded.address, name = excluded.name, timezone = excluded.timezone,
                fields = excluded.fields, token_id = excluded.token_id,
                requested_at = excluded.requested_at, requested_ip = excluded.requested_ip,
                form = excluded.form, expires_at = excluded.expires_at,
                mail_status = 'due', mail_attempts = 0, mailed_at = NULL",
        )
        .bind(&request.sequence)
        .bind(&request.email)
        .bind(&request.address)
        .bind(&request.name)
        .bind(&request.timezone)
        .bind(fields)
        .bind(&request.token_id)
        .bind(request.at.timestamp())
        .bind(&request.ip)
        .bind(&request.form)
        .bind(request.expires_at.timestamp())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn suppression_reason(&self, email: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT reason FROM suppressions WHERE email = ?")
                .bind(email)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn resume_outgoing(&self) -> Result<()> {
        sqlx::query("UPDATE signups SET mail_status = 'due' WHERE mail_status = 'sending'")
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn take_outgoing(&self, limit: u32) -> Result<Vec<Outgoing>> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "UPDATE signups SET mail_status = 'sending', mail_attempts = mail_attempts + 1
             WHERE token_id IN (SELECT token_id FROM signups WHERE mail_status = 'due' LIMIT ?)
             RETURNING sequence, email, address, name, token_id, expires_at, mail_attempts",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .iter()
            .map(|row| Outgoing {
                sequence: row.get(0),
                email: row.get(1),
                address: row.get(2),
                name: row.get(3),
                token_id: row.get(4),
                expires_at: time(row.get(5)),
                attempt: row.get::<i64, _>(6).max(0) as u32,
            })
            .collect())
    }

    async fn mailed(&self, token_id: &str, result: Mailed, now: DateTime<Utc>) -> Result<()> {
        let (status, mailed_at) = match result {
            Mailed::Sent => ("sent", Some(now.timestamp())),
            Mailed::Retry => ("due", None),
            Mailed::Failed => ("failed", None),
        };
        sqlx::query(
            "UPDATE signups SET mail_status = ?, mailed_at = ? WHERE token_id = ? AND mail_status = 'sending'",
        )
        .bind(status)
        .bind(mailed_at)
        .bind(token_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn mailed_since(&self, since: DateTime<Utc>) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signups WHERE mailed_at > ?")
            .bind(since.timestamp())
            .fetch_one(self.pool())
            .await?;
        Ok(count.max(0) as u64)
    }

    async fn pointed(&self, token_id: &str) -> Result<Option<Pointed>> {
        let row = sqlx::query(
            "SELECT sequence, email, expires_at, form,
                CASE WHEN confirmed_form IS NOT NULL AND confirmed_at >= requested_at THEN confirmed_at END
             FROM signups WHERE token_id = ?",
        )
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| Pointed {
            sequence: row.get(0),
            email: row.get(1),
            expires_at: time(row.get(2)),
            form: row.get(3),
            confirmed_at: row.get::<Option<i64>, _>(4).map(time),
        }))
    }

    async fn confirm(&self, token_id: &str, now: DateTime<Utc>, ip: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        // Confirmed once per request: a second press changes nothing.
        let row = sqlx::query(
            "UPDATE signups SET confirmed_at = ?, confirmed_ip = ?, confirmed_form = form
             WHERE token_id = ? AND expires_at > ?
               AND (confirmed_at IS NULL OR confirmed_at < requested_at)
             RETURNING sequence, email",
        )
        .bind(now.timestamp())
        .bind(ip)
        .bind(token_id)
        .bind(now.timestamp())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let (sequence, email): (String, String) = (row.get(0), row.get(1));
        sqlx::query(
            "INSERT INTO enrollments (sequence, email, enrolled_at) VALUES (?, ?, ?)
             ON CONFLICT (sequence, email) DO NOTHING",
        )
        .bind(&sequence)
        .bind(&email)
        .bind(now.timestamp())
        .execute(&mut *tx)
        .await?;
        // Signing up again through a confirmation lifts an unsubscribe,
        // never a bounce or a complaint.
        sqlx::query("DELETE FROM suppressions WHERE email = ? AND reason = 'unsubscribed'")
            .bind(&email)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    confirmed!();

    async fn signup_counts(&self, now: DateTime<Utc>) -> Result<Vec<SignupCount>> {
        let rows = sqlx::query(
            "SELECT sequence,
                SUM(confirmed_at IS NOT NULL),
                SUM((confirmed_at IS NULL OR confirmed_at < requested_at) AND expires_at > ?)
             FROM signups GROUP BY sequence ORDER BY sequence",
        )
        .bind(now.timestamp())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| SignupCount {
                sequence: row.get(0),
                confirmed: row.get::<i64, _>(1).max(0) as u64,
                pending: row.get::<i64, _>(2).max(0) as u64,
            })
            .collect())
    }
}
