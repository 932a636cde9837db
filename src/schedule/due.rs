//! Who is due: the rule `run` applies to each subscriber at each run and
//! `plan` applies to each simulated run, in one place.
//!
//! Pure: the caller hands in the list, the stored state and the time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Decision, Progress, Timing, instant_of};
use crate::sequence::Sequence;
use crate::store::{Pending, PendingStatus, SequenceState, Suppression};
use crate::subscribers::{Joined, List, Subscriber};

/// A subscriber of a drip who has a step to come, and where they stand.
pub struct Candidate<'a> {
    pub subscriber: &'a Subscriber,
    pub key: String,
    pub zone: Tz,
    pub progress: Progress<'a>,
    /// The index of their next step.
    pub step: usize,
    /// Their unfinished delivery of that step, if any.
    pub pending: Option<&'a Pending>,
    /// Set when they are new: the time their clock starts.
    pub enrolling: Option<DateTime<Utc>>,
}

/// The zone a subscriber's slots are in: their own, else the sequence's,
/// else the config's `default`.
pub fn zone_of(sequence: &Sequence, subscriber: &Subscriber, default: Tz) -> Tz {
    subscriber
        .timezone
        .or(sequence.settings.timezone)
        .map_or(default, |zone| zone.0)
}

/// Every subscriber of `list` who may get a step of `sequence`: not
/// suppressed, not unsubscribed in the list, not finished. New ones are
/// enrolled as of `now`.
pub fn candidates<'a>(
    sequence: &'a Sequence,
    list: &'a List,
    state: &'a SequenceState,
    suppressed: &'a HashMap<String, Suppression>,
    default_zone: Tz,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Candidate<'a>> {
    list.subscribers.iter().filter_map(move |subscriber| {
        let key = subscriber.key();
        if subscriber.unsubscribed || suppressed.contains_key(&key) {
            return None;
        }
        let zone = zone_of(sequence, subscriber, default_zone);
        let enrollment = state.enrollments.get(&key);
        let enrolling = enrollment
            .is_none()
            .then(|| joined_at(subscriber.subscribed_at, zone, now));
        let progress = Progress {
            enrolled_at: enrollment.map_or_else(|| enrolling.unwrap_or(now), |e| e.enrolled_at),
            sent_steps: enrollment.map_or(&[][..], |e| &e.sent_steps[..]),
            last_sent_at: enrollment.and_then(|e| e.last_sent_at),
        };
        let step = progress.next_step(&sequence.steps)?;
        let pending = state.pending(&key, &sequence.steps[step].id);
        Some(Candidate {
            subscriber,
            key,
            zone,
            progress,
            step,
            pending,
            enrolling,
        })
    })
}

/// When a candidate's next step goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Scheduled at this time, and may go from `not_before` on (a retry's
    /// backoff), within the catch-up window of a slot like any email.
    Scheduled {
        at: DateTime<Utc>,
        not_before: Option<DateTime<Utc>>,
        /// A run died during its transaction: it goes again with the same
        /// Message-ID, whatever the one-a-day rule says (it may well be
        /// today's email itself).
        resend: bool,
    },
    /// Never: it failed for good.
    Failed,
    /// Never: `send_at` has no slot for it.
    NoSlot,
}

impl Candidate<'_> {
    /// When the next step may go out.
    pub fn when(&self, timing: &Timing, sequence: &Sequence) -> When {
        let (not_before, resend) = match self.pending.map(|pending| pending.status) {
            Some(PendingStatus::Failed) => return When::Failed,
            Some(PendingStatus::Claimed) => (None, true),
            Some(PendingStatus::Retry(at)) => (Some(at), false),
            None => (None, false),
        };
        match self
            .progress
            .scheduled(timing, &sequence.settings, &sequence.steps[self.step])
        {
            Some(at) => When::Scheduled {
                at,
                not_before,
                resend,
            },
            None => When::NoSlot,
        }
    }

    /// What a run at `now` does with the step, given when the subscriber
    /// last got an email from any sequence. A retry or a resend keeps to
    /// the send window of its slot: never a "morning" email at 23:00
    /// because the server said 451 all day, nor at 03:00 after downtime.
    pub fn decide(
        &self,
        timing: &Timing,
        sequence: &Sequence,
        now: DateTime<Utc>,
        last_sent: Option<DateTime<Utc>>,
    ) -> Decision {
        match self.when(timing, sequence) {
            When::Scheduled {
                at,
                not_before,
                resend,
            } => match not_before {
                Some(not_before) if now < not_before => Decision::Wait(not_before),
                _ => timing.decide(at, now, if resend { None } else { last_sent }),
            },
            When::Failed | When::NoSlot => Decision::Wait(DateTime::<Utc>::MAX_UTC),
        }
    }
}

impl Candidate<'_> {
    /// When the step after this one is scheduled if this one is sent at
    /// `sent`: where a pass next looks at them. `None` when it is the last.
    pub fn next_if_sent(
        &self,
        timing: &Timing,
        sequence: &Sequence,
        sent: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let steps = &sequence.steps;
        let mut sent_steps = self.progress.sent_steps.to_vec();
        sent_steps.push(steps[self.step].id.clone());
        let progress = Progress {
            enrolled_at: self.progress.enrolled_at,
            sent_steps: &sent_steps,
            last_sent_at: Some(sent),
        };
        let next = progress.next_step(steps)?;
        progress.scheduled(timing, &sequence.settings, &steps[next])
    }
}

/// When a subscriber's clock starts: their `subscribed_at`, or now. A
/// date means the start of that local day: its midnight, or the first
/// valid instant after it when midnight falls in a DST gap (or the whole
/// date was skipped, as Pacific/Apia's 2011-12-30).
pub fn joined_at(joined: Option<Joined>, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    match joined {
        Some(Joined::At(at)) => at,
        Some(Joined::Date(date)) => date
            .and_hms_opt(0, 0, 0)
            .and_then(|midnight| instant_of(zone, midnight))
            .unwrap_or(now),
        None => now,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;
    use crate::crontab::CronSchedule;
    use crate::schedule::Cadence;
    use crate::sequence::FirstStep;

    fn local(zone: Tz, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&zone).naive_local()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn joined(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
        joined_at(Some(Joined::Date(date)), zone, DateTime::<Utc>::MAX_UTC)
    }

    // The transitions below are from the IANA tz data (chrono-tz 0.10):
    // midnight does not exist on these dates, and the gap is not one hour.

    #[test]
    fn a_date_whose_midnight_is_in_a_half_hour_gap_starts_at_the_first_valid_instant() {
        // Pacific/Pitcairn 1998-04-27: 00:00 -08:30 jumps to 00:30 -08:00.
        let zone = chrono_tz::Pacific::Pitcairn;
        let at = joined(date(1998, 4, 27), zone);
        assert_eq!(
            local(zone, at),
            date(1998, 4, 27).and_hms_opt(0, 30, 0).unwrap()
        );
        assert_eq!(at.to_rfc3339(), "1998-04-27T08:30:00+00:00");
    }

    #[test]
    fn a_date_whose_midnight_is_in_a_two_hour_gap_starts_at_the_first_valid_instant() {
        // America/Argentina/Cordoba 1991-10-20: 00:00 jumps to 02:00.
        let zone = chrono_tz::America::Argentina::Cordoba;
        let at = joined(date(1991, 10, 20), zone);
        assert_eq!(
            local(zone, at),
            date(1991, 10, 20).and_hms_opt(2, 0, 0).unwrap()
        );
        assert_ne!(at, DateTime::<Utc>::MAX_UTC, "not `now`");
    }

    #[test]
    fn a_date_the_zone_skipped_starts_at_the_next_day_not_at_first_sight() {
        // Pacific/Apia skipped 2011-12-30 when it crossed the date line.
        let zone = chrono_tz::Pacific::Apia;
        let at = joined(date(2011, 12, 30), zone);
        assert_eq!(
            local(zone, at),
            date(2011, 12, 31).and_hms_opt(0, 0, 0).unwrap()
        );
        assert_eq!(at.to_rfc3339(), "2011-12-30T10:00:00+00:00");
    }

    #[test]
    fn a_slot_moved_out_of_a_gap_onto_the_join_time_is_not_skipped() {
        // America/Santiago 2027-09-05: 00:00 -04 jumps to 01:00 -03. A
        // subscriber of that date starts at 01:00, where the midnight slot
        // moved to: that slot is their first, not the next day's.
        let zone = chrono_tz::America::Santiago;
        let at = joined(date(2027, 9, 5), zone);
        assert_eq!(
            local(zone, at),
            date(2027, 9, 5).and_hms_opt(1, 0, 0).unwrap()
        );
        let send_at: CronSchedule = "0 0 * * *".parse().unwrap();
        let timing = Timing {
            send_at: &send_at,
            zone,
            catch_up: chrono::Duration::hours(12),
            runs: Cadence::default(),
        };
        assert_eq!(timing.first_due(at, FirstStep::NextSlot, 0), Some(at));
        assert_eq!(
            timing
                .first_due(at, FirstStep::Immediately, 1)
                .map(|due| local(zone, due)),
            Some(date(2027, 9, 6).and_hms_opt(0, 0, 0).unwrap())
        );
    }
}
