//! `dripline status`: what the state file says, for people and for scripts.
//!
//! It reads the store and the sequences and produces a [`Status`] that
//! prints as text or serializes as JSON. It never writes.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sequence::Sequence;
use crate::store::{DeliveryRecord, InstanceRecord, Reason, RunRecord, StepCount, Store};

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
    pub reason: Reason,
    pub at: DateTime<Utc>,
}

/// One subscriber's deliveries and suppression.
#[derive(Debug, Serialize)]
pub struct SubscriberStatus {
    pub email: String,
    pub suppressed: Option<Suppressed>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// Gathers the status of every sequence in `sequences` and any other
/// sequence the state knows.
pub async fn status(store: &impl Store, sequences: &[Sequence]) -> anyhow::Result<Status> {
    let counts = store.step_counts().await?;
    let mut result: Vec<SequenceStatus> = sequences
        .iter()
        .map(|sequence| SequenceStatus {
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
        .map(|(email, suppression)| Suppressed {
            email,
            reason: suppression.reason,
            at: suppression.at,
        })
        .collect::<Vec<_>>();
    let mut suppressed = suppressed;
    suppressed.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(Status {
        last_run: store.last_run().await?,
        instances: store.instances().await?,
        sequences: result,
        failures: store.failures().await?,
        suppressed,
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
        .map(|s| Suppressed {
            email: key.clone(),
            reason: s.reason,
            at: s.at,
        });
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
        let (unsubscribed, bounced) = self.suppressed.iter().fold((0, 0), |(u, b), s| {
            if s.reason == Reason::Bounced {
                (u, b + 1)
            } else {
                (u + 1, b)
            }
        });
        write!(
            f,
            "\nSuppressed: {unsubscribed} unsubscribed, {bounced} bounced"
        )
    }
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
                "  suppressed: {} since {}",
                suppressed.reason,
                time(suppressed.at)
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
