//! `dripline plan`: a forecast of what goes out when, from the same rules
//! a run applies, assuming a run at every moment something becomes due
//! (as `dripline serve` or a frequent cron job does).
//!
//! Pure apart from its inputs: it reads no clock and writes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::engine::{Drip, When, candidates};
use crate::schedule::{Decision, Timing};
use crate::store::{SequenceState, Suppression};
use crate::subscribers::List;

/// What goes out over the coming days.
#[derive(Debug)]
pub struct Forecast {
    pub from: DateTime<Utc>,
    pub days: u32,
    /// The zone the per-day counts are dated in (the config's).
    pub zone: Tz,
    /// Emails per date, per sequence.
    pub by_day: BTreeMap<NaiveDate, BTreeMap<String, u64>>,
    /// Each subscriber's next email, in list order.
    pub next: Vec<NextEmail>,
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
    /// `None` when it will not go out (failed for good).
    pub at: Option<DateTime<Utc>>,
    pub zone: Tz,
}

/// What the forecast reads: each drip with its list and stored state.
pub struct Inputs<'a> {
    pub drips: &'a [(Drip, List, SequenceState)],
    pub suppressed: &'a HashMap<String, Suppression>,
    pub last_sent: &'a HashMap<String, DateTime<Utc>>,
    pub zone: Tz,
    pub catch_up: Duration,
}

/// Forecasts `days` days from `now`.
pub fn forecast(inputs: &Inputs, now: DateTime<Utc>, days: u32) -> Forecast {
    let until = now + Duration::days(days.into());
    let mut forecast = Forecast {
        from: now,
        days,
        zone: inputs.zone,
        by_day: BTreeMap::new(),
        next: Vec::new(),
    };
    // Local dates on which each subscriber already gets an email.
    let mut used: HashMap<String, BTreeSet<NaiveDate>> = HashMap::new();
    for (drip, list, state) in inputs.drips {
        let sequence = &drip.sequence;
        for candidate in candidates(sequence, list, state, inputs.suppressed, inputs.zone, now) {
            let timing = Timing {
                send_at: &sequence.settings.send_at,
                zone: candidate.zone,
                catch_up: inputs.catch_up,
            };
            let dates = used.entry(candidate.key.clone()).or_insert_with(|| {
                inputs
                    .last_sent
                    .get(&candidate.key)
                    .map(|at| timing.local_date(*at))
                    .into_iter()
                    .collect()
            });
            let mut at = match candidate.when(&timing, sequence) {
                When::Scheduled { at, not_before, .. } => {
                    send_time(&timing, at, not_before.unwrap_or(now).max(now), dates)
                }
                When::Never => None,
            };
            forecast.next.push(NextEmail {
                email: candidate.subscriber.email.to_string(),
                sequence: sequence.id.clone(),
                step: candidate.step + 1,
                steps: sequence.steps.len(),
                step_id: sequence.steps[candidate.step].id.clone(),
                at,
                zone: candidate.zone,
            });
            let mut step = candidate.step;
            while let Some(sent) = at.filter(|at| *at <= until) {
                dates.insert(timing.local_date(sent));
                let date = sent.with_timezone(&inputs.zone).date_naive();
                *forecast
                    .by_day
                    .entry(date)
                    .or_default()
                    .entry(sequence.id.clone())
                    .or_default() += 1;
                step += 1;
                at = sequence
                    .steps
                    .get(step)
                    .and_then(|next| timing.next_due(sent, next.wait_days))
                    .and_then(|due| send_time(&timing, due, now, dates));
            }
        }
    }
    forecast
}

/// The first moment from `due` on (and not before `from`) at which a run
/// would send the email, skipping local dates that already have one.
fn send_time(
    timing: &Timing,
    due: DateTime<Utc>,
    from: DateTime<Utc>,
    used: &BTreeSet<NaiveDate>,
) -> Option<DateTime<Utc>> {
    let mut at = due.max(from);
    // Each turn moves to a later slot or day; a year of them is plenty.
    for _ in 0..800 {
        match timing.decide(due, at, None) {
            Decision::Send if used.contains(&timing.local_date(at)) => {
                let next_day = timing.local_date(at).succ_opt()?;
                at = timing.first_slot_of_day(next_day)?;
            }
            Decision::Send => return Some(at),
            Decision::Wait(until) if until == DateTime::<Utc>::MAX_UTC => return None,
            Decision::Wait(until) => at = until,
        }
    }
    None
}

impl fmt::Display for Forecast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Forecast for {} day{} from {} (dates in {}):",
            self.days,
            if self.days == 1 { "" } else { "s" },
            self.from.format("%Y-%m-%d %H:%M UTC"),
            self.zone.name()
        )?;
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
            let when = match next.at {
                Some(at) => at
                    .with_timezone(&next.zone)
                    .format(&format!("%Y-%m-%d %H:%M {}", next.zone.name()))
                    .to_string(),
                None => "never (failed; see `dripline status`)".to_owned(),
            };
            write!(
                f,
                "  {:<32} {} step {}/{} {:<28} {when}",
                next.email, next.sequence, next.step, next.steps, next.step_id
            )?;
        }
        Ok(())
    }
}
