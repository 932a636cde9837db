//! Send state: enrollments, deliveries and suppressions, behind one trait.
//!
//! The engine only talks to [`Store`]; SQLite ([`sqlite::SqliteStore`]) is
//! the implementation today and a PostgreSQL one can be added beside it
//! without touching the engine. Reads are bulk (one query per sequence per
//! pass, not one per subscriber) so a pass over a large list stays fast.
//! Writes that the delivery guarantees rest on (a claim before the SMTP
//! transaction, the result after it) are durable when the call returns.

pub mod signups;
pub mod sqlite;

use std::collections::{HashMap, HashSet};
use std::future::Future;

use chrono::{DateTime, Utc};

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

/// An email about to be handed to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub sequence: String,
    /// The subscriber key (lower-case address).
    pub email: String,
    pub step: String,
    pub message_id: String,
    /// The opaque id its tokens carry ([`crate::token::DeliveryId::text`]).
    pub delivery_id: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// A suppressed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub reason: String,
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
    pub status: String,
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

    /// Which of `emails` (keys) are suppressed now: checked just before a
    /// batch is claimed, so an unsubscribe or a bounce during a long pass
    /// takes effect at once.
    fn suppressed_among(
        &self,
        emails: &[&str],
    ) -> impl Future<Output = Result<HashSet<String>>> + Send;

    /// Enrolls new subscribers of `sequence` (key, clock start); existing
    /// enrollments are left alone.
    fn enroll(
        &self,
        sequence: &str,
        new: &[(String, DateTime<Utc>)],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records that these emails are being handed over, durably, before
    /// the transport sees them. Counts one attempt each.
    fn claim(
        &self,
        claims: &[Claim],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Undoes claims whose emails never reached the server: they are due
    /// again as before, and the attempt is not counted.
    fn release(&self, claims: &[Claim]) -> impl Future<Output = Result<()>> + Send;

    /// How many emails went out after `since`, in every sequence: for the
    /// hour and day quotas.
    fn sent_since(&self, since: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;

    /// Records what happened to claimed emails, durably.
    fn record(
        &self,
        results: &[(Claim, Outcome)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

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

    /// Finishes a run record.
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
