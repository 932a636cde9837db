//! A pass's trip to the SQLite store: record what the server answered,
//! undo what never reached it, claim what goes next, in one commit.
//!
//! The store runs on sqlx's SQLite thread while the pass, on its own
//! thread, drives the SMTP sessions; every command sent to that thread
//! waits for it to be scheduled, and its answer for the pass to take it.
//! So a trip is one JSON document ([`Trip`]) bound as `?1` to one constant
//! list of statements that begins and commits the transaction itself
//! ([`RECORD`], then [`CLAIM`]): one command, whatever the batch. With an
//! hour or day quota the claims are cut between the two, inside the same
//! transaction, by what the counts say (three commands then).

use std::sync::LazyLock;

use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use super::{confirmations_since, used_since};
use crate::store::{Claim, Claimed, DeliveryStatus, Held, Outcome, Quota, Reason, Result};

/// The temporary tables a trip works with, made on each connection that
/// takes trips: each list of the trip document that more than one
/// statement reads is read out of it once, into one of these (a JSON
/// list is parsed again by every statement that reads it, each of its
/// elements twice), and [`CLAIM`] keeps the claims won in `won` while it
/// writes them. A trip leaves them empty.
pub(super) const TEMP_TABLES: &str = "
CREATE TEMP TABLE held (
    sequence TEXT NOT NULL, email TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL);
CREATE TEMP TABLE asked (
    asked INTEGER NOT NULL, sequence TEXT NOT NULL, email TEXT NOT NULL, step TEXT NOT NULL,
    message_id TEXT NOT NULL, day_start INTEGER NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TEMP TABLE won (
    asked INTEGER NOT NULL, sequence TEXT NOT NULL, email TEXT NOT NULL, step TEXT NOT NULL,
    message_id TEXT NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL);";

/// What one trip writes, bound as `?1`. `now` matters only where a list
/// holds something.
#[derive(Serialize, Default)]
struct Trip<'a> {
    now: i64,
    /// `[sequence, email, step, reply]`: the server took them.
    sent: Vec<(&'a str, &'a str, &'a str, &'a str)>,
    /// `[sequence, email, step, attempt, status, retry_at, reply]`: to
    /// retry later, or failed for good.
    finished: Vec<Finished<'a>>,
    /// `[email, reason, detail]`: recipients the server rejected.
    suppressed: Vec<(&'a str, &'static str, String)>,
    /// `[sequence, email, step, attempt]`: claims that never reached the
    /// server.
    released: Vec<(&'a str, &'a str, &'a str, u32)>,
    /// `[sequence, email, step, message_id, day_start, delivery_id]`.
    claims: Vec<(&'a str, &'a str, &'a str, &'a str, i64, &'a str)>,
}

/// A retry or failure to record, as `[sequence, email, step, attempt,
/// status, retry_at, reply]`.
#[derive(Serialize)]
struct Finished<'a>(
    &'a str,
    &'a str,
    &'a str,
    u32,
    &'static str,
    Option<i64>,
    &'a str,
);

/// Begins the trip and records what the server said and what never
/// reached it. Only an email not already sent gets its sending time (an
/// address's last is read from its deliveries), so a late duplicate result
/// never moves it back; `sent` lands whoever holds the claim now (the
/// server took the email), a retry or failure only while the claim is held
/// with that attempt. A released first attempt leaves no trace, a later
/// one goes back to retry.
const RECORD: &str = "
BEGIN IMMEDIATE;

WITH sent AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step,
                     value->>3 AS reply
              FROM json_each(?1, '$.sent'))
UPDATE deliveries SET status = 'sent', sent_at = ?1->>'$.now', retry_at = NULL, reply = sent.reply
FROM sent
WHERE deliveries.sequence = sent.sequence AND deliveries.email = sent.email
  AND deliveries.step = sent.step AND deliveries.status IN ('claimed', 'retry');

WITH finished AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step,
                         value->>3 AS attempt, value->>4 AS status, value->>5 AS retry_at,
                         value->>6 AS reply
                  FROM json_each(?1, '$.finished'))
UPDATE deliveries SET status = finished.status, retry_at = finished.retry_at,
                      reply = finished.reply
FROM finished
WHERE deliveries.sequence = finished.sequence AND deliveries.email = finished.email
  AND deliveries.step = finished.step AND deliveries.attempts = finished.attempt
  AND deliveries.status = 'claimed';

INSERT INTO suppressions (email, reason, at, detail)
SELECT value->>0, value->>1, ?1->>'$.now', value->>2 FROM json_each(?1, '$.suppressed') WHERE true
ON CONFLICT (email) DO NOTHING;

INSERT INTO temp.held (sequence, email, step, attempt)
SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?1, '$.released');

DELETE FROM deliveries
WHERE (sequence, email, step, attempts) IN (SELECT sequence, email, step, attempt FROM temp.held)
  AND status = 'claimed' AND attempts <= 1;

UPDATE deliveries SET status = 'retry', attempts = attempts - 1 FROM temp.held
WHERE deliveries.sequence = held.sequence AND deliveries.email = held.email
  AND deliveries.step = held.step AND deliveries.attempts = held.attempt
  AND deliveries.status = 'claimed';

DELETE FROM temp.held;
";

/// Claims, conditionally, commits, and returns one row: `[[index asked,
/// attempt], …]` for the claims won. A claim is won under
/// [`crate::store::CLAIM_GATE`]; a delivery left `claimed` is a dead
/// run's (one process sends at a time), so any claim takes it over, and
/// one sent or failed is never claimed again. Which claims win is decided
/// once, into `won`, and what is written follows from it. Every
/// id asked for gets a token row, appended to be filed when the run ends
/// ([`crate::store::tokens`]): a resend after a key rotation gets a
/// new id, and the old email's tokens must still resolve.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "
INSERT INTO temp.asked (asked, sequence, email, step, message_id, day_start, id, at)
SELECT key, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, ?1->>'$.now'
FROM json_each(?1, '$.claims');

INSERT INTO new_tokens (id, sequence, email, step)
SELECT id, sequence, email, step FROM temp.asked;

INSERT INTO temp.won (asked, sequence, email, step, message_id, attempt, at)
SELECT b.asked, b.sequence, b.email, b.step, b.message_id, coalesce(own.attempts, 0) + 1, b.at
FROM temp.asked b LEFT JOIN deliveries own
  ON own.sequence = b.sequence AND own.email = b.email AND own.step = b.step
WHERE (own.status IS NULL OR own.status IN ('claimed', 'retry')) AND {gate};

INSERT INTO deliveries (sequence, email, step, status, attempts, message_id, claimed_at)
SELECT sequence, email, step, 'claimed', attempt, message_id, at FROM temp.won WHERE true
ON CONFLICT (sequence, email, step) DO UPDATE
SET status = 'claimed', attempts = excluded.attempts, claimed_at = excluded.claimed_at;

SELECT json_group_array(json_array(asked, attempt)) FROM temp.won;

DELETE FROM temp.won;
DELETE FROM temp.asked;

COMMIT;",
        gate = crate::store::CLAIM_GATE
    )
});

/// The whole trip as one list of statements, when no quota cuts the
/// claims in between.
static RECORD_AND_CLAIM: LazyLock<String> = LazyLock::new(|| format!("{RECORD}{}", *CLAIM));

/// Records `results`, undoes `released`, then claims `claims` (as far as
/// `quota` leaves room), in one transaction on a connection of `sender`.
pub(super) async fn take(
    sender: &SqlitePool,
    results: &[(Held, Outcome)],
    released: &[Held],
    claims: Vec<Claim>,
    now: i64,
    quota: Quota,
) -> Result<Claimed> {
    let mut leg = Leg(Some(sender.acquire().await?));
    let conn: &mut SqliteConnection = leg.0.as_mut().expect("held until the trip ends");
    let mut trip = Trip {
        now,
        ..Trip::default()
    };
    trip.record(results, released);
    let went = if quota.is_set() {
        cut_between(conn, &trip, claims, now, quota).await
    } else {
        in_one(conn, trip, &claims).await
    };
    if went.is_err() {
        // Whatever statement failed, nothing of the trip stays.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    leg.0.take();
    went
}

/// The whole trip in one command: [`RECORD`] and [`CLAIM`] together.
async fn in_one(
    conn: &mut SqliteConnection,
    mut trip: Trip<'_>,
    claims: &[Claim],
) -> Result<Claimed> {
    trip.claim(claims);
    let rows = run(conn, &RECORD_AND_CLAIM, &trip).await?;
    Ok(Claimed {
        won: winners(claims, &rows)?,
        over_quota: 0,
    })
}

/// [`RECORD`] with `trip`, then the claims the quota leaves room for,
/// counted inside the same transaction, then [`CLAIM`] with those.
async fn cut_between(
    conn: &mut SqliteConnection,
    trip: &Trip<'_>,
    mut claims: Vec<Claim>,
    now: i64,
    quota: Quota,
) -> Result<Claimed> {
    run(conn, RECORD, trip).await?;
    let over_quota = cut_to_quota(conn, &mut claims, now, quota).await?;
    let trip = Trip::claiming(now, &claims);
    let won = winners(&claims, &run(conn, &CLAIM, &trip).await?)?;
    Ok(Claimed { won, over_quota })
}

/// Undoes claims whose emails never reached the server, in a trip of its
/// own.
pub(super) async fn release(sender: &SqlitePool, held: &[Held]) -> Result<()> {
    take(sender, &[], held, Vec::new(), 0, Quota::default())
        .await
        .map(drop)
}

/// The connection a trip holds: were the trip cut short (its future
/// dropped), the connection is closed, which rolls the transaction back,
/// instead of going back to the pool with it open.
struct Leg(Option<PoolConnection<Sqlite>>);

impl Drop for Leg {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            conn.close_on_drop();
        }
    }
}

/// Runs a list of statements with `trip` as `?1`; the rows it returned.
/// (Not `fetch_one`: it stops the list at the first row.)
async fn run(
    conn: &mut SqliteConnection,
    statements: &str,
    trip: &Trip<'_>,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(statements)
        .bind(serde_json::to_string(trip)?)
        .fetch_all(conn)
        .await?)
}

/// The claims of `claims` that [`CLAIM`]'s one row says were won, in the
/// order asked.
fn winners(claims: &[Claim], rows: &[String]) -> Result<Vec<Held>> {
    let Some(row) = rows.first() else {
        return Ok(Vec::new());
    };
    let won: Vec<(usize, u32)> = serde_json::from_str(row)?;
    Ok(won
        .into_iter()
        .map(|(asked, attempt)| Held {
            claim: claims[asked].clone(),
            attempt,
        })
        .collect())
}

impl<'a> Trip<'a> {
    fn claiming(now: i64, claims: &'a [Claim]) -> Trip<'a> {
        let mut trip = Trip {
            now,
            ..Trip::default()
        };
        trip.claim(claims);
        trip
    }

    /// Adds what the server said, and the claims it never saw.
    fn record(&mut self, results: &'a [(Held, Outcome)], released: &'a [Held]) {
        for (held, outcome) in results {
            let Held { claim, attempt } = held;
            let (sequence, email, step) = (&*claim.sequence, &*claim.email, &*claim.step);
            let finished = |status: DeliveryStatus, retry_at, reply| {
                Finished(
                    sequence,
                    email,
                    step,
                    *attempt,
                    status.as_str(),
                    retry_at,
                    reply,
                )
            };
            match outcome {
                Outcome::Sent { reply } => self.sent.push((sequence, email, step, reply)),
                Outcome::Retry { at, reply } => {
                    let retry_at = Some(at.timestamp());
                    self.finished
                        .push(finished(DeliveryStatus::Retry, retry_at, reply));
                }
                Outcome::Failed { reply, bounced } => {
                    self.finished
                        .push(finished(DeliveryStatus::Failed, None, reply));
                    if *bounced {
                        let detail = format!("rejected at RCPT: {reply}");
                        self.suppressed
                            .push((email, Reason::Bounced.as_str(), detail));
                    }
                }
            }
        }
        self.released
            .extend(released.iter().map(|Held { claim, attempt }| {
                (&*claim.sequence, &*claim.email, &*claim.step, *attempt)
            }));
    }

    fn claim(&mut self, claims: &'a [Claim]) {
        self.claims.extend(claims.iter().map(|claim| {
            (
                &*claim.sequence,
                &*claim.email,
                &*claim.step,
                &*claim.message_id,
                claim.day_start.timestamp(),
                &*claim.delivery_id,
            )
        }));
    }
}

/// Drops the claims beyond what the hour and day limits leave, counting
/// what went out or is in flight, signup confirmations included.
async fn cut_to_quota(
    conn: &mut SqliteConnection,
    claims: &mut Vec<Claim>,
    now: i64,
    quota: Quota,
) -> Result<u64> {
    if claims.is_empty() {
        return Ok(0);
    }
    let now = super::time(now);
    let (hour, day) = Quota::windows(now);
    let (hour, day) = (hour.timestamp(), day.timestamp());
    let (in_hour, in_day) = used_since(conn, hour, day).await?;
    let (mailed_in_hour, mailed_in_day) = confirmations_since(conn, hour, day).await?;
    let left = quota
        .left(in_hour + mailed_in_hour, in_day + mailed_in_day)
        .unwrap_or(u64::MAX);
    Ok(crate::store::cut(claims, left))
}
