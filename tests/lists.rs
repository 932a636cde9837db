//! List files as coaches bring them: the exports of the tools they leave
//! (tests/fixtures/lists/, sources in SOURCES.md), lists with no usable
//! header, line numbers in CRLF, BOM and multi-line rows, and a
//! misspelled time zone.

use std::fs;

use crate::run::{config, outbox, run_at, utc, write_sequence};
use crate::support::{Project, fixture};

/// A project whose one drip reads the fixture `name` as its list.
fn project_with(list: &[u8]) -> Project {
    let project = Project::empty();
    project.write("dripline.toml", config(&[("course", "list.csv")]));
    write_sequence(&project, "course", 2);
    project.write("list.csv", list);
    project
}

/// (address, zone) of each subscriber `plan` expects to mail.
fn planned(project: &Project) -> Vec<(String, String)> {
    let plan = project.dripline(&["plan", "--json", "--now", "2026-12-01T17:00:00Z"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan --json");
    plan["next"]
        .as_array()
        .expect("next")
        .iter()
        .map(|next| {
            (
                next["email"].as_str().expect("email").to_owned(),
                next["zone"].as_str().expect("zone").to_owned(),
            )
        })
        .collect()
}

/// (address, display name in To) of every email of the first run.
fn first_emails(project: &Project) -> Vec<(String, String)> {
    run_at(project, utc("2026-12-01T17:00:00Z"));
    let mut got: Vec<(String, String)> = outbox(project)
        .iter()
        .map(|mail| {
            let bytes = fs::read(project.path("outbox").join(&mail.file)).expect("eml");
            let message = mail_parser::MessageParser::default()
                .parse_headers(&bytes)
                .expect("headers");
            let name = message
                .to()
                .and_then(|to| to.first())
                .and_then(|to| to.name())
                .unwrap_or_default()
                .to_owned();
            (mail.to.clone(), name)
        })
        .collect();
    got.sort();
    got
}

fn read(name: &str) -> Vec<u8> {
    fs::read(fixture(&format!("lists/{name}"))).expect("a list fixture")
}

/// Pairs of (address, zone) or (address, name) a test expects.
type Expected<'a> = &'a [(&'a str, &'a str)];

fn pairs(items: Expected) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Each export enrolls its active subscribers, with their names (first and
/// last joined when there is no name column) and zones, and leaves out the
/// unsubscribed, cleaned, bounced, cancelled, pending and disabled ones;
/// `check` finds nothing wrong with any of them.
#[test]
fn exports_of_other_tools_enroll_the_right_people_with_their_names_and_zones() {
    let cases: [(&str, Expected, Expected); 7] = [
        (
            "mailchimp.csv",
            &[
                ("ann.lee@example.com", "America/Los_Angeles"),
                ("bo@example.com", "America/New_York"),
            ],
            &[("ann.lee@example.com", "Ann Lee"), ("bo@example.com", "Bo")],
        ),
        ("mailchimp-cleaned.csv", &[], &[]),
        (
            "kit.csv",
            &[("kim@example.com", "America/New_York")],
            &[("kim@example.com", "Kim")],
        ),
        (
            "substack.csv",
            &[
                ("free.reader@example.com", "America/New_York"),
                ("paid.reader@example.com", "America/New_York"),
            ],
            &[
                ("free.reader@example.com", ""),
                ("paid.reader@example.com", ""),
            ],
        ),
        (
            "beehiiv.csv",
            &[
                ("ipsum@example.com", "America/New_York"),
                ("last.only@example.com", "America/New_York"),
            ],
            &[
                ("ipsum@example.com", "Ipsum Name"),
                ("last.only@example.com", "Last Only"),
            ],
        ),
        (
            "mailerlite.csv",
            &[("nia@example.com", "America/New_York")],
            &[("nia@example.com", "Nia Obi")],
        ),
        (
            "listmonk.csv",
            &[
                ("user0@mail.com", "America/New_York"),
                ("user1@mail.com", "America/New_York"),
            ],
            &[
                ("user0@mail.com", "First0 Last0"),
                ("user1@mail.com", "First1 Last1"),
            ],
        ),
    ];
    for (file, zones, names) in cases {
        let project = project_with(&read(file));
        let check = project.dripline(&["check"]);
        assert_eq!(check.code, 0, "{file}: {}{}", check.stdout, check.stderr);
        assert!(!check.stderr.contains("error"), "{file}: {}", check.stderr);
        let mut got = planned(&project);
        got.sort();
        assert_eq!(got, pairs(zones), "{file}: zones");
        assert_eq!(first_emails(&project), pairs(names), "{file}: names");
    }
}

/// Regression: a Mailchimp export was "1 bad list row" and `run` exited 0.
#[test]
fn a_list_without_an_email_column_stops_check_and_run_with_exit_3() {
    let project = project_with(b"Vorname,E-Mail-Adresse\nAnn,ann@example.com\n");
    let message = "error: list.csv: no email column: the header has `Vorname`, `E-Mail-Adresse`; name the address column `email` (exports' `Email Address` and `email_address` work too), or map yours in dripline.toml, e.g. [[drip]] columns = { email = \"E-mail\" }";
    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 3);
    assert!(check.stderr.contains(message), "{}", check.stderr);
    let run = project.dripline(&["run", "--now", "2026-12-01T17:00:00Z"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(message), "{}", run.stderr);
    assert!(outbox(&project).is_empty());

    // `columns` maps it, and the rest of the header is read as usual.
    let mapped = config(&[("course", "list.csv")]).replace(
        "list = \"list.csv\"\n",
        "list = \"list.csv\"\ncolumns = { email = \"E-Mail-Adresse\", first_name = \"Vorname\" }\n",
    );
    project.write("dripline.toml", mapped);
    assert_eq!(first_emails(&project), pairs(&[("ann@example.com", "Ann")]));

    let empty = project_with(b"");
    let check = empty.dripline(&["check"]);
    assert_eq!(check.code, 3);
    assert!(
        check.stderr.contains("error: list.csv: the list is empty"),
        "{}",
        check.stderr
    );
}

/// Regression: in a CRLF list every line number was one too small.
#[test]
fn line_numbers_are_right_for_crlf_bom_and_multi_line_rows() {
    let project = project_with(
        b"\xef\xbb\xbfemail,name,note\r\nok@example.com,Ok,\"two\r\nlines\"\r\nnot-an-address,Bad,\r\n",
    );
    let check = project.dripline(&["check"]);
    assert!(
        check
            .stderr
            .contains("error: list.csv:4: skipped: `not-an-address` is not a valid email address"),
        "{}",
        check.stderr
    );
    assert_eq!(check.code, 3);
}

/// Regression: a mistyped time zone dropped the subscriber.
#[test]
fn a_misspelled_zone_in_a_row_falls_back_with_a_warning() {
    let project = project_with(b"email,name,timezone\nann@example.com,Ann,America/NewYork\n");
    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stderr.contains("warning: list.csv:2: unknown time zone `America/NewYork`; did you mean `America/New_York`?; this subscriber gets the sequence's or the config's time zone until the row is fixed"),
        "{}",
        check.stderr
    );
    assert_eq!(
        planned(&project),
        pairs(&[("ann@example.com", "America/New_York")])
    );
}
