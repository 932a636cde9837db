//! `dripline plan`: a forecast of what goes out when, made by applying
//! the very rule a run applies ([`Candidate::decide`]) at each run the
//! forecast expects. With a run history (two runs or more) those are the
//! cron job's rhythm: a run every [`Cadence::every`] after the last one;
//! without one, a run at every moment something becomes due (as
//! `dripline serve` or a frequent cron job does). Subscribers are
//! simulated one at a time, their sequences in config order at each run,
//! as a run visits them; only the hour and day quotas are not forecast.
//!
//! Pure apart from its inputs: it reads no clock and writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::engine::Drip;
use crate::schedule::due::{Candidate, When, joined_at, zone_of};
use crate::schedule::{Cadence, Decision, Progress, Timing};
use crate::store::{SequenceState, Suppression};
use crate::subscribers::{List, Subscriber};

/// How far past the forecast the next email of each subscriber is looked
/// for, so that "next email" has an answer for slow courses too.
const SEARCH_DAYS: i64 = 400;

/// Runs simulated per subscriber before giving up on their next email.
const RUNS_PER_SUBSCRIBER: usize = 20_000;

/// What goes out over the coming days.
#[derive(Debug)]
pub struct Forecast {
    pub from: DateTime<Utc>,
    pub days: u32,
    /// The zone the per-day counts are dated in (the config's).
    pub zone: Tz,
    /// The runs the forecast assumes.
    pub runs: Runs,
    /// Set when the run history shows the runs are too far apart.
    pub warning: Option<String>,
    /// Emails per date, per sequence.
    pub by_day: BTreeMap<NaiveDate, BTreeMap<String, u64>>,
    /// Every email within the forecast, in the order runs send them.
    pub emails: Vec<Planned>,
    /// Each subscriber's next email, in list order.
    pub next: Vec<NextEmail>,
}

/// The runs a forecast assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// At every moment something becomes due.
    Continuous,
    /// Every `every`, the first at `first`.
    Every {
        first: DateTime<Utc>,
        every: Duration,
    },
}

/// One email the forecast expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub email: String,
    pub sequence: String,
    /// 1-based.
    pub step: usize,
    pub step_id: String,
    pub at: DateTime<Utc>,
}

/// A subscriber's next email in one sequence.
#[derive(Debug)]
pub struct NextEmail {
    pub email: String,
    pub sequence: String,
    /// 1-based, with the sequence's length.
    pub step: usize,
    pub steps: usize,
    pub step_id: String,
    pub at: Next,
    pub zone: Tz,
}

/// When a next email goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    At(DateTime<Utc>),
    /// It failed for good.
    Failed,
    /// `send_at` has no slot for it.
    NoSlot,
    /// Not within [`SEARCH_DAYS`].
    Later,
}

/// What the forecast reads: each drip with its list and stored state.
pub struct Inputs<'a> {
    pub drips: &'a [(Drip, List, SequenceState)],
    pub suppressed: &'a HashMap<String, Suppression>,
    pub last_sent: &'a HashMap<String, DateTime<Utc>>,
    pub zone: Tz,
    pub catch_up: Duration,
    /// When earlier runs started, any order (the store's run history).
    pub runs: &'a [DateTime<Utc>],
}

/// Forecasts `days` days from `now`.
pub fn forecast(inputs: &Inputs, now: DateTime<Utc>, days: u32) -> Forecast {
    let schedule = RunSchedule::new(inputs.runs, now);
    let until = now + Duration::days(days.into());
    let mut forecast = Forecast {
        from: now,
        days,
        zone: inputs.zone,
        runs: schedule.runs,
        warning: schedule.cadence(now).warning(inputs.catch_up),
        by_day: BTreeMap::new(),
        emails: Vec::new(),
        next: Vec::new(),
    };
    let mut next = Vec::new();
    for tracks in subscribers(inputs).values_mut() {
        simulate(inputs, &schedule, tracks, until, &mut forecast, &mut next);
    }
    forecast.emails.sort_by_key(|email| email.at);
    for email in &forecast.emails {
        let date = email.at.with_timezone(&inputs.zone).date_naive();
        *forecast
            .by_day
            .entry(date)
            .or_default()
            .entry(email.sequence.clone())
            .or_default() += 1;
    }
    next.sort_by_key(|(order, _)| *order);
    forecast.next = next.into_iter().map(|(_, next)| next).collect();
    forecast
}

/// The runs ahead, and the cadence each of them will see.
struct RunSchedule {
    runs: Runs,
    /// Earlier runs, oldest first.
    recorded: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl RunSchedule {
    fn new(runs: &[DateTime<Utc>], now: DateTime<Utc>) -> Self {
        let mut recorded: Vec<DateTime<Utc>> =
            runs.iter().copied().filter(|at| *at < now).collect();
        recorded.sort_unstable();
        let runs = match recorded.split_last() {
            Some((&last, before)) if !before.is_empty() => match Cadence::of(before, last).every {
                Some(every) if every > Duration::zero() => {
                    // The first run of the rhythm at or after `now`.
                    let behind = (now - last).num_seconds().max(0);
                    let step = every.num_seconds().max(1);
                    let count = ((behind + step - 1) / step).max(1);
                    Runs::Every {
                        first: last + Duration::seconds(count * step),
                        every,
                    }
                }
                _ => Runs::Continuous,
            },
            _ => Runs::Continuous,
        };
        RunSchedule {
            runs,
            recorded,
            now,
        }
    }

    /// The first run at or after `at`.
    fn at_or_after(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self.runs {
            Runs::Continuous => at.max(self.now),
            Runs::Every { first, every } => {
                let behind = (at - first).num_seconds().max(0);
                let step = every.num_seconds().max(1);
                first + Duration::seconds((behind + step - 1) / step * step)
            }
        }
    }

    /// The first run after the one at `at`.
    fn after(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.at_or_after(at + Duration::seconds(1))
    }

    /// The cadence a run at `at` sees: the recorded runs, then the
    /// simulated ones before it.
    fn cadence(&self, at: DateTime<Utc>) -> Cadence {
        let mut starts = self.recorded.clone();
        if let Runs::Every { first, every } = self.runs {
            let step = every.num_seconds().max(1);
            let before = ((at - first).num_seconds() + step - 1)
                .div_euclid(step)
                .max(0);
            let from = (before - Cadence::HISTORY as i64).max(0);
            starts.extend((from..before).map(|k| first + Duration::seconds(k * step)));
        } else if at > self.now {
            // Runs at every moment: never too far apart.
            return Cadence::default();
        }
        Cadence::of(&starts, at)
    }
}

/// One subscriber in one drip, as the simulated runs change it.
struct Track<'a> {
    drip: &'a (Drip, List, SequenceState),
    subscriber: &'a Subscriber,
    key: String,
    zone: Tz,
    /// `None` until the first run sees them.
    enrolled_at: Option<DateTime<Utc>>,
    sent_steps: Vec<String>,
    last_sent_at: Option<DateTime<Utc>>,
    /// Their place in the list, for the order of `next`.
    order: (usize, usize),
    /// The step that was next when the forecast began; `None` when
    /// they had finished (or before the first run).
    first_step: Option<usize>,
    /// Whether the first run has seen them.
    seen: bool,
    /// Their first email of the forecast, once known.
    next: Option<Next>,
}

impl Track<'_> {
    fn candidate(&self) -> Option<Candidate<'_>> {
        let sequence = &self.drip.0.sequence;
        let progress = Progress {
            enrolled_at: self.enrolled_at?,
            sent_steps: &self.sent_steps,
            last_sent_at: self.last_sent_at,
        };
        let step = progress.next_step(&sequence.steps)?;
        Some(Candidate {
            subscriber: self.subscriber,
            key: self.key.clone(),
            zone: self.zone,
            progress,
            step,
            pending: self.drip.2.pending(&self.key, &sequence.steps[step].id),
            enrolling: None,
        })
    }
}

/// Every subscriber a run would visit, by key: their drips in config order.
fn subscribers<'a>(inputs: &Inputs<'a>) -> HashMap<String, Vec<Track<'a>>> {
    let mut by_key: HashMap<String, Vec<Track<'a>>> = HashMap::new();
    for (index, drip) in inputs.drips.iter().enumerate() {
        let (Drip { sequence, .. }, list, state) = drip;
        for (row, subscriber) in list.subscribers.iter().enumerate() {
            let key = subscriber.key();
            if subscriber.unsubscribed || inputs.suppressed.contains_key(&key) {
                continue;
            }
            let enrollment = state.enrollments.get(&key);
            by_key.entry(key.clone()).or_default().push(Track {
                drip,
                subscriber,
                zone: zone_of(sequence, subscriber, inputs.zone),
                enrolled_at: enrollment.map(|e| e.enrolled_at),
                sent_steps: enrollment.map(|e| e.sent_steps.clone()).unwrap_or_default(),
                last_sent_at: enrollment.and_then(|e| e.last_sent_at),
                key,
                order: (index, row),
                first_step: None,
                seen: false,
                next: None,
            });
        }
    }
    by_key
}

/// Runs the rule for one subscriber at each run, until the forecast ends
/// and each of their sequences has a next email.
fn simulate(
    inputs: &Inputs,
    schedule: &RunSchedule,
    tracks: &mut [Track],
    until: DateTime<Utc>,
    forecast: &mut Forecast,
    next: &mut Vec<((usize, usize), NextEmail)>,
) {
    let search_end = until + Duration::days(SEARCH_DAYS);
    let mut last_sent = tracks
        .first()
        .and_then(|track| inputs.last_sent.get(&track.key).copied());
    let mut run = schedule.at_or_after(forecast.from);
    for _ in 0..RUNS_PER_SUBSCRIBER {
        if run > search_end {
            break;
        }
        let cadence = schedule.cadence(run);
        let mut wake = DateTime::<Utc>::MAX_UTC;
        for track in tracks.iter_mut() {
            if track.enrolled_at.is_none() {
                track.enrolled_at =
                    Some(joined_at(track.subscriber.subscribed_at, track.zone, run));
            }
            let sequence = &track.drip.0.sequence;
            let timing = Timing {
                send_at: &sequence.settings.send_at,
                zone: track.zone,
                catch_up: inputs.catch_up,
                runs: cadence,
            };
            let decided = track.candidate().map(|candidate| {
                let decision = candidate.decide(&timing, sequence, run, last_sent);
                (candidate.step, decision, candidate.when(&timing, sequence))
            });
            if !track.seen {
                track.seen = true;
                track.first_step = decided.map(|(step, _, _)| step);
            }
            match decided {
                None => {}
                Some((step, Decision::Send | Decision::Late, _)) => {
                    let step_id = sequence.steps[step].id.clone();
                    if run <= until {
                        forecast.emails.push(Planned {
                            email: track.subscriber.email.to_string(),
                            sequence: sequence.id.clone(),
                            step: step + 1,
                            step_id: step_id.clone(),
                            at: run,
                        });
                    }
                    track.next.get_or_insert(Next::At(run));
                    track.sent_steps.push(step_id);
                    track.last_sent_at = Some(run);
                    last_sent = Some(run);
                    wake = wake.min(schedule.after(run));
                }
                Some((_, Decision::Wait(at), when)) if at == DateTime::<Utc>::MAX_UTC => {
                    track.next.get_or_insert(if when == When::Failed {
                        Next::Failed
                    } else {
                        Next::NoSlot
                    });
                }
                Some((_, Decision::Wait(at), _)) => wake = wake.min(at),
            }
        }
        let settled = tracks
            .iter()
            .all(|track| track.next.is_some() || track.first_step.is_none());
        if wake == DateTime::<Utc>::MAX_UTC || (run >= until && settled) {
            break;
        }
        run = schedule.at_or_after(wake.max(schedule.after(run)));
    }
    next.extend(tracks.iter().filter_map(next_email));
}

/// A track's next email: the step that was next when the forecast began.
fn next_email(track: &Track) -> Option<((usize, usize), NextEmail)> {
    let step = track.first_step?;
    let sequence = &track.drip.0.sequence;
    Some((
        track.order,
        NextEmail {
            email: track.subscriber.email.to_string(),
            sequence: sequence.id.clone(),
            step: step + 1,
            steps: sequence.steps.len(),
            step_id: sequence.steps[step].id.clone(),
            at: track.next.unwrap_or(Next::Later),
            zone: track.zone,
        },
    ))
}

impl fmt::Display for Forecast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Forecast for {} day{} from {} (dates in {}):",
            self.days,
            if self.days == 1 { "" } else { "s" },
            time(self.from),
            self.zone.name()
        )?;
        match self.runs {
            Runs::Continuous => writeln!(
                f,
                "  assuming a run whenever an email is due (no run history yet; after two runs the forecast follows their rhythm)"
            )?,
            Runs::Every { first, every } => writeln!(
                f,
                "  assuming a run every {} like the last ones, the next at {}",
                humantime::format_duration(every.to_std().unwrap_or_default()),
                time(first)
            )?,
        }
        if let Some(warning) = &self.warning {
            writeln!(f, "  warning: {warning}")?;
        }
        let mut total = 0;
        for (date, sequences) in &self.by_day {
            let count: u64 = sequences.values().sum();
            total += count;
            let detail: Vec<String> = sequences
                .iter()
                .map(|(sequence, count)| format!("{sequence} {count}"))
                .collect();
            writeln!(f, "  {date}  {count:>7} emails  ({})", detail.join(", "))?;
        }
        writeln!(f, "  total       {total:>7} emails")?;
        writeln!(f, "\nNext email per subscriber:")?;
        if self.next.is_empty() {
            write!(f, "  none: every subscriber has finished or is suppressed")?;
        }
        for (index, next) in self.next.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "  {:<32} {} step {}/{} {:<28} {}",
                next.email,
                next.sequence,
                next.step,
                next.steps,
                next.step_id,
                next.describe()
            )?;
        }
        Ok(())
    }
}

impl NextEmail {
    /// When it goes, in words.
    fn describe(&self) -> String {
        match self.at {
            Next::At(at) => at
                .with_timezone(&self.zone)
                .format(&format!("%Y-%m-%d %H:%M {}", self.zone.name()))
                .to_string(),
            Next::Failed => "never (failed; see `dripline status`)".to_owned(),
            Next::NoSlot => {
                "never (send_at has no slot for it; `dripline check` says why)".to_owned()
            }
            Next::Later => format!("not within {SEARCH_DAYS} days"),
        }
    }
}

impl Forecast {
    /// The forecast for scripts and tests: every email and each
    /// subscriber's next one, times in RFC 3339 UTC.
    pub fn to_json(&self) -> Value {
        let emails: Vec<Value> = self
            .emails
            .iter()
            .map(|email| {
                json!({
                    "email": email.email,
                    "sequence": email.sequence,
                    "step": email.step,
                    "step_id": email.step_id,
                    "at": email.at.to_rfc3339(),
                })
            })
            .collect();
        let next: Vec<Value> = self
            .next
            .iter()
            .map(|next| {
                json!({
                    "email": next.email,
                    "sequence": next.sequence,
                    "step": next.step,
                    "step_id": next.step_id,
                    "at": match next.at {
                        Next::At(at) => Value::from(at.to_rfc3339()),
                        _ => Value::Null,
                    },
                    "when": next.describe(),
                    "zone": next.zone.name(),
                })
            })
            .collect();
        json!({
            "from": self.from.to_rfc3339(),
            "days": self.days,
            "runs_every_seconds": match self.runs {
                Runs::Continuous => Value::Null,
                Runs::Every { every, .. } => Value::from(every.num_seconds()),
            },
            "warning": self.warning,
            "emails": emails,
            "next": next,
        })
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
