//! Who is due when: the pure rules of DESIGN.md section 7.
//!
//! Every function takes the current time as a parameter and touches no
//! clock, disk or network. Slots come from a sequence's `send_at` in the
//! subscriber's own time zone; local days follow that zone through DST
//! changes (a slot that does not exist that day moves to the next valid
//! time; a slot that occurs twice is used once). [`due`] applies these
//! rules to a list and its state, for `run` and `plan` alike; [`cadence`]
//! says whether the runs come often enough for them.

pub mod cadence;
pub mod due;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::crontab::CronSchedule;
use crate::sequence::{FirstStep, Settings, Step};

pub use self::cadence::Cadence;

/// Slots tried before deciding that `send_at` never fires again: far more
/// than any real schedule needs to step past a repeated or skipped hour.
const SLOT_SEARCH: usize = 1000;

/// How a sequence's emails are timed for one subscriber.
#[derive(Debug, Clone, Copy)]
pub struct Timing<'a> {
    /// The slots in which emails may go out, in local wall-clock time.
    pub send_at: &'a CronSchedule,
    /// The subscriber's time zone.
    pub zone: Tz,
    /// How late a due email may still go out before it waits for a slot.
    pub catch_up: Duration,
    /// The runs around the decision: when they are too far apart for
    /// `catch_up`, an email goes at the first run after its slot.
    pub runs: Cadence,
}

/// What to do with a subscriber's next email at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is due: send it now.
    Send,
    /// It is due and goes now, at the first run after its slot, although
    /// more than `catch_up` late: the runs are too far apart for any run
    /// to fall within `catch_up` of the slot (see [`Cadence`]).
    Late,
    /// Not yet: it becomes due at this time.
    Wait(DateTime<Utc>),
}

impl Timing<'_> {
    /// The local calendar date of `at` in the subscriber's zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// The first slot at or after the local wall-clock time `start`.
    /// `None` only when `send_at` never fires again.
    pub fn slot_at_or_after(&self, start: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut from = start - Duration::seconds(1);
        // A wall-clock slot that maps to no instant in this zone (a DST gap)
        // moves to the next valid time; try a few slots in case of odd zones.
        for _ in 0..4 {
            let slot = self.send_at.next_after(from)?;
            if let Some(instant) = instant_of(self.zone, slot) {
                return Some(instant);
            }
            from = slot;
        }
        None
    }

    /// The first slot at or after the instant `start`. A slot moved out of
    /// a DST gap counts at the instant it moved to, so one that lands
    /// exactly on `start` is not skipped; a slot whose wall-clock time
    /// occurs twice is used at its first occurrence only.
    pub fn slot_at_or_after_instant(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Wall-clock times strictly after the instant just before `start`:
        // right after a gap that is the wall-clock time the gap starts at.
        let mut from = (start - Duration::seconds(1))
            .with_timezone(&self.zone)
            .naive_local();
        for _ in 0..SLOT_SEARCH {
            let slot = self.send_at.next_after(from)?;
            match instant_of(self.zone, slot) {
                Some(at) if at >= start => return Some(at),
                _ => from = slot,
            }
        }
        None
    }

    /// The first slot on or after the start of the local day `date`.
    pub fn first_slot_of_day(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        self.slot_at_or_after(date.and_hms_opt(0, 0, 0)?)
    }

    /// When step 1 is due for a subscriber enrolled at `enrolled`.
    pub fn first_due(
        &self,
        enrolled: DateTime<Utc>,
        first_step: FirstStep,
        wait_days: u32,
    ) -> Option<DateTime<Utc>> {
        if wait_days == 0 {
            return match first_step {
                FirstStep::Immediately => Some(enrolled),
                // Never a slot earlier that day, before they joined.
                FirstStep::NextSlot => self.slot_at_or_after_instant(enrolled),
            };
        }
        let day = self.local_date(enrolled) + chrono::Days::new(wait_days.into());
        self.first_slot_of_day(day)
    }

    /// When a later step is due, given when the previous one was sent.
    pub fn next_due(&self, previous_sent: DateTime<Utc>, wait_days: u32) -> Option<DateTime<Utc>> {
        let day = self.course_day(previous_sent) + chrono::Days::new(wait_days.into());
        self.first_slot_of_day(day)
    }

    /// The local day an email sent at `sent` counts for, for the days
    /// that follow it: the day it went out; but when the runs are too far
    /// apart and it went out more than `catch_up` after the latest slot
    /// (at the first run after that slot), the day of that slot. So a
    /// course keeps one email a day when every run comes after the slot.
    pub fn course_day(&self, sent: DateTime<Utc>) -> NaiveDate {
        let day = self.local_date(sent);
        if !self.runs.too_far_apart(self.catch_up) {
            return day;
        }
        match self.latest_slot_between(DateTime::<Utc>::MIN_UTC, sent) {
            Some(slot) if sent - slot > self.catch_up => self.local_date(slot),
            _ => day,
        }
    }

    /// Whether an email due at `due` goes out at `now`, given the local date
    /// of the last dripline email this subscriber got from any sequence.
    pub fn decide(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        last_sent: Option<DateTime<Utc>>,
    ) -> Decision {
        // An email held back by the one-a-day rule is due again at the first
        // slot of the next day, not at midnight: it is not "late" then.
        let due = match last_sent.map(|sent| self.course_day(sent)) {
            Some(day) if day >= self.local_date(due) => {
                match day.succ_opt().and_then(|next| self.first_slot_of_day(next)) {
                    Some(slot) => slot.max(due),
                    None => return self.wait_for(None),
                }
            }
            _ => due,
        };
        if now < due {
            return Decision::Wait(due);
        }
        let today = self.local_date(now);
        if last_sent.is_some_and(|sent| self.local_date(sent) >= today) {
            // One email a day: the course resumes tomorrow, not in a burst.
            return self.wait_for(today.succ_opt().and_then(|day| self.first_slot_of_day(day)));
        }
        // Sendable when `now` is within catch_up of the due time, or of a
        // slot that came after it (the machine was down): never a
        // "morning" email in the middle of the night.
        let latest_slot = self.latest_slot_between(due, now);
        let anchor = latest_slot.unwrap_or(due);
        if now - anchor <= self.catch_up {
            Decision::Send
        } else if self.runs.too_far_apart(self.catch_up)
            && self.runs.previous.is_none_or(|previous| previous < anchor)
        {
            // No run came within catch_up of the slot, and none will: this
            // is the first run after it. Late beats never.
            Decision::Late
        } else {
            self.wait_for(self.slot_at_or_after_instant(now))
        }
    }

    fn wait_for(&self, slot: Option<DateTime<Utc>>) -> Decision {
        // A schedule that never fires again leaves the email waiting forever.
        Decision::Wait(slot.unwrap_or(DateTime::<Utc>::MAX_UTC))
    }

    /// The latest slot in `(after, until]`.
    fn latest_slot_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut before = until.with_timezone(&self.zone).naive_local() + Duration::seconds(1);
        // A wall-clock slot can map past `until` around DST changes; step back.
        for _ in 0..4 {
            let slot = self.send_at.latest_before(before)?;
            let at = instant_of(self.zone, slot)?;
            if at <= until {
                return (at > after).then_some(at);
            }
            before = slot;
        }
        None
    }
}

/// The wait after the `n`-th failure in a row: `first`, doubling each time,
/// at most `cap`.
pub fn doubling(
    n: u32,
    first: std::time::Duration,
    cap: std::time::Duration,
) -> std::time::Duration {
    first
        .saturating_mul(1 << n.saturating_sub(1).min(30))
        .min(cap)
}

/// Where one subscriber stands in one sequence, as the state records it.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// When their clock started.
    pub enrolled_at: DateTime<Utc>,
    /// Ids of the steps they were sent.
    pub sent_steps: &'a [String],
    /// When the last of those went out.
    pub last_sent_at: Option<DateTime<Utc>>,
}

impl Progress<'_> {
    /// The next step to send: the first, in file order, not sent yet.
    /// Keyed by step id, so reordering files resends nothing.
    pub fn next_step(&self, steps: &[Step]) -> Option<usize> {
        steps
            .iter()
            .position(|step| !self.sent_steps.contains(&step.id))
    }

    /// When step `step` is scheduled, before the catch-up and one-a-day
    /// rules of [`Timing::decide`].
    pub fn scheduled(
        &self,
        timing: &Timing,
        settings: &Settings,
        step: &Step,
    ) -> Option<DateTime<Utc>> {
        match self.last_sent_at {
            Some(previous) if !self.sent_steps.is_empty() => {
                timing.next_due(previous, step.wait_days)
            }
            _ => timing.first_due(self.enrolled_at, settings.first_step, step.wait_days),
        }
    }
}

/// The start of the local day of `now` in `zone` (its first valid
/// instant): a claim made now loses when the subscriber got an email
/// since then.
pub fn day_start(now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    now.with_timezone(&zone)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| instant_of(zone, midnight))
        .unwrap_or(now - Duration::days(1))
}

/// The instant of a local wall-clock time: the earlier one when clocks go
/// back, the first valid instant after it in a DST gap.
fn instant_of(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
        LocalResult::None => first_valid_after(zone, local),
    }
}

/// The first valid instant after a wall-clock time that falls in a gap.
fn first_valid_after(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Gaps are whole minutes and at most a few hours long.
    let start = local - Duration::seconds(local.and_utc().timestamp() % 60);
    (1..=24 * 60).find_map(|minutes| {
        let candidate = start + Duration::minutes(minutes);
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
            LocalResult::None => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn timing(send_at: &CronSchedule) -> Timing<'_> {
        Timing {
            send_at,
            zone: chrono_tz::America::New_York,
            catch_up: Duration::hours(12),
            runs: Cadence::default(),
        }
    }

    fn daily() -> CronSchedule {
        "0 8 * * *".parse().unwrap()
    }

    #[test]
    fn first_step_immediately_or_at_the_next_slot() {
        let send_at = daily();
        let timing = timing(&send_at);
        let joined = utc("2026-11-25T10:00:00-05:00");
        assert_eq!(
            timing.first_due(joined, FirstStep::Immediately, 0),
            Some(joined)
        );
        assert_eq!(
            timing.first_due(joined, FirstStep::NextSlot, 0),
            Some(utc("2026-11-26T08:00:00-05:00"))
        );
        assert_eq!(
            timing.first_due(joined, FirstStep::Immediately, 2),
            Some(utc("2026-11-27T08:00:00-05:00"))
        );
    }

    #[test]
    fn later_steps_follow_the_day_the_previous_one_was_sent() {
        let send_at = daily();
        let timing = timing(&send_at);
        let sent = utc("2026-11-25T23:30:00-05:00");
        assert_eq!(
            timing.next_due(sent, 1),
            Some(utc("2026-11-26T08:00:00-05:00"))
        );
        assert_eq!(
            timing.next_due(sent, 3),
            Some(utc("2026-11-28T08:00:00-05:00"))
        );
    }

    #[test]
    fn due_emails_go_out_within_catch_up() {
        let send_at = daily();
        let timing = timing(&send_at);
        let due = utc("2026-11-26T08:00:00-05:00");
        assert_eq!(
            timing.decide(due, utc("2026-11-26T07:59:00-05:00"), None),
            Decision::Wait(due)
        );
        assert_eq!(timing.decide(due, due, None), Decision::Send);
        assert_eq!(
            timing.decide(due, utc("2026-11-26T19:00:00-05:00"), None),
            Decision::Send
        );
    }

    #[test]
    fn a_late_run_waits_for_the_next_slot_instead_of_mailing_at_night() {
        let send_at = daily();
        let timing = timing(&send_at);
        let due = utc("2026-11-26T08:00:00-05:00");
        assert_eq!(
            timing.decide(due, utc("2026-11-26T23:00:00-05:00"), None),
            Decision::Wait(utc("2026-11-27T08:00:00-05:00"))
        );
        // After three days down, a run in the afternoon is close enough to
        // that morning's slot.
        assert_eq!(
            timing.decide(due, utc("2026-11-29T14:00:00-05:00"), None),
            Decision::Send
        );
        assert_eq!(
            timing.decide(due, utc("2026-11-29T03:00:00-05:00"), None),
            Decision::Wait(utc("2026-11-29T08:00:00-05:00"))
        );
    }

    #[test]
    fn never_two_emails_on_one_local_day() {
        let send_at = daily();
        let timing = timing(&send_at);
        let due = utc("2026-11-26T08:00:00-05:00");
        let earlier_today = Some(utc("2026-11-26T07:00:00-05:00"));
        assert_eq!(
            timing.decide(due, utc("2026-11-26T09:00:00-05:00"), earlier_today),
            Decision::Wait(utc("2026-11-27T08:00:00-05:00"))
        );
        let yesterday = Some(utc("2026-11-25T08:00:00-05:00"));
        assert_eq!(
            timing.decide(due, utc("2026-11-26T09:00:00-05:00"), yesterday),
            Decision::Send
        );
    }

    #[test]
    fn an_email_held_back_by_one_a_day_waits_for_the_next_slot_not_midnight() {
        // Step 1 of a second sequence, due "immediately" at 20:00, is held
        // back by the first sequence's email that evening: it goes out at
        // the next 08:00, not at the first run after midnight.
        let send_at = daily();
        let timing = timing(&send_at);
        let joined = utc("2026-11-25T20:00:00-05:00");
        let next_slot = utc("2026-11-26T08:00:00-05:00");
        assert_eq!(
            timing.decide(joined, utc("2026-11-26T00:00:00-05:00"), Some(joined)),
            Decision::Wait(next_slot)
        );
        assert_eq!(
            timing.decide(joined, next_slot, Some(joined)),
            Decision::Send
        );
    }

    #[test]
    fn runs_too_far_apart_send_at_the_first_run_after_the_slot() {
        // A daily cron at 09:30 UTC: 04:30 in New York, 20.5h after 08:00.
        let send_at = daily();
        let mut timing = timing(&send_at);
        let due = utc("2026-11-26T08:00:00-05:00");
        let run = utc("2026-11-27T09:30:00Z");
        assert_eq!(
            timing.decide(due, run, None),
            Decision::Wait(utc("2026-11-27T08:00:00-05:00"))
        );
        timing.runs = Cadence {
            previous: Some(run - Duration::days(1)),
            every: Some(Duration::days(1)),
        };
        assert_eq!(timing.decide(due, run, None), Decision::Late);
        // A run already came after the slot (and sent something else): the
        // next slot's first run sends it, not this one.
        timing.runs.previous = Some(utc("2026-11-26T09:00:00-05:00"));
        assert_eq!(
            timing.decide(due, run, None),
            Decision::Wait(utc("2026-11-27T08:00:00-05:00"))
        );
        // The email sent late counts for its slot's day, so the next one is
        // due at the next day's slot and the course keeps one a day.
        assert_eq!(
            timing.next_due(run, 1),
            Some(utc("2026-11-27T08:00:00-05:00"))
        );
    }

    #[test]
    fn a_slot_in_the_spring_gap_moves_to_the_next_valid_time() {
        // 2026-03-08 02:00 EST jumps to 03:00 EDT in New York.
        let send_at: CronSchedule = "30 2 * * *".parse().unwrap();
        let timing = timing(&send_at);
        let day = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        assert_eq!(
            timing.first_slot_of_day(day),
            Some(utc("2026-03-08T03:00:00-04:00"))
        );
    }

    #[test]
    fn a_slot_that_occurs_twice_in_the_autumn_is_used_once() {
        // 2026-11-01 02:00 EDT falls back to 01:00 EST in New York.
        let send_at: CronSchedule = "30 1 * * *".parse().unwrap();
        let timing = timing(&send_at);
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let first = timing.first_slot_of_day(day).unwrap();
        assert_eq!(first, utc("2026-11-01T01:30:00-04:00"));
        assert_eq!(
            timing.slot_at_or_after_instant(first + Duration::seconds(1)),
            Some(utc("2026-11-02T01:30:00-05:00"))
        );
    }
}
