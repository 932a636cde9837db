//! Cron expressions as users write them, translated for the `cron` crate.
//!
//! Users write crontab's five fields (`min hour dom mon dow`, 0 or 7 =
//! Sunday, names allowed, `@daily` and friends) or the six/seven-field form
//! with seconds. The `cron` crate wants six or seven fields, numbers
//! weekdays from 1 = Sunday, and combines a restricted day of month with a
//! restricted day of week by AND where crontab uses OR. This module owns
//! that translation so a `0 8 * * 1` means Monday everywhere in dripline.
//! It is pure: it never reads the clock.

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDateTime, TimeZone, Utc};

/// A parsed cron expression: the slots in which something may happen,
/// in wall-clock (local) time.
#[derive(Clone)]
pub struct CronSchedule {
    source: String,
    /// One schedule, or two whose union is the crontab meaning when both
    /// day of month and day of week are restricted.
    schedules: Vec<cron::Schedule>,
}

impl CronSchedule {
    /// The expression as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first slot strictly after `after`, in the same wall-clock time.
    ///
    /// Time zones are the caller's business: this works on naive local
    /// times so the caller can decide what a slot in a DST gap means.
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let after = Utc.from_utc_datetime(&after);
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after(&after).next())
            .min()
            .map(|slot| slot.naive_utc())
    }

    /// The last slot strictly before `before`, in wall-clock time.
    pub fn latest_before(&self, before: NaiveDateTime) -> Option<NaiveDateTime> {
        let before = Utc.from_utc_datetime(&before);
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after(&before).next_back())
            .max()
            .map(|slot| slot.naive_utc())
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSchedule").field(&self.source).finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid cron expression `{expression}`: {reason}; write 5 fields `minute hour day-of-month month day-of-week`, for example `0 8 * * *` (08:00 every day) or `0 8 * * mon-fri`"
)]
pub struct CronError {
    expression: String,
    reason: String,
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(expression: &str) -> Result<Self, CronError> {
        let fail = |reason: String| CronError {
            expression: expression.to_owned(),
            reason,
        };
        let expanded = expand_macro(expression.trim()).map_err(&fail)?;
        let mut fields: Vec<String> = expanded.split_whitespace().map(str::to_owned).collect();
        match fields.len() {
            5 => fields.insert(0, "0".to_owned()),
            6 | 7 => {}
            n => return Err(fail(format!("it has {n} fields"))),
        }
        let day_of_month = fields[3].clone();
        let day_of_week = fields[5].clone();
        fields[5] = translate_day_of_week(&day_of_week).map_err(&fail)?;

        let compile = |fields: &[String]| {
            cron::Schedule::from_str(&fields.join(" ")).map_err(|err| fail(err.to_string()))
        };
        // Crontab fires when either day field matches if both are restricted.
        let both_restricted =
            !day_of_month.starts_with(['*', '?']) && !day_of_week.starts_with(['*', '?']);
        let schedules = if both_restricted {
            let mut by_month_day = fields.clone();
            by_month_day[5] = "*".to_owned();
            let mut by_week_day = fields;
            by_week_day[3] = "*".to_owned();
            vec![compile(&by_month_day)?, compile(&by_week_day)?]
        } else {
            vec![compile(&fields)?]
        };
        let schedule = CronSchedule {
            source: expression.to_owned(),
            schedules,
        };
        // `0 8 30 2 *` parses but no date matches it: refuse it here, so
        // `check` says so instead of `plan` promising "never".
        if schedule.next_after(NaiveDateTime::default()).is_none() {
            return Err(fail(
                "it never fires: no date matches its day of month and month (there is no 30 or 31 February, no 31 April, June, September or November)".to_owned(),
            ));
        }
        Ok(schedule)
    }
}

impl<'de> serde::Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn expand_macro(expression: &str) -> Result<&str, String> {
    if !expression.starts_with('@') {
        return Ok(expression);
    }
    Ok(match expression {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => {
            return Err(format!(
                "`{other}` is not one of @yearly, @monthly, @weekly, @daily, @hourly"
            ));
        }
    })
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a crontab day-of-week field (0 or 7 = Sunday) as the explicit
/// list of day names the `cron` crate reads unambiguously.
fn translate_day_of_week(field: &str) -> Result<String, String> {
    if field == "?" {
        return Ok("*".to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: usize =
                    step.parse().ok().filter(|step| *step > 0).ok_or_else(|| {
                        format!("`{step}` in day of week `{field}` is not a step")
                    })?;
                (range, step)
            }
            None => (item, 1),
        };
        let (first, last) = if range == "*" {
            (0, 6)
        } else if let Some((first, last)) = range.split_once('-') {
            let (first, last) = (day_number(first, field)?, day_number(last, field)?);
            // `5-7` is Friday to Sunday: 7 keeps its place at the end.
            let first = first % 7;
            if first > last {
                return Err(format!(
                    "the range `{range}` in day of week `{field}` runs backwards"
                ));
            }
            (first, last)
        } else if item.contains('/') {
            (day_number(range, field)? % 7, 6)
        } else {
            let day = day_number(range, field)?;
            (day, day)
        };
        for day in (first..=last).step_by(step) {
            days[day % 7] = true;
        }
    }
    if days.iter().all(|&set| set) {
        return Ok("*".to_owned());
    }
    let names: Vec<&str> = DAY_NAMES
        .iter()
        .zip(days)
        .filter_map(|(name, set)| set.then_some(*name))
        .collect();
    Ok(names.join(","))
}

/// A day of week as crontab numbers it: 0..=7, Sunday being 0 and 7.
fn day_number(text: &str, field: &str) -> Result<usize, String> {
    if let Ok(number) = text.parse::<usize>() {
        return if number <= 7 {
            Ok(number)
        } else {
            Err(format!(
                "day of week `{number}` in `{field}` is out of range (0-7, where 0 and 7 are Sunday, or sun-sat)"
            ))
        };
    }
    // Any prefix of at least three letters of a day's name: `tue`, `tues`, `tuesday`.
    const NAMES: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    let lower = text.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|name| lower.len() >= 3 && name.starts_with(&lower))
        .ok_or_else(|| format!("`{text}` in day of week `{field}` is not a day"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate, Weekday};

    fn next(expression: &str, after: &str) -> NaiveDateTime {
        let schedule: CronSchedule = expression.parse().unwrap();
        let after = NaiveDateTime::parse_from_str(after, "%Y-%m-%d %H:%M").unwrap();
        schedule.next_after(after).unwrap()
    }

    fn weekdays(expression: &str) -> Vec<Weekday> {
        let schedule: CronSchedule = expression.parse().unwrap();
        let mut at = NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut days = Vec::new();
        for _ in 0..7 {
            at = schedule.next_after(at).unwrap();
            days.push(at.weekday());
        }
        days.sort_by_key(|day| day.num_days_from_sunday());
        days.dedup();
        days
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        let err = "0 8 30 2 *".parse::<CronSchedule>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid cron expression `0 8 30 2 *`: it never fires: no date matches its day of month and month (there is no 30 or 31 February, no 31 April, June, September or November); write 5 fields `minute hour day-of-month month day-of-week`, for example `0 8 * * *` (08:00 every day) or `0 8 * * mon-fri`"
        );
        assert!("0 8 31 4 *".parse::<CronSchedule>().is_err());
        // Leap days fire, every four years.
        assert!("0 8 29 2 *".parse::<CronSchedule>().is_ok());
        // With a day of week too, crontab fires on either: that fires.
        assert!("0 8 30 2 mon".parse::<CronSchedule>().is_ok());
    }

    #[test]
    fn crontab_monday_is_monday() {
        assert_eq!(weekdays("0 8 * * 1"), [Weekday::Mon]);
        assert_eq!(
            next("0 8 * * 1", "2026-11-25 09:00").weekday(),
            Weekday::Mon
        );
    }

    #[test]
    fn crontab_zero_and_seven_are_sunday() {
        assert_eq!(weekdays("0 8 * * 0"), [Weekday::Sun]);
        assert_eq!(weekdays("0 8 * * 7"), [Weekday::Sun]);
        assert_eq!(weekdays("0 8 * * sun"), [Weekday::Sun]);
    }

    #[test]
    fn six_field_form_also_numbers_days_like_crontab() {
        assert_eq!(weekdays("0 0 8 * * 1"), [Weekday::Mon]);
        assert_eq!(weekdays("0 0 8 * * 0 *"), [Weekday::Sun]);
    }

    #[test]
    fn ranges_lists_and_steps() {
        use Weekday::*;
        assert_eq!(weekdays("0 8 * * 1-5"), [Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(weekdays("0 8 * * mon-fri"), [Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(weekdays("0 8 * * 5-7"), [Sun, Fri, Sat]);
        assert_eq!(weekdays("0 8 * * */2"), [Sun, Tue, Thu, Sat]);
        assert_eq!(weekdays("0 8 * * 1-5/2"), [Mon, Wed, Fri]);
        assert_eq!(weekdays("0 8 * * 0,3,Saturday"), [Sun, Wed, Sat]);
    }

    #[test]
    fn every_minute_and_daily_slots() {
        assert_eq!(
            next("* * * * *", "2026-11-25 09:00").to_string(),
            "2026-11-25 09:01:00"
        );
        assert_eq!(
            next("0 8 * * *", "2026-11-25 08:00").to_string(),
            "2026-11-26 08:00:00"
        );
        assert_eq!(
            next("@daily", "2026-11-25 08:00").to_string(),
            "2026-11-26 00:00:00"
        );
    }

    #[test]
    fn latest_before_looks_back() {
        let schedule: CronSchedule = "0 8 * * *".parse().unwrap();
        let at = |text| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            schedule.latest_before(at("2026-11-25 09:00")),
            Some(at("2026-11-25 08:00"))
        );
        assert_eq!(
            schedule.latest_before(at("2026-11-25 08:00")),
            Some(at("2026-11-24 08:00"))
        );
    }

    #[test]
    fn restricted_day_of_month_or_week_fires_on_either() {
        // 2026-11-26 is a Thursday; the 1st of December is a Tuesday.
        assert_eq!(
            next("0 8 1 * thu", "2026-11-25 09:00").to_string(),
            "2026-11-26 08:00:00"
        );
        assert_eq!(
            next("0 8 1 * thu", "2026-11-26 09:00").to_string(),
            "2026-12-01 08:00:00"
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let err = |expression: &str| expression.parse::<CronSchedule>().unwrap_err().to_string();
        assert!(err("0 8 * *").contains("it has 4 fields"));
        assert!(err("0 8 * * 8").contains("day of week `8`"));
        assert!(err("0 8 * * funday").contains("`funday` in day of week"));
        assert!(err("0 25 * * *").starts_with("invalid cron expression `0 25 * * *`"));
        assert!(err("@sometimes").contains("@sometimes"));
        assert!(err("0 8 * * 5-2").contains("runs backwards"));
    }
}
