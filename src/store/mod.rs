//! Send state: enrollments, deliveries and suppressions, behind one trait.
//!
//! The engine only talks to [`Store`]; [`open`] picks the backend the
//! config names and returns a [`StateStore`], as delivery's transports
//! are chosen. Reads are bulk (one query per sequence per pass, not one
//! per subscriber) so a pass over a large list stays fast. Writes that
//! the delivery guarantees rest on (a claim before the SMTP transaction,
//! the result after it) are durable when the call returns.
//!
//! Claims are conditional: [`Store::claim`] returns only the claims it
//! won, and the engine hands only those to the transport. Results are
//! fenced: a retry or failure lands only while the delivery is still the
//! caller's claim of that attempt, and `sent` always wins.

/// Forwards a call on a [`StateStore`] to its backend (for every trait the
/// backends implement: [`Store`], [`signups::Signups`], [`roster::Roster`]).
macro_rules! forward {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            StateStore::Sqlite($store) => $call.await,
            StateStore::Postgres($store) => $call.await,
        }
    };
}

#[macro_use]
mod addresses;
#[macro_use]
mod confirmed;
#[macro_use]
mod reports;
#[macro_use]
mod states;
pub mod copy;
mod lock;
pub mod postgres;
mod postgres_signups;
pub mod roster;
mod settings;
pub mod signups;
pub mod sqlite;
mod tokens;

pub use self::lock::Locked;
pub use self::settings::{PostgresTarget, StateSettings, redact};

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};

use self::postgres::PostgresStore;
use self::sqlite::SqliteStore;

/// A subscriber's progress through one sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// When their clock started.
    pub enrolled_at: DateTime<Utc>,
    /// Ids of the steps they were sent, in the order they were sent.
    pub sent_steps: Vec<String>,
    /// When the last of those went out.
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// A delivery that is not finished: claimed, waiting for a retry, or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub step: String,
    pub status: PendingStatus,
    /// Attempts so far, counting the claim of each one.
    pub attempts: u32,
}

/// Where an unfinished delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingStatus {
    /// Claimed but no result recorded: a run died during the SMTP
    /// transaction. It may or may not have gone out; it is sent again
    /// with the same Message-ID.
    Claimed,
    /// A transient failure; try again from this time on.
    Retry(DateTime<Utc>),
    /// Given up on: a permanent failure, or `max_attempts` transient ones.
    Failed,
}

/// What the store holds about one sequence, read at the start of a pass.
#[derive(Debug, Default)]
pub struct SequenceState {
    /// By subscriber key (lower-case address).
    pub enrollments: HashMap<String, Enrollment>,
    /// By subscriber key: their unfinished deliveries (usually none or
    /// one; more when a step failed and was then renamed or removed).
    pub pending: HashMap<String, Vec<Pending>>,
}

impl SequenceState {
    /// A subscriber's unfinished delivery of one step.
    pub fn pending(&self, email: &str, step: &str) -> Option<&Pending> {
        self.pending
            .get(email)?
            .iter()
            .find(|pending| pending.step == step)
    }
}

/// An email the engine wants to hand to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub sequence: String,
    /// The subscriber key (lower-case address).
    pub email: String,
    pub step: String,
    pub message_id: String,
    /// The opaque id its tokens carry ([`crate::token::DeliveryId::text`]).
    pub delivery_id: String,
    /// The start of the subscriber's local day: the claim loses when they
    /// got an email since then, or have another one in flight.
    pub day_start: DateTime<Utc>,
}

/// A claim that was won: the caller may hand it over, and records its
/// result with this attempt number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub claim: Claim,
    /// Attempts at this email, counting this one.
    pub attempt: u32,
}

/// What [`Store::claim`] did with a batch.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The claims won, in the order asked.
    pub won: Vec<Held>,
    /// Claims not tried because `max_per_hour` or `max_per_day` is used up.
    pub over_quota: u64,
}

/// The hour and day limits a claim keeps to; 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub per_hour: u32,
    pub per_day: u32,
}

impl Quota {
    /// Whether any limit is set.
    pub fn is_set(self) -> bool {
        self.per_hour > 0 || self.per_day > 0
    }

    /// How many more emails the limits allow, given how many were sent
    /// or are in flight in the last hour and the last 24 hours; `None`
    /// when no limit is set.
    pub fn left(self, used_in_hour: u64, used_in_day: u64) -> Option<u64> {
        [(self.per_hour, used_in_hour), (self.per_day, used_in_day)]
            .into_iter()
            .filter(|(limit, _)| *limit > 0)
            .map(|(limit, used)| u64::from(limit).saturating_sub(used))
            .min()
    }

    /// The starts of the hour and day windows ending at `now`.
    pub fn windows(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            now - chrono::Duration::hours(1),
            now - chrono::Duration::days(1),
        )
    }
}

/// Where a delivery stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Claimed,
    Sent,
    Retry,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Claimed => "claimed",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Retry => "retry",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status stored as `text`; an unknown one reads as failed, so
    /// it is never sent again by mistake.
    pub fn parse(text: &str) -> DeliveryStatus {
        match text {
            "claimed" => DeliveryStatus::Claimed,
            "sent" => DeliveryStatus::Sent,
            "retry" => DeliveryStatus::Retry,
            _ => DeliveryStatus::Failed,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The email a token's id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub sequence: String,
    /// The subscriber key (lower-case address).
    pub email: String,
    pub step: String,
}

/// What happened to a claimed email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server (or the outbox) accepted it.
    Sent { reply: String },
    /// A transient failure: retry from `at`.
    Retry { at: DateTime<Utc>, reply: String },
    /// A permanent failure; `bounced` when the recipient itself was
    /// rejected, which suppresses the address for every sequence.
    Failed { reply: String, bounced: bool },
}

/// Why an address gets no more email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// A link, a `mailto:` request or `dripline unsubscribe`.
    Unsubscribed,
    /// The address does not take email: rejected at RCPT, a permanent
    /// bounce, or repeated transient ones.
    Bounced,
    /// The subscriber marked an email as spam (an ARF report or a provider's
    /// complaint event).
    Complained,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unsubscribed => "unsubscribed",
            Reason::Bounced => "bounced",
            Reason::Complained => "complained",
        }
    }

    /// The reason stored as `text`; anything else reads as unsubscribed
    /// (the address stays suppressed either way).
    pub fn parse(text: &str) -> Reason {
        match text {
            "bounced" => Reason::Bounced,
            "complained" => Reason::Complained,
            _ => Reason::Unsubscribed,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A suppressed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub reason: Reason,
    pub at: DateTime<Utc>,
    /// How it came about, e.g. `DSN 5.1.1 from mx.example.net`; empty for
    /// suppressions recorded before dripline kept it.
    pub detail: String,
}

/// Counts for one step of one sequence, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCount {
    pub sequence: String,
    pub step: String,
    pub sent: u64,
    pub pending: u64,
    pub failed: u64,
}

/// One delivery, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRecord {
    pub sequence: String,
    pub email: String,
    pub step: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub message_id: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub retry_at: Option<DateTime<Utc>>,
    pub reply: Option<String>,
}

/// A finished run, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub sent: u64,
    pub failed: u64,
    pub deferred: u64,
}

/// A process working on the state, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceRecord {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat, by the database's clock.
    pub heartbeat_at: DateTime<Utc>,
    /// Whether it beat recently enough to keep its claims.
    pub alive: bool,
    /// Emails it claimed and has not recorded yet.
    pub in_flight: u64,
}

/// The result of a store call.
pub type Result<T> = std::result::Result<T, anyhow::Error>;

/// Send state. Every method is one transaction.
pub trait Store {
    /// Everything about `sequence` a pass needs.
    fn load(&self, sequence: &str) -> impl Future<Output = Result<SequenceState>> + Send;

    /// When each subscriber last got an email from any sequence.
    fn last_sent(&self) -> impl Future<Output = Result<HashMap<String, DateTime<Utc>>>> + Send;

    /// Every suppressed address, by key.
    fn suppressions(&self) -> impl Future<Output = Result<HashMap<String, Suppression>>> + Send;

    /// Enrolls new subscribers of `sequence` (key, clock start); existing
    /// enrollments are left alone.
    fn enroll(
        &self,
        sequence: &str,
        new: &[(String, DateTime<Utc>)],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Claims emails, durably, before the transport sees them; each one
    /// won counts an attempt. A claim is won only if, at that moment, the
    /// subscriber is not suppressed, got no email since the claim's
    /// `day_start` and has no other one in flight then, and the delivery
    /// is new, waiting for a retry, or claimed by a process that died.
    /// Claims beyond what `quota` leaves are not tried.
    fn claim(
        &self,
        claims: Vec<Claim>,
        now: DateTime<Utc>,
        quota: Quota,
    ) -> impl Future<Output = Result<Claimed>> + Send;

    /// Undoes claims whose emails never reached the server: they are due
    /// again as before, and the attempt is not counted. Only claims still
    /// held with that attempt are undone.
    fn release(&self, held: &[Held]) -> impl Future<Output = Result<()>> + Send;

    /// How many emails went out, or are in flight, after `since`, in every
    /// sequence: for the hour and day quotas.
    fn sent_since(&self, since: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;

    /// Records what happened to claimed emails, durably. `sent` always
    /// lands; a retry or failure only while the claim is still held with
    /// that attempt.
    fn record(
        &self,
        results: &[(Held, Outcome)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// What a pass needs of the store between two answers of the server:
    /// records `results` ([`Store::record`]), undoes `released`
    /// ([`Store::release`]), then claims `claims` ([`Store::claim`]). A
    /// store may do it all in one commit.
    fn settle(
        &self,
        results: &[(Held, Outcome)],
        released: &[Held],
        claims: Vec<Claim>,
        now: DateTime<Utc>,
        quota: Quota,
    ) -> impl Future<Output = Result<Claimed>> + Send
    where
        Self: Sync,
    {
        async move {
            if !results.is_empty() {
                self.record(results, now).await?;
            }
            if !released.is_empty() {
                self.release(released).await?;
            }
            if claims.is_empty() {
                return Ok(Claimed::default());
            }
            self.claim(claims, now, quota).await
        }
    }

    /// Stops all email to `email`, saying how (`detail`); false when it
    /// already was suppressed (the first reason stays).
    fn suppress(
        &self,
        email: &str,
        reason: Reason,
        detail: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The email whose tokens carry `delivery_id`, if dripline sent one.
    fn addressed(
        &self,
        delivery_id: &str,
    ) -> impl Future<Output = Result<Option<Addressed>>> + Send;

    /// Records a transient bounce of `email`, once per `reference` (the
    /// email it is about, or the provider's event), and returns how many
    /// distinct ones it had since `since`.
    fn soft_bounce(
        &self,
        email: &str,
        reference: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Lifts a suppression and gives the address's failed emails a fresh
    /// start; false when there was neither.
    fn resubscribe(&self, email: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Starts a run record; returns its id.
    fn begin_run(&self, now: DateTime<Utc>) -> impl Future<Output = Result<i64>> + Send;

    /// Finishes a run record, and files the token rows its claims
    /// appended ([`tokens`]).
    fn finish_run(
        &self,
        id: i64,
        finished: DateTime<Utc>,
        counts: RunCounts,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Per-step counts for every sequence.
    fn step_counts(&self) -> impl Future<Output = Result<Vec<StepCount>>> + Send;

    /// Deliveries that failed or wait for a retry.
    fn failures(&self) -> impl Future<Output = Result<Vec<DeliveryRecord>>> + Send;

    /// Every delivery to one subscriber.
    fn deliveries_to(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Vec<DeliveryRecord>>> + Send;

    /// The most recent run.
    fn last_run(&self) -> impl Future<Output = Result<Option<RunRecord>>> + Send;

    /// The processes registered to send, with their claims in flight
    /// (none for a store that allows only one).
    fn instances(&self) -> impl Future<Output = Result<Vec<InstanceRecord>>> + Send;

    /// Where this process starts walking a list, as a count of
    /// subscribers to skip (modulo the list's length): 0 when it sends
    /// alone, a different point per instance on a shared state.
    fn walk_offset(&self) -> u64;

    /// When the last `limit` runs that started before `before` started,
    /// latest first: how far apart runs are.
    fn run_starts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DateTime<Utc>>>> + Send;
}

/// What a run did, for its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub sent: u64,
    pub failed: u64,
    pub deferred: u64,
}

/// The condition a claim's subscriber must meet, for the batch row `b`
/// (sequence, email, step, day_start), in SQL both backends speak: not
/// suppressed, and no other email sent or in flight since the start of
/// their day. A resend of the claim itself passes.
const CLAIM_GATE: &str = "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = b.email)
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.email = b.email
      AND ((d.status = 'sent' AND d.sent_at >= b.day_start)
        OR (d.status = 'claimed' AND d.claimed_at >= b.day_start
            AND NOT (d.sequence = b.sequence AND d.step = b.step))))";

/// Drops the claims beyond the first `left`; returns how many it dropped.
fn cut(claims: &mut Vec<Claim>, left: u64) -> u64 {
    let keep = usize::try_from(left)
        .unwrap_or(usize::MAX)
        .min(claims.len());
    let dropped = claims.len() - keep;
    claims.truncate(keep);
    dropped as u64
}

/// The claims of `asked` that won, with their attempt numbers as
/// `attempt` reports them (`None`: lost), in the order asked.
fn winners(asked: &[Claim], attempt: impl Fn(&Claim) -> Option<u32>) -> Vec<Held> {
    asked
        .iter()
        .filter_map(|claim| {
            attempt(claim).map(|attempt| Held {
                claim: claim.clone(),
                attempt,
            })
        })
        .collect()
}

/// What the opener will do with the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read it, or change suppressions (`status`, `plan`, `unsubscribe`).
    Read,
    /// Claim and send (`run`, `serve`): on SQLite, the one process that
    /// may, holding a lock beside the file until the store is closed.
    Send,
}

/// The state the config names, whichever backend holds it.
#[derive(Debug, Clone)]
pub enum StateStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Opens the state `settings` names, bringing its schema up to date.
pub async fn open(settings: &StateSettings, access: Access) -> Result<StateStore> {
    match settings {
        StateSettings::Sqlite { path } => {
            let lock = match access {
                Access::Send => Some(lock::StateLock::acquire(path)?),
                Access::Read => None,
            };
            Ok(StateStore::Sqlite(SqliteStore::open(path, lock).await?))
        }
        StateSettings::Postgres(target) => Ok(StateStore::Postgres(
            PostgresStore::open(target, access == Access::Send).await?,
        )),
    }
}

impl StateStore {
    /// Closes the connections (and releases the lock of [`Access::Send`]).
    pub async fn close(self) {
        match self {
            StateStore::Sqlite(store) => store.close().await,
            StateStore::Postgres(store) => store.close().await,
        }
    }
}

impl Store for StateStore {
    async fn load(&self, sequence: &str) -> Result<SequenceState> {
        forward!(self, store => store.load(sequence))
    }

    async fn last_sent(&self) -> Result<HashMap<String, DateTime<Utc>>> {
        forward!(self, store => store.last_sent())
    }

    async fn suppressions(&self) -> Result<HashMap<String, Suppression>> {
        forward!(self, store => store.suppressions())
    }

    async fn enroll(&self, sequence: &str, new: &[(String, DateTime<Utc>)]) -> Result<()> {
        forward!(self, store => store.enroll(sequence, new))
    }

    async fn claim(&self, claims: Vec<Claim>, now: DateTime<Utc>, quota: Quota) -> Result<Claimed> {
        forward!(self, store => store.claim(claims, now, quota))
    }

    async fn release(&self, held: &[Held]) -> Result<()> {
        forward!(self, store => store.release(held))
    }

    async fn sent_since(&self, since: DateTime<Utc>) -> Result<u64> {
        forward!(self, store => store.sent_since(since))
    }

    async fn record(&self, results: &[(Held, Outcome)], now: DateTime<Utc>) -> Result<()> {
        forward!(self, store => store.record(results, now))
    }

    async fn settle(
        &self,
        results: &[(Held, Outcome)],
        released: &[Held],
        claims: Vec<Claim>,
        now: DateTime<Utc>,
        quota: Quota,
    ) -> Result<Claimed> {
        forward!(self, store => store.settle(results, released, claims, now, quota))
    }

    async fn suppress(
        &self,
        email: &str,
        reason: Reason,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        forward!(self, store => store.suppress(email, reason, detail, now))
    }

    async fn addressed(&self, delivery_id: &str) -> Result<Option<Addressed>> {
        forward!(self, store => store.addressed(delivery_id))
    }

    async fn soft_bounce(
        &self,
        email: &str,
        reference: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        forward!(self, store => store.soft_bounce(email, reference, now, since))
    }

    async fn resubscribe(&self, email: &str) -> Result<bool> {
        forward!(self, store => store.resubscribe(email))
    }

    async fn begin_run(&self, now: DateTime<Utc>) -> Result<i64> {
        forward!(self, store => store.begin_run(now))
    }

    async fn finish_run(&self, id: i64, finished: DateTime<Utc>, counts: RunCounts) -> Result<()> {
        forward!(self, store => store.finish_run(id, finished, counts))
    }

    async fn step_counts(&self) -> Result<Vec<StepCount>> {
        forward!(self, store => store.step_counts())
    }

    async fn failures(&self) -> Result<Vec<DeliveryRecord>> {
        forward!(self, store => store.failures())
    }

    async fn deliveries_to(&self, email: &str) -> Result<Vec<DeliveryRecord>> {
        forward!(self, store => store.deliveries_to(email))
    }

    async fn last_run(&self) -> Result<Option<RunRecord>> {
        forward!(self, store => store.last_run())
    }

    async fn instances(&self) -> Result<Vec<InstanceRecord>> {
        forward!(self, store => store.instances())
    }

    async fn run_starts(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DateTime<Utc>>> {
        forward!(self, store => store.run_starts(before, limit))
    }

    fn walk_offset(&self) -> u64 {
        match self {
            StateStore::Sqlite(store) => store.walk_offset(),
            StateStore::Postgres(store) => store.walk_offset(),
        }
    }
}
