//! Delivery over SMTP: the real binary against a real SMTP server on
//! 127.0.0.1 that refuses, drops, stalls or goes down on cue. After each
//! run, every subscriber's state is what DESIGN.md section 8 promises:
//! nothing due is lost, and nothing goes out twice beyond the bound.

mod dkim;
pub(crate) mod postfix;
mod rules;
pub(crate) mod server;

use std::collections::HashMap;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use self::server::{Action, Options, Server, Stage};
use crate::support::{Project, Run};

const DAY_1: &str = "2026-12-01T08:00:00Z";
const DAY_1_LATER: &str = "2026-12-01T08:30:00Z";
const DAY_2: &str = "2026-12-02T08:00:00Z";

/// What a test project varies.
struct Setup {
    subscribers: usize,
    steps: usize,
    delivery: &'static str,
    smtp: String,
    extra: String,
}

impl Setup {
    fn new(subscribers: usize) -> Setup {
        Setup {
            subscribers,
            steps: 2,
            delivery: "",
            smtp: "security = \"none\"\ntimeout = \"5s\"\n".to_owned(),
            extra: String::new(),
        }
    }

    fn project(&self, server: &Server) -> Project {
        self.project_on(server.port)
    }

    fn project_on(&self, port: u16) -> Project {
        let project = Project::empty();
        let config = format!(
            "timezone = \"UTC\"\n\n[sender]\nfrom = \"Coach <coach@coaching-demo.net>\"\n\n\
             [[drip]]\nsequence = \"demo\"\nlist = \"list.csv\"\n\n\
             [delivery]\ntransport = \"smtp\"\nconcurrency = 4\nmax_per_second = 0\n{}\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {port}\n{}\n\
             [unsubscribe]\nbase_url = \"https://news.example.com/dripline\"\nmailto = \"unsubscribe@example.com\"\n{}",
            self.delivery, self.smtp, self.extra
        );
        let mut list = String::from("email,name\n");
        for n in 0..self.subscribers {
            list.push_str(&format!("{}, Reader {n}\n", address(n)));
        }
        project
            .write("dripline.toml", config)
            .write("list.csv", list)
            .write(".dripline-secret", format!("{}\n", "ab".repeat(32)))
            .write(
                "sequences/demo/sequence.toml",
                "name = \"Demo\"\nsend_at = \"0 8 * * *\"\n",
            )
            .write(
                "sequences/demo/01-hello.md",
                "+++\nsubject = \"Day 1: Hello\"\n+++\nHi {{subscriber.first_name}},\n\nWelcome.\n",
            );
        if self.steps > 1 {
            project.write(
                "sequences/demo/02-more.md",
                "+++\nsubject = \"Day 2: More\"\nwait_days = 1\n+++\nMore.\n",
            );
        }
        project
    }
}

fn address(n: usize) -> String {
    format!("reader{n}@example.net")
}

fn run(project: &Project, now: &str) -> Run {
    project.dripline(&["run", "--now", now])
}

/// Lines of standard error that report an error (not warnings).
fn error_lines(run: &Run) -> usize {
    run.stderr
        .lines()
        .filter(|line| line.starts_with("error"))
        .count()
}

fn status(project: &Project) -> Value {
    let run = project.dripline(&["status", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).expect("status JSON")
}

/// (sent, pending, failed) of step `index` of `demo`.
fn step_counts(status: &Value, index: usize) -> (u64, u64, u64) {
    let step = &status["sequences"][0]["steps"][index];
    (
        step["sent"].as_u64().unwrap_or(0),
        step["pending"].as_u64().unwrap_or(0),
        step["failed"].as_u64().unwrap_or(0),
    )
}

/// How many copies of the step with this subject each recipient got.
fn copies(messages: &[server::Received], subject: &str) -> HashMap<String, usize> {
    let mut copies = HashMap::new();
    for message in messages {
        let parsed = mail_parser::MessageParser::default()
            .parse(&message.data)
            .expect("a parsable message");
        if parsed.subject() == Some(subject) {
            *copies.entry(message.to.clone()).or_insert(0) += 1;
        }
    }
    copies
}

/// Every subscriber got step 1 exactly once.
fn assert_everyone_once(server: &Server, subscribers: usize) {
    let copies = copies(&server.accepted(), "Day 1: Hello");
    for n in 0..subscribers {
        assert_eq!(copies.get(&address(n)), Some(&1), "{}", address(n));
    }
    assert_eq!(copies.len(), subscribers);
}

#[test]
fn a_whole_day_to_500_subscribers_arrives_complete_and_well_formed() {
    let server = Server::start(Options::accept_all());
    let project = Setup::new(500).project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first
            .stdout
            .contains("500 sent, 0 to retry, 0 failed, 500 new subscribers")
            && first
                .stdout
                .contains(&format!("sent through 127.0.0.1:{}", server.port)),
        "{}",
        first.stdout
    );
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 500);
    // `concurrency = 4` sessions, each kept for the next message.
    assert!(server.connections() <= 4, "{}", server.connections());
    // The server announced PIPELINING: MAIL FROM, RCPT TO and DATA came
    // in one go for every message, and never out of turn; mostly right
    // behind the end of the message before, in the same write.
    assert_eq!((server.pipelined(), server.out_of_step()), (500, 0));
    // (Only a session's last message, and any that found no other waiting,
    // end alone: 496 here, as a rule.)
    assert!(server.chained() >= 450, "{}", server.chained());
    let mut ids = std::collections::HashSet::new();
    for message in &accepted {
        let parsed = mail_parser::MessageParser::default()
            .parse(&message.data)
            .expect("parsable");
        let to = parsed.to().and_then(|to| to.first()).expect("To");
        assert_eq!(to.address(), Some(message.to.as_str()));
        assert!(to.name().is_some_and(|name| name.starts_with("Reader ")));
        let id = parsed.message_id().expect("Message-ID");
        assert!(
            id.starts_with("demo.hello.") && id.ends_with("@coaching-demo.net"),
            "{id}"
        );
        assert!(ids.insert(id.to_owned()), "duplicate Message-ID {id}");
        let unsubscribe = parsed
            .header_raw("List-Unsubscribe")
            .expect("List-Unsubscribe");
        assert!(
            unsubscribe.contains("<https://news.example.com/dripline/u/")
                && unsubscribe.contains("<mailto:unsubscribe+"),
            "{unsubscribe}"
        );
        assert_eq!(
            parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        assert_eq!(parsed.subject(), Some("Day 1: Hello"));
    }
    assert_everyone_once(&server, 500);
    let status = status(&project);
    assert_eq!(step_counts(&status, 0), (500, 0, 0));
    assert_eq!(status["failures"], Value::Array(Vec::new()));

    // Later that day nothing is due; the next day step 2 goes to everyone.
    assert_eq!(run(&project, DAY_1_LATER).code, 0);
    assert_eq!(server.accepted().len(), 500);
    let next = run(&project, DAY_2);
    assert_eq!(next.code, 0, "{next:?}");
    assert_eq!(copies(&server.accepted(), "Day 2: More").len(), 500);
}

#[test]
fn without_pipelining_each_command_waits_for_its_reply() {
    let mut options = Options::with(|stage, to, _| match stage {
        Stage::Rcpt if to == address(3) => Action::Reply("550 5.1.1 no such user"),
        _ => Action::Accept,
    });
    options.pipelining = false;
    let server = Server::start(options);
    let project = Setup::new(40).project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 4, "{first:?}");
    // The server closes a session that sends a command out of turn.
    assert_eq!((server.pipelined(), server.out_of_step()), (0, 0));
    assert_eq!(server.accepted().len(), 39);
    assert_eq!(step_counts(&status(&project), 0), (39, 0, 1));
}

#[test]
fn temporary_refusals_are_retried_in_a_later_run_with_the_same_message_id() {
    let server = Server::start(Options::with(|stage, to, before| {
        let refused = to.starts_with("reader1") && stage == Stage::Rcpt && before == 0;
        if refused {
            Action::Reply("451 4.7.1 greylisted, try again later")
        } else {
            Action::Accept
        }
    }));
    let project = Setup::new(30).project(&server);
    // reader1 and reader10..reader19 are refused once.
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 4, "{first:?}");
    assert!(
        first.stdout.contains("19 sent, 11 to retry, 0 failed"),
        "{}",
        first.stdout
    );
    let status_now = status(&project);
    assert_eq!(step_counts(&status_now, 0), (19, 11, 0));
    let failures = status_now["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 11);
    for failure in failures {
        assert_eq!(failure["status"], "retry");
        assert_eq!(failure["attempts"], 1);
        assert_eq!(failure["reply"], "451 4.7.1 greylisted, try again later");
    }

    // Before the backoff has passed nothing goes again.
    assert_eq!(run(&project, "2026-12-01T08:01:00Z").code, 0);
    assert_eq!(server.rcpt_count("reader1@example.net"), 1);

    let later = run(&project, DAY_1_LATER);
    assert_eq!(later.code, 0, "{later:?}");
    assert!(
        later.stdout.contains("11 sent, 0 to retry"),
        "{}",
        later.stdout
    );
    assert_everyone_once(&server, 30);
    let after = status(&project);
    assert_eq!(step_counts(&after, 0), (30, 0, 0));
    assert_eq!(after["failures"], Value::Array(Vec::new()));
    let record = project.dripline(&["status", "--subscriber", "reader1@example.net", "--json"]);
    let record: Value = serde_json::from_str(&record.stdout).expect("JSON");
    assert_eq!(record["deliveries"][0]["attempts"], 2);
}

#[test]
fn rejected_recipients_bounce_are_suppressed_and_never_retried() {
    let server = Server::start(Options::with(|stage, to, _| {
        if stage == Stage::Rcpt && matches!(to, "reader3@example.net" | "reader7@example.net") {
            Action::Reply("550 5.1.1 no such mailbox")
        } else {
            Action::Accept
        }
    }));
    let project = Setup::new(10).project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 4, "{first:?}");
    assert!(
        first.stdout.contains("8 sent, 0 to retry, 2 failed"),
        "{}",
        first.stdout
    );
    let state = status(&project);
    assert_eq!(step_counts(&state, 0), (8, 0, 2));
    let mut bounced: Vec<&str> = state["suppressed"]
        .as_array()
        .expect("suppressed")
        .iter()
        .filter(|entry| entry["reason"] == "bounced")
        .filter_map(|entry| entry["email"].as_str())
        .collect();
    bounced.sort_unstable();
    assert_eq!(bounced, ["reader3@example.net", "reader7@example.net"]);
    for failure in state["failures"].as_array().expect("failures") {
        assert_eq!(failure["status"], "failed");
        assert_eq!(failure["reply"], "550 5.1.1 no such mailbox");
    }

    for now in [DAY_1_LATER, DAY_2, "2026-12-03T08:00:00Z"] {
        let later = run(&project, now);
        assert_eq!(later.code, 0, "{later:?}");
    }
    assert_eq!(server.rcpt_count("reader3@example.net"), 1);
    assert_eq!(server.rcpt_count("reader7@example.net"), 1);
    assert_eq!(copies(&server.accepted(), "Day 2: More").len(), 8);
}

/// The number in a `readerN@example.net` address (0 for any other).
fn reader_number(address: &str) -> usize {
    address
        .trim_start_matches("reader")
        .split('@')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A message refused at its end, whose session had already sent the
/// next message's commands behind it: the next one goes through all the
/// same, in the same session, and only the refused one fails.
#[test]
fn a_message_refused_at_its_end_leaves_the_one_chained_behind_it_alone() {
    let server = Server::start(Options::with(|stage, to, _| {
        let n = reader_number(to);
        match stage {
            Stage::DataEnd if n % 8 == 4 => Action::Reply("554 5.7.1 content rejected"),
            _ => Action::Accept,
        }
    }));
    let subscribers = 80;
    let project = Setup::new(subscribers).project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 4, "{first:?}");
    let refused = (0..subscribers).filter(|n| n % 8 == 4).count();
    assert_eq!(server.accepted().len(), subscribers - refused);
    assert_eq!(
        step_counts(&status(&project), 0),
        ((subscribers - refused) as u64, 0, refused as u64)
    );
    assert_eq!(server.out_of_step(), 0);
    assert!(server.chained() >= subscribers / 2, "{}", server.chained());
    assert!(server.connections() <= 4, "{}", server.connections());
}

#[test]
fn a_421_and_connections_dropped_mid_run_lose_nothing() {
    // Some recipients get "421 closing" at RCPT; for others the server reads
    // the whole message and then drops the connection without a reply: the
    // unknown case, resent with the same Message-ID.
    let server = Server::start(Options::with(|stage, to, before| {
        let n = reader_number(to);
        match (stage, before) {
            (Stage::Rcpt, 0) if n % 10 == 3 => Action::Reply("421 4.3.2 shutting down"),
            (Stage::DataEnd, 0) if n % 10 == 5 => Action::Drop,
            (Stage::Rcpt, 0) if n % 10 == 7 => Action::Drop,
            _ => Action::Accept,
        }
    }));
    let subscribers = 60;
    let project = Setup::new(subscribers).project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 4, "{first:?}");
    let retrying = (0..subscribers)
        .filter(|n| matches!(n % 10, 3 | 5 | 7))
        .count();
    let state = status(&project);
    assert_eq!(
        step_counts(&state, 0),
        ((subscribers - retrying) as u64, retrying as u64, 0)
    );

    let second = run(&project, DAY_1_LATER);
    assert_eq!(second.code, 0, "{second:?}");
    assert_everyone_once(&server, subscribers);
    assert_eq!(
        step_counts(&status(&project), 0),
        (subscribers as u64, 0, 0)
    );

    // The dropped messages arrived (as far as the server knows) and went
    // again: at most twice, with the same Message-ID both times.
    let dropped = server.dropped();
    assert_eq!(
        dropped.len(),
        (0..subscribers).filter(|n| n % 10 == 5).count()
    );
    let accepted = server.accepted();
    for lost in &dropped {
        let first = mail_parser::MessageParser::default()
            .parse(&lost.data)
            .expect("parsable");
        let again: Vec<_> = accepted.iter().filter(|m| m.to == lost.to).collect();
        assert_eq!(again.len(), 1);
        let second = mail_parser::MessageParser::default()
            .parse(&again[0].data)
            .expect("parsable");
        assert_eq!(first.message_id(), second.message_id());
    }
}

#[test]
fn a_stalled_server_times_out_and_the_message_is_retried() {
    let server = Server::start(Options::with(|stage, to, before| {
        if stage == Stage::DataEnd && before == 0 && to == "reader2@example.net" {
            Action::Stall
        } else {
            Action::Accept
        }
    }));
    let mut setup = Setup::new(6);
    setup.smtp = "security = \"none\"\ntimeout = \"1s\"\n".to_owned();
    let project = setup.project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 4, "{first:?}");
    assert!(
        first.stdout.contains("5 sent, 1 to retry"),
        "{}",
        first.stdout
    );
    let state = status(&project);
    let failure = &state["failures"][0];
    assert_eq!(failure["email"], "reader2@example.net");
    assert!(
        failure["reply"]
            .as_str()
            .is_some_and(|reply| reply.contains("may have arrived")),
        "{failure}"
    );
    assert_eq!(run(&project, DAY_1_LATER).code, 0);
    assert_everyone_once(&server, 6);
}

#[test]
fn a_server_that_never_greets_fails_the_run_after_the_timeout() {
    let mut options = Options::accept_all();
    options.stall_greeting = true;
    let server = Server::start(options);
    let mut setup = Setup::new(5);
    setup.smtp = "security = \"none\"\ntimeout = \"1s\"\n".to_owned();
    let project = setup.project(&server);
    let run = run(&project, DAY_1);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr.contains("no greeting within 1s"),
        "{}",
        run.stderr
    );
    assert_eq!(step_counts(&status(&project), 0), (0, 0, 0));
}

#[test]
fn a_server_that_is_down_fails_the_run_at_once_with_one_message() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let project = Setup::new(50).project_on(port);
    let run = run(&project, DAY_1);
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        error_lines(&run),
        1,
        "one message, not one per subscriber: {}",
        run.stderr
    );
    assert!(run.stderr.lines().count() <= 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot open an SMTP session with 127.0.0.1:{port}: "
        )) && run.stderr.contains("Check [smtp] host and port")
            && run.stderr.contains("Nothing was sent."),
        "{}",
        run.stderr
    );
    let state = status(&project);
    assert_eq!(step_counts(&state, 0), (0, 0, 0));
    assert_eq!(state["failures"], Value::Array(Vec::new()));
}

#[test]
fn a_server_that_dies_mid_run_stops_the_run_and_the_rest_stays_due() {
    let server = Server::start(Options::with(|stage, to, _| {
        if stage == Stage::DataEnd && to == "reader100@example.net" {
            Action::AcceptThenGoDown
        } else {
            Action::Accept
        }
    }));
    let project = Setup::new(300).project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 6, "{first:?}");
    assert_eq!(error_lines(&first), 1, "{}", first.stderr);
    assert!(
        first.stderr.contains("The run stopped after"),
        "{}",
        first.stderr
    );
    // The first batch of 64 was recorded before reader100's batch began.
    let sent_before = server.accepted().len();
    assert!(sent_before > 64, "{sent_before}");
    let (sent, pending, failed) = step_counts(&status(&project), 0);
    assert_eq!(sent as usize, sent_before);
    assert_eq!(failed, 0);
    // At most the sessions in flight when it died were attempts; the rest
    // were never claimed or were released.
    assert!(pending <= 4, "{pending}");

    server.come_back();
    let second = run(&project, DAY_1_LATER);
    assert_eq!(second.code, 0, "{second:?}");
    assert_everyone_once(&server, 300);
}

/// Runs `openssl` with `args` in the project folder.
fn openssl(project: &Project, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(project.path(""))
        .output()
        .expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

fn self_signed(project: &Project) -> (Vec<u8>, Vec<u8>) {
    openssl(
        project,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.pem",
        ],
    );
    (
        std::fs::read(project.path("server.pem")).expect("certificate"),
        std::fs::read(project.path("server.key")).expect("key"),
    )
}

#[test]
fn starttls_with_a_trusted_self_signed_certificate_and_a_login() {
    let scratch = Project::empty();
    let (cert, key) = self_signed(&scratch);
    let mut options = Options::accept_all();
    options.tls = Some((cert.clone(), key));
    options.auth = true;
    let server = Server::start(options);
    let mut setup = Setup::new(5);
    setup.smtp = "security = \"starttls\"\nca_file = \"server.pem\"\nusername = \"coach\"\npassword_file = \"smtp-password\"\ntimeout = \"5s\"\n".to_owned();
    let project = setup.project(&server);
    project
        .write("server.pem", &cert)
        .write("smtp-password", "correct horse\n");
    let run = run(&project, DAY_1);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("correct horse") && !run.stderr.contains("correct horse"));
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 5);
    assert!(accepted.iter().all(|message| message.secure));
    let logins = server.logins();
    assert!(!logins.is_empty() && logins.len() <= 4, "{logins:?}");
    assert!(
        logins
            .iter()
            .all(|(user, password)| user == "coach" && password == "correct horse")
    );

    // Without ca_file the self-signed certificate is not trusted.
    let untrusted = setup.project(&server);
    untrusted.write("smtp-password", "correct horse\n");
    std::fs::write(
        untrusted.path("dripline.toml"),
        untrusted
            .read("dripline.toml")
            .replace("ca_file = \"server.pem\"\n", ""),
    )
    .expect("rewrite config");
    let refused = untrusted.dripline(&["run", "--now", DAY_1]);
    assert_eq!(refused.code, 6, "{refused:?}");
    assert!(
        refused.stderr.contains("STARTTLS failed")
            && !refused
                .stderr
                .contains("Connection error: Connection error"),
        "{}",
        refused.stderr
    );
    assert_eq!(server.accepted().len(), 5);
}

#[test]
fn implicit_tls_from_the_first_byte() {
    let scratch = Project::empty();
    let (cert, key) = self_signed(&scratch);
    let mut options = Options::accept_all();
    options.tls = Some((cert.clone(), key));
    options.implicit_tls = true;
    let server = Server::start(options);
    let mut setup = Setup::new(4);
    setup.smtp = "security = \"tls\"\nca_file = \"server.pem\"\n".to_owned();
    let project = setup.project(&server);
    project.write("server.pem", &cert);
    let run = run(&project, DAY_1);
    assert_eq!(run.code, 0, "{run:?}");
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 4);
    assert!(accepted.iter().all(|message| message.secure));
}

#[test]
fn credentials_never_go_over_an_unencrypted_connection_unless_security_none_says_so() {
    let mut options = Options::accept_all();
    options.auth = true;
    let server = Server::start(options);
    let mut setup = Setup::new(3);
    setup.smtp =
        "security = \"starttls\"\nusername = \"coach\"\npassword_file = \"smtp-password\"\n"
            .to_owned();
    let project = setup.project(&server);
    project.write("smtp-password", "correct horse\n");
    let refused = run(&project, DAY_1);
    assert_eq!(refused.code, 6, "{refused:?}");
    assert!(
        refused.stderr.contains("does not offer STARTTLS")
            && refused.stderr.contains("security = \"none\""),
        "{}",
        refused.stderr
    );
    assert!(server.logins().is_empty());
    assert!(server.accepted().is_empty());

    setup.smtp =
        "security = \"none\"\nusername = \"coach\"\npassword_file = \"smtp-password\"\n".to_owned();
    let plain = setup.project(&server);
    plain.write("smtp-password", "correct horse\n");
    let sent = run(&plain, DAY_1);
    assert_eq!(sent.code, 0, "{sent:?}");
    assert_eq!(server.accepted().len(), 3);
    assert!(!server.logins().is_empty());
}

#[test]
fn smtp_refuses_to_start_without_an_unsubscribe_method() {
    let server = Server::start(Options::accept_all());
    let project = Setup::new(3).project(&server);
    let config = project.read("dripline.toml");
    let without = config
        .replace("base_url = \"https://news.example.com/dripline\"\n", "")
        .replace("mailto = \"unsubscribe@example.com\"\n", "");
    project.write("dripline.toml", without);
    let run = run(&project, DAY_1);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("needs an unsubscribe method") && run.stderr.contains("base_url"),
        "{}",
        run.stderr
    );
    assert!(server.accepted().is_empty());
}

#[test]
fn send_test_sends_every_step_now_marked_test_and_touches_no_state() {
    let server = Server::start(Options::accept_all());
    let project = Setup::new(3).project(&server);
    let sent = project.dripline(&["send-test", "demo", "--to", "coach@example.org"]);
    assert_eq!(sent.code, 0, "{sent:?}");
    let subjects: Vec<String> = server
        .accepted()
        .iter()
        .map(|message| {
            assert_eq!(message.to, "coach@example.org");
            mail_parser::MessageParser::default()
                .parse(&message.data)
                .and_then(|parsed| parsed.subject().map(str::to_owned))
                .expect("subject")
        })
        .collect();
    assert_eq!(subjects, ["[TEST] Day 1: Hello", "[TEST] Day 2: More"]);
    let one = project.dripline(&[
        "send-test",
        "demo",
        "--to",
        "coach@example.org",
        "--step",
        "2",
    ]);
    assert_eq!(one.code, 0, "{one:?}");
    assert_eq!(server.accepted().len(), 3);
    assert!(!project.path("dripline.db").exists());
}

#[test]
fn one_hundred_messages_at_fifty_a_second_take_two_seconds_or_more() {
    let server = Server::start(Options::accept_all());
    let mut setup = Setup::new(100);
    setup.delivery = "max_per_second = 50";
    setup.steps = 1;
    let project = setup.project(&server);
    let config = project
        .read("dripline.toml")
        .replace("max_per_second = 0\n", "");
    project.write("dripline.toml", config);
    let started = Instant::now();
    let run = run(&project, DAY_1);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(server.accepted().len(), 100);
    // 99 intervals of 20 ms; a lower bound only.
    assert!(took.as_secs_f64() >= 1.9, "{took:?}");
}

#[test]
fn the_day_quota_holds_a_run_and_the_next_day_sends_the_rest() {
    let server = Server::start(Options::accept_all());
    let mut setup = Setup::new(50);
    setup.delivery = "max_per_day = 30";
    setup.steps = 1;
    let project = setup.project(&server);
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 0, "held back is not a failure: {first:?}");
    assert!(
        first.stdout.contains("30 sent, 0 to retry, 0 failed")
            && first.stdout.contains("20 held back"),
        "{}",
        first.stdout
    );
    let state = status(&project);
    assert_eq!(
        step_counts(&state, 0),
        (30, 0, 0),
        "held back is not an attempt"
    );
    assert_eq!(state["last_run"]["deferred"], 20);

    // The same day, a second run counts what the first one sent.
    let again = run(&project, DAY_1_LATER);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("0 sent") && again.stdout.contains("20 held back"),
        "{}",
        again.stdout
    );
    assert_eq!(server.accepted().len(), 30);

    let next = run(&project, DAY_2);
    assert_eq!(next.code, 0, "{next:?}");
    assert!(next.stdout.contains("20 sent"), "{}", next.stdout);
    assert_everyone_once(&server, 50);
}

/// Regression: a retry went out whenever its backoff ended, so a "morning"
/// email refused with 451 all day was delivered at 23:00. A retry keeps to
/// the catch-up window of its slot, like any email.
#[test]
fn a_retry_keeps_to_the_send_window_of_its_slot() {
    let server = Server::start(Options::with(|stage, to, before| {
        if to == "reader0@example.net" && stage == Stage::Rcpt && before < 7 {
            Action::Reply("451 4.3.0 mailbox busy, try again later")
        } else {
            Action::Accept
        }
    }));
    let mut setup = Setup::new(2);
    setup.steps = 1;
    let project = setup.project(&server);
    for hour in 8..=23 {
        let now = format!("2026-12-01T{hour:02}:00:00Z");
        let run = run(&project, &now);
        assert!(matches!(run.code, 0 | 4), "{now}: {run:?}");
    }
    // Seven refusals by 17:00; the backoff then ends at 22:20, more than
    // catch_up (12h) after the 08:00 slot: it waits for the next slot.
    assert_eq!(server.rcpt_count("reader0@example.net"), 7);
    assert_eq!(
        copies(&server.accepted(), "Day 1: Hello").get("reader0@example.net"),
        None
    );

    assert_eq!(run(&project, "2026-12-02T07:00:00Z").code, 0);
    assert_eq!(server.rcpt_count("reader0@example.net"), 7);
    let next_slot = run(&project, DAY_2);
    assert_eq!(next_slot.code, 0, "{next_slot:?}");
    assert_eq!(
        copies(&server.accepted(), "Day 1: Hello").get("reader0@example.net"),
        Some(&1)
    );
}

/// A server that accepts sessions but stops answering costs a few
/// timeouts, not one per subscriber: after three in a row the run stops,
/// and the emails it did not try stay due without an attempt spent.
#[test]
fn a_server_that_stops_answering_stops_the_run_after_a_few_timeouts() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let stalling = Arc::new(AtomicBool::new(true));
    let script = Arc::clone(&stalling);
    let server = Server::start(Options::with(move |stage, _, _| {
        if stage == Stage::Rcpt && script.load(Ordering::SeqCst) {
            Action::Stall
        } else {
            Action::Accept
        }
    }));
    let mut setup = Setup::new(40);
    setup.steps = 1;
    setup.smtp = "security = \"none\"\ntimeout = \"1s\"\n".to_owned();
    let project = setup.project(&server);
    let stopped = run(&project, DAY_1);
    assert_eq!(stopped.code, 6, "{stopped:?}");
    assert!(
        stopped.stderr.contains("stopped answering"),
        "{}",
        stopped.stderr
    );
    // Without the breaker every one of the 40 would wait out its timeout.
    let tried: usize = (0..40).map(|n| server.rcpt_count(&address(n))).sum();
    assert!(tried < 10, "{tried} recipients were tried");
    let (sent, pending, failed) = step_counts(&status(&project), 0);
    assert_eq!((sent, failed), (0, 0));
    assert!(
        pending < 40,
        "the untried emails were released: {pending} pending"
    );

    stalling.store(false, Ordering::SeqCst);
    let resumed = run(&project, DAY_1_LATER);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_everyone_once(&server, 40);
}

/// An unsubscribe that lands while a long run is sending is honoured by
/// the rest of that run, not only by the next one.
#[test]
fn an_unsubscribe_during_a_run_is_honoured_by_the_rest_of_it() {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    let project_dir: Arc<Mutex<Option<PathBuf>>> = Arc::new(Mutex::new(None));
    let dir = Arc::clone(&project_dir);
    let server = Server::start(Options::with(move |stage, to, _| {
        // While the first message is being handed over, the subscriber
        // far down the list clicks unsubscribe.
        if stage == Stage::Rcpt && to == "reader0@example.net" {
            let dir = dir.lock().unwrap().clone().expect("the project exists");
            let status = Command::new(env!("CARGO_BIN_EXE_dripline"))
                .args(["unsubscribe", "reader150@example.net"])
                .current_dir(dir)
                .status()
                .expect("run dripline unsubscribe");
            assert!(status.success());
        }
        Action::Accept
    }));
    let mut setup = Setup::new(200);
    setup.steps = 1;
    let project = setup.project(&server);
    *project_dir.lock().unwrap() = Some(project.path(""));
    let run = run(&project, DAY_1);
    assert_eq!(run.code, 0, "{run:?}");
    let copies = copies(&server.accepted(), "Day 1: Hello");
    assert_eq!(copies.get("reader150@example.net"), None);
    assert_eq!(copies.len(), 199);
}
