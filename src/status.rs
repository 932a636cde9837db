//! `dripline status`: what the state file says, for people and for scripts.
//!
//! It reads the store and the sequences and produces a [`Status`] that
//! prints as text or serializes as JSON. It never writes.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::schedule::due::{When, candidates};
use crate::schedule::{Cadence, Timing};
use crate::sequence::Sequence;
use crate::store::signups::{SignupCount, Signups};
use crate::store::{
    DeliveryRecord, InstanceRecord, Reason, RunRecord, SequenceState, StepCount, Store, Suppression,
};
use crate::subscribers::List;

/// Progress per sequence and step, failures and the last run.
#[derive(Debug, Serialize)]
pub struct Status {
    pub last_run: Option<RunRecord>,
    /// The instances sending from a shared database, with their claims
    /// in flight; empty for a SQLite state.
    pub instances: Vec<InstanceRecord>,
    pub sequences: Vec<SequenceStatus>,
    pub failures: Vec<DeliveryRecord>,
    pub suppressed: Vec<Suppressed>,
    /// Signups through the form, per sequence that has any.
    pub signups: Vec<SignupCount>,
    /// Emails due more than `catch_up` ago and not sent yet.
    pub overdue: Vec<Overdue>,
    /// Set when the runs are too far apart for `catch_up`: what that
    /// means and how to fix it.
    pub runs_warning: Option<String>,
}

/// An email that missed its send window: the machine was down, or the
/// runs are too far apart for its slot.
#[derive(Debug, Serialize)]
pub struct Overdue {
    pub email: String,
    pub sequence: String,
    /// 1-based.
    pub step: usize,
    pub step_id: String,
    pub due: DateTime<Utc>,
}

/// What [`overdue`] looks at: each drip's sequence, list and state.
pub struct Lists<'a> {
    pub drips: &'a [(&'a Sequence, List, SequenceState)],
    pub suppressed: &'a HashMap<String, Suppression>,
    pub zone: Tz,
    pub catch_up: Duration,
    pub cadence: Cadence,
}

/// Every email that was due more than `catch_up` before `now` and has not
/// gone out, by the rules a run applies.
pub fn overdue(lists: &Lists, now: DateTime<Utc>) -> Vec<Overdue> {
    let mut found = Vec::new();
    for (sequence, list, state) in lists.drips {
        for candidate in candidates(sequence, list, state, lists.suppressed, lists.zone, now) {
            if candidate.enrolling.is_some() {
                continue;
            }
            let timing = Timing {
                send_at: &sequence.settings.send_at,
                zone: candidate.zone,
                catch_up: lists.catch_up,
                runs: lists.cadence,
            };
            if let When::Scheduled { at, .. } = candidate.when(&timing, sequence)
                && now - at > lists.catch_up
            {
                found.push(Overdue {
                    email: candidate.subscriber.email.to_string(),
                    sequence: sequence.id.clone(),
                    step: candidate.step + 1,
                    step_id: sequence.steps[candidate.step].id.clone(),
                    due: at,
                });
            }
        }
    }
    found
}

#[derive(Debug, Serialize)]
pub struct SequenceStatus {
    pub id: String,
    pub name: Option<String>,
    pub steps: Vec<StepStatus>,
}

#[derive(Debug, Serialize)]
pub struct StepStatus {
    pub number: Option<usize>,
    pub id: String,
    /// False for a step id the state knows but the sequence no longer has.
    pub exists: bool,
    pub sent: u64,
    pub pending: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct Suppressed {
    pub email: String,
    /// `unsubscribed`, `bounced` or `complained`.
    pub reason: Reason,
    pub at: DateTime<Utc>,
    /// How: `link`, `mailto request`, the bounce's status and server, …
    pub detail: String,
}

impl Suppressed {
    fn new(email: String, suppression: crate::store::Suppression) -> Suppressed {
        Suppressed {
            email,
            reason: suppression.reason,
            at: suppression.at,
            detail: suppression.detail,
        }
    }
}

/// Suppressions `status` lists by name; `dripline export` has them all.
const LISTED_SUPPRESSIONS: usize = 20;

/// One subscriber's deliveries and suppression.
#[derive(Debug, Serialize)]
pub struct SubscriberStatus {
    pub email: String,
    pub suppressed: Option<Suppressed>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// Gathers the status of the sequence of every drip in `lists` and any
/// other sequence the state knows, with the emails [`overdue`] at `now`.
pub async fn status(
    store: &(impl Store + Signups),
    lists: &Lists<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Status> {
    let counts = store.step_counts().await?;
    let mut result: Vec<SequenceStatus> = lists
        .drips
        .iter()
        .map(|(sequence, _, _)| SequenceStatus {
            id: sequence.id.clone(),
            name: Some(sequence.settings.name.clone()),
            steps: sequence
                .steps
                .iter()
                .enumerate()
                .map(|(index, step)| StepStatus {
                    number: Some(index + 1),
                    id: step.id.clone(),
                    exists: true,
                    sent: 0,
                    pending: 0,
                    failed: 0,
                })
                .collect(),
        })
        .collect();
    for count in counts {
        add_count(&mut result, count);
    }
    let suppressed = store
        .suppressions()
        .await?
        .into_iter()
        .map(|(email, suppression)| Suppressed::new(email, suppression))
        .collect::<Vec<_>>();
    let mut suppressed = suppressed;
    suppressed.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(Status {
        last_run: store.last_run().await?,
        instances: store.instances().await?,
        sequences: result,
        failures: store.failures().await?,
        suppressed,
        signups: store.signup_counts(Utc::now()).await?,
        overdue: overdue(lists, now),
        runs_warning: lists.cadence.warning(lists.catch_up),
    })
}

fn add_count(sequences: &mut Vec<SequenceStatus>, count: StepCount) {
    let position = match sequences.iter().position(|s| s.id == count.sequence) {
        Some(position) => position,
        None => {
            sequences.push(SequenceStatus {
                id: count.sequence.clone(),
                name: None,
                steps: Vec::new(),
            });
            sequences.len() - 1
        }
    };
    let steps = &mut sequences[position].steps;
    let step = match steps.iter_mut().find(|step| step.id == count.step) {
        Some(step) => step,
        None => {
            steps.push(StepStatus {
                number: None,
                id: count.step.clone(),
                exists: false,
                sent: 0,
                pending: 0,
                failed: 0,
            });
            steps
                .last_mut()
                .unwrap_or_else(|| unreachable!("just pushed"))
        }
    };
    step.sent = count.sent;
    step.pending = count.pending;
    step.failed = count.failed;
}

/// The status of one subscriber, by address (any letter case).
pub async fn subscriber(store: &impl Store, email: &str) -> anyhow::Result<SubscriberStatus> {
    let key = crate::subscribers::key(email);
    let suppressed = store
        .suppressions()
        .await?
        .remove(&key)
        .map(|s| Suppressed::new(key.clone(), s));
    Ok(SubscriberStatus {
        deliveries: store.deliveries_to(&key).await?,
        email: key,
        suppressed,
    })
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last_run {
            Some(run) => writeln!(
                f,
                "Last run: {} ({}): {} sent, {} failed",
                time(run.started_at),
                if run.finished_at.is_some() {
                    "finished"
                } else {
                    "did not finish"
                },
                run.sent,
                run.failed
            )?,
            None => writeln!(f, "Last run: none yet")?,
        }
        if !self.instances.is_empty() {
            writeln!(f, "Instances:")?;
            for instance in &self.instances {
                writeln!(f, "  {instance}")?;
            }
        }
        for sequence in &self.sequences {
            writeln!(f)?;
            match &sequence.name {
                Some(name) => writeln!(f, "{} — {name}", sequence.id)?,
                None => writeln!(f, "{} — not in the config any more", sequence.id)?,
            }
            writeln!(
                f,
                "  {:<4} {:<40} {:>7} {:>7} {:>7}",
                "#", "step", "sent", "pending", "failed"
            )?;
            if let Some(signups) = self
                .signups
                .iter()
                .find(|count| count.sequence == sequence.id)
            {
                writeln!(
                    f,
                    "  signups: {} confirmed, {} waiting for their confirmation",
                    signups.confirmed, signups.pending
                )?;
            }
            for step in &sequence.steps {
                let number = step.number.map_or("?".to_owned(), |n| n.to_string());
                let id = if step.exists {
                    step.id.clone()
                } else {
                    format!("{} (no longer in the sequence)", step.id)
                };
                writeln!(
                    f,
                    "  {number:<4} {id:<40} {:>7} {:>7} {:>7}",
                    step.sent, step.pending, step.failed
                )?;
            }
        }
        if !self.failures.is_empty() {
            writeln!(f, "\nFailures:")?;
            for failure in &self.failures {
                writeln!(f, "  {failure}")?;
            }
        }
        write_suppressed(f, &self.suppressed)?;
        if !self.overdue.is_empty() {
            write!(
                f,
                "\n\nOverdue: {} email{} due more than catch_up ago, not sent yet:",
                self.overdue.len(),
                if self.overdue.len() == 1 { "" } else { "s" }
            )?;
            for email in &self.overdue {
                write!(
                    f,
                    "\n  {} {} step {} ({}), due {}",
                    email.email,
                    email.sequence,
                    email.step,
                    email.step_id,
                    time(email.due)
                )?;
            }
        }
        if let Some(warning) = &self.runs_warning {
            write!(f, "\n\nwarning: {warning}")?;
        }
        Ok(())
    }
}

/// The counts by reason, then the most recent suppressions by name.
fn write_suppressed(f: &mut fmt::Formatter<'_>, suppressed: &[Suppressed]) -> fmt::Result {
    let count = |reason: Reason| suppressed.iter().filter(|s| s.reason == reason).count();
    write!(
        f,
        "\nSuppressed: {} unsubscribed, {} bounced, {} complained",
        count(Reason::Unsubscribed),
        count(Reason::Bounced),
        count(Reason::Complained)
    )?;
    let mut recent: Vec<&Suppressed> = suppressed.iter().collect();
    recent.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.email.cmp(&b.email)));
    let width = recent
        .iter()
        .take(LISTED_SUPPRESSIONS)
        .map(|s| s.email.chars().count())
        .max()
        .unwrap_or(0);
    for s in recent.iter().take(LISTED_SUPPRESSIONS) {
        write!(
            f,
            "\n  {:<width$}  {:<12}  {}",
            s.email,
            s.reason,
            time(s.at)
        )?;
        if !s.detail.is_empty() {
            write!(f, "  {}", s.detail)?;
        }
    }
    if recent.len() > LISTED_SUPPRESSIONS {
        write!(
            f,
            "\n  … and {} more: `dripline export SEQ` lists them all",
            recent.len() - LISTED_SUPPRESSIONS
        )?;
    }
    Ok(())
}

impl fmt::Display for InstanceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} (pid {}), up since {}, last heartbeat {}{}: {} email{} in flight",
            self.id,
            if self.host.is_empty() {
                "?"
            } else {
                &self.host
            },
            self.pid,
            time(self.started_at),
            self.heartbeat_at.format("%Y-%m-%d %H:%M:%S UTC"),
            if self.alive {
                ""
            } else {
                " (silent: its claims go to the others)"
            },
            self.in_flight,
            if self.in_flight == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for DeliveryRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}: {} after {} attempt{}",
            self.email,
            self.sequence,
            self.step,
            self.status,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" }
        )?;
        if let Some(at) = self.sent_at {
            write!(f, ", sent {}", time(at))?;
        }
        if let Some(at) = self.retry_at {
            write!(f, ", next try {}", time(at))?;
        }
        if let Some(reply) = &self.reply {
            write!(f, " ({reply})")?;
        }
        Ok(())
    }
}

impl fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.email)?;
        if let Some(suppressed) = &self.suppressed {
            writeln!(
                f,
                "  suppressed: {} since {}{}",
                suppressed.reason,
                time(suppressed.at),
                if suppressed.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", suppressed.detail)
                }
            )?;
        }
        if self.deliveries.is_empty() {
            return write!(f, "  no emails yet");
        }
        for (index, delivery) in self.deliveries.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "  {}/{}: {}",
                delivery.sequence, delivery.step, delivery.status
            )?;
            if let Some(at) = delivery.sent_at {
                write!(f, " {}", time(at))?;
            }
            write!(f, " {}", delivery.message_id)?;
        }
        Ok(())
    }
}
