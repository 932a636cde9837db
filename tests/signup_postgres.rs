//! Signups with the state in a real PostgreSQL database (tests/postgres.rs):
//! the hosted form posted over HTTP to `dripline serve`, the confirmation
//! read from the outbox, the link pressed, and `dripline run` sending day
//! 1; and two instances on one database, where a signup confirmed through
//! one is mailed, enrolled and sent once between them; and `state copy`
//! moving signups from SQLite.

use std::time::Duration;

use crate::postgres;
use crate::serve::Service;
use crate::signup::{
    FORM, confirmations, course_emails_to, free_port, link_to, post, project, status_text,
};
use crate::support::Project;

/// The signup project serving on `port`, its state in the database `url`,
/// with a fixed secret so that several such projects share their tokens.
fn on_postgres(port: u16, url: &str) -> Project {
    let project = project(port, "https://coach.example.com", "");
    let config = project
        .read("dripline.toml")
        .replace("path = \"dripline.db\"", &format!("url = \"{url}\""));
    project
        .write("dripline.toml", config)
        .write(".dripline-secret", format!("{}\n", "ab".repeat(32)));
    project
}

/// Waits for the pass the service runs at start (the list's subscribers
/// get day 1), so that the signup's day 1 is left to `dripline run`.
fn first_pass_done(service: &Service) {
    crate::serve::wait_for("the first pass", Duration::from_secs(20), || {
        service.log().contains("pass: ")
    });
}

/// The path of `link`, a link to the service on `port`.
fn path_of(link: &str, port: u16) -> String {
    link.strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("{link} is no link to the service"))
        .to_owned()
}

#[test]
fn a_signup_through_serve_on_postgres_is_confirmed_and_gets_day_one() {
    let port = free_port();
    let project = on_postgres(port, &postgres::database());
    let service = Service::start(&project);
    first_pass_done(&service);
    let own = format!("http://127.0.0.1:{port}");
    let posted = post(
        &service,
        "/s/gut-immune",
        Some(&own),
        "email=Nina%40Example.org&name=Nina+Simone&company=ACME&website=",
    );
    assert_eq!(posted.status, 200, "{posted:?}");
    assert!(posted.body.contains("Check your inbox"), "{}", posted.body);
    let path = path_of(&link_to(&project, "Nina@Example.org"), port);
    assert!(status_text(&project).contains("0 confirmed, 1 waiting"));

    let done = service.request("POST", &path, &[("Content-Type", FORM)], b"");
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.body.contains("You are subscribed"), "{}", done.body);
    assert!(
        status_text(&project).contains("1 confirmed, 0 waiting"),
        "{}",
        status_text(&project)
    );
    let (status, _) = service.terminate(Duration::from_secs(15));
    assert!(status.success());
    assert!(
        !project.path("dripline.db").exists(),
        "the state is in PostgreSQL, not a file"
    );

    assert!(course_emails_to(&project, "Nina@Example.org").is_empty());
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent = course_emails_to(&project, "Nina@Example.org");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Day 1"), "{sent:?}");
}

#[test]
fn two_instances_mail_enroll_and_send_a_signup_once() {
    let url = postgres::database();
    let (first_port, second_port) = (free_port(), free_port());
    let first = on_postgres(first_port, &url);
    // The second instance listens elsewhere; its links, like the first's,
    // name the public base_url.
    let second = on_postgres(first_port, &url);
    second.write(
        "dripline.toml",
        second.read("dripline.toml").replace(
            &format!("listen = \"127.0.0.1:{first_port}\""),
            &format!("listen = \"127.0.0.1:{second_port}\""),
        ),
    );
    let first_service = Service::start(&first);
    let second_service = Service::start(&second);
    let own = format!("http://127.0.0.1:{first_port}");
    let posted = post(
        &second_service,
        "/s/gut-immune",
        Some(&own),
        "email=omar%40example.net",
    );
    assert_eq!(posted.status, 200, "{posted:?}");
    // Either instance's sender may mail it, never both.
    crate::serve::wait_for("the confirmation", Duration::from_secs(10), || {
        confirmations(&first).len() + confirmations(&second).len() == 1
    });
    std::thread::sleep(Duration::from_millis(500));
    let mailed_by = if confirmations(&first).is_empty() {
        &second
    } else {
        &first
    };
    assert_eq!(
        confirmations(&first).len() + confirmations(&second).len(),
        1,
        "one confirmation email between the two"
    );

    // Confirmed through the first, whichever sent the link.
    let path = path_of(&link_to(mailed_by, "omar@example.net"), first_port);
    for service in [&first_service, &second_service] {
        let done = service.request("POST", &path, &[("Content-Type", FORM)], b"");
        assert!(done.body.contains("You are subscribed"), "{}", done.body);
    }
    assert!(status_text(&second).contains("1 confirmed, 0 waiting"));
    for service in [first_service, second_service] {
        let (status, _) = service.terminate(Duration::from_secs(15));
        assert!(status.success());
    }

    // Two passes at once, one per instance: day 1 goes out once between
    // them (and the passes each service ran at start).
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&first, &second]
            .map(|project| scope.spawn(move || project.dripline(&["run"])))
            .into_iter()
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a run"))
            .collect()
    });
    for run in &runs {
        assert_eq!(run.code, 0, "{run:?}");
    }
    let mut sent = course_emails_to(&first, "omar@example.net");
    sent.extend(course_emails_to(&second, "omar@example.net"));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Day 1"), "{sent:?}");
}

#[test]
fn state_copy_moves_signups_with_their_consent_into_postgres() {
    let port = free_port();
    let project = project(port, "https://coach.example.com", "");
    let service = Service::start(&project);
    let own = format!("http://127.0.0.1:{port}");
    for body in ["email=nina%40example.org", "email=omar%40example.net"] {
        assert_eq!(
            post(&service, "/s/gut-immune", Some(&own), body).status,
            200
        );
    }
    let path = path_of(&link_to(&project, "nina@example.org"), port);
    link_to(&project, "omar@example.net");
    let done = service.request("POST", &path, &[("Content-Type", FORM)], b"");
    assert!(done.body.contains("You are subscribed"), "{}", done.body);
    let (status, _) = service.terminate(Duration::from_secs(15));
    assert!(status.success());

    let url = postgres::database();
    let copy = project.dripline(&["state", "copy", "--to", &url]);
    assert_eq!(copy.code, 0, "{copy:?}");
    assert!(copy.stdout.contains(", 2 signups and "), "{}", copy.stdout);
    let config = project
        .read("dripline.toml")
        .replace("path = \"dripline.db\"", &format!("url = \"{url}\""));
    project.write("dripline.toml", config);
    std::fs::remove_file(project.path("dripline.db")).expect("the SQLite state");

    assert!(
        status_text(&project).contains("1 confirmed, 1 waiting"),
        "{}",
        status_text(&project)
    );
    let export = project.dripline(&["export", "gut-immune"]);
    assert_eq!(export.code, 0, "{export:?}");
    let nina = export
        .stdout
        .lines()
        .find(|line| line.starts_with("nina@example.org,"))
        .unwrap_or_else(|| panic!("no consent row: {}", export.stdout));
    assert!(
        nina.contains("hosted") && nina.contains("127.0.0.1"),
        "{nina}"
    );
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(course_emails_to(&project, "nina@example.org").len(), 1);
    assert!(course_emails_to(&project, "omar@example.net").is_empty());
}
