//! Real servers' rules, as Postfix applies them: a SIZE limit, a
//! fully-qualified HELO name, a sender it refuses, a login it requires.
//! A refusal that is about the sender or the session stops the run at
//! once (exit 6) with one message saying what to change, and marks no
//! subscriber failed or bounced: everything stays due.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::server::{Options, Server};
use super::{DAY_1, DAY_2, Setup, address, error_lines, run, status, step_counts};
use crate::support::{Project, Run};

/// A step whose email is well over 8,000 bytes.
pub(super) fn long_step() -> String {
    let paragraph = "Fermented foods feed the bacteria that line your gut. ".repeat(20);
    let body = vec![paragraph; 10].join("\n\n");
    format!("+++\nsubject = \"Day 2: More\"\nwait_days = 1\n+++\n{body}\n")
}

/// Recipients the server saw at RCPT TO.
fn recipients_tried(server: &Server, subscribers: usize) -> usize {
    (0..subscribers)
        .map(|n| server.rcpt_count(&address(n)))
        .sum()
}

/// The run stopped with exit 6 and one error message that contains each
/// of `expected`.
pub(super) fn assert_stopped(run: &Run, expected: &[&str]) {
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(error_lines(run), 1, "one message: {}", run.stderr);
    for text in expected {
        assert!(run.stderr.contains(text), "`{text}` in:\n{}", run.stderr);
    }
    assert!(
        !run.stderr.contains("Connection error: Connection error"),
        "{}",
        run.stderr
    );
}

/// Nobody failed, bounced or was suppressed.
pub(super) fn assert_nobody_failed(project: &Project) {
    let state = status(project);
    assert_eq!(state["failures"], Value::Array(Vec::new()), "{state}");
    assert_eq!(state["suppressed"], Value::Array(Vec::new()), "{state}");
    for step in state["sequences"][0]["steps"].as_array().expect("steps") {
        assert_eq!(step["failed"].as_u64().unwrap_or(0), 0, "{step}");
    }
}

#[test]
fn an_oversize_step_stops_the_run_at_once_and_every_email_stays_due() {
    let subscribers = 300;
    let mut options = Options::accept_all();
    options.size = 8000;
    let server = Server::start(options);
    let project = Setup::new(subscribers).project(&server);
    project.write("sequences/demo/02-more.md", long_step());

    // Day 1 is small: it goes, and MAIL FROM declares its size.
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(server.accepted().len(), subscribers);
    let mail_from = server.mail_from();
    assert!(
        mail_from.iter().all(|line| line
            .split_whitespace()
            .any(|word| word.starts_with("SIZE="))),
        "{mail_from:?}"
    );
    let data_before = server.data_bytes();

    // Day 2 is too large: nothing of it goes on the wire, and the run
    // stops within seconds rather than after trying every subscriber.
    let started = Instant::now();
    let second = run(&project, DAY_2);
    let took = started.elapsed();
    assert_stopped(
        &second,
        &[
            "at most 8000 bytes",
            "cannot send demo/more: 127.0.0.1:",
            "message_size_limit",
            "stays due",
        ],
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(server.accepted().len(), subscribers);
    assert_eq!(server.data_bytes(), data_before, "no byte of it was sent");
    assert_eq!(server.mail_from().len(), mail_from.len());
    assert_nobody_failed(&project);
    let state = status(&project);
    assert_eq!(step_counts(&state, 0), (subscribers as u64, 0, 0));
    // Not an attempt: nothing pending, every email still due.
    assert_eq!(step_counts(&state, 1), (0, 0, 0));
    let plan = project.dripline(&["run", "--now", DAY_2, "--dry-run"]);
    assert_eq!(
        plan.stdout.matches("due: demo step 2").count(),
        subscribers,
        "{plan:?}"
    );
}

#[test]
fn a_bare_host_name_is_never_the_helo_name_and_helo_name_sets_it() {
    let subscribers = 100;
    let mut options = Options::accept_all();
    options.fqdn_helo = true;
    let server = Server::start(options);

    // The default: this machine's name when fully qualified, else the
    // sender's domain; never a bare host name.
    let mut setup = Setup::new(5);
    setup.steps = 1;
    let project = setup.project(&server);
    let sent = run(&project, DAY_1);
    assert_eq!(sent.code, 0, "{sent:?}");
    assert_eq!(server.accepted().len(), 5);
    let helos = server.helos();
    assert!(
        !helos.is_empty() && helos.iter().all(|name| name.contains('.')),
        "{helos:?}"
    );

    // A bare name, set on purpose, is refused (at RCPT TO, as Postfix
    // does): the run stops and nobody's course is touched.
    let mut bare = Setup::new(subscribers);
    bare.steps = 1;
    bare.smtp.push_str("helo_name = \"vm\"\n");
    let project = bare.project(&server);
    let before = server.accepted().len();
    let tried_before = recipients_tried(&server, subscribers);
    let refused = run(&project, DAY_1);
    assert_stopped(
        &refused,
        &[
            "504 5.5.2 <vm>: Helo command rejected",
            "helo_name",
            "stays due",
        ],
    );
    assert_eq!(server.accepted().len(), before);
    let tried = recipients_tried(&server, subscribers) - tried_before;
    assert!(tried <= 4, "{tried} recipients tried after the refusal");
    assert_nobody_failed(&project);
    assert_eq!(step_counts(&status(&project), 0), (0, 0, 0));

    // With a proper name it goes.
    let fixed = project
        .read("dripline.toml")
        .replace("helo_name = \"vm\"", "helo_name = \"mail.example.org\"");
    project.write("dripline.toml", fixed);
    let resumed = run(&project, DAY_1);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(server.accepted().len(), before + subscribers);
    assert!(server.helos().contains(&"mail.example.org".to_owned()));
}

#[test]
fn a_server_that_refuses_the_ehlo_name_at_once_stops_the_run_before_anything_is_claimed() {
    let mut options = Options::accept_all();
    options.refuse_helo = Some("550 5.7.1 <example.com>: Helo command rejected: not you");
    let server = Server::start(options);
    let project = Setup::new(10).project(&server);
    let refused = run(&project, DAY_1);
    assert_stopped(
        &refused,
        &[
            "the server refused the session as `",
            "550 5.7.1 <example.com>: Helo command rejected: not you",
            "helo_name",
            "Nothing was sent.",
        ],
    );
    assert_eq!(server.connections(), 1, "only the probe");
    assert_eq!(server.quits(), 1, "QUIT after the refusal");
    assert_nobody_failed(&project);
    assert_eq!(step_counts(&status(&project), 0), (0, 0, 0));
}

#[test]
fn a_refused_sender_stops_the_run_and_nobody_is_marked_failed() {
    let subscribers = 100;
    let mut options = Options::accept_all();
    options.reject_sender =
        Some("553 5.7.1 <coach@example.com>: Sender address rejected: not owned by user");
    let server = Server::start(options);
    let mut setup = Setup::new(subscribers);
    setup.steps = 1;
    let project = setup.project(&server);
    let refused = run(&project, DAY_1);
    assert_stopped(
        &refused,
        &[
            "refused the sender address at MAIL FROM: 553 5.7.1",
            "[sender] from",
            "The run stopped after 0 sent",
        ],
    );
    assert!(server.mail_from().len() <= 4, "{:?}", server.mail_from());
    assert_eq!(recipients_tried(&server, subscribers), 0);
    assert_nobody_failed(&project);
    assert_eq!(step_counts(&status(&project), 0), (0, 0, 0));
}

#[test]
fn a_server_that_wants_a_login_stops_the_run_and_nobody_is_marked_failed() {
    let subscribers = 50;
    let mut options = Options::accept_all();
    options.require_auth = true;
    let server = Server::start(options);
    let mut setup = Setup::new(subscribers);
    setup.steps = 1;
    let project = setup.project(&server);
    let refused = run(&project, DAY_1);
    assert_stopped(
        &refused,
        &["530 5.7.0 Authentication required", "[smtp] username"],
    );
    assert!(server.mail_from().len() <= 4, "{:?}", server.mail_from());
    assert_nobody_failed(&project);
}

#[test]
fn a_failed_login_says_quit_and_reads_cleanly() {
    let mut options = Options::accept_all();
    options.auth = true;
    options.password = Some("correct horse");
    let server = Server::start(options);
    let mut setup = Setup::new(5);
    setup.smtp =
        "security = \"none\"\ntimeout = \"5s\"\nusername = \"coach\"\npassword_file = \"smtp-password\"\n"
            .to_owned();
    let project = setup.project(&server);
    project.write("smtp-password", "battery staple\n");
    let refused = run(&project, DAY_1);
    assert_stopped(
        &refused,
        &[
            "the login as `coach` failed: 535 5.7.8 Error: authentication failed",
            "Check [smtp] username and the password in ",
            "Nothing was sent.",
        ],
    );
    assert!(
        !refused.stderr.contains("battery") && !refused.stdout.contains("battery"),
        "{refused:?}"
    );
    assert_eq!(server.quits(), 1, "QUIT after the failed login");
    assert_eq!(server.logins().len(), 1);
    assert_nobody_failed(&project);
}
