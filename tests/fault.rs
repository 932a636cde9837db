//! Several instances, one PostgreSQL, killed at random: three `dripline
//! run` processes start together at every simulated tick (`--now`), on
//! one database, against the scripted SMTP server; at most ticks one of
//! them is SIGKILLed at a random moment and started again. Between
//! ticks some subscribers unsubscribe; some addresses bounce at RCPT.
//! Afterwards, from what the server accepted and what the state says:
//! nobody is missing a step; a step reaches nobody twice except as a
//! resend, with the same Message-ID, of an email in flight at a kill;
//! nobody gets two emails on one local day; nothing reaches an address
//! after it was suppressed; the day quota holds; nothing is left claimed.
//!
//! Scale: the issue asks for 10,000 subscribers; this test uses 1,500
//! (1,500 × 3 steps + 500 × 2 steps = 5,500 emails, 9 simulated days,
//! 18 ticks, 54 processes plus the restarts) to stay near 30 s on a
//! 2-core machine. The shape does not depend on the count: every batch
//! of every tick is raced for by three instances, and the server takes
//! 4 ms to answer each message, so kills land while emails are in flight.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::postgres;
use crate::smtp::server::{Action, Options, Server, Stage};
use crate::support::Project;

const PEOPLE: usize = 1500;
const DAYS: u32 = 9;
const MAX_PER_DAY: usize = 1400;
const ZONES: [Tz; 3] = [
    chrono_tz::UTC,
    chrono_tz::Asia::Tokyo,
    chrono_tz::America::New_York,
];
const URL_ENV: &str = "DRIPLINE_DATABASE_URL";

fn address(n: usize) -> String {
    format!("p{n}@example.org")
}

fn zone(n: usize) -> Tz {
    ZONES[n % ZONES.len()]
}

/// Every 97th address does not exist: the server rejects it at RCPT.
fn bounces(n: usize) -> bool {
    n % 97 == 5
}

fn project(smtp_port: u16) -> Project {
    let project = Project::empty();
    let mut all = String::from("email,name,timezone\n");
    let mut some = all.clone();
    for n in 0..PEOPLE {
        let row = format!("{},Person {n},{}\n", address(n), zone(n).name());
        all.push_str(&row);
        if n % 3 == 0 {
            some.push_str(&row);
        }
    }
    project
        .write(
            "dripline.toml",
            format!(
                "timezone = \"UTC\"\n\n[sender]\nfrom = \"Coach <coach@coaching-demo.net>\"\n\n\
                 [[drip]]\nsequence = \"course\"\nlist = \"all.csv\"\n\n\
                 [[drip]]\nsequence = \"extra\"\nlist = \"some.csv\"\n\n\
                 [delivery]\ntransport = \"smtp\"\nconcurrency = 4\nmax_per_second = 0\n\
                 max_per_day = {MAX_PER_DAY}\n\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\ntimeout = \"10s\"\n\n\
                 [unsubscribe]\nbase_url = \"https://news.example.com/dripline\"\n\n\
                 [state]\nurl_env = \"{URL_ENV}\"\ninstance_timeout = \"1s\"\n"
            ),
        )
        .write("all.csv", all)
        .write("some.csv", some)
        .write(".dripline-secret", format!("{}\n", "ef".repeat(32)));
    for (id, steps) in [("course", 3), ("extra", 2)] {
        project.write(
            &format!("sequences/{id}/sequence.toml"),
            format!("name = \"{id}\"\nsend_at = \"0 8 * * *\"\n"),
        );
        for number in 1..=steps {
            let wait = if number == 1 { 0 } else { 1 };
            project.write(
                &format!("sequences/{id}/{number:02}-s{number}.md"),
                format!(
                    "+++\nsubject = \"{id} {number}\"\nwait_days = {wait}\n+++\nEmail {number}.\n"
                ),
            );
        }
    }
    project
}

/// A small deterministic generator: the same kills on every run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn spawn(project: &Project, url: &str, now: DateTime<Utc>) -> Child {
    let now = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    project
        .command(&["run", "--now", &now])
        .env(URL_ENV, url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dripline run")
}

/// Waits for a run that was not killed; it must have worked (exit 4 is a
/// bounce).
fn finish(child: Child, now: DateTime<Utc>) {
    let output = child.wait_with_output().expect("a run ends");
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 4)),
        "run at {now} exited {code:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One email the server accepted.
struct Accepted {
    to: String,
    message_id: String,
    date: DateTime<Utc>,
}

fn accepted(server: &Server) -> Vec<Accepted> {
    server
        .accepted()
        .iter()
        .map(|received| {
            let message = mail_parser::MessageParser::default()
                .parse_headers(&received.data)
                .expect("a message");
            Accepted {
                to: received.to.to_lowercase(),
                message_id: message.message_id().expect("a Message-ID").to_owned(),
                date: DateTime::from_timestamp(message.date().expect("a Date").to_timestamp(), 0)
                    .expect("a valid Date"),
            }
        })
        .collect()
}

#[test]
fn three_instances_killed_at_random_lose_nothing_and_double_only_what_was_in_flight() {
    let url = postgres::database();
    let server = Server::start(Options::with(|stage, to, _| {
        let n: usize = to
            .trim_start_matches('p')
            .split('@')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if stage == Stage::Rcpt && bounces(n) {
            Action::Reply("550 5.1.1 no such user")
        } else if stage == Stage::DataEnd {
            Action::AcceptSlowly(Duration::from_millis(4))
        } else {
            Action::Accept
        }
    }));
    let project = project(server.port);
    let mut dice = Dice(11);
    let mut kills = 0;
    let mut unsubscribed: HashMap<String, DateTime<Utc>> = HashMap::new();
    // At 00:00 and 12:00 UTC: each zone's 08:00 slot is followed by a
    // tick within the 12-hour catch-up window.
    let ticks: Vec<DateTime<Utc>> = (0..DAYS * 2)
        .map(|n| {
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
                + chrono::Duration::hours(12 * i64::from(n))
        })
        .collect();
    let quiet = ticks.len() - 2;
    for (index, &now) in ticks.iter().enumerate() {
        let mut runs: Vec<Child> = (0..3).map(|_| spawn(&project, &url, now)).collect();
        if index < quiet && dice.below(10) < 9 {
            std::thread::sleep(Duration::from_millis(200 + dice.below(900)));
            let victim = dice.below(3) as usize;
            if runs[victim].try_wait().expect("poll a run").is_none() {
                runs[victim].kill().expect("SIGKILL");
                runs[victim].wait().expect("the killed run ends");
                kills += 1;
            }
            runs[victim] = spawn(&project, &url, now);
        }
        for run in runs {
            finish(run, now);
        }
        if index < quiet && index % 3 == 2 {
            let n = 3 * (index * 31 % (PEOPLE / 3)) + 1;
            let run = project.dripline_with(&["unsubscribe", &address(n)], &[(URL_ENV, &url)]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            unsubscribed.entry(address(n)).or_insert(now);
        }
        if index == quiet - 1 {
            // The last instance killed is silent for good after this.
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    assert!(kills >= 5, "only {kills} kills");
    let mails = accepted(&server);

    // Repeats: the same Message-ID only, and at most a batch per kill.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut first: Vec<&Accepted> = Vec::new();
    for mail in &mails {
        if seen.insert(&mail.message_id) {
            first.push(mail);
        }
    }
    let repeats = mails.len() - first.len();
    assert!(repeats <= kills * 64, "{repeats} repeats for {kills} kills");
    let mut steps: HashMap<(&str, String), &str> = HashMap::new();
    for mail in &first {
        let mut parts = mail.message_id.splitn(3, '.');
        let step = format!(
            "{}.{}",
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        );
        let before = steps.insert((&mail.to, step.clone()), &mail.message_id);
        assert!(
            before.is_none(),
            "{} got {step} under two Message-IDs",
            mail.to
        );
    }

    // One a day, in the subscriber's zone, counting each email once.
    let zone_of: HashMap<String, Tz> = (0..PEOPLE).map(|n| (address(n), zone(n))).collect();
    let mut days: HashMap<(&str, NaiveDate), usize> = HashMap::new();
    for mail in &first {
        let day = mail.date.with_timezone(&zone_of[&mail.to]).date_naive();
        let count = days.entry((&mail.to, day)).or_default();
        *count += 1;
        assert_eq!(*count, 1, "{} got two emails on {day}", mail.to);
    }

    // Nothing after a suppression (an unsubscribe comes after its tick's
    // runs ended); nothing at all to bouncing addresses.
    for mail in &mails {
        if let Some(at) = unsubscribed.get(&mail.to) {
            assert!(
                mail.date <= *at,
                "{} got {} after unsubscribing",
                mail.to,
                mail.message_id
            );
        }
    }
    assert!(mails.iter().all(|mail| {
        let n: usize = mail.to[1..]
            .split('@')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        !bounces(n)
    }));

    // The day quota, over every 24 hours ending at a tick.
    for &end in &ticks {
        let window = first
            .iter()
            .filter(|mail| mail.date > end - chrono::Duration::days(1) && mail.date <= end)
            .count();
        assert!(
            window <= MAX_PER_DAY,
            "{window} emails in the 24 hours to {end}"
        );
    }

    // Nobody missing: every address that stayed subscribed has every step.
    let mut got: BTreeMap<&str, usize> = BTreeMap::new();
    for mail in &first {
        *got.entry(&mail.to).or_default() += 1;
    }
    for n in 0..PEOPLE {
        let to = address(n);
        if bounces(n) || unsubscribed.contains_key(&to) {
            continue;
        }
        let expected = if n % 3 == 0 { 5 } else { 3 };
        assert_eq!(
            got.get(to.as_str()).copied().unwrap_or(0),
            expected,
            "{to} is missing a step"
        );
    }

    // The state agrees: nothing is left claimed or waiting, except emails
    // that were in flight when their subscriber unsubscribed (a claim never
    // goes to a suppressed address, a takeover included); every killed
    // instance is silent.
    let state = |args: &[&str]| -> serde_json::Value {
        let run = project.dripline_with(args, &[(URL_ENV, &url)]);
        serde_json::from_str(&run.stdout).expect("status JSON")
    };
    let status = state(&["status", "--json"]);
    let instances = status["instances"].as_array().expect("instances");
    assert!(instances.len() <= kills, "{status:#}");
    assert!(instances.iter().all(|i| i["alive"] == false), "{status:#}");
    let in_flight: u64 = instances
        .iter()
        .map(|i| i["in_flight"].as_u64().unwrap_or(0))
        .sum();
    let pending: u64 = status["sequences"]
        .as_array()
        .expect("sequences")
        .iter()
        .flat_map(|sequence| sequence["steps"].as_array().expect("steps"))
        .map(|step| step["pending"].as_u64().expect("pending"))
        .sum();
    let mut left_for_unsubscribed = 0;
    for to in unsubscribed.keys() {
        let one = state(&["status", "--subscriber", to, "--json"]);
        left_for_unsubscribed += one["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .filter(|delivery| delivery["status"] == "claimed")
            .count() as u64;
    }
    assert_eq!(
        (pending, in_flight),
        (left_for_unsubscribed, left_for_unsubscribed),
        "{status:#}"
    );
    eprintln!(
        "{} accepted, {repeats} repeats after {kills} kills, {} unsubscribed",
        mails.len(),
        unsubscribed.len()
    );
}
