//! Several instances, one PostgreSQL: every command on a state in a real
//! PostgreSQL database (tests/postgres.rs), `status` showing the live
//! instances and their claims in flight, and the URL's password never
//! shown.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postgres;
use crate::serve::{Service, status_json, wait_for};
use crate::smtp::server::{Action, Options, Server, Stage};
use crate::support::{Project, Run};

const URL_ENV: &str = "DRIPLINE_DATABASE_URL";

/// A project whose state is the database in `$DRIPLINE_DATABASE_URL`.
fn project(delivery: &str, subscribers: usize) -> Project {
    let project = Project::empty();
    let mut list = String::from("email,name\n");
    for n in 0..subscribers {
        list.push_str(&format!("reader{n}@example.org,Reader {n}\n"));
    }
    project
        .write(
            "dripline.toml",
            format!(
                "timezone = \"UTC\"\n\n[sender]\nfrom = \"Coach <coach@coaching-demo.net>\"\n\n\
                 [[drip]]\nsequence = \"demo\"\nlist = \"list.csv\"\n\n{delivery}\n\
                 [unsubscribe]\nbase_url = \"https://news.example.com/dripline\"\n\n\
                 [state]\nurl_env = \"{URL_ENV}\"\ninstance_timeout = \"1s\"\n\n\
                 [serve]\nlisten = \"127.0.0.1:0\"\n"
            ),
        )
        .write("list.csv", list)
        .write(".dripline-secret", format!("{}\n", "cd".repeat(32)))
        .write(
            "sequences/demo/sequence.toml",
            "name = \"Demo\"\nsend_at = \"0 8 * * *\"\n",
        )
        .write(
            "sequences/demo/01-hello.md",
            "+++\nsubject = \"Day 1\"\n+++\nHello.\n",
        )
        .write(
            "sequences/demo/02-more.md",
            "+++\nsubject = \"Day 2\"\nwait_days = 1\n+++\nMore.\n",
        );
    project
}

fn dripline(project: &Project, url: &str, args: &[&str]) -> Run {
    project.dripline_with(args, &[(URL_ENV, url)])
}

fn ok(project: &Project, url: &str, args: &[&str]) -> Run {
    let run = dripline(project, url, args);
    assert_eq!(
        run.code, 0,
        "dripline {args:?}: {}{}",
        run.stdout, run.stderr
    );
    run
}

fn status(project: &Project, url: &str) -> Value {
    serde_json::from_str(&ok(project, url, &["status", "--json"]).stdout).expect("status JSON")
}

fn sent(status: &Value) -> Vec<u64> {
    status["sequences"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["sent"].as_u64().expect("sent"))
        .collect()
}

fn outbox_count(project: &Project) -> usize {
    project
        .files()
        .iter()
        .filter(|file| file.starts_with("outbox/") && file.ends_with(".eml"))
        .count()
}

#[test]
fn run_status_plan_check_and_suppression_work_on_postgres() {
    let url = postgres::database();
    let project = project("[delivery]\ntransport = \"outbox\"\n", 3);
    ok(&project, &url, &["check"]);
    let run = ok(&project, &url, &["run", "--now", "2026-12-01T08:00:00Z"]);
    assert!(run.stdout.contains(": 3 sent"), "{}", run.stdout);
    assert_eq!(outbox_count(&project), 3);
    let state = status(&project, &url);
    assert_eq!(sent(&state), [3, 0]);
    assert_eq!(
        state["instances"],
        serde_json::json!([]),
        "a finished run deregisters"
    );
    assert_eq!(state["last_run"]["sent"], 3);

    let plan = ok(
        &project,
        &url,
        &["plan", "--now", "2026-12-01T09:00:00Z", "--days", "3"],
    );
    assert!(plan.stdout.contains("2026-12-02"), "{}", plan.stdout);

    let unsubscribe = ok(&project, &url, &["unsubscribe", "Reader0@example.org"]);
    assert!(
        unsubscribe.stdout.contains("is unsubscribed"),
        "{}",
        unsubscribe.stdout
    );
    let run = ok(&project, &url, &["run", "--now", "2026-12-02T08:00:00Z"]);
    assert!(run.stdout.contains(": 2 sent"), "{}", run.stdout);
    let state = status(&project, &url);
    assert_eq!(state["suppressed"][0]["email"], "reader0@example.org");
    assert_eq!(state["suppressed"][0]["reason"], "unsubscribed");
    ok(&project, &url, &["resubscribe", "reader0@example.org"]);
    let run = ok(&project, &url, &["run", "--now", "2026-12-02T12:00:00Z"]);
    assert!(run.stdout.contains(": 1 sent"), "{}", run.stdout);
    assert_eq!(sent(&status(&project, &url)), [3, 3]);
    let one = ok(
        &project,
        &url,
        &["status", "--subscriber", "reader0@example.org"],
    );
    assert_eq!(one.stdout.matches(": sent ").count(), 2, "{}", one.stdout);
    // A renamed step is reported by check from the database too.
    std::fs::rename(
        project.path("sequences/demo/02-more.md"),
        project.path("sequences/demo/02-renamed.md"),
    )
    .expect("rename");
    let check = dripline(&project, &url, &["check"]);
    assert!(
        check.stderr.contains("the state file knows step `more`"),
        "{}",
        check.stderr
    );
}

#[test]
fn the_database_password_never_shows() {
    let project = project("[delivery]\ntransport = \"outbox\"\n", 1);
    // Nothing listens on port 9: the connection fails and says so.
    let url = "postgres://drip:hunter2@127.0.0.1:9/drip";
    for args in [
        &["status"][..],
        &["run", "--now", "2026-12-01T08:00:00Z"],
        &["check"],
    ] {
        let run = dripline(&project, url, args);
        let output = format!("{}{}", run.stdout, run.stderr);
        // check only warns: the project itself is fine.
        assert_eq!(run.code == 0, args == ["check"], "{args:?}: {output}");
        assert!(
            !output.contains("hunter2"),
            "{args:?} shows the password: {output}"
        );
        assert!(
            output.contains("postgres://drip:***@127.0.0.1:9/drip"),
            "{args:?}: {output}"
        );
    }
    let unset = project.dripline(&["status"]);
    assert_eq!(unset.code, 3, "{}", unset.stderr);
    assert!(
        unset
            .stderr
            .contains("url_env names `DRIPLINE_DATABASE_URL`, which is not set"),
        "{}",
        unset.stderr
    );
    project.write(
        "dripline.toml",
        project.read("dripline.toml").replace(
            "url_env = \"DRIPLINE_DATABASE_URL\"",
            "url = \"postgres://drip:hunter2@db/drip\"",
        ),
    );
    let refused = project.dripline(&["status"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("url carries a password"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("hunter2"), "{}", refused.stderr);
}

#[test]
fn status_lists_live_instances_and_their_claims_in_flight() {
    let url = postgres::database();
    // The server takes the messages and never answers: they stay in flight.
    let server = Server::start(Options::with(|stage, _, _| match stage {
        Stage::Rcpt => Action::Accept,
        Stage::DataEnd => Action::Stall,
    }));
    let delivery = format!(
        "[delivery]\ntransport = \"smtp\"\nconcurrency = 2\nmax_per_second = 0\n\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout = \"60s\"\n",
        server.port
    );
    let project = project(&delivery, 5);
    // 08:00 UTC today: due now, whatever the hour (catch-up is 12 hours
    // by default; a day-long one covers any time of day).
    project.write(
        "dripline.toml",
        project.read("dripline.toml").replace(
            "max_per_second = 0\n",
            "max_per_second = 0\ncatch_up = \"24h\"\n",
        ),
    );
    project.write(
        "sequences/demo/sequence.toml",
        "name = \"Demo\"\nsend_at = \"* * * * *\"\n",
    );
    let mut serve = project
        .command(&["serve"])
        .env(URL_ENV, &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let state = status(&project, &url);
        if state["instances"][0]["in_flight"].as_u64() == Some(5) {
            break state;
        }
        assert!(Instant::now() < deadline, "no claims in flight: {state:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(state["instances"].as_array().map(Vec::len), Some(1));
    assert_eq!(state["instances"][0]["alive"], true);
    assert_eq!(state["instances"][0]["pid"], serve.id());
    let text = ok(&project, &url, &["status"]).stdout;
    assert!(text.contains(&format!("(pid {})", serve.id())), "{text}");
    assert!(text.contains("5 emails in flight"), "{text}");
    serve.kill().expect("SIGKILL");
    serve.wait().expect("serve ends");
    std::thread::sleep(Duration::from_millis(1700));
    let text = ok(&project, &url, &["status"]).stdout;
    assert!(
        text.contains("silent: its claims go to the others"),
        "{text}"
    );
    assert!(server.accepted().is_empty());
}

#[test]
fn state_copy_moves_a_sqlite_state_into_an_empty_database_once() {
    let url = postgres::database();
    let project = project("[delivery]\ntransport = \"outbox\"\n", 3);
    let postgres_config = project.read("dripline.toml");
    project.write(
        "dripline.toml",
        postgres_config.replace(&format!("url_env = \"{URL_ENV}\"\n"), ""),
    );
    let run = ok(&project, &url, &["run", "--now", "2026-12-01T08:00:00Z"]);
    assert!(run.stdout.contains(": 3 sent"), "{}", run.stdout);
    ok(&project, &url, &["unsubscribe", "reader2@example.org"]);

    let copy = ok(&project, &url, &["state", "copy", "--to-env", URL_ENV]);
    assert!(
        copy.stdout
            .contains("Copied 3 enrollments, 3 deliveries, 1 suppressions, 0 signups and 1 runs"),
        "{}",
        copy.stdout
    );
    let again = dripline(&project, &url, &["state", "copy", "--to", &url]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("already holds dripline state"),
        "{}",
        again.stderr
    );

    project.write("dripline.toml", postgres_config);
    let state = status(&project, &url);
    assert_eq!(sent(&state), [3, 0]);
    assert_eq!(state["suppressed"][0]["email"], "reader2@example.org");
    let run = ok(&project, &url, &["run", "--now", "2026-12-02T08:00:00Z"]);
    assert!(run.stdout.contains(": 2 sent"), "{}", run.stdout);
    assert_eq!(sent(&status(&project, &url)), [3, 2]);
    assert_eq!(outbox_count(&project), 5, "nobody got step 1 again");
}

/// Two `dripline serve` on one database, as on two hosts: the emails due
/// go out once between them, and either one's endpoint honours a link
/// from an email the other sent.
#[test]
fn two_services_share_the_sending_and_each_answers_unsubscribe_links() {
    let url = postgres::database();
    let project = project(
        "[delivery]\ntransport = \"outbox\"\ncatch_up = \"24h\"\n",
        40,
    );
    project.write(
        "dripline.toml",
        project.read("dripline.toml").replace(
            &format!("url_env = \"{URL_ENV}\""),
            &format!("url = \"{url}\""),
        ),
    );
    project.write(
        "sequences/demo/sequence.toml",
        "name = \"Demo\"\nsend_at = \"* * * * *\"\n",
    );
    let first = Service::start(&project);
    let second = Service::start(&project);
    wait_for("40 emails", Duration::from_secs(20), || {
        outbox_count(&project) >= 40
    });
    std::thread::sleep(Duration::from_millis(300));
    let mails: Vec<String> = project
        .files()
        .into_iter()
        .filter(|file| file.starts_with("outbox/") && file.ends_with(".eml"))
        .collect();
    assert_eq!(mails.len(), 40, "each email once between the two");
    let state = status_json(&project);
    assert_eq!(
        state["instances"].as_array().map(Vec::len),
        Some(2),
        "{state:#}"
    );

    // Headers unfolded, so the link reads on one line.
    let email = project
        .read(&mails[0])
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let message = mail_parser::MessageParser::default()
        .parse_headers(email.as_bytes())
        .expect("a message");
    let to = message
        .to()
        .and_then(|to| to.first())
        .and_then(|to| to.address())
        .expect("a To address")
        .to_lowercase();
    let token = email
        .split("https://news.example.com/dripline/u/")
        .nth(1)
        .and_then(|rest| rest.split(['>', '"', '\r', '\n', ' ']).next())
        .expect("an unsubscribe link");
    for service in [&first, &second] {
        let reply = service.request(
            "POST",
            &format!("/u/{token}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"List-Unsubscribe=One-Click",
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let state = status_json(&project);
    assert_eq!(state["suppressed"][0]["email"], to.as_str(), "{state:#}");
    first.terminate(Duration::from_secs(15));
    second.terminate(Duration::from_secs(15));
    assert_eq!(status_json(&project)["instances"], serde_json::json!([]));
}
