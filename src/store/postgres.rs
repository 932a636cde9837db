//! The PostgreSQL store: one database shared by any number of `run` and
//! `serve` processes, on any number of hosts.
//!
//! Correctness comes from the database: every claim locks its
//! subscribers' rows (`FOR UPDATE SKIP LOCKED`: a row another instance is
//! claiming is skipped, never waited for), then checks the claim gate in
//! a new statement that sees everything committed before the locks, and
//! upserts the delivery only if it is new, waiting for a retry, or held
//! by an instance that stopped heartbeating. Instances register a row
//! and beat on the database's clock, so hosts need not agree on the
//! time; `--now` moves only the schedule. The hour and day quotas are
//! counted and reserved inside the claim transaction, under one advisory
//! lock, so they hold across instances. Migrations run under another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Postgres, Row, Transaction};

use super::settings::PostgresTarget;
use super::{
    Addressed, Claim, Claimed, DeliveryRecord, DeliveryStatus, Enrollment, Held, InstanceRecord,
    Outcome, Quota, Reason, Result, RunCounts, RunRecord, SequenceState, StepCount, Store,
    Suppression,
};

/// Schema changes, in order; `schema_version` counts those applied.
/// Times are seconds since the epoch, as in SQLite, except the
/// instances' own, which are the database's clock.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE enrollments (
    sequence    text NOT NULL,
    email       text NOT NULL,
    enrolled_at bigint NOT NULL,
    PRIMARY KEY (sequence, email)
);

-- One row per address, all sequences: the row a claim locks.
CREATE TABLE recipients (
    email        text PRIMARY KEY,
    last_sent_at bigint
);

CREATE TABLE deliveries (
    sequence   text NOT NULL,
    email      text NOT NULL,
    step       text NOT NULL,
    status     text NOT NULL CHECK (status IN ('claimed', 'sent', 'retry', 'failed')),
    attempts   integer NOT NULL,
    message_id text NOT NULL,
    claimed_at bigint NOT NULL,
    claimed_by text NOT NULL,
    sent_at    bigint,
    retry_at   bigint,
    reply      text,
    PRIMARY KEY (sequence, email, step)
);

CREATE INDEX deliveries_unfinished ON deliveries (sequence) WHERE status <> 'sent';
CREATE INDEX deliveries_by_email ON deliveries (email);
CREATE INDEX deliveries_sent_at ON deliveries (sent_at) WHERE status = 'sent';
CREATE INDEX deliveries_in_flight ON deliveries (claimed_by) WHERE status = 'claimed';

CREATE TABLE suppressions (
    email  text PRIMARY KEY,
    reason text NOT NULL,
    at     bigint NOT NULL,
    detail text NOT NULL DEFAULT ''
);

-- The opaque ids unsubscribe and bounce tokens carry.
CREATE TABLE tokens (
    id       text PRIMARY KEY,
    sequence text NOT NULL,
    email    text NOT NULL,
    step     text NOT NULL
);

CREATE TABLE soft_bounces (
    email     text NOT NULL,
    reference text NOT NULL,
    at        bigint NOT NULL,
    PRIMARY KEY (email, reference)
);

CREATE TABLE instances (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

CREATE TABLE runs (
    id          bigserial PRIMARY KEY,
    instance    text,
    started_at  bigint NOT NULL,
    finished_at bigint,
    sent        bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    deferred    bigint NOT NULL DEFAULT 0
);
"#,
    super::postgres_signups::POSTGRES_MIGRATION,
    super::roster::POSTGRES_MIGRATION,
    super::tokens::MIGRATION,
];

/// Advisory lock keys: "dripline" in ASCII, then one more.
const MIGRATION_LOCK: i64 = 0x6472_6970_6c69_6e65;
const QUOTA_LOCK: i64 = MIGRATION_LOCK + 1;

/// Rows in one statement, bound as arrays.
const ROWS_PER_STATEMENT: usize = 10_000;

/// Send state in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(super) pool: PgPool,
    /// This process's registration, when it sends.
    instance: Option<Arc<Instance>>,
    /// Seconds without a heartbeat after which an instance counts as dead.
    timeout: f64,
}

/// A registered instance and the task that keeps its heartbeat.
#[derive(Debug)]
struct Instance {
    id: String,
    beat: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

impl PostgresStore {
    /// Connects to `target` and brings its schema up to date; with
    /// `register`, this process becomes an instance that may claim.
    pub(super) async fn open(target: &PostgresTarget, register: bool) -> Result<PostgresStore> {
        let cannot_connect = || format!("cannot connect to the PostgreSQL state {}", target.shown);
        // One connection first: its error says why (the pool's only says
        // that it timed out).
        PgConnection::connect_with(&target.options)
            .await
            .with_context(cannot_connect)?
            .close()
            .await
            .with_context(cannot_connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(target.options.clone())
            .await
            .with_context(cannot_connect)?;
        migrate(&pool)
            .await
            .with_context(|| format!("cannot prepare the PostgreSQL state {}", target.shown))?;
        let timeout = target.instance_timeout.as_secs_f64();
        let instance = if register {
            Some(Arc::new(register_instance(&pool, target).await?))
        } else {
            None
        };
        Ok(PostgresStore {
            pool,
            instance,
            timeout,
        })
    }

    /// Deregisters this instance (its claims in flight are then free for
    /// the others at once) and closes the pool.
    pub async fn close(self) {
        if let Some(instance) = &self.instance {
            instance.beat.abort();
            if let Err(err) = sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(&instance.id)
                .execute(&self.pool)
                .await
            {
                tracing::warn!("cannot deregister instance {}: {err}", instance.id);
            }
        }
        self.pool.close().await;
    }

    /// Whether the database holds no dripline state yet.
    pub(super) async fn is_empty(&self) -> Result<bool> {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM enrollments) OR EXISTS (SELECT 1 FROM deliveries)
                 OR EXISTS (SELECT 1 FROM suppressions) OR EXISTS (SELECT 1 FROM runs)
                 OR EXISTS (SELECT 1 FROM tokens) OR EXISTS (SELECT 1 FROM new_tokens)
                 OR EXISTS (SELECT 1 FROM soft_bounces)
                 OR EXISTS (SELECT 1 FROM signups)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(!used)
    }

    /// The connection pool, for the signups (`postgres_signups`).
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// This instance's id; claiming needs one.
    fn me(&self) -> Result<&str> {
        self.instance
            .as_ref()
            .map(|instance| instance.id.as_str())
            .context("this command opened the state to read it, not to send")
    }
}

/// Applies the migrations not applied yet, one instance at a time.
async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let version: i32 = sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM schema_version")
        .fetch_one(&mut *tx)
        .await?;
    let known = MIGRATIONS.len() as i32;
    if version > known {
        anyhow::bail!(
            "it was written by a newer dripline (schema {version}, this one knows {known}); upgrade dripline"
        );
    }
    for migration in &MIGRATIONS[version as usize..] {
        sqlx::raw_sql(migration).execute(&mut *tx).await?;
    }
    if version < known {
        sqlx::query("DELETE FROM schema_version")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(known)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Registers this process and starts its heartbeat; prunes instances
/// that have been silent for a day.
async fn register_instance(pool: &PgPool, target: &PostgresTarget) -> Result<Instance> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).context("cannot draw an instance id")?;
    let id = hex::encode(bytes);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    sqlx::query("DELETE FROM instances WHERE heartbeat_at < now() - interval '1 day'")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO instances (id, host, pid, started_at, heartbeat_at)
         VALUES ($1, $2, $3, now(), now())",
    )
    .bind(&id)
    .bind(&host)
    .bind(std::process::id() as i32)
    .execute(pool)
    .await?;
    tracing::info!("instance {id} works on {}", target.shown);
    let every = (target.instance_timeout / 6).max(Duration::from_millis(100));
    let beat = tokio::spawn(heartbeat(pool.clone(), id.clone(), every));
    Ok(Instance { id, beat })
}

/// Beats every `every` until aborted; a failed beat is logged, and the
/// claim refuses to go on once too many were missed.
async fn heartbeat(pool: PgPool, id: String, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = sqlx::query("UPDATE instances SET heartbeat_at = now() WHERE id = $1")
            .bind(&id)
            .execute(&pool)
            .await
        {
            tracing::warn!("instance {id} cannot beat: {err}");
        }
    }
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn optional_time(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.map(time)
}

/// Emails sent or in flight after `hour` and after `day`.
async fn used_since(
    conn: &mut sqlx::PgConnection,
    hour: DateTime<Utc>,
    day: DateTime<Utc>,
) -> Result<(u64, u64)> {
    let (in_hour, in_day): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE at > $1), count(*) FILTER (WHERE at > $2) FROM (
             SELECT sent_at AS at FROM deliveries WHERE status = 'sent' AND sent_at > $2
             UNION ALL
             SELECT claimed_at FROM deliveries WHERE status = 'claimed' AND claimed_at > $2) used",
    )
    .bind(hour.timestamp())
    .bind(day.timestamp())
    .fetch_one(conn)
    .await?;
    Ok((in_hour as u64, in_day as u64))
}

/// Signup confirmations sent after `hour` and after `day`: they spend the
/// same quotas as course emails (`engine::budget`).
async fn confirmations_since(
    conn: &mut sqlx::PgConnection,
    hour: DateTime<Utc>,
    day: DateTime<Utc>,
) -> Result<(u64, u64)> {
    let (in_hour, in_day): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE mailed_at > $1), count(*) FROM signups WHERE mailed_at > $2",
    )
    .bind(hour.timestamp())
    .bind(day.timestamp())
    .fetch_one(conn)
    .await?;
    Ok((in_hour as u64, in_day as u64))
}

/// Refreshes this instance's heartbeat inside the claim: a process that
/// was silent too long may have lost its claims to another, so it is no
/// longer trusted to claim.
async fn still_alive(tx: &mut Transaction<'_, Postgres>, me: &str, timeout: f64) -> Result<()> {
    let beat = sqlx::query(
        "UPDATE instances SET heartbeat_at = now()
         WHERE id = $1 AND heartbeat_at > now() - make_interval(secs => $2)",
    )
    .bind(me)
    .bind(timeout)
    .execute(&mut **tx)
    .await?;
    if beat.rows_affected() == 0 {
        anyhow::bail!(
            "instance {me} missed its heartbeats for more than {timeout}s (database unreachable or the process stalled): another instance may have taken over its claims, so it stops claiming; restart it"
        );
    }
    Ok(())
}

/// Locks the subscribers of `claims` that no other transaction holds, and
/// keeps only their claims.
async fn lock_subscribers(
    tx: &mut Transaction<'_, Postgres>,
    claims: Vec<Claim>,
) -> Result<Vec<Claim>> {
    let mut emails: Vec<&str> = claims.iter().map(|claim| claim.email.as_str()).collect();
    emails.sort_unstable();
    let locked: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM recipients WHERE email = ANY($1) ORDER BY email FOR UPDATE SKIP LOCKED",
    )
    .bind(&emails)
    .fetch_all(&mut **tx)
    .await?;
    let locked: std::collections::HashSet<String> = locked.into_iter().collect();
    Ok(claims
        .into_iter()
        .filter(|claim| locked.contains(&claim.email))
        .collect())
}

/// Upserts the claims whose subscribers this transaction holds; returns
/// the winners.
async fn claim_locked(
    tx: &mut Transaction<'_, Postgres>,
    claims: &[Claim],
    now: DateTime<Utc>,
    me: &str,
    timeout: f64,
) -> Result<Vec<Held>> {
    let column = |get: fn(&Claim) -> &str| claims.iter().map(get).collect::<Vec<&str>>();
    let day_starts: Vec<i64> = claims
        .iter()
        .map(|claim| claim.day_start.timestamp())
        .collect();
    let rows = sqlx::query(&format!(
        "WITH b AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                 AS b (sequence, email, step, message_id, day_start))
         INSERT INTO deliveries AS d
             (sequence, email, step, status, attempts, message_id, claimed_at, claimed_by)
         SELECT b.sequence, b.email, b.step, 'claimed', 1, b.message_id, $6, $7 FROM b
         WHERE {gate}
         ON CONFLICT (sequence, email, step) DO UPDATE
             SET status = 'claimed', attempts = d.attempts + 1,
                 claimed_at = excluded.claimed_at, claimed_by = excluded.claimed_by
             WHERE d.status = 'retry'
                OR (d.status = 'claimed' AND NOT EXISTS (
                     SELECT 1 FROM instances i WHERE i.id = d.claimed_by
                        AND i.heartbeat_at > now() - make_interval(secs => $8)))
         RETURNING d.sequence, d.email, d.step, d.attempts",
        gate = super::CLAIM_GATE
    ))
    .bind(column(|claim| &claim.sequence))
    .bind(column(|claim| &claim.email))
    .bind(column(|claim| &claim.step))
    .bind(column(|claim| &claim.message_id))
    .bind(&day_starts)
    .bind(now.timestamp())
    .bind(me)
    .bind(timeout)
    .fetch_all(&mut **tx)
    .await?;
    let attempts: HashMap<(String, String, String), u32> = rows
        .iter()
        .map(|row| {
            (
                (row.get("sequence"), row.get("email"), row.get("step")),
                row.get::<i32, _>("attempts") as u32,
            )
        })
        .collect();
    let won = super::winners(claims, |claim| {
        attempts
            .get(&(
                claim.sequence.clone(),
                claim.email.clone(),
                claim.step.clone(),
            ))
            .copied()
    });
    // Every id ever sent stays: a resend after a key rotation gets a new
    // one, and the old email's tokens must still resolve. Appended, to be
    // filed when the run ends (`super::tokens`).
    let column = |get: fn(&Claim) -> &str| {
        won.iter()
            .map(|held| get(&held.claim))
            .collect::<Vec<&str>>()
    };
    sqlx::query(
        "INSERT INTO new_tokens (id, sequence, email, step)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(column(|claim| &claim.delivery_id))
    .bind(column(|claim| &claim.sequence))
    .bind(column(|claim| &claim.email))
    .bind(column(|claim| &claim.step))
    .execute(&mut **tx)
    .await?;
    Ok(won)
}

/// Records sent emails: terminal, whoever holds the claim now.
async fn record_sent(
    tx: &mut Transaction<'_, Postgres>,
    sent: &[(&Claim, &str)],
    now: i64,
) -> Result<()> {
    let sequences: Vec<&str> = sent
        .iter()
        .map(|(claim, _)| claim.sequence.as_str())
        .collect();
    let emails: Vec<&str> = sent.iter().map(|(claim, _)| claim.email.as_str()).collect();
    let steps: Vec<&str> = sent.iter().map(|(claim, _)| claim.step.as_str()).collect();
    let replies: Vec<&str> = sent.iter().map(|(_, reply)| *reply).collect();
    let changed: Vec<String> = sqlx::query_scalar(
        "UPDATE deliveries d SET status = 'sent', sent_at = $5, retry_at = NULL, reply = b.reply
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS b (sequence, email, step, reply)
         WHERE d.sequence = b.sequence AND d.email = b.email AND d.step = b.step
           AND d.status IN ('claimed', 'retry')
         RETURNING d.email",
    )
    .bind(&sequences)
    .bind(&emails)
    .bind(&steps)
    .bind(&replies)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE recipients SET last_sent_at = greatest(coalesce(last_sent_at, $2), $2)
         WHERE email = ANY($1)",
    )
    .bind(&changed)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets where a claimed delivery stands after an attempt that failed, if
/// it is still this instance's claim of that attempt.
async fn finish_delivery(
    tx: &mut Transaction<'_, Postgres>,
    (held, me): (&Held, &str),
    status: DeliveryStatus,
    retry_at: Option<i64>,
    reply: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = $1, retry_at = $2, reply = $3
         WHERE sequence = $4 AND email = $5 AND step = $6
           AND status = 'claimed' AND claimed_by = $7 AND attempts = $8",
    )
    .bind(status.as_str())
    .bind(retry_at)
    .bind(reply)
    .bind(&held.claim.sequence)
    .bind(&held.claim.email)
    .bind(&held.claim.step)
    .bind(me)
    .bind(held.attempt as i32)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn suppress_in(
    tx: &mut Transaction<'_, Postgres>,
    email: &str,
    (reason, detail): (Reason, &str),
    now: i64,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO suppressions (email, reason, at, detail) VALUES ($1, $2, $3, $4)
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

impl Store for PostgresStore {
    states!(sqlx::Postgres);

    async fn last_sent(&self) -> Result<HashMap<String, DateTime<Utc>>> {
        let mut rows = sqlx::query(
            "SELECT email, last_sent_at FROM recipients WHERE last_sent_at IS NOT NULL",
        )
        .fetch(&self.pool);
        let mut last_sent = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            last_sent.insert(row.get("email"), time(row.get("last_sent_at")));
        }
        Ok(last_sent)
    }

    async fn enroll(&self, sequence: &str, new: &[(String, DateTime<Utc>)]) -> Result<()> {
        // In address order, as every instance does: two enrolling the same
        // subscribers at once never wait for each other in a cycle.
        let mut new: Vec<&(String, DateTime<Utc>)> = new.iter().collect();
        new.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut tx = self.pool.begin().await?;
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            let emails: Vec<&str> = chunk.iter().map(|(email, _)| email.as_str()).collect();
            let times: Vec<i64> = chunk.iter().map(|(_, at)| at.timestamp()).collect();
            sqlx::query(
                "INSERT INTO recipients (email) SELECT unnest($1::text[])
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(&emails)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO enrollments (sequence, email, enrolled_at)
                 SELECT $1, * FROM unnest($2::text[], $3::bigint[])
                 ON CONFLICT (sequence, email) DO NOTHING",
            )
            .bind(sequence)
            .bind(&emails)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(&self, claims: Vec<Claim>, now: DateTime<Utc>, quota: Quota) -> Result<Claimed> {
        let me = self.me()?;
        let mut tx = self.pool.begin().await?;
        still_alive(&mut tx, me, self.timeout).await?;
        let mut claims = claims;
        let mut over_quota = 0;
        if quota.is_set() {
            // One claimer at a time counts and spends the shared budget.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(QUOTA_LOCK)
                .execute(&mut *tx)
                .await?;
            let (hour, day) = Quota::windows(now);
            let (in_hour, in_day) = used_since(&mut tx, hour, day).await?;
            let (mailed_in_hour, mailed_in_day) = confirmations_since(&mut tx, hour, day).await?;
            let left = quota
                .left(in_hour + mailed_in_hour, in_day + mailed_in_day)
                .unwrap_or(u64::MAX);
            over_quota = super::cut(&mut claims, left);
        }
        let locked = lock_subscribers(&mut tx, claims).await?;
        let won = if locked.is_empty() {
            Vec::new()
        } else {
            claim_locked(&mut tx, &locked, now, me, self.timeout).await?
        };
        tx.commit().await?;
        Ok(Claimed { won, over_quota })
    }

    async fn release(&self, held: &[Held]) -> Result<()> {
        let me = self.me()?;
        let mut tx = self.pool.begin().await?;
        for held in held {
            let claim = &held.claim;
            // A first attempt leaves no trace; a later one goes back to retry.
            sqlx::query(
                "DELETE FROM deliveries
                 WHERE sequence = $1 AND email = $2 AND step = $3 AND status = 'claimed'
                   AND claimed_by = $4 AND attempts = $5 AND attempts <= 1",
            )
            .bind(&claim.sequence)
            .bind(&claim.email)
            .bind(&claim.step)
            .bind(me)
            .bind(held.attempt as i32)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE deliveries SET status = 'retry', attempts = attempts - 1
                 WHERE sequence = $1 AND email = $2 AND step = $3 AND status = 'claimed'
                   AND claimed_by = $4 AND attempts = $5",
            )
            .bind(&claim.sequence)
            .bind(&claim.email)
            .bind(&claim.step)
            .bind(me)
            .bind(held.attempt as i32)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sent_since(&self, since: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        let (used, _) = used_since(&mut conn, since, since).await?;
        Ok(used)
    }

    async fn record(&self, results: &[(Held, Outcome)], now: DateTime<Utc>) -> Result<()> {
        let me = self.me()?;
        let mut tx = self.pool.begin().await?;
        // The subscribers' rows first, in address order, as claims take
        // them: a record waits for a claim in progress, never in a cycle.
        let mut emails: Vec<&str> = results
            .iter()
            .map(|(held, _)| held.claim.email.as_str())
            .collect();
        emails.sort_unstable();
        sqlx::query("SELECT 1 FROM recipients WHERE email = ANY($1) ORDER BY email FOR UPDATE")
            .bind(&emails)
            .execute(&mut *tx)
            .await?;
        let sent: Vec<(&Claim, &str)> = results
            .iter()
            .filter_map(|(held, outcome)| match outcome {
                Outcome::Sent { reply } => Some((&held.claim, reply.as_str())),
                _ => None,
            })
            .collect();
        for chunk in sent.chunks(ROWS_PER_STATEMENT) {
            record_sent(&mut tx, chunk, now.timestamp()).await?;
        }
        for (held, outcome) in results {
            match outcome {
                Outcome::Sent { .. } => {}
                Outcome::Retry { at, reply } => {
                    let retry_at = Some(at.timestamp());
                    finish_delivery(&mut tx, (held, me), DeliveryStatus::Retry, retry_at, reply)
                        .await?;
                }
                Outcome::Failed { reply, bounced } => {
                    finish_delivery(&mut tx, (held, me), DeliveryStatus::Failed, None, reply)
                        .await?;
                    if *bounced {
                        let detail = format!("rejected at RCPT: {reply}");
                        let why = (Reason::Bounced, detail.as_str());
                        suppress_in(&mut tx, &held.claim.email, why, now.timestamp()).await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn suppress(
        &self,
        email: &str,
        reason: Reason,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = suppress_in(&mut tx, email, (reason, detail), now.timestamp()).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    addresses!(sqlx::Postgres);

    async fn begin_run(&self, now: DateTime<Utc>) -> Result<i64> {
        let id = sqlx::query_scalar(
            "INSERT INTO runs (instance, started_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(self.instance.as_ref().map(|instance| instance.id.as_str()))
        .bind(now.timestamp())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    reports!(sqlx::Postgres);

    async fn instances(&self) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query(
            "SELECT i.id, i.host, i.pid,
                    extract(epoch FROM i.started_at)::bigint AS started_at,
                    extract(epoch FROM i.heartbeat_at)::bigint AS heartbeat_at,
                    i.heartbeat_at > now() - make_interval(secs => $1) AS alive,
                    (SELECT count(*) FROM deliveries d
                      WHERE d.status = 'claimed' AND d.claimed_by = i.id) AS in_flight
             FROM instances i ORDER BY i.started_at, i.id",
        )
        .bind(self.timeout)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| InstanceRecord {
                id: row.get("id"),
                host: row.get("host"),
                pid: row.get::<i32, _>("pid") as u32,
                started_at: time(row.get("started_at")),
                heartbeat_at: time(row.get("heartbeat_at")),
                alive: row.get("alive"),
                in_flight: row.get::<i64, _>("in_flight") as u64,
            })
            .collect())
    }

    async fn run_starts(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DateTime<Utc>>> {
        let starts: Vec<i64> = sqlx::query_scalar(
            "SELECT started_at FROM runs WHERE started_at < $1 ORDER BY started_at DESC LIMIT $2",
        )
        .bind(before.timestamp())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(starts.into_iter().map(time).collect())
    }

    fn walk_offset(&self) -> u64 {
        // The instance id is random: so is the starting point.
        self.instance
            .as_ref()
            .and_then(|instance| u64::from_str_radix(&instance.id, 16).ok())
            .unwrap_or(0)
    }
}
