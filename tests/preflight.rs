//! The preflight of `transport = "smtp"`: the starter values of `dripline
//! init` and an unreachable unsubscribe link never reach a subscriber.
//! Every message is pinned word for word.

use crate::smtp::server::{Options, Server};
use crate::support::Project;

const FROM: &str = "error: dripline.toml: [sender] from `you@example.com` is a placeholder address (example.com, .test and .invalid domains receive no mail and fail SPF and DMARC): put your own, e.g. from = \"Your Name <you@yourdomain.com>\"";
const POSTAL: &str = "error: dripline.toml: [sender] postal_address is the sample `123 Main St, Springfield` of `dripline init`: put the postal address every footer must show (CAN-SPAM)";
const LOOPBACK: &str = "error: dripline.toml: [unsubscribe] base_url `http://127.0.0.1:8025` is on a loopback address, which no subscriber can reach: their unsubscribe links would not work; set the public https URL where `dripline serve` answers (behind a TLS proxy, see docs/operations.md), e.g. base_url = \"https://news.yourdomain.com/dripline\"";
const HTTP: &str = "warning: dripline.toml: [unsubscribe] base_url `http://127.0.0.1:8025` is http: the emails carry no one-click unsubscribe (List-Unsubscribe-Post needs https), which Gmail and Yahoo require of bulk senders; serve it over https";

/// The project `dripline init` makes, switched to SMTP on `server`.
fn starter_on_smtp(server: &Server) -> Project {
    let project = Project::empty();
    let init = project.dripline(&["init", "."]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let config = project
        .read("dripline.toml")
        .replace("transport = \"outbox\"", "transport = \"smtp\"")
        .replace(
            "# [smtp]\n",
            &format!(
                "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout = \"5s\"\n",
                server.port
            ),
        );
    project.write("dripline.toml", config);
    project
}

/// Regression: `check` and `run` accepted the starter values with SMTP, and
/// 52 emails went out with the sample postal address and unsubscribe
/// links on 127.0.0.1.
#[test]
fn the_starter_values_stop_check_run_and_serve_with_smtp() {
    let server = Server::start(Options::accept_all());
    let project = starter_on_smtp(&server);

    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 3, "{}{}", check.stdout, check.stderr);
    assert_eq!(
        check.stderr,
        format!("{FROM}\n{POSTAL}\n{LOOPBACK}\n{HTTP}\n")
    );

    for command in [&["run"][..], &["serve"][..]] {
        let refused = project.dripline(command);
        assert_eq!(refused.code, 3, "{command:?}: {}", refused.stderr);
        for message in [FROM, POSTAL, LOOPBACK, HTTP] {
            assert!(
                refused.stderr.contains(message),
                "{command:?}: no `{message}` in:\n{}",
                refused.stderr
            );
        }
    }
    assert!(server.accepted().is_empty(), "nothing was sent");
    assert_eq!(server.connections(), 0, "not even a session was opened");
}

/// A test to oneself may go with the placeholders: `send-test` says what
/// `run` would refuse and sends.
#[test]
fn send_test_sends_with_the_starter_values_saying_so() {
    let server = Server::start(Options::accept_all());
    let project = starter_on_smtp(&server);
    let sent = project.dripline(&["send-test", "welcome", "--to", "coach@coaching-demo.net"]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    for message in [FROM, POSTAL, LOOPBACK] {
        let warning = message.replacen("error:", "warning:", 1);
        assert!(
            sent.stderr.contains(&warning),
            "no `{warning}` in:\n{}",
            sent.stderr
        );
    }
    assert!(
        sent.stderr.contains("warning: send-test sends anyway, to coach@coaching-demo.net only; `dripline run` and `dripline serve` refuse to start until the errors above are fixed"),
        "{}",
        sent.stderr
    );
    assert_eq!(server.accepted().len(), 2);
}

/// With real values, an http base_url is a warning that names its cost,
/// and the emails go, without List-Unsubscribe-Post.
#[test]
fn an_http_base_url_is_a_warning_and_costs_the_one_click_header() {
    let server = Server::start(Options::accept_all());
    let project = starter_on_smtp(&server);
    let config = project
        .read("dripline.toml")
        .replace("you@example.com", "coach@coaching-demo.net")
        .replace(
            "123 Main St, Springfield",
            "42 Harbour Road, Portsmouth PO1 2AB",
        )
        .replace(
            "http://127.0.0.1:8025",
            "http://news.coaching-demo.net/dripline",
        );
    project.write("dripline.toml", config);
    let warning = "warning: dripline.toml: [unsubscribe] base_url `http://news.coaching-demo.net/dripline` is http: the emails carry no one-click unsubscribe (List-Unsubscribe-Post needs https), which Gmail and Yahoo require of bulk senders; serve it over https";

    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(check.stderr.contains(warning), "{}", check.stderr);
    let run = project.dripline(&["run", "--now", "2026-12-01T10:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 2, "the two starter subscribers");
    for message in accepted {
        let text = String::from_utf8_lossy(&message.data);
        assert!(
            text.contains("List-Unsubscribe: <http://news.coaching-demo.net/dripline/u/"),
            "{text}"
        );
        assert!(!text.contains("List-Unsubscribe-Post"), "{text}");
    }
}
