//! The roster: a pass reads the list only when it changed, and then
//! follows what changed in it. Days are simulated with `--now`; results are
//! read from the outbox with mail-parser.

use std::collections::BTreeMap;
use std::fs;
use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};

use crate::run::{config, outbox, run_at, utc, write_sequence};
use crate::support::Project;

const HEADER: &str = "email,name,timezone,subscribed_at\n";
const ANN: &str = "ann@example.com,Ann Lee,America/New_York,\n";
const BOB: &str = "bob@example.com,Bob Stone,America/New_York,\n";

/// A project with a four-step sequence `s` and these list rows.
fn project(rows: &[&str]) -> Project {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("s", "list.csv")]));
    write_sequence(&project, "s", 4);
    write_list(&project, rows);
    project
}

fn write_list(project: &Project, rows: &[&str]) {
    project.write("list.csv", format!("{HEADER}{}", rows.concat()));
}

/// 08:30 in New York on day `n` of the course (December 2026).
fn day(n: i64) -> DateTime<Utc> {
    utc("2026-12-01T13:30:00Z") + Duration::days(n - 1)
}

/// The greeting line of each email of `step`, by address.
fn greetings(project: &Project, step: &str) -> BTreeMap<String, String> {
    outbox(project)
        .into_iter()
        .filter(|mail| mail.step == step)
        .map(|mail| {
            let bytes = fs::read(project.path(&format!("outbox/{}", mail.file))).unwrap();
            let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
            let text = message.body_text(0).unwrap_or_default().into_owned();
            let hello = text
                .lines()
                .find(|line| line.starts_with("Hi "))
                .unwrap_or_default();
            (mail.to, hello.to_owned())
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn set_modified(project: &Project, at: SystemTime) {
    let file = fs::File::options()
        .write(true)
        .open(project.path("list.csv"))
        .unwrap();
    file.set_modified(at).unwrap();
}

#[test]
fn a_list_is_read_again_when_its_time_changes_and_then_its_changed_row_counts() {
    let project = project(&[ANN, BOB]);
    run_at(&project, day(1));
    assert_eq!(
        greetings(&project, "s1"),
        pairs(&[
            ("ann@example.com", "Hi Ann,"),
            ("bob@example.com", "Hi Bob,")
        ])
    );
    // The same size and modification time: the pass does not read it.
    let before = fs::metadata(project.path("list.csv"))
        .unwrap()
        .modified()
        .unwrap();
    write_list(
        &project,
        &[ANN, "bob@example.com,Rob Stone,America/New_York,\n"],
    );
    set_modified(&project, before);
    run_at(&project, day(2));
    assert_eq!(greetings(&project, "s2")["bob@example.com"], "Hi Bob,");
    // A new time: it is read, and only Bob's row changed.
    set_modified(&project, SystemTime::now());
    run_at(&project, day(3));
    assert_eq!(
        greetings(&project, "s3"),
        pairs(&[
            ("ann@example.com", "Hi Ann,"),
            ("bob@example.com", "Hi Rob,")
        ])
    );
}

#[test]
fn a_row_that_leaves_the_list_stops_and_comes_back_where_it_was() {
    let project = project(&[ANN, BOB]);
    run_at(&project, day(1));
    write_list(&project, &[ANN]);
    run_at(&project, day(2));
    assert_eq!(
        greetings(&project, "s2"),
        pairs(&[("ann@example.com", "Hi Ann,")])
    );
    write_list(&project, &[BOB, ANN]);
    run_at(&project, day(3));
    assert_eq!(
        greetings(&project, "s3"),
        pairs(&[("ann@example.com", "Hi Ann,")])
    );
    // Bob resumes with the step he had not had, not from the start.
    assert_eq!(
        greetings(&project, "s2"),
        pairs(&[
            ("ann@example.com", "Hi Ann,"),
            ("bob@example.com", "Hi Bob,")
        ])
    );
    assert_eq!(greetings(&project, "s1").len(), 2);
}

#[test]
fn a_new_row_of_a_known_address_is_reported_and_the_known_row_wins() {
    let project = project(&[ANN]);
    run_at(&project, day(1));
    write_list(
        &project,
        &["ANN@example.com,Impostor Lee,America/New_York,\n", ANN],
    );
    let run = run_at(&project, day(2));
    assert!(
        run.stderr.contains(
            "list.csv:2: skipped: ANN@example.com is already on line 3, the row dripline has"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        greetings(&project, "s2"),
        pairs(&[("ann@example.com", "Hi Ann,")])
    );
    // The stored warning is shown again by a pass that does not read the list.
    let again = run_at(&project, day(2) + Duration::minutes(5));
    assert!(
        again.stderr.contains("is already on line 3"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_new_send_at_applies_to_the_next_pass_for_every_list_of_the_sequence() {
    let project = project(&[ANN]);
    project.write(
        "dripline.toml",
        config(&[("s", "list.csv"), ("s", "other.csv")]),
    );
    project.write("other.csv", format!("{HEADER}{BOB}"));
    run_at(&project, day(1));
    // The next email was due at 08:00; now it is due at 06:00.
    let sequence = project.read("sequences/s/sequence.toml");
    project.write(
        "sequences/s/sequence.toml",
        sequence.replace("0 8 * * *", "0 6 * * *"),
    );
    run_at(&project, day(2) - Duration::hours(2));
    assert_eq!(
        greetings(&project, "s2"),
        pairs(&[
            ("ann@example.com", "Hi Ann,"),
            ("bob@example.com", "Hi Bob,")
        ])
    );
}

#[test]
fn resubscribe_makes_the_next_email_due_at_once() {
    let project = project(&[ANN, BOB]);
    run_at(&project, day(1));
    assert_eq!(
        project.dripline(&["unsubscribe", "ann@example.com"]).code,
        0
    );
    run_at(&project, day(2));
    assert_eq!(
        greetings(&project, "s2"),
        pairs(&[("bob@example.com", "Hi Bob,")])
    );
    assert_eq!(
        project.dripline(&["resubscribe", "ann@example.com"]).code,
        0
    );
    run_at(&project, day(2) + Duration::minutes(10));
    assert_eq!(greetings(&project, "s2").len(), 2);
}
