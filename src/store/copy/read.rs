//! The rows of a SQLite state, table by table, as streams: a copy holds
//! one chunk of them at a time, whatever the size of the state.

use futures_util::{Stream, TryStreamExt as _};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{DeliveryRow, SignupRow};

pub type Rows<'c, T> = std::pin::Pin<Box<dyn Stream<Item = sqlx::Result<T>> + Send + 'c>>;

/// (sequence, email, enrolled_at)
pub fn enrollments(conn: &mut SqliteConnection) -> Rows<'_, (String, String, i64)> {
    sqlx::query_as("SELECT sequence, email, enrolled_at FROM enrollments").fetch(conn)
}

pub fn deliveries(conn: &mut SqliteConnection) -> Rows<'_, DeliveryRow> {
    Box::pin(
        sqlx::query(
            "SELECT sequence, email, step, status, attempts, message_id, claimed_at,
                    sent_at, retry_at, reply FROM deliveries",
        )
        .fetch(conn)
        .map_ok(|row| DeliveryRow {
            sequence: row.get("sequence"),
            email: row.get("email"),
            step: row.get("step"),
            status: row.get("status"),
            attempts: row.get("attempts"),
            message_id: row.get("message_id"),
            claimed_at: row.get("claimed_at"),
            sent_at: row.get("sent_at"),
            retry_at: row.get("retry_at"),
            reply: row.get("reply"),
        }),
    )
}

/// (email, reason, at, detail)
pub fn suppressions(conn: &mut SqliteConnection) -> Rows<'_, (String, String, i64, String)> {
    sqlx::query_as("SELECT email, reason, at, detail FROM suppressions").fetch(conn)
}

/// (id, sequence, email, step): what each token stands for.
pub fn tokens(conn: &mut SqliteConnection) -> Rows<'_, (String, String, String, String)> {
    sqlx::query_as(
        "SELECT id, sequence, email, step FROM tokens
         UNION SELECT id, sequence, email, step FROM new_tokens",
    )
    .fetch(conn)
}

/// (email, reference, at)
pub fn soft_bounces(conn: &mut SqliteConnection) -> Rows<'_, (String, String, i64)> {
    sqlx::query_as("SELECT email, reference, at FROM soft_bounces").fetch(conn)
}

/// (started_at, finished_at, sent, failed, deferred), oldest first.
pub fn runs(conn: &mut SqliteConnection) -> Rows<'_, (i64, Option<i64>, i64, i64, i64)> {
    sqlx::query_as("SELECT started_at, finished_at, sent, failed, deferred FROM runs ORDER BY id")
        .fetch(conn)
}

pub fn signups(conn: &mut SqliteConnection) -> Rows<'_, SignupRow> {
    Box::pin(
        sqlx::query(
            "SELECT sequence, email, address, name, timezone, fields, token_id, requested_at,
                    requested_ip, form, expires_at, mail_status, mail_attempts, mailed_at,
                    confirmed_at, confirmed_ip, confirmed_form FROM signups",
        )
        .fetch(conn)
        .map_ok(|row| signup(&row)),
    )
}

fn signup(row: &SqliteRow) -> SignupRow {
    SignupRow {
        sequence: row.get("sequence"),
        email: row.get("email"),
        address: row.get("address"),
        name: row.get("name"),
        timezone: row.get("timezone"),
        fields: row.get("fields"),
        token_id: row.get("token_id"),
        requested_at: row.get("requested_at"),
        requested_ip: row.get("requested_ip"),
        form: row.get("form"),
        expires_at: row.get("expires_at"),
        mail_status: row.get("mail_status"),
        mail_attempts: row.get("mail_attempts"),
        mailed_at: row.get("mailed_at"),
        confirmed_at: row.get("confirmed_at"),
        confirmed_ip: row.get("confirmed_ip"),
        confirmed_form: row.get("confirmed_form"),
    }
}
