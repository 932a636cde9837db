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
