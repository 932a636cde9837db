//! Signups in the PostgreSQL state: the [`Signups`] trait for
//! [`PostgresStore`], with the SQLite implementation's semantics
//! (`super::signups`), made safe for several instances at once.
//!
//! Two instances confirming one link race on the signup's row: the
//! `UPDATE` locks it, so the second sees it confirmed and changes
//! nothing. A confirmation then locks the subscriber's `recipients` row
//! (the row every claim locks) before it enrolls and lifts an
//! unsubscribe, so no claim decides on a half-made change. Confirmation
//! emails are taken with `FOR UPDATE SKIP LOCKED`, each by one instance;
//! one taken by an instance that stopped is due again after
//! [`ABANDONED_AFTER`] seconds of the database's clock.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::Result;
use super::postgres::PostgresStore;
use super::signups::{
    Confirmed, Mailed, Outgoing, Pointed, Request, SignupCount, Signups, Standing,
};

/// The schema change that adds signups (PostgreSQL, schema 2). Times are
/// seconds since the epoch; `taken_at` is the database's clock.
pub(super) const POSTGRES_MIGRATION: &str = r#"
CREATE TABLE signups (
    sequence       text NOT NULL,
    email          text NOT NULL,
    address        text NOT NULL,
    name           text,
    timezone       text,
    fields         text NOT NULL DEFAULT '{}',
    token_id       text NOT NULL,
    requested_at   bigint NOT NULL,
    requested_ip   text NOT NULL,
    form           text NOT NULL,
    expires_at     bigint NOT NULL,
    mail_status    text NOT NULL CHECK (mail_status IN ('due', 'sending', 'sent', 'failed')),
    mail_attempts  integer NOT NULL DEFAULT 0,
    taken_at       bigint,
    mailed_at      bigint,
    confirmed_at   bigint,
    confirmed_ip   text,
    confirmed_form text,
    PRIMARY KEY (sequence, email)
);

CREATE UNIQUE INDEX signups_by_token ON signups (token_id);
CREATE INDEX signups_mail_due ON signups (mail_status) WHERE mail_status <> 'sent';
CREATE INDEX signups_mailed_at ON signups (mailed_at) WHERE mailed_at IS NOT NULL;
"#;

/// Seconds after which a confirmation email taken by an instance that
/// never said what became of it is due again.
const ABANDONED_AFTER: i64 = 600;

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn outgoing(row: &PgRow) -> Outgoing {
    Outgoing {
        sequence: row.get(0),
        email: row.get(1),
        address: row.get(2),
        name: row.get(3),
        token_id: row.get(4),
        expires_at: time(row.get(5)),
        attempt: row.get::<i32, _>(6).max(0) as u32,
    }
}

impl Signups for PostgresStore {
    async fn standing(&self, sequence: &str, email: &str) -> Result<Option<Standing>> {
        let row = sqlx::query(
            "SELECT confirmed_at, requested_at, expires_at FROM signups WHERE sequence = $1 AND email = $2",
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
            "SELECT count(*) FROM signups WHERE sequence = $1 AND expires_at > $2
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'due')
             ON CONFLICT (sequence, email) DO UPDATE SET
                address = excluded.address, name = excluded.name, timezone = excluded.timezone,
                fields = excluded.fields, token_id = excluded.token_id,
                requested_at = excluded.requested_at, requested_ip = excluded.requested_ip,
                form = excluded.form, expires_at = excluded.expires_at,
                mail_status = 'due', mail_attempts = 0, taken_at = NULL, mailed_at = NULL",
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
            sqlx::query_scalar("SELECT reason FROM suppressions WHERE email = $1")
                .bind(email)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn resume_outgoing(&self) -> Result<()> {
        // Other instances may be sending: an abandoned email is taken
        // again by its age instead (see `take_outgoing`).
        Ok(())
    }

    async fn take_outgoing(&self, limit: u32) -> Result<Vec<Outgoing>> {
        let rows = sqlx::query(
            "UPDATE signups SET mail_status = 'sending', mail_attempts = mail_attempts + 1,
                taken_at = extract(epoch FROM now())::bigint
             WHERE token_id IN (
                SELECT token_id FROM signups
                WHERE mail_status = 'due'
                   OR (mail_status = 'sending' AND taken_at < extract(epoch FROM now())::bigint - $2)
                LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING sequence, email, address, name, token_id, expires_at, mail_attempts",
        )
        .bind(i64::from(limit))
        .bind(ABANDONED_AFTER)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(outgoing).collect())
    }

    async fn mailed(&self, token_id: &str, result: Mailed, now: DateTime<Utc>) -> Result<()> {
        let (status, mailed_at) = match result {
            Mailed::Sent => ("sent", Some(now.timestamp())),
            Mailed::Retry => ("due", None),
            Mailed::Failed => ("failed", None),
        };
        sqlx::query(
            "UPDATE signups SET mail_status = $1, mailed_at = $2
             WHERE token_id = $3 AND mail_status = 'sending'",
        )
        .bind(status)
        .bind(mailed_at)
        .bind(token_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn mailed_since(&self, since: DateTime<Utc>) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM signups WHERE mailed_at > $1")
            .bind(since.timestamp())
            .fetch_one(self.pool())
            .await?;
        Ok(count.max(0) as u64)
    }

    async fn pointed(&self, token_id: &str) -> Result<Option<Pointed>> {
        let row = sqlx::query(
            "SELECT sequence, email, expires_at, form,
                CASE WHEN confirmed_form IS NOT NULL AND confirmed_at >= requested_at THEN confirmed_at END
             FROM signups WHERE token_id = $1",
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
        // The row lock makes a second press, here or on another instance,
        // wait and then change nothing.
        let row = sqlx::query(
            "UPDATE signups SET confirmed_at = $1, confirmed_ip = $2, confirmed_form = form
             WHERE token_id = $3 AND expires_at > $1
               AND (confirmed_at IS NULL OR confirmed_at < requested_at)
             RETURNING sequence, email",
        )
        .bind(now.timestamp())
        .bind(ip)
        .bind(token_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let (sequence, email): (String, String) = (row.get(0), row.get(1));
        sqlx::query("INSERT INTO recipients (email) VALUES ($1) ON CONFLICT (email) DO NOTHING")
            .bind(&email)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT 1 FROM recipients WHERE email = $1 FOR UPDATE")
            .bind(&email)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO enrollments (sequence, email, enrolled_at) VALUES ($1, $2, $3)
             ON CONFLICT (sequence, email) DO NOTHING",
        )
        .bind(&sequence)
        .bind(&email)
        .bind(now.timestamp())
        .execute(&mut *tx)
        .await?;
        // Signing up again through a confirmation lifts an unsubscribe,
        // never a bounce or a complaint.
        sqlx::query("DELETE FROM suppressions WHERE email = $1 AND reason = 'unsubscribed'")
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
                count(*) FILTER (WHERE confirmed_at IS NOT NULL),
                count(*) FILTER (WHERE (confirmed_at IS NULL OR confirmed_at < requested_at)
                                   AND expires_at > $1)
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
