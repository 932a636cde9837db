//! A pass's trip to the SQLite store: record what the server answered,
//! undo what never reached it, claim what goes next, in one commit.
//!
//! The store runs on sqlx's SQLite thread, and every statement is a
//! round trip to it from the pass, which is busy with the SMTP sessions.
//! So the sent emails travel as one JSON array bound to one list of
//! statements ([`RECORD_SENT`]), and the claims as another ([`CLAIM`]):
//! the same prepared statements and one round trip each, whatever the
//! batch; releases go the same way ([`RELEASE`]). Retries and failures
//! are rare and keep a statement each.

use std::sync::LazyLock;

use sqlx::{Sqlite, Transaction};

use super::{confirmations_since, finish_delivery, suppress_in, used_since, winners};
use crate::store::{Claim, Claimed, DeliveryStatus, Held, Outcome, Quota, Reason, Result};

/// Records sent emails. `?1`: `[[sequence, email, step, reply], …]`;
/// `?2`: now. Only an email not already sent moves its enrollment's last
/// sending time, so a late duplicate result never moves it back; `sent`
/// lands whoever holds the claim now: the server took the email.
const RECORD_SENT: &str = "
WITH sent AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step
              FROM json_each(?1))
UPDATE enrollments SET last_sent_at = ?2 FROM sent
WHERE enrollments.sequence = sent.sequence AND enrollments.email = sent.email
  AND EXISTS (SELECT 1 FROM deliveries d
              WHERE d.sequence = sent.sequence AND d.email = sent.email
                AND d.step = sent.step AND d.status IN ('claimed', 'retry'));

WITH sent AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step,
                     value->>3 AS reply
              FROM json_each(?1))
UPDATE deliveries SET status = 'sent', sent_at = ?2, retry_at = NULL, reply = sent.reply
FROM sent
WHERE deliveries.sequence = sent.sequence AND deliveries.email = sent.email
  AND deliveries.step = sent.step AND deliveries.status IN ('claimed', 'retry');";

/// Claims, conditionally, and returns the claims won. `?1`: `[[sequence,
/// email, step, message_id, day_start, delivery_id], …]`; `?2`: now. A
/// claim is won under [`crate::store::CLAIM_GATE`]; a delivery left
/// `claimed` is a dead run's (one process sends at a time), so any claim
/// takes it over. Every id asked for keeps a token row: a resend after a
/// key rotation gets a new id, and the old email's tokens must still
/// resolve.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "
WITH b AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step,
                  value->>3 AS message_id, value->>4 AS day_start
           FROM json_each(?1))
INSERT INTO deliveries (sequence, email, step, status, attempts, message_id, claimed_at)
SELECT sequence, email, step, 'claimed', 1, message_id, ?2 FROM b WHERE {gate}
ON CONFLICT (sequence, email, step) DO UPDATE
SET status = 'claimed', attempts = attempts + 1, claimed_at = excluded.claimed_at
WHERE deliveries.status IN ('claimed', 'retry')
RETURNING sequence, email, step, attempts;

INSERT INTO tokens (id, sequence, email, step)
SELECT value->>5, value->>0, value->>1, value->>2 FROM json_each(?1) WHERE true
ON CONFLICT (id) DO NOTHING;",
        gate = crate::store::CLAIM_GATE
    )
});

/// Records `results`, undoes `released`, then claims `claims` (as far as
/// `quota` leaves room), all inside `tx`.
pub(super) async fn take(
    tx: &mut Transaction<'_, Sqlite>,
    results: &[(Held, Outcome)],
    released: &[Held],
    claims: Vec<Claim>,
    now: i64,
    quota: Quota,
) -> Result<Claimed> {
    record(tx, results, now).await?;
    release(tx, released).await?;
    claim(tx, claims, now, quota).await
}

/// Records what the server said: the sent emails in one statement, a
/// retry or failure (rare) in one each, with the suppression a rejected
/// recipient brings.
async fn record(
    tx: &mut Transaction<'_, Sqlite>,
    results: &[(Held, Outcome)],
    now: i64,
) -> Result<()> {
    let mut sent = Vec::new();
    for (held, outcome) in results {
        let claim = &held.claim;
        match outcome {
            Outcome::Sent { reply } => {
                sent.push((&claim.sequence, &claim.email, &claim.step, reply))
            }
            Outcome::Retry { at, reply } => {
                let retry_at = Some(at.timestamp());
                finish_delivery(tx, held, DeliveryStatus::Retry, retry_at, reply).await?;
            }
            Outcome::Failed { reply, bounced } => {
                finish_delivery(tx, held, DeliveryStatus::Failed, None, reply).await?;
                if *bounced {
                    let detail = format!("rejected at RCPT: {reply}");
                    suppress_in(tx, &claim.email, Reason::Bounced, &detail, now).await?;
                }
            }
        }
    }
    if !sent.is_empty() {
        sqlx::query(RECORD_SENT)
            .bind(serde_json::to_string(&sent)?)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Claims what the quota leaves room for, in one statement.
async fn claim(
    tx: &mut Transaction<'_, Sqlite>,
    mut claims: Vec<Claim>,
    now: i64,
    quota: Quota,
) -> Result<Claimed> {
    let over_quota = cut_to_quota(tx, &mut claims, now, quota).await?;
    if claims.is_empty() {
        return Ok(Claimed {
            won: Vec::new(),
            over_quota,
        });
    }
    let asked: Vec<_> = claims
        .iter()
        .map(|claim| {
            let day_start = claim.day_start.timestamp();
            let id = &claim.delivery_id;
            (
                &claim.sequence,
                &claim.email,
                &claim.step,
                &claim.message_id,
                day_start,
                id,
            )
        })
        .collect();
    let rows = sqlx::query(&CLAIM)
        .bind(serde_json::to_string(&asked)?)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    Ok(Claimed {
        won: winners(&claims, &rows),
        over_quota,
    })
}

/// Drops the claims beyond what the hour and day limits leave, counting
/// what went out or is in flight, signup confirmations included.
async fn cut_to_quota(
    tx: &mut Transaction<'_, Sqlite>,
    claims: &mut Vec<Claim>,
    now: i64,
    quota: Quota,
) -> Result<u64> {
    if !quota.is_set() || claims.is_empty() {
        return Ok(0);
    }
    let now = super::time(now);
    let (hour, day) = Quota::windows(now);
    let (hour, day) = (hour.timestamp(), day.timestamp());
    let (in_hour, in_day) = used_since(tx, hour, day).await?;
    let (mailed_in_hour, mailed_in_day) = confirmations_since(tx, hour, day).await?;
    let left = quota
        .left(in_hour + mailed_in_hour, in_day + mailed_in_day)
        .unwrap_or(u64::MAX);
    Ok(crate::store::cut(claims, left))
}

/// Undoes claims still held with their attempt, `?1`: `[[sequence,
/// email, step, attempt], …]`. A first attempt leaves no trace, a later
/// one goes back to retry.
const RELEASE: &str = "
WITH held AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step,
                     value->>3 AS attempt
              FROM json_each(?1))
DELETE FROM deliveries
WHERE (sequence, email, step, attempts) IN (SELECT sequence, email, step, attempt FROM held)
  AND status = 'claimed' AND attempts <= 1;

WITH held AS (SELECT value->>0 AS sequence, value->>1 AS email, value->>2 AS step,
                     value->>3 AS attempt
              FROM json_each(?1))
UPDATE deliveries SET status = 'retry', attempts = attempts - 1 FROM held
WHERE deliveries.sequence = held.sequence AND deliveries.email = held.email
  AND deliveries.step = held.step AND deliveries.attempts = held.attempt
  AND deliveries.status = 'claimed';";

/// Undoes claims whose emails never reached the server ([`RELEASE`]).
pub(super) async fn release(tx: &mut Transaction<'_, Sqlite>, held: &[Held]) -> Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    let held: Vec<_> = held
        .iter()
        .map(|Held { claim, attempt }| (&claim.sequence, &claim.email, &claim.step, attempt))
        .collect();
    sqlx::query(RELEASE)
        .bind(serde_json::to_string(&held)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
