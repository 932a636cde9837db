//! `dripline run` end to end: days simulated with `--now`, downtime, a
//! crash in the middle of a run, two runs at once, bad list rows, and the
//! commands around a run (`--dry-run`, `plan`, `status`, `unsubscribe`).
//!
//! Results are read the way a user would: from the .eml files in the
//! outbox (headers parsed with mail-parser) and `dripline status --json`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::support::{Project, Run};

const ZONES: [Tz; 3] = [
    chrono_tz::America::New_York,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Tokyo,
];

/// A config with one drip per `(sequence, list)`, the outbox transport and
/// a mailto unsubscribe method.
pub(crate) fn config(drips: &[(&str, &str)]) -> String {
    let mut text = String::from(
        "timezone = \"America/New_York\"\n\n[sender]\nfrom = \"Coach <coach@example.com>\"\n",
    );
    for (sequence, list) in drips {
        text.push_str(&format!(
            "\n[[drip]]\nsequence = \"{sequence}\"\nlist = \"{list}\"\n"
        ));
    }
    text.push_str(
        "\n[delivery]\ntransport = \"outbox\"\noutbox_dir = \"outbox\"\n\n[unsubscribe]\nmailto = \"unsubscribe@example.com\"\n",
    );
    text
}

/// Writes a sequence of `steps` short emails with ids `s1`, `s2`, ...:
/// slots at 08:00 local, step 1 immediately, then one a day.
pub(crate) fn write_sequence(project: &Project, id: &str, steps: usize) {
    project.write(
        &format!("sequences/{id}/sequence.toml"),
        format!(
            "name = \"Sequence {id}\"\nsend_at = \"0 8 * * *\"\nfirst_step = \"immediately\"\n"
        ),
    );
    for number in 1..=steps {
        let wait = if number == 1 { 0 } else { 1 };
        project.write(
            &format!("sequences/{id}/{number:02}-s{number}.md"),
            format!(
                "+++\nsubject = \"{id} {number}\"\nwait_days = {wait}\n+++\nHi {{{{subscriber.first_name}}}},\n\nThis is email {number} of {id}.\n"
            ),
        );
    }
}

/// A list row.
pub(crate) struct Row {
    pub(crate) email: String,
    pub(crate) zone: Tz,
    pub(crate) joined: Option<DateTime<Utc>>,
}

pub(crate) fn list_csv<'a>(rows: impl IntoIterator<Item = &'a Row>) -> String {
    let mut text = String::from("email,name,timezone,subscribed_at\n");
    for row in rows {
        let joined = row
            .joined
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        text.push_str(&format!(
            "{},Reader {},{},{joined}\n",
            row.email,
            row.email.split('@').next().unwrap_or_default(),
            row.zone.name()
        ));
    }
    text
}

/// One email found in the outbox.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) file: String,
    pub(crate) message_id: String,
    pub(crate) to: String,
    pub(crate) date: DateTime<Utc>,
    pub(crate) subject: String,
    pub(crate) sequence: String,
    pub(crate) step: String,
}

/// Every .eml file in the project's outbox, parsed, sorted by file name.
pub(crate) fn outbox(project: &Project) -> Vec<Mail> {
    let Ok(entries) = fs::read_dir(project.path("outbox")) else {
        return Vec::new();
    };
    let mut mails: Vec<Mail> = entries
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            (file.ends_with(".eml") && !file.starts_with('.')).then_some((file, entry.path()))
        })
        .map(|(file, path)| {
            let bytes = fs::read(&path).expect("read an .eml file");
            let message = mail_parser::MessageParser::default()
                .parse_headers(&bytes)
                .unwrap_or_else(|| panic!("{file} parses"));
            let message_id = message.message_id().expect("a Message-ID").to_owned();
            let mut parts = message_id.splitn(3, '.');
            let sequence = parts.next().unwrap_or_default().to_owned();
            let step = parts.next().unwrap_or_default().to_owned();
            let date = message.date().expect("a Date").to_timestamp();
            Mail {
                message_id,
                to: message
                    .to()
                    .and_then(|to| to.first())
                    .and_then(|addr| addr.address())
                    .expect("a To address")
                    .to_lowercase(),
                date: DateTime::from_timestamp(date, 0).expect("a valid Date"),
                subject: message.subject().unwrap_or_default().to_owned(),
                sequence,
                step,
                file,
            }
        })
        .collect();
    mails.sort_by(|a, b| a.file.cmp(&b.file));
    mails
}

/// The number of .eml files in the outbox, cheaply.
fn outbox_count(project: &Project) -> usize {
    fs::read_dir(project.path("outbox")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".eml"))
            .count()
    })
}

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn run_at(project: &Project, now: DateTime<Utc>) -> Run {
    let run = project.dripline(&["run", "--now", &rfc3339(now)]);
    assert_eq!(run.code, 0, "run at {now}: {}{}", run.stdout, run.stderr);
    run
}

pub(crate) fn status_json(project: &Project) -> serde_json::Value {
    let run = project.dripline(&["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("status --json is JSON")
}

/// Sent counts per step of one sequence, from `status --json`.
fn sent_counts(status: &serde_json::Value, sequence: &str) -> Vec<u64> {
    status["sequences"]
        .as_array()
        .expect("sequences")
        .iter()
        .find(|s| s["id"] == sequence)
        .unwrap_or_else(|| panic!("sequence {sequence} in status"))["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["sent"].as_u64().expect("a count"))
        .collect()
}

pub(crate) fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a test time")
        .with_timezone(&Utc)
}

pub(crate) fn local_date(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

fn local_time(at: DateTime<Utc>, zone: Tz) -> NaiveTime {
    at.with_timezone(&zone).time()
}

fn eight() -> NaiveTime {
    NaiveTime::from_hms_opt(8, 0, 0).expect("08:00")
}

/// No address gets two emails on one of its local days, whatever the sequence.
pub(crate) fn assert_one_a_day(mails: &[Mail], zone_of: &HashMap<String, Tz>) {
    let mut days: HashMap<(String, NaiveDate), Vec<&str>> = HashMap::new();
    for mail in mails {
        let zone = zone_of[&mail.to];
        days.entry((mail.to.clone(), local_date(mail.date, zone)))
            .or_default()
            .push(&mail.file);
    }
    for ((to, day), files) in days {
        assert_eq!(files.len(), 1, "{to} got {files:?} on {day}");
    }
}

/// Each step of each sequence reaches each address at most once, in file
/// order; returns what each address got, in order of sending.
pub(crate) fn steps_by_address(mails: &[Mail]) -> BTreeMap<String, Vec<Mail>> {
    let mut by_address: BTreeMap<String, Vec<Mail>> = BTreeMap::new();
    for mail in mails {
        by_address
            .entry(mail.to.clone())
            .or_default()
            .push(mail.clone());
    }
    for (to, got) in &mut by_address {
        got.sort_by_key(|mail| mail.date);
        let mut seen = BTreeSet::new();
        for mail in got.iter() {
            assert!(
                seen.insert((mail.sequence.clone(), mail.step.clone())),
                "{to} got {}/{} twice",
                mail.sequence,
                mail.step
            );
        }
        let mut last: HashMap<&str, (u32, DateTime<Utc>)> = HashMap::new();
        for mail in got.iter() {
            let number: u32 = mail.step.trim_start_matches('s').parse().expect("sN");
            if let Some((previous, at)) = last.get(mail.sequence.as_str()) {
                assert!(
                    number == previous + 1 && mail.date > *at,
                    "{to}: {}/{} came after step {previous} at {at}",
                    mail.sequence,
                    mail.step
                );
            } else {
                assert_eq!(number, 1, "{to}: {} began at {}", mail.sequence, mail.step);
            }
            last.insert(mail.sequence.as_str(), (number, mail.date));
        }
    }
    by_address
}

/// The first hourly run at or after `at`, for runs at whole UTC hours.
fn first_run_at_or_after(at: DateTime<Utc>) -> DateTime<Utc> {
    let hour = at.timestamp().div_euclid(3600) * 3600;
    let floor = DateTime::from_timestamp(hour, 0).expect("an hour");
    if floor == at {
        floor
    } else {
        floor + Duration::hours(1)
    }
}

/// Ten days of hourly runs for 300 subscribers in three zones (New York
/// crosses the end of DST on 2026-11-01), joining over two days, fed to two
/// sequences by one list; some leave the list for a day and a half and come
/// back, some unsubscribe by hand.
#[test]
fn ten_days_of_hourly_runs_deliver_every_step_once_at_its_slot() {
    const PEOPLE: usize = 300;
    let start = utc("2026-10-28T00:00:00Z");
    let (leave, back) = (start + Duration::hours(84), start + Duration::hours(120));
    let unsubscribe_at = start + Duration::hours(72);

    let project = Project::empty();
    project.write(
        "dripline.toml",
        config(&[("alpha", "list.csv"), ("beta", "list.csv")]),
    );
    write_sequence(&project, "alpha", 3);
    write_sequence(&project, "beta", 2);
    let rows: Vec<Row> = (0..PEOPLE)
        .map(|i| Row {
            email: format!("p{i}@example.com"),
            zone: ZONES[i % 3],
            // Spread over the first two days, at odd minutes.
            joined: Some(start + Duration::minutes(((i * 557) % (48 * 60)) as i64)),
        })
        .collect();
    let leaves = |i: usize| i % 10 == 1;
    let unsubscribes = |i: usize| i % 20 == 2;
    let zone_of: HashMap<String, Tz> = rows.iter().map(|r| (r.email.clone(), r.zone)).collect();

    for hour in 0..240 {
        let now = start + Duration::hours(hour);
        let on_list = rows.iter().enumerate().filter(|(i, row)| {
            row.joined.is_some_and(|at| at <= now) && !(leaves(*i) && now >= leave && now < back)
        });
        project.write("list.csv", list_csv(on_list.map(|(_, row)| row)));
        run_at(&project, now);
        if now == unsubscribe_at {
            for (i, row) in rows.iter().enumerate().filter(|(i, _)| unsubscribes(*i)) {
                // Any letter case names the same subscriber.
                let address = if i % 2 == 0 {
                    row.email.to_uppercase()
                } else {
                    row.email.clone()
                };
                let run = project.dripline(&["unsubscribe", &address]);
                assert_eq!(run.code, 0, "{}", run.stderr);
            }
        }
    }

    let mails = outbox(&project);
    assert!(
        mails.iter().all(|mail| !mail.file.ends_with("-2.eml")),
        "nothing is written twice"
    );
    assert_one_a_day(&mails, &zone_of);
    let by_address = steps_by_address(&mails);
    let everything = ["alpha/s1", "alpha/s2", "alpha/s3", "beta/s1", "beta/s2"];
    for (i, row) in rows.iter().enumerate() {
        let got = by_address.get(&row.email).map_or(&[][..], Vec::as_slice);
        let names: Vec<String> = got
            .iter()
            .map(|m| format!("{}/{}", m.sequence, m.step))
            .collect();
        let joined = row.joined.expect("a join time");
        if unsubscribes(i) {
            assert!(
                !got.is_empty() && got.len() < everything.len(),
                "{}: {names:?}",
                row.email
            );
            assert!(
                got.iter().all(|m| m.date <= unsubscribe_at),
                "{} got email after unsubscribing: {names:?}",
                row.email
            );
        } else {
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(sorted, everything, "{} got {names:?}", row.email);
        }
        if leaves(i) {
            assert!(
                got.iter().all(|m| m.date < leave || m.date >= back),
                "{} got email while off the list: {names:?}",
                row.email
            );
            assert!(
                got.iter().any(|m| m.date < leave),
                "{} began before leaving",
                row.email
            );
        }
        for mail in got {
            let local = local_time(mail.date, row.zone);
            let at_enrollment = mail.sequence == "alpha"
                && mail.step == "s1"
                && mail.date == first_run_at_or_after(joined);
            // Back on the list: the missed slot is caught up within catch_up (12h).
            let caught_up = leaves(i)
                && mail.date == back
                && local >= eight()
                && local <= NaiveTime::from_hms_opt(20, 0, 0).expect("20:00");
            assert!(
                local == eight() || at_enrollment || caught_up,
                "{} got {}/{} at {} local",
                row.email,
                mail.sequence,
                mail.step,
                mail.date.with_timezone(&row.zone)
            );
        }
    }
    // New York's 08:00 moved from 12:00 to 13:00 UTC with the DST change.
    let new_york: Vec<&Mail> = mails
        .iter()
        .filter(|m| zone_of[&m.to] == ZONES[0] && local_time(m.date, ZONES[0]) == eight())
        .collect();
    assert!(
        new_york
            .iter()
            .any(|m| m.date < utc("2026-11-01T06:00:00Z"))
    );
    assert!(
        new_york
            .iter()
            .any(|m| m.date > utc("2026-11-01T06:00:00Z"))
    );

    let status = status_json(&project);
    for sequence in ["alpha", "beta"] {
        let in_outbox: Vec<u64> = (1..=sent_counts(&status, sequence).len())
            .map(|n| {
                let step = format!("s{n}");
                mails
                    .iter()
                    .filter(|m| m.sequence == sequence && m.step == step)
                    .count() as u64
            })
            .collect();
        assert_eq!(sent_counts(&status, sequence), in_outbox, "{sequence}");
    }
    let total: u64 = ["alpha", "beta"]
        .iter()
        .flat_map(|s| sent_counts(&status, s))
        .sum();
    assert_eq!(total as usize, mails.len());
    assert_eq!(status["failures"].as_array().map(Vec::len), Some(0));
    assert_eq!(status["suppressed"].as_array().map(Vec::len), Some(15));
}

/// The machine is down for three days: when runs resume, nobody gets the
/// missed emails in a burst, and an email whose slot passed more than
/// `catch_up` (12h) ago waits for the next slot.
#[test]
fn after_three_days_of_downtime_the_course_resumes_one_day_at_a_time() {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("course", "list.csv")]));
    write_sequence(&project, "course", 5);
    let rows: Vec<Row> = (0..30)
        .map(|i| Row {
            email: format!("r{i}@example.com"),
            zone: ZONES[i % 3],
            joined: None,
        })
        .collect();
    project.write("list.csv", list_csv(&rows));
    let zone_of: HashMap<String, Tz> = rows.iter().map(|r| (r.email.clone(), r.zone)).collect();

    let start = utc("2026-12-01T00:00:00Z");
    let last_before = utc("2026-12-02T04:00:00Z");
    let mut now = start;
    while now <= last_before {
        run_at(&project, now);
        now += Duration::hours(1);
    }
    let before = outbox(&project).len();

    // Three days later: 23:00 in New York, 05:00 in Berlin, 13:00 in Tokyo.
    let resume = last_before + Duration::days(3);
    assert_eq!(resume, utc("2026-12-05T04:00:00Z"));
    run_at(&project, resume);
    let mails = outbox(&project);
    let at_resume: Vec<&Mail> = mails.iter().filter(|m| m.date == resume).collect();
    assert_eq!(mails.len() - before, at_resume.len());
    assert_eq!(at_resume.len(), 10, "only Tokyo is within 12h of its 08:00");
    assert!(at_resume.iter().all(|m| zone_of[&m.to] == ZONES[2]));

    let end = utc("2026-12-08T08:00:00Z");
    let mut now = resume + Duration::hours(1);
    while now <= end {
        run_at(&project, now);
        now += Duration::hours(1);
    }
    let mails = outbox(&project);
    assert_one_a_day(&mails, &zone_of);
    let by_address = steps_by_address(&mails);
    for row in &rows {
        let got = &by_address[&row.email];
        assert_eq!(got.len(), 5, "{} finished the course", row.email);
        let after: Vec<&Mail> = got.iter().filter(|m| m.date >= resume).collect();
        // Each email after the downtime comes at a local 08:00 (Tokyo's first
        // one at the resume, 5h after its slot), on consecutive local days.
        for mail in &after {
            let local = local_time(mail.date, row.zone);
            assert!(
                local == eight() || (mail.date == resume && row.zone == ZONES[2]),
                "{} got {} at {}",
                row.email,
                mail.step,
                mail.date.with_timezone(&row.zone)
            );
        }
        for pair in after.windows(2) {
            assert_eq!(
                local_date(pair[1].date, row.zone),
                local_date(pair[0].date, row.zone)
                    .succ_opt()
                    .expect("a day"),
                "{}: no gap and no burst after the downtime",
                row.email
            );
        }
    }
    let first_after = |zone: Tz| {
        mails
            .iter()
            .filter(|m| zone_of[&m.to] == zone && m.date >= resume)
            .map(|m| m.date)
            .min()
            .expect("an email after the downtime")
    };
    assert_eq!(first_after(ZONES[0]), utc("2026-12-05T13:00:00Z"));
    assert_eq!(first_after(ZONES[1]), utc("2026-12-05T07:00:00Z"));
}

/// A project where `people` subscribers in Berlin are all due at once.
fn big_project(people: usize, steps: usize) -> Project {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("crash", "list.csv")]));
    write_sequence(&project, "crash", steps);
    let rows: Vec<Row> = (0..people)
        .map(|i| Row {
            email: format!("c{i}@example.com"),
            zone: ZONES[1],
            joined: None,
        })
        .collect();
    project.write("list.csv", list_csv(&rows));
    project
}

fn spawn_run(project: &Project, now: DateTime<Utc>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dripline"))
        .args(["run", "--now", &rfc3339(now)])
        .current_dir(project.path(""))
        .env_remove("DRIPLINE_CONFIG")
        .env_remove("DRIPLINE_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dripline")
}

fn count_step(project: &Project, step: &str) -> usize {
    let prefix = format!("crash.{step}.");
    fs::read_dir(project.path("outbox")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count()
    })
}

/// Kills `dripline run` with SIGKILL in the middle of sending 3,000 emails,
/// at a different point for each step, and runs it again with the same
/// `--now`: nothing due is missing, and the few duplicates are the same
/// message (same Message-ID), no more than one claimed batch.
#[test]
fn a_run_killed_mid_way_resends_at_most_one_batch_and_skips_nothing() {
    const PEOPLE: usize = 3000;
    let project = big_project(PEOPLE, 3);
    let days = [
        ("s1", utc("2026-12-01T10:00:00Z"), 40),
        ("s2", utc("2026-12-02T07:00:00Z"), 1300),
        ("s3", utc("2026-12-03T07:00:00Z"), 2200),
    ];
    for (step, now, kill_after) in days {
        let mut child = spawn_run(&project, now);
        while count_step(&project, step) < kill_after {
            if child.try_wait().expect("poll the run").is_some() {
                break;
            }
            std::thread::sleep(StdDuration::from_millis(1));
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("the killed run ends");
        assert_eq!(
            status.signal(),
            Some(9),
            "{step}: the run was killed mid-way"
        );
        let written = count_step(&project, step);
        assert!(
            written < PEOPLE,
            "{step}: killed before the end ({written})"
        );

        run_at(&project, now);
        let mails: Vec<Mail> = outbox(&project)
            .into_iter()
            .filter(|m| m.step == step)
            .collect();
        let originals: HashMap<String, &Mail> = mails
            .iter()
            .filter(|m| !m.file.contains('-'))
            .map(|m| (m.file.trim_end_matches(".eml").to_owned(), m))
            .collect();
        let recipients: BTreeSet<&str> = mails.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(recipients.len(), PEOPLE, "{step}: everybody got it");
        assert_eq!(originals.len(), PEOPLE, "{step}: one original each");
        let duplicates: Vec<&Mail> = mails.iter().filter(|m| m.file.contains('-')).collect();
        assert!(
            duplicates.len() <= dripline::engine::BATCH,
            "{step}: {} duplicates",
            duplicates.len()
        );
        for duplicate in &duplicates {
            let (stem, copy) = duplicate
                .file
                .trim_end_matches(".eml")
                .rsplit_once('-')
                .expect("a -N copy");
            assert_eq!(copy, "2", "{}: at most one resend", duplicate.file);
            let original = originals[stem];
            assert_eq!(duplicate.message_id, original.message_id);
            assert_eq!(duplicate.to, original.to);
            assert_eq!(duplicate.date, original.date);
            assert_eq!(duplicate.subject, original.subject);
        }
    }
    let status = status_json(&project);
    assert_eq!(sent_counts(&status, "crash"), [3000, 3000, 3000]);
    assert_eq!(status["failures"].as_array().map(Vec::len), Some(0));
    for step in status["sequences"][0]["steps"].as_array().expect("steps") {
        assert_eq!(step["pending"], 0);
    }
}

/// Two runs at once: the second exits at once with code 5 and names the
/// state file; the first finishes, and the state is consistent.
#[test]
fn a_second_run_exits_with_code_5_while_one_is_working() {
    let project = big_project(2000, 1);
    let now = utc("2026-12-01T10:00:00Z");
    let mut first = spawn_run(&project, now);
    while outbox_count(&project) == 0 {
        assert!(
            first.try_wait().expect("poll").is_none(),
            "the first run is still working"
        );
        std::thread::sleep(StdDuration::from_millis(1));
    }
    let second = project.dripline(&["run", "--now", &rfc3339(now)]);
    assert_eq!(second.code, 5, "{}", second.stderr);
    assert!(
        second.stderr.contains("dripline.db") && second.stderr.contains("in use"),
        "{}",
        second.stderr
    );
    assert_eq!(second.stdout, "");
    let finished = first.wait_with_output().expect("the first run ends");
    assert!(finished.status.success(), "{:?}", finished);

    let mails = outbox(&project);
    assert_eq!(mails.len(), 2000);
    assert!(mails.iter().all(|m| !m.file.contains('-')));
    let status = status_json(&project);
    assert_eq!(sent_counts(&status, "crash"), [2000]);
    assert_eq!(status["last_run"]["sent"], 2000);
    // Run again the same hour: nothing more is due.
    let again = run_at(&project, now);
    assert!(again.stdout.contains(" 0 sent"), "{}", again.stdout);
    assert_eq!(outbox_count(&project), 2000);
}

/// Bad rows are reported with the file, line and reason, and the good rows
/// are still served; the run succeeds. `check` reports the same rows.
#[test]
fn bad_list_rows_are_reported_and_the_good_ones_served() {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("demo", "list.csv")]));
    write_sequence(&project, "demo", 2);
    let mut list = b"email,name,timezone,subscribed_at\n\
        good@example.com,Good,Europe/Berlin,\n\
        not-an-address,Bad,,\n\
        zone@example.com,Zone,Mars/Olympus_Mons,\n\
        date@example.com,Date,,last tuesday\n\
        ragged@example.com,Ragged\n\
        bytes@example.com,"
        .to_vec();
    list.extend_from_slice(&[0xc3, 0x28, 0xff]);
    list.extend_from_slice(b",,\nalso-good@example.com,Also Good,Asia/Tokyo,2026-11-30\n");
    project.write("list.csv", &list);

    let run = project.dripline(&["run", "--now", "2026-12-01T10:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The unknown zone is a warning: that row is served in the default zone.
    assert!(
        run.stdout.contains("3 sent") && run.stdout.contains("4 bad list rows"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("list.csv:4: unknown time zone `Mars/Olympus_Mons`"),
        "{}",
        run.stderr
    );
    for (line, reason) in [
        (3, "`not-an-address` is not a valid email address"),
        (5, "subscribed_at `last tuesday` is not a date"),
        (6, "it has 2 values but the header names 4 columns"),
        (7, "the `name` value is not UTF-8 text"),
    ] {
        let expected = format!("list.csv:{line}: skipped: {reason}");
        assert!(
            run.stderr.contains(&expected),
            "no `{expected}` in:\n{}",
            run.stderr
        );
    }
    let mut to: Vec<String> = outbox(&project).into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "also-good@example.com",
            "good@example.com",
            "zone@example.com"
        ]
    );

    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 3, "{}{}", check.stdout, check.stderr);
    for line in [3, 5, 6, 7] {
        assert!(
            check.stderr.contains(&format!("list.csv:{line}: skipped")),
            "line {line} in:\n{}",
            check.stderr
        );
    }

    // A list with only a header is reported, not fatal; an empty one is
    // a list with no header: invalid input.
    project.write("list.csv", "email,name\n");
    let run = project.dripline(&["run", "--now", "2026-12-02T10:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("list.csv: the list has a header but no subscribers"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains(" 0 sent"), "{}", run.stdout);
    project.write("list.csv", "");
    let run = project.dripline(&["run", "--now", "2026-12-02T10:00:00Z"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("list.csv: the list is empty"),
        "{}",
        run.stderr
    );
}

/// `--dry-run` sends and records nothing; `plan` forecasts each next step;
/// `status --json` parses; `unsubscribe` and `resubscribe` round-trip.
#[test]
fn dry_run_plan_status_and_suppression_round_trip() {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("demo", "list.csv")]));
    write_sequence(&project, "demo", 3);
    let rows: Vec<Row> = ["ann", "bob", "cy"]
        .iter()
        .zip(ZONES)
        .map(|(name, zone)| Row {
            email: format!("{name}@example.com"),
            zone,
            joined: None,
        })
        .collect();
    project.write("list.csv", list_csv(&rows));

    let dry = project.dripline(&["run", "--dry-run", "--now", "2026-12-01T10:00:00Z"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(
        dry.stdout.matches("due: demo step 1 (s1) to ").count(),
        3,
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("3 due (dry run, nothing sent)"),
        "{}",
        dry.stdout
    );
    assert_eq!(outbox_count(&project), 0);
    let status = status_json(&project);
    assert_eq!(status["last_run"], serde_json::Value::Null);
    assert_eq!(sent_counts(&status, "demo"), [0, 0, 0]);

    run_at(&project, utc("2026-12-01T10:00:00Z"));
    assert_eq!(outbox_count(&project), 3);
    let plan = project.dripline(&["plan", "--days", "3", "--now", "2026-12-01T11:00:00Z"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    for row in &rows {
        let expected = format!(
            "{:<32} demo step 2/3 {:<28} 2026-12-02 08:00 {}",
            row.email,
            "s2",
            row.zone.name()
        );
        assert!(
            plan.stdout.contains(&expected),
            "no `{expected}` in:\n{}",
            plan.stdout
        );
    }

    let unsubscribe = project.dripline(&["unsubscribe", "Ann@Example.com"]);
    assert_eq!(unsubscribe.code, 0, "{}", unsubscribe.stderr);
    assert!(
        unsubscribe
            .stdout
            .contains("ann@example.com is unsubscribed")
    );
    let again = project.dripline(&["unsubscribe", "ann@example.com"]);
    assert!(again.stdout.contains("already"), "{}", again.stdout);
    let status = status_json(&project);
    assert_eq!(status["suppressed"][0]["email"], "ann@example.com");
    assert_eq!(status["suppressed"][0]["reason"], "unsubscribed");
    let plan = project.dripline(&["plan", "--now", "2026-12-01T11:00:00Z"]);
    assert!(!plan.stdout.contains("ann@example.com"), "{}", plan.stdout);

    // 08:00 in New York; Berlin's 08:00 was 6h ago, within catch_up.
    run_at(&project, utc("2026-12-02T13:00:00Z"));
    let got = |who: &str| -> Vec<String> {
        outbox(&project)
            .into_iter()
            .filter(|m| m.to == who)
            .map(|m| m.step)
            .collect()
    };
    assert_eq!(got("ann@example.com"), ["s1"]);
    assert_eq!(got("bob@example.com").len(), 2);

    let resubscribe = project.dripline(&["resubscribe", "ann@example.com"]);
    assert_eq!(resubscribe.code, 0, "{}", resubscribe.stderr);
    assert!(
        resubscribe.stdout.contains("is resubscribed"),
        "{}",
        resubscribe.stdout
    );
    let again = project.dripline(&["resubscribe", "ann@example.com"]);
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    assert_eq!(
        status_json(&project)["suppressed"].as_array().map(Vec::len),
        Some(0)
    );

    // She resumes at step 2, not step 1 again.
    run_at(&project, utc("2026-12-03T13:00:00Z"));
    let mut steps = got("ann@example.com");
    steps.sort();
    assert_eq!(steps, ["s1", "s2"]);
    let status = status_json(&project);
    // Ann's step 2, Bob's step 3 and Cy's: Tokyo's 08:00 was 14h ago, more
    // than catch_up, but runs a day apart never come closer to it, so it
    // goes at the first run after the slot (as Cy's step 2 did).
    assert_eq!(status["last_run"]["sent"], 3);
    assert_eq!(sent_counts(&status, "demo"), [3, 3, 2]);
}

/// Regression: step 1 of a second sequence, due "immediately" at an
/// evening enrollment and held back by the first sequence's step 1, went
/// out at the first run after local midnight instead of the next 08:00.
#[test]
fn an_email_held_back_by_one_a_day_is_not_sent_at_midnight() {
    let project = Project::empty();
    project.write(
        "dripline.toml",
        config(&[("alpha", "list.csv"), ("beta", "list.csv")]),
    );
    write_sequence(&project, "alpha", 1);
    write_sequence(&project, "beta", 1);
    let row = Row {
        email: "eve@example.com".to_owned(),
        zone: ZONES[0],
        joined: None,
    };
    project.write("list.csv", list_csv([&row]));
    // 20:00 to 09:00 the next day in New York.
    let start = utc("2026-12-01T20:00:00-05:00");
    for hour in 0..=13 {
        run_at(&project, start + Duration::hours(hour));
    }
    let sent: Vec<(String, DateTime<Utc>)> = outbox(&project)
        .into_iter()
        .map(|m| (m.sequence, m.date))
        .collect();
    assert_eq!(
        sent,
        [
            ("alpha".to_owned(), start),
            ("beta".to_owned(), utc("2026-12-02T08:00:00-05:00"))
        ]
    );
}
