//! One pass of the drip: plan what is due, render it, claim it, send it,
//! record it. `dripline run` is one pass; `dripline serve` repeats it.
//!
//! The pass takes `now` as a parameter and reads no clock. The guarantees
//! of DESIGN.md section 8 live here: a delivery is claimed durably before
//! the transport sees it and recorded once it answered, in batches of
//! [`BATCH`], so a crash can resend at most one batch, with the same
//! Message-IDs, and skips nothing.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use futures_util::{StreamExt as _, stream};

use crate::config::Project;
use crate::delivery::{DeliveryError, Parcel, Transport};
use crate::diagnostic::{InvalidInput, Report};
use crate::render::{Links, Renderer};
use crate::schedule::{Decision, Progress, Timing};
use crate::sequence::Sequence;
use crate::store::{Claim, Outcome, PendingStatus, Store};
use crate::subscribers::{self, Joined, Subscriber};

/// Emails claimed, sent and recorded together: the most a crash can send twice.
pub const BATCH: usize = 64;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Accepted by the transport (or, in a dry run, due).
    pub sent: u64,
    /// Failed for good this pass.
    pub failed: u64,
    /// Failed for now; retried in a later pass.
    pub retrying: u64,
    /// List rows skipped as invalid.
    pub bad_rows: u64,
    /// Subscribers enrolled for the first time.
    pub enrolled: u64,
}

impl Summary {
    /// Whether any delivery failed, for the exit code.
    pub fn has_failures(&self) -> bool {
        self.failed > 0 || self.retrying > 0
    }
}

/// How a pass behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Plan only: no state is written and nothing is sent.
    pub dry_run: bool,
}

/// An email due in this pass.
struct Due<'a> {
    subscriber: &'a Subscriber,
    key: String,
    step: usize,
    zone: Tz,
    /// Attempts at this email, counting the one about to be made.
    attempt: u32,
}

/// A sequence with everything a pass needs to send it.
pub struct Drip {
    pub sequence: Sequence,
    pub renderer: Renderer,
    pub list_file: std::path::PathBuf,
}

/// Loads every drip of the project, with its renderer. Any problem in a
/// sequence or template stops the pass before anything is sent.
pub fn load_drips(project: &Project, links: &Links) -> Result<Vec<Drip>, InvalidInput> {
    let mut report = Report::default();
    let mut drips = Vec::new();
    for drip in &project.config.drip {
        let dir = project.sequences_dir().join(drip.sequence.get_ref());
        let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut report) else {
            continue;
        };
        match Renderer::new(&sequence, &project.templates_dir(), &project.config.sender, links) {
            Ok(renderer) => drips.push(Drip {
                sequence,
                renderer,
                list_file: project.resolve(drip.list.get_ref()),
            }),
            Err(problems) => report.extend(problems),
        }
    }
    if report.has_errors() {
        return Err(InvalidInput(report));
    }
    Ok(drips)
}

/// Runs one pass at `now`.
pub async fn pass<S: Store, T: Transport>(
    project: &Project,
    drips: &[Drip],
    store: &S,
    transport: &T,
    now: DateTime<Utc>,
    options: Options,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let suppressed = store.suppressions().await?;
    let mut last_sent = store.last_sent().await?;
    let catch_up = Duration::from_std(project.config.delivery.catch_up).unwrap_or(Duration::MAX);

    for drip in drips {
        let sequence = &drip.sequence;
        let list = read_list(&drip.list_file)?;
        for problem in list.report.problems() {
            tracing::warn!("{problem}");
        }
        summary.bad_rows += list.report.error_count() as u64;
        let state = store.load(&sequence.id).await?;
        let sequence_zone = sequence.settings.timezone.unwrap_or(project.config.timezone).0;

        let mut enrollments: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut due: Vec<Due> = Vec::new();
        for subscriber in &list.subscribers {
            let key = subscriber.key();
            if subscriber.unsubscribed || suppressed.contains_key(&key) {
                continue;
            }
            let zone = subscriber.timezone.map_or(sequence_zone, |zone| zone.0);
            let timing = Timing {
                send_at: &sequence.settings.send_at,
                zone,
                catch_up,
            };
            let enrollment = state.enrollments.get(&key);
            let enrolled_at = match enrollment {
                Some(enrollment) => enrollment.enrolled_at,
                None => {
                    let at = joined_at(subscriber.subscribed_at, zone, now);
                    enrollments.push((key.clone(), at));
                    at
                }
            };
            let progress = Progress {
                enrolled_at,
                sent_steps: enrollment.map_or(&[][..], |enrollment| &enrollment.sent_steps[..]),
                last_sent_at: enrollment.and_then(|enrollment| enrollment.last_sent_at),
            };
            let Some(step) = progress.next_step(&sequence.steps) else {
                continue;
            };
            let pending = state
                .pending
                .get(&key)
                .filter(|pending| pending.step == sequence.steps[step].id);
            let send = match pending.map(|pending| pending.status) {
                Some(PendingStatus::Failed) => false,
                // A run died mid-transaction: it was due then, resend now.
                Some(PendingStatus::Claimed) => true,
                status => {
                    let scheduled =
                        progress.scheduled(&timing, &sequence.settings, &sequence.steps[step]);
                    let retry_at = match status {
                        Some(PendingStatus::Retry(at)) => Some(at),
                        _ => None,
                    };
                    match scheduled.map(|at| retry_at.map_or(at, |retry| retry.max(at))) {
                        Some(at) => timing.decide(at, now, last_sent.get(&key).copied()) == Decision::Send,
                        None => false,
                    }
                }
            };
            if send {
                // One a day across sequences: later drips in this pass see it.
                last_sent.insert(key.clone(), now);
                due.push(Due {
                    subscriber,
                    key,
                    step,
                    zone,
                    attempt: pending.map_or(0, |pending| pending.attempts) + 1,
                });
            }
        }

        summary.enrolled += enrollments.len() as u64;
        if options.dry_run {
            summary.sent += due.len() as u64;
            for item in &due {
                tracing::info!(
                    "due: {} step {} ({}) to {}",
                    sequence.id,
                    item.step + 1,
                    sequence.steps[item.step].id,
                    item.subscriber.email
                );
            }
            continue;
        }
        if !enrollments.is_empty() {
            store.enroll(&sequence.id, &enrollments).await?;
        }
        let limits = Limits {
            max_attempts: project.config.delivery.max_attempts.get(),
            catch_up,
            concurrency: project.config.delivery.concurrency.get() as usize,
        };
        for batch in due.chunks(BATCH) {
            send_batch(drip, batch, store, transport, now, limits, &mut summary).await?;
        }
    }
    Ok(summary)
}

fn read_list(file: &Path) -> anyhow::Result<subscribers::List> {
    let reader = File::open(file).with_context(|| format!("cannot read the list {}", file.display()))?;
    Ok(subscribers::parse(std::io::BufReader::new(reader), file))
}

/// When a subscriber's clock starts: their `subscribed_at`, or now.
fn joined_at(joined: Option<Joined>, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    match joined {
        Some(Joined::At(at)) => at,
        Some(Joined::Date(date)) => local_midnight(date, zone).unwrap_or(now),
        None => now,
    }
}

fn local_midnight(date: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    let midnight = date.and_hms_opt(0, 0, 0)?;
    zone.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(midnight + Duration::hours(1))).earliest())
        .map(|at| at.with_timezone(&Utc))
}

/// The delivery settings a batch needs.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_attempts: u32,
    catch_up: Duration,
    concurrency: usize,
}

async fn send_batch<S: Store, T: Transport>(
    drip: &Drip,
    batch: &[Due<'_>],
    store: &S,
    transport: &T,
    now: DateTime<Utc>,
    limits: Limits,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let Limits {
        max_attempts,
        catch_up,
        concurrency,
    } = limits;
    let sequence = &drip.sequence;
    let mut parcels = Vec::with_capacity(batch.len());
    let mut attempts = Vec::with_capacity(batch.len());
    for item in batch {
        let next_date = sequence.steps.get(item.step + 1).and_then(|next| {
            let timing = Timing {
                send_at: &sequence.settings.send_at,
                zone: item.zone,
                catch_up,
            };
            timing
                .next_due(now, next.wait_days)
                .map(|at| timing.local_date(at))
        });
        match drip.renderer.render(item.step, item.subscriber, next_date, now, false) {
            Ok(email) => {
                attempts.push(item.attempt);
                parcels.push((
                Claim {
                    sequence: sequence.id.clone(),
                    email: item.key.clone(),
                    step: sequence.steps[item.step].id.clone(),
                    message_id: email.message_id.clone(),
                },
                Parcel {
                    from: drip.renderer.envelope_from().clone(),
                    to: item.subscriber.email.clone(),
                    message_id: email.message_id,
                    bytes: email.bytes,
                },
            ));
            }
            Err(err) => {
                summary.failed += 1;
                tracing::error!(
                    "cannot render {} step {} for {}: {err}; it stays due, fix the template and run again",
                    sequence.id,
                    item.step + 1,
                    item.subscriber.email
                );
            }
        }
    }
    let claims: Vec<Claim> = parcels.iter().map(|(claim, _)| claim.clone()).collect();
    store.claim(&claims, now).await?;

    let results: Vec<_> = stream::iter(parcels.iter().map(|(_, parcel)| transport.send(parcel)))
        .buffered(concurrency)
        .collect()
        .await;
    let mut records = Vec::with_capacity(results.len());
    for (((claim, parcel), result), attempts) in parcels.into_iter().zip(results).zip(attempts) {
        let outcome = match result {
            Ok(reply) => {
                summary.sent += 1;
                tracing::debug!("sent {} to {}: {reply}", claim.step, parcel.to);
                Outcome::Sent { reply }
            }
            Err(DeliveryError::Transient(reply)) if attempts < max_attempts => {
                summary.retrying += 1;
                let at = now + backoff(attempts);
                tracing::warn!("{} to {} will be retried from {at}: {reply}", claim.step, parcel.to);
                Outcome::Retry { at, reply }
            }
            Err(DeliveryError::Transient(reply)) => {
                summary.failed += 1;
                tracing::error!("{} to {} failed {attempts} times, giving up: {reply}", claim.step, parcel.to);
                Outcome::Failed { reply, bounced: false }
            }
            Err(DeliveryError::Permanent { reply, recipient }) => {
                summary.failed += 1;
                tracing::error!("{} to {} failed for good: {reply}", claim.step, parcel.to);
                Outcome::Failed { reply, bounced: recipient }
            }
        };
        records.push((claim, outcome));
    }
    store.record(&records, now).await?;
    Ok(())
}

/// How long to wait after the n-th transient failure: 5 minutes, doubling,
/// at most 6 hours.
fn backoff(attempts: u32) -> Duration {
    let minutes = 5i64 << attempts.saturating_sub(1).min(7);
    Duration::minutes(minutes.min(6 * 60))
}
