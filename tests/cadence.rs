//! Runs far apart and `plan`: a once-a-day cron starves nobody, and the
//! forecast of `plan` is what the runs then do.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use crate::run::{
    Row, assert_one_a_day, config, list_csv, local_date, outbox, rfc3339, run_at, steps_by_address,
    utc, write_sequence,
};
use crate::support::Project;

const FIVE_ZONES: [Tz; 5] = [
    chrono_tz::America::New_York,
    chrono_tz::America::Los_Angeles,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Tokyo,
    chrono_tz::Australia::Sydney,
];

/// Regression: `dripline run` from a once-a-day cron at 09:30 UTC never
/// mailed a subscriber in New York again: each run was 20.5 hours after
/// the 08:00 slot, beyond `catch_up` (12h). Now each of five zones (New
/// York and Los Angeles 20.5h and 17.5h after their slot, Sydney 12.5h,
/// Berlin and Tokyo within 12h) gets one email every local day, and
/// `run`, `status` and `plan` say the runs are too far apart.
#[test]
fn a_once_a_day_cron_at_0930_utc_gives_five_zones_one_email_a_day() {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("course", "list.csv")]));
    write_sequence(&project, "course", 10);
    let rows: Vec<Row> = FIVE_ZONES
        .iter()
        .enumerate()
        .map(|(i, zone)| Row {
            email: format!("z{i}@example.com"),
            zone: *zone,
            joined: None,
        })
        .collect();
    project.write("list.csv", list_csv(&rows));
    let zone_of: HashMap<String, Tz> = rows.iter().map(|r| (r.email.clone(), r.zone)).collect();

    let first = utc("2026-12-01T09:30:00Z");
    for day in 0..10 {
        let run = run_at(&project, first + Duration::days(day));
        if day >= 1 {
            assert!(
                run.stderr.contains("warning: the runs are too far apart: about 24h between runs, more than catch_up (12h)"),
                "day {day}: {}",
                run.stderr
            );
        }
    }
    let mails = outbox(&project);
    assert_one_a_day(&mails, &zone_of);
    let by_address = steps_by_address(&mails);
    for row in &rows {
        let got = &by_address[&row.email];
        assert_eq!(got.len(), 10, "{} ({}) got {got:?}", row.email, row.zone);
        for pair in got.windows(2) {
            assert_eq!(
                local_date(pair[1].date, row.zone),
                local_date(pair[0].date, row.zone)
                    .succ_opt()
                    .expect("a day"),
                "{} ({}): one email every local day",
                row.email,
                row.zone
            );
        }
    }

    // Between two runs, `status` names who waits for the next one (New
    // York and Los Angeles, whose slot passed more than 12h ago) and why.
    let project = Project::empty();
    project.write("dripline.toml", config(&[("course", "list.csv")]));
    write_sequence(&project, "course", 10);
    project.write("list.csv", list_csv(&rows));
    for day in 0..3 {
        run_at(&project, first + Duration::days(day));
    }
    let status = project.dripline(&["status", "--json", "--now", "2026-12-04T09:00:00Z"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON");
    let overdue: Vec<&str> = status["overdue"]
        .as_array()
        .expect("overdue")
        .iter()
        .map(|o| o["email"].as_str().expect("an email"))
        .collect();
    assert_eq!(overdue, ["z0@example.com", "z1@example.com"]);
    assert!(
        status["runs_warning"]
            .as_str()
            .is_some_and(|w| w.contains("run dripline more often")),
        "{status}"
    );
    let plan = project.dripline(&["plan", "--now", "2026-12-04T09:00:00Z"]);
    assert!(
        plan.stdout.contains(
            "assuming a run every 1day like the last ones, the next at 2026-12-04 09:30 UTC"
        ) && plan.stdout.contains("warning: the runs are too far apart"),
        "{}",
        plan.stdout
    );
    // And it promises the next run, not a slot no run reaches.
    let z0 = plan
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("z0@example.com"))
        .unwrap_or_default();
    assert!(
        z0.contains("course step 4/10") && z0.ends_with("2026-12-04 04:30 America/New_York"),
        "{}",
        plan.stdout
    );
}

/// A generated project: subscribers in several zones on one or two lists
/// feeding two sequences with different `send_at` slots.
#[derive(Debug, Clone)]
struct Case {
    people: Vec<(usize, u8, bool)>,
    send_at: [&'static str; 2],
    first_step: [&'static str; 2],
    every_hours: i64,
    warm_up: usize,
    /// How far between the last run and the next one `plan` looks ahead
    /// from, in thousandths of the gap.
    plan_at: i64,
}

fn case() -> impl Strategy<Value = Case> {
    let slots = prop::sample::select(vec![
        "0 8 * * *",
        "30 6 * * 1-5",
        "0 18 * * *",
        "0 7,19 * * *",
        "15 23 * * *",
    ]);
    let first = prop::sample::select(vec!["immediately", "next-slot"]);
    (
        prop::collection::vec((0..FIVE_ZONES.len(), 1u8..=3, any::<bool>()), 2..7),
        [slots.clone(), slots],
        [first.clone(), first],
        prop::sample::select(vec![24i64, 13, 8, 30]),
        2usize..=3,
        1i64..=1000,
    )
        .prop_map(
            |(people, send_at, first_step, every_hours, warm_up, plan_at)| Case {
                people,
                send_at,
                first_step,
                every_hours,
                warm_up,
                plan_at,
            },
        )
}

fn write_case(project: &Project, case: &Case) {
    project.write(
        "dripline.toml",
        config(&[("alpha", "a.csv"), ("beta", "b.csv")]),
    );
    for (index, id) in ["alpha", "beta"].iter().enumerate() {
        project.write(
            &format!("sequences/{id}/sequence.toml"),
            format!(
                "name = \"{id}\"\nsend_at = \"{}\"\nfirst_step = \"{}\"\n",
                case.send_at[index], case.first_step[index]
            ),
        );
        for number in 1..=6 {
            let wait = if number == 1 { 0 } else { 1 + number % 2 };
            project.write(
                &format!("sequences/{id}/{number:02}-s{number}.md"),
                format!(
                    "+++\nsubject = \"{id} {number}\"\nwait_days = {wait}\n+++\nEmail {number}.\n"
                ),
            );
        }
    }
    let mut lists = [Vec::new(), Vec::new()];
    for (index, (zone, lists_mask, joined_earlier)) in case.people.iter().enumerate() {
        let row = Row {
            email: format!("p{index}@example.com"),
            zone: FIVE_ZONES[*zone],
            joined: joined_earlier.then(|| utc("2026-11-30T00:00:00Z")),
        };
        for (bit, list) in lists.iter_mut().enumerate() {
            if lists_mask & (1 << bit) != 0 {
                list.push(Row {
                    email: row.email.clone(),
                    zone: row.zone,
                    joined: row.joined,
                });
            }
        }
    }
    project.write("a.csv", list_csv(&lists[0]));
    project.write("b.csv", list_csv(&lists[1]));
}

/// (address, sequence, step id, time): what went out, or what plan said.
type Sent = (String, String, String, DateTime<Utc>);

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// `plan` applies the rules `run` applies: after a few runs at a steady
    /// rhythm, its 14-day forecast from any moment before the next run is
    /// exactly what the following runs at that rhythm send, email for
    /// email and time for time, with one subscriber in two sequences,
    /// several zones and slots, and runs near or far apart for catch_up.
    #[test]
    fn plan_forecasts_exactly_what_the_runs_then_send(case in case()) {
        let project = Project::empty();
        write_case(&project, &case);
        let every = Duration::hours(case.every_hours);
        let mut now = utc("2026-12-01T09:30:00Z");
        for _ in 0..case.warm_up {
            run_at(&project, now);
            now += every;
        }
        let before = outbox(&project).len();
        // Between the last run (exclusive) and the next one (inclusive).
        let from = now - Duration::minutes((case.every_hours * 60 - 1) * (1000 - case.plan_at) / 1000);
        let plan = project.dripline(&["plan", "--json", "--days", "14", "--now", &rfc3339(from)]);
        prop_assert_eq!(plan.code, 0, "{}", plan.stderr);
        let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan --json");
        let mut planned: Vec<Sent> = plan["emails"]
            .as_array()
            .expect("emails")
            .iter()
            .map(|email| {
                (
                    email["email"].as_str().expect("email").to_owned(),
                    email["sequence"].as_str().expect("sequence").to_owned(),
                    email["step_id"].as_str().expect("step").to_owned(),
                    utc(email["at"].as_str().expect("at")),
                )
            })
            .collect();
        let end = from + Duration::days(14);
        while now <= end {
            run_at(&project, now);
            now += every;
        }
        let mut sent: Vec<Sent> = outbox(&project)
            .into_iter()
            .filter(|mail| mail.date <= end)
            .map(|mail| (mail.to, mail.sequence, mail.step, mail.date))
            .collect();
        sent.sort_by(|a, b| (a.3, &a.0, &a.1).cmp(&(b.3, &b.0, &b.1)));
        let sent: Vec<Sent> = sent.split_off(before.min(sent.len()));
        planned.sort_by(|a, b| (a.3, &a.0, &a.1).cmp(&(b.3, &b.0, &b.1)));
        prop_assert!(!sent.is_empty(), "the runs sent something to compare");
        prop_assert_eq!(planned, sent);
    }
}
