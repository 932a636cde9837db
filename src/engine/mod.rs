//! One pass of the drip: plan what is due, render it, claim it, send it,
//! record it. `dripline run` is one pass; `dripline serve` repeats it.
//!
//! The pass reads the time only through its [`Clock`] parameter (fixed
//! with `--now`, the system clock otherwise): who is due is decided at the
//! start, and Date headers and send times follow the clock. The guarantees
//! of DESIGN.md section 8 live here and in [`flight`]: a delivery is
//! claimed durably before the transport sees it and recorded once it
//! answered, and never more than [`BATCH`] are handed over unrecorded, so
//! a crash can resend at most that many, with the same Message-IDs, and
//! skips nothing.
//!
//! What the pass reads at its start is a pre-filter: the store decides,
//! claim by claim, under its own lock (another instance may share the
//! state), and only the claims it won are rendered and handed over.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::config::{Delivery, Project};
use crate::delivery::Transport;
use crate::diagnostic::InvalidInput;
use crate::progress::Reporter;
use crate::render::Renderer;
use crate::schedule::due::{Candidate, candidates};
use crate::schedule::{self, Cadence, Decision, Timing};
use crate::sequence::Sequence;
use crate::store::roster::Roster;
use crate::store::signups::Signups;
use crate::store::{Quota, RunCounts, Store};
use crate::subscribers::{self, Columns, List, Subscriber};

use self::members::{Members, Slice, TimingKey};

mod flight;
mod members;

/// Emails claimed together, and the most ever handed over and not yet
/// recorded: the most a crash can send twice.
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
    /// The pass stopped early, between two batches, because it was asked
    /// to; what it did not reach waits for the next pass.
    pub stopped: bool,
    /// Due, but held back by `max_per_hour` or `max_per_day`: not claimed,
    /// not an attempt; they go at the next run.
    pub deferred: u64,
    /// Picked more than `catch_up` after their slot, at the first run
    /// after it, because the runs are too far apart (see [`Cadence`]).
    pub late: u64,
    /// How the runs around this one are spaced.
    pub cadence: Cadence,
}

impl Summary {
    /// Whether any delivery failed, for the exit code.
    pub fn has_failures(&self) -> bool {
        self.failed > 0 || self.retrying > 0
    }
}

/// A sequence and the list that feeds it.
#[derive(Debug)]
pub struct Drip {
    pub sequence: Sequence,
    /// The list as dripline.toml names it: with the sequence, the key of
    /// its roster in the state, the same on every host that shares it.
    pub list: String,
    pub list_file: PathBuf,
    /// The list's `[[drip]] columns`.
    pub columns: Columns,
}

/// Reads a drip's list file, logging its bad rows. A list with no usable
/// header is invalid input: the command stops before sending anything.
pub fn read_list(file: &Path, columns: &Columns) -> anyhow::Result<List> {
    let reader =
        File::open(file).with_context(|| format!("cannot read the list {}", file.display()))?;
    let list = subscribers::parse(std::io::BufReader::new(reader), file, columns);
    if list.unusable {
        return Err(InvalidInput(list.report).into());
    }
    for problem in list.report.problems() {
        tracing::warn!("{problem}");
    }
    Ok(list)
}

/// What a pass needs besides the drips and `now`.
pub struct Pass<'a, S, T> {
    pub project: &'a Project,
    pub store: &'a S,
    pub transport: &'a T,
    /// Plan only: no state is written and nothing is sent.
    pub dry_run: bool,
    /// Told the running totals after each batch.
    pub progress: Option<&'a Reporter>,
    /// What time it is: who is due is decided once, at the start; Date
    /// headers and recorded send times follow the clock as batches go out.
    pub clock: Clock,
}

/// The time while a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// A fixed time (`--now`, to simulate days): it stands in everywhere.
    At(DateTime<Utc>),
    /// The system clock.
    System,
}

impl Clock {
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::At(at) => at,
            Clock::System => Utc::now(),
        }
    }
}

/// A due email, ready to claim.
struct Due<'a> {
    subscriber: &'a Subscriber,
    key: String,
    step: usize,
    zone: Tz,
    /// When their next email is due once this one is sent now.
    next_if_sent: Option<DateTime<Utc>>,
}

/// When members are next worth a look, by key (`None`: never, until
/// something changes): what a page of the roster learned.
type Looks = Vec<(String, Option<DateTime<Utc>>)>;

/// A decided time as a next look: the end of time is never.
fn look_at(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (at != DateTime::<Utc>::MAX_UTC).then_some(at)
}

/// Picks the due emails of one drip from its candidates, a batch at a
/// time, applying the hour/day quota and the one-a-day rule.
struct Selection<'a, 'b, I> {
    candidates: I,
    sequence: &'a Sequence,
    now: DateTime<Utc>,
    catch_up: Duration,
    cadence: Cadence,
    /// When each subscriber last got an email, as the store said.
    last_sent: &'a HashMap<String, DateTime<Utc>>,
    /// Subscribers picked earlier in this pass, so later drips see them.
    picked: &'b mut HashMap<String, DateTime<Utc>>,
    /// Emails the hour/day limits still allow; `None`: no limit.
    budget: &'b mut Option<u64>,
    /// When the candidates that are not due yet are.
    looks: Looks,
    /// Due, but held back by the quota.
    deferred: u64,
    /// Picked although late, because the runs are too far apart.
    late: u64,
}

impl<'a, I: Iterator<Item = Candidate<'a>>> Selection<'a, '_, I> {
    /// Up to [`BATCH`] due emails; empty when there are no more.
    fn next_batch(&mut self) -> Vec<Due<'a>> {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            let Some(candidate) = self.candidates.next() else {
                break;
            };
            let timing = Timing {
                send_at: &self.sequence.settings.send_at,
                zone: candidate.zone,
                catch_up: self.catch_up,
                runs: self.cadence,
            };
            let last_sent = self
                .last_sent
                .get(&candidate.key)
                .max(self.picked.get(&candidate.key))
                .copied();
            let decision = candidate.decide(&timing, self.sequence, self.now, last_sent);
            if let Decision::Wait(at) = decision {
                self.looks.push((candidate.key, look_at(at)));
                continue;
            }
            // The hour or day quota is used up: it stays due.
            match self.budget {
                Some(0) => {
                    self.deferred += 1;
                    continue;
                }
                Some(left) => *left -= 1,
                None => {}
            }
            if decision == Decision::Late {
                self.late += 1;
            }
            self.picked.insert(candidate.key.clone(), self.now);
            batch.push(Due {
                subscriber: candidate.subscriber,
                next_if_sent: candidate.next_if_sent(&timing, self.sequence, self.now),
                key: candidate.key,
                step: candidate.step,
                zone: candidate.zone,
            });
        }
        batch
    }
}

/// What a pass carries from one slice of members to the next.
struct Carry {
    summary: Summary,
    budget: Option<u64>,
    /// Subscribers picked so far, and when.
    picked: HashMap<String, DateTime<Utc>>,
    catch_up: Duration,
}

impl<S: Store + Signups + Roster + Sync, T: Transport> Pass<'_, S, T> {
    /// Runs one pass at `now` over `drips`, rendering with `renderers`
    /// (one per drip, in the same order).
    pub async fn run(&self, drips: &[Drip], renderers: &[Renderer]) -> anyhow::Result<Summary> {
        self.run_until(drips, renderers, &AtomicBool::new(false))
            .await
    }

    /// [`Pass::run_until`], recorded as a run in the state file: its start,
    /// and its end and counts when it finishes (`dripline status` shows the
    /// last one).
    pub async fn run_recorded(
        &self,
        drips: &[Drip],
        renderers: &[Renderer],
        stop: &AtomicBool,
    ) -> anyhow::Result<Summary> {
        let started = self.clock.now();
        // Read before this run is recorded, so it does not count itself.
        let earlier = self.store.run_starts(started, Cadence::HISTORY).await?;
        let run = self.store.begin_run(started).await?;
        let summary = self.pass(drips, renderers, stop, &earlier).await?;
        let counts = RunCounts {
            sent: summary.sent,
            failed: summary.failed + summary.retrying,
            deferred: summary.deferred,
        };
        self.store.finish_run(run, self.clock.now(), counts).await?;
        Ok(summary)
    }

    /// [`Pass::run`], checking `stop` before each batch: once it is set,
    /// the batch in flight is finished and recorded, nothing more is
    /// claimed, and the summary says `stopped`. `dripline serve` sets it
    /// on SIGTERM.
    pub async fn run_until(
        &self,
        drips: &[Drip],
        renderers: &[Renderer],
        stop: &AtomicBool,
    ) -> anyhow::Result<Summary> {
        let earlier = self
            .store
            .run_starts(self.clock.now(), Cadence::HISTORY)
            .await?;
        self.pass(drips, renderers, stop, &earlier).await
    }

    /// The pass itself; `earlier` holds the start times of earlier runs,
    /// for their [`Cadence`].
    async fn pass(
        &self,
        drips: &[Drip],
        renderers: &[Renderer],
        stop: &AtomicBool,
        earlier: &[DateTime<Utc>],
    ) -> anyhow::Result<Summary> {
        let now = self.clock.now();
        let config = &self.project.config;
        let catch_up = Duration::from_std(config.delivery.catch_up).unwrap_or(Duration::MAX);
        let cadence = Cadence::of(earlier, now);
        let mut carry = Carry {
            summary: Summary {
                cadence,
                ..Summary::default()
            },
            budget: budget(&config.delivery, self.store, now).await?,
            picked: HashMap::new(),
            catch_up,
        };
        for (drip, renderer) in drips.iter().zip(renderers) {
            if stop.load(Ordering::Acquire) {
                carry.summary.stopped = true;
                break;
            }
            let (mut members, bad_rows) = if self.dry_run {
                Members::whole(self.store, drip).await?
            } else {
                let timing = TimingKey {
                    sequence: &drip.sequence,
                    default_zone: config.timezone.0,
                    catch_up,
                    far_apart: cadence.too_far_apart(catch_up),
                };
                Members::due(self.store, drip, &timing, now).await?
            };
            carry.summary.bad_rows += bad_rows;
            while let Some(slice) = members.next(self.store).await? {
                let looks = self
                    .slice(&drip.sequence, renderer, &slice, &mut carry, stop)
                    .await?;
                members.reschedule(self.store, looks).await?;
                if carry.summary.stopped {
                    return Ok(carry.summary);
                }
            }
        }
        Ok(carry.summary)
    }

    /// Goes through one slice of a drip's members: enrolls the new ones,
    /// then claims, renders, sends and records what is due ([`flight`]).
    /// Returns when each member is next worth a look.
    async fn slice(
        &self,
        sequence: &Sequence,
        renderer: &Renderer,
        slice: &Slice,
        carry: &mut Carry,
        stop: &AtomicBool,
    ) -> anyhow::Result<Looks> {
        let now = self.clock.now();
        let zone = self.project.config.timezone.0;
        let candidates = || {
            candidates(
                sequence,
                &slice.list,
                &slice.state,
                &slice.suppressed,
                zone,
                now,
            )
        };
        // Members who are not candidates (suppressed, unsubscribed in the
        // list, finished) need no look until something changes.
        let mut looks: Looks = {
            let waiting: HashSet<String> = candidates().map(|candidate| candidate.key).collect();
            slice
                .list
                .subscribers
                .iter()
                .map(Subscriber::key)
                .filter(|key| !waiting.contains(key))
                .map(|key| (key, None))
                .collect()
        };
        // New subscribers are enrolled first, in one commit: recording a
        // sent email updates their enrollment, so it must exist.
        let enrollments: Vec<(String, DateTime<Utc>)> = candidates()
            .filter_map(|candidate| candidate.enrolling.map(|at| (candidate.key, at)))
            .collect();
        carry.summary.enrolled += enrollments.len() as u64;
        if !self.dry_run && !enrollments.is_empty() {
            self.store.enroll(&sequence.id, &enrollments).await?;
        }
        let mut selection = Selection {
            candidates: candidates(),
            sequence,
            now,
            catch_up: carry.catch_up,
            cadence: carry.summary.cadence,
            last_sent: &slice.last_sent,
            picked: &mut carry.picked,
            budget: &mut carry.budget,
            looks: Vec::new(),
            deferred: 0,
            late: 0,
        };
        let summary = &mut carry.summary;
        if self.dry_run {
            loop {
                let batch = selection.next_batch();
                if batch.is_empty() {
                    break;
                }
                summary.sent += batch.len() as u64;
                for item in &batch {
                    println!(
                        "due: {} step {} ({}) to {}",
                        sequence.id,
                        item.step + 1,
                        sequence.steps[item.step].id,
                        item.subscriber.email
                    );
                }
            }
        } else {
            self.send(
                sequence,
                renderer,
                &mut selection,
                summary,
                &mut looks,
                stop,
            )
            .await?;
        }
        summary.deferred += selection.deferred;
        summary.late += selection.late;
        looks.append(&mut selection.looks);
        Ok(looks)
    }
}

/// How many emails may go out now under `max_per_hour` and `max_per_day`,
/// counting what the store says went out in the last hour and the last 24
/// hours (earlier runs, and signup confirmations, included); `None` when
/// neither is set.
pub async fn budget(
    delivery: &Delivery,
    store: &(impl Store + Signups),
    now: DateTime<Utc>,
) -> anyhow::Result<Option<u64>> {
    let quota = Quota {
        per_hour: delivery.max_per_hour,
        per_day: delivery.max_per_day,
    };
    if !quota.is_set() {
        return Ok(None);
    }
    let (hour, day) = Quota::windows(now);
    let (in_hour, in_day, mailed_in_hour, mailed_in_day) = tokio::try_join!(
        store.sent_since(hour),
        store.sent_since(day),
        store.mailed_since(hour),
        store.mailed_since(day)
    )?;
    Ok(quota.left(in_hour + mailed_in_hour, in_day + mailed_in_day))
}

/// How long to wait after the n-th transient failure: 5 minutes, doubling,
/// at most 6 hours.
fn backoff(attempts: u32) -> Duration {
    let wait = schedule::doubling(
        attempts,
        std::time::Duration::from_secs(5 * 60),
        std::time::Duration::from_secs(6 * 3600),
    );
    Duration::from_std(wait).unwrap_or(Duration::hours(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let minutes: Vec<i64> = (1..=9).map(|n| backoff(n).num_minutes()).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 320, 360, 360]);
    }
}
