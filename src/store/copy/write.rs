//! Rows written into PostgreSQL for `dripline state copy`, a chunk a
//! statement, all in the copy's one transaction.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{DeliveryRow, SignupRow};
use crate::store::Result;

pub async fn enrollments(tx: &mut PgConnection, chunk: &[(String, String, i64)]) -> Result<()> {
    let mut query =
        QueryBuilder::<Postgres>::new("INSERT INTO enrollments (sequence, email, enrolled_at) ");
    query.push_values(chunk, |mut row, (sequence, email, at)| {
        row.push_bind(sequence).push_bind(email).push_bind(at);
    });
    query.build().execute(tx).await?;
    Ok(())
}

/// Deliveries left claimed belong to no live instance, so the first one
/// to look takes them over and resends them with their Message-IDs.
pub async fn deliveries(tx: &mut PgConnection, chunk: &[DeliveryRow]) -> Result<()> {
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO deliveries (sequence, email, step, status, attempts, message_id,
             claimed_at, claimed_by, sent_at, retry_at, reply) ",
    );
    query.push_values(chunk, |mut row, delivery| {
        row.push_bind(&delivery.sequence)
            .push_bind(&delivery.email)
            .push_bind(&delivery.step)
            .push_bind(&delivery.status)
            .push_bind(delivery.attempts as i32)
            .push_bind(&delivery.message_id)
            .push_bind(delivery.claimed_at)
            .push_bind("sqlite")
            .push_bind(delivery.sent_at)
            .push_bind(delivery.retry_at)
            .push_bind(&delivery.reply);
    });
    query.build().execute(tx).await?;
    Ok(())
}

pub async fn suppressions(
    tx: &mut PgConnection,
    chunk: &[(String, String, i64, String)],
) -> Result<()> {
    let mut query =
        QueryBuilder::<Postgres>::new("INSERT INTO suppressions (email, reason, at, detail) ");
    query.push_values(chunk, |mut row, (email, reason, at, detail)| {
        row.push_bind(email)
            .push_bind(reason)
            .push_bind(at)
            .push_bind(detail);
    });
    query.build().execute(tx).await?;
    Ok(())
}

pub async fn tokens(
    tx: &mut PgConnection,
    chunk: &[(String, String, String, String)],
) -> Result<()> {
    let mut query =
        QueryBuilder::<Postgres>::new("INSERT INTO tokens (id, sequence, email, step) ");
    query.push_values(chunk, |mut row, (id, sequence, email, step)| {
        row.push_bind(id)
            .push_bind(sequence)
            .push_bind(email)
            .push_bind(step);
    });
    query.build().execute(tx).await?;
    Ok(())
}

pub async fn soft_bounces(tx: &mut PgConnection, chunk: &[(String, String, i64)]) -> Result<()> {
    let mut query =
        QueryBuilder::<Postgres>::new("INSERT INTO soft_bounces (email, reference, at) ");
    query.push_values(chunk, |mut row, (email, reference, at)| {
        row.push_bind(email).push_bind(reference).push_bind(at);
    });
    query.build().execute(tx).await?;
    Ok(())
}

pub async fn runs(
    tx: &mut PgConnection,
    chunk: &[(i64, Option<i64>, i64, i64, i64)],
) -> Result<()> {
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO runs (started_at, finished_at, sent, failed, deferred) ",
    );
    query.push_values(chunk, |mut row, run| {
        row.push_bind(run.0)
            .push_bind(run.1)
            .push_bind(run.2)
            .push_bind(run.3)
            .push_bind(run.4);
    });
    query.build().execute(tx).await?;
    Ok(())
}

pub async fn signups(tx: &mut PgConnection, chunk: &[SignupRow]) -> Result<()> {
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO signups (sequence, email, address, name, timezone, fields, token_id,
             requested_at, requested_ip, form, expires_at, mail_status, mail_attempts,
             mailed_at, confirmed_at, confirmed_ip, confirmed_form) ",
    );
    query.push_values(chunk, |mut row, signup| {
        row.push_bind(&signup.sequence)
            .push_bind(&signup.email)
            .push_bind(&signup.address)
            .push_bind(&signup.name)
            .push_bind(&signup.timezone)
            .push_bind(&signup.fields)
            .push_bind(&signup.token_id)
            .push_bind(signup.requested_at)
            .push_bind(&signup.requested_ip)
            .push_bind(&signup.form)
            .push_bind(signup.expires_at)
            // One the stopped SQLite service was sending goes again.
            .push_bind(if signup.mail_status == "sending" {
                "due"
            } else {
                signup.mail_status.as_str()
            })
            .push_bind(signup.mail_attempts as i32)
            .push_bind(signup.mailed_at)
            .push_bind(signup.confirmed_at)
            .push_bind(&signup.confirmed_ip)
            .push_bind(&signup.confirmed_form);
    });
    query.build().execute(tx).await?;
    Ok(())
}

/// What PostgreSQL keeps besides SQLite's tables: each recipient's last
/// sending time, from the deliveries copied. A join of two groupings, not
/// a lookup per recipient: the tables were filled in this transaction, so
/// the planner has no statistics and took a lookup for a scan of all the
/// deliveries, per recipient (ten minutes for 100,000).
pub async fn recipients(tx: &mut PgConnection) -> Result<()> {
    sqlx::query(
        "INSERT INTO recipients (email, last_sent_at)
         SELECT e.email, d.last_sent_at
         FROM (SELECT DISTINCT email FROM enrollments) e
         LEFT JOIN (SELECT email, max(sent_at) AS last_sent_at FROM deliveries
                    WHERE status = 'sent' GROUP BY email) d ON d.email = e.email",
    )
    .execute(tx)
    .await?;
    Ok(())
}
