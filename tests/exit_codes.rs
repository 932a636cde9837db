//! Every command through its documented exit codes (README "Exit codes"):
//! 0 success, 2 usage, 3 invalid input, 4 some deliveries failed, 5 locked
//! by another instance, 6 mail server unreachable.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::write_sequence;
use crate::smtp::server::{Action, Options, Server, Stage};
use crate::support::{Project, Run};

const NOW: &str = "2026-12-01T14:00:00Z";

fn assert_code(project: &Project, args: &[&str], code: i32) -> Run {
    let run = project.dripline(args);
    assert_eq!(
        run.code,
        code,
        "dripline {}: expected exit {code}\n{}{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run
}

/// A project sending through SMTP on `port` (nothing need listen there).
fn smtp_project(port: u16) -> Project {
    let project = Project::empty();
    project.write(
        "dripline.toml",
        format!(
            "[sender]\nfrom = \"Coach <coach@coaching-demo.net>\"\n\n[[drip]]\nsequence = \"course\"\nlist = \"list.csv\"\n\n[delivery]\ntransport = \"smtp\"\nmax_per_second = 0\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout = \"5s\"\n\n[unsubscribe]\nmailto = \"unsubscribe@coaching-demo.net\"\n"
        ),
    );
    project.write(".dripline-secret", format!("{}\n", "3f".repeat(32)));
    project.write(
        "list.csv",
        "email,name\nann@coaching-demo.net,Ann\nbo@coaching-demo.net,Bo\n",
    );
    write_sequence(&project, "course", 2);
    project
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Holds the state lock as a running `run` or `serve` would.
fn hold_lock(project: &Project) -> fs::File {
    let file = fs::File::create(project.path("dripline.db.lock")).expect("lock file");
    file.try_lock().expect("take the lock");
    file
}

#[test]
fn every_command_exits_0_2_and_3_as_documented() {
    let project = Project::example();
    project.write("article.txt", "A Short Title\n\nOne paragraph of text that says enough to be a day of the course, with more than forty words in it so that the splitter keeps it whole and writes one email from it, which is all this test needs from it.\n");
    let success: [&[&str]; 10] = [
        &["check"],
        &["preview", "--to", "out"],
        &["run", "--now", NOW],
        &[
            "send-test",
            "gut-immune",
            "--to",
            "me@coaching-demo.net",
            "--step",
            "1",
        ],
        &["plan", "--now", NOW],
        &["status"],
        &["unsubscribe", "someone@coaching-demo.net"],
        &["resubscribe", "someone@coaching-demo.net"],
        &["split", "article.txt", "--name", "short"],
        &["init", "fresh"],
    ];
    for args in success {
        assert_code(&project, args, 0);
    }

    let usage: [&[&str]; 14] = [
        &["check", "--bogus"],
        &["preview", "no-such-sequence"],
        &["preview", "--subscriber", "nobody@coaching-demo.net"],
        &["run", "--now", "yesterday"],
        &["send-test", "gut-immune", "--to", "bad address"],
        &[
            "send-test",
            "gut-immune",
            "--to",
            "me@coaching-demo.net",
            "--step",
            "99",
        ],
        &[
            "send-test",
            "no-such-sequence",
            "--to",
            "me@coaching-demo.net",
        ],
        &["plan", "--days", "soon"],
        &["status", "--bogus"],
        &["unsubscribe", "bad address"],
        &["resubscribe", "bad address"],
        &["serve", "extra"],
        &["split", "article.txt"],
        &["init", "--bogus"],
    ];
    for args in usage {
        assert_code(&project, args, 2);
    }
    let nobody = assert_code(
        &project,
        &["preview", "--subscriber", "nobody@coaching-demo.net"],
        2,
    );
    assert_eq!(
        nobody.stderr,
        "error: --subscriber nobody@coaching-demo.net: not on any list of this project; leave out --subscriber to preview for a sample subscriber\n"
    );
    let bad = assert_code(&project, &["unsubscribe", "bad address"], 2);
    assert!(
        bad.stderr.contains("`bad address` is not an email address"),
        "{}",
        bad.stderr
    );

    project.write("empty.txt", "");
    assert_code(&project, &["split", "empty.txt", "--name", "empty"], 3);
    assert_code(&project, &["init", "."], 3);
    project.write("dripline.toml", "[sender]\nfrom = \"not an address\"\n");
    let invalid: [&[&str]; 9] = [
        &["check"],
        &["preview"],
        &["run", "--now", NOW],
        &["send-test", "gut-immune", "--to", "me@coaching-demo.net"],
        &["plan"],
        &["status"],
        &["unsubscribe", "someone@coaching-demo.net"],
        &["resubscribe", "someone@coaching-demo.net"],
        &["serve"],
    ];
    for args in invalid {
        assert_code(&project, args, 3);
    }
}

#[test]
fn run_and_send_test_exit_4_when_deliveries_fail_and_6_when_the_server_is_down() {
    let server = Server::start(Options::with(|stage, _, _| match stage {
        Stage::Rcpt => Action::Reply("451 4.7.1 greylisted, try again later"),
        _ => Action::Accept,
    }));
    let project = smtp_project(server.port);
    assert_code(&project, &["run", "--now", NOW], 4);
    assert_code(
        &project,
        &["send-test", "course", "--to", "me@coaching-demo.net"],
        4,
    );

    let down = smtp_project(closed_port());
    let run = assert_code(&down, &["run", "--now", NOW], 6);
    assert!(run.stderr.contains("127.0.0.1"), "{}", run.stderr);
    assert_code(
        &down,
        &["send-test", "course", "--to", "me@coaching-demo.net"],
        6,
    );
}

#[test]
fn run_and_serve_exit_5_while_another_holds_the_state_and_serve_stops_with_0() {
    let project = Project::example();
    let config = project.read("dripline.toml");
    assert!(!config.contains("[serve]"), "the example sets no [serve]");
    project.write(
        "dripline.toml",
        format!("{config}\n[serve]\nlisten = \"127.0.0.1:0\"\ntick = \"0 0 1 1 *\"\n"),
    );
    {
        let _lock = hold_lock(&project);
        assert_code(&project, &["run", "--now", NOW], 5);
        assert_code(&project, &["serve"], 5);
    }

    let mut serve = Command::new(env!("CARGO_BIN_EXE_dripline"))
        .arg("serve")
        .current_dir(project.path("."))
        .env_remove("DRIPLINE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let started = Instant::now();
    while !project.path("dripline.db").exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "serve started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = serve.wait().expect("serve exits");
    assert_eq!(status.code(), Some(0));
}
