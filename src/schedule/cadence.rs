//! How far apart the runs are, from the run history: whether a cron job
//! runs often enough for every subscriber's `send_at` slot and
//! `catch_up` window (DESIGN.md 7.3: nobody is starved).
//!
//! Pure: the caller reads the history from the store.

use chrono::{DateTime, Duration, Utc};

/// The runs around a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cadence {
    /// The run before the one deciding; `None` for the first run.
    pub previous: Option<DateTime<Utc>>,
    /// The usual time between runs: the lower median of the gaps between
    /// the last few runs and this one, so that one long gap (the machine
    /// was down) or one extra run by hand does not change it. `None`
    /// before the second run.
    pub every: Option<Duration>,
}

impl Cadence {
    /// How many earlier runs the cadence looks at.
    pub const HISTORY: usize = 8;

    /// The cadence of a run at `now`, given the start times of earlier
    /// runs (any order; those at or after `now` and beyond the last
    /// [`Cadence::HISTORY`] are ignored).
    pub fn of(starts: &[DateTime<Utc>], now: DateTime<Utc>) -> Cadence {
        let mut earlier: Vec<DateTime<Utc>> =
            starts.iter().copied().filter(|at| *at < now).collect();
        earlier.sort_unstable();
        let skip = earlier.len().saturating_sub(Self::HISTORY);
        let mut times = earlier.split_off(skip);
        let previous = times.last().copied();
        times.push(now);
        let mut gaps: Vec<Duration> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
        gaps.sort_unstable();
        Cadence {
            previous,
            every: (!gaps.is_empty()).then(|| gaps[(gaps.len() - 1) / 2]),
        }
    }

    /// Whether runs are too far apart for `catch_up`: then some slots
    /// have no run within `catch_up` after them, and their emails go at
    /// the first run after the slot instead of never.
    pub fn too_far_apart(&self, catch_up: Duration) -> bool {
        self.every.is_some_and(|every| every > catch_up)
    }

    /// The plain statement of the problem and its fix, when the runs are
    /// too far apart for `catch_up`.
    pub fn warning(&self, catch_up: Duration) -> Option<String> {
        let every = self.every.filter(|_| self.too_far_apart(catch_up))?;
        Some(format!(
            "the runs are too far apart: about {} between runs, more than catch_up ({}), so emails whose send_at slot falls between two runs go at the first run after the slot, not at the slot; run dripline more often (at least every {}, e.g. hourly: `0 * * * *`), or widen [delivery] catch_up to \"{}\" or more",
            hours(every),
            hours(catch_up),
            hours(catch_up),
            hours(every)
        ))
    }
}

/// A duration as people write it in dripline.toml: `24h`, `90m`.
fn hours(duration: Duration) -> String {
    let minutes = duration.num_minutes();
    if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::hours(hours)
    }

    #[test]
    fn a_daily_cron_is_too_far_apart_for_twelve_hours() {
        let cadence = Cadence::of(&[at(0), at(24)], at(48));
        assert_eq!(cadence.previous, Some(at(24)));
        assert_eq!(cadence.every, Some(Duration::hours(24)));
        assert!(cadence.too_far_apart(Duration::hours(12)));
        assert!(!cadence.too_far_apart(Duration::hours(24)));
        assert_eq!(
            cadence.warning(Duration::hours(12)).unwrap(),
            "the runs are too far apart: about 24h between runs, more than catch_up (12h), so emails whose send_at slot falls between two runs go at the first run after the slot, not at the slot; run dripline more often (at least every 12h, e.g. hourly: `0 * * * *`), or widen [delivery] catch_up to \"24h\" or more"
        );
    }

    #[test]
    fn downtime_or_a_run_by_hand_does_not_change_the_cadence() {
        let hourly: Vec<DateTime<Utc>> = (0..10).map(at).collect();
        let after_downtime = Cadence::of(&hourly, at(9 + 72));
        assert_eq!(after_downtime.every, Some(Duration::hours(1)));
        let daily = [at(0), at(24), at(25), at(48), at(72)];
        assert_eq!(Cadence::of(&daily, at(96)).every, Some(Duration::hours(24)));
    }

    #[test]
    fn the_first_run_has_no_cadence() {
        assert_eq!(Cadence::of(&[], at(0)), Cadence::default());
        assert!(!Cadence::default().too_far_apart(Duration::zero()));
        // Runs at or after `now` (another instance, a clock set back) do not count.
        assert_eq!(Cadence::of(&[at(5)], at(5)), Cadence::default());
    }
}
