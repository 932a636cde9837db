//! Signups with double opt-in: the real `dripline serve` on 127.0.0.1, real
//! HTTP posts and a real headless Chromium, the confirmation read from the
//! outbox, and the next pass (`dripline run`) sending day 1.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use chrono::Utc;
use mail_parser::MessageParser;

use crate::serve::{Reply, Service, find_program, outbox, secret, wait_for, webdriver};
use crate::smtp::server::{Action, Options, Server, Stage};
use crate::support::Project;

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The example project with a signup form for gut-immune, serving on
/// `port` (its base_url), with `allowed` as the embedding site.
pub(crate) fn project(port: u16, allowed: &str, extra: &str) -> Project {
    let project = Project::example();
    let config = project
        .read("dripline.toml")
        .replace("http://127.0.0.1:8025", &format!("http://127.0.0.1:{port}"));
    project.write(
        "dripline.toml",
        format!(
            "{config}\n[serve]\nlisten = \"127.0.0.1:{port}\"\ntick = \"0 0 1 1 *\"\n\n[signup.gut-immune]\nallowed_origins = [\"{allowed}\"]\nfields = [\"company\"]\n{extra}"
        ),
    );
    project
}

/// The confirmation emails in the outbox, as (To, text part).
pub(crate) fn confirmations(project: &Project) -> Vec<(String, String)> {
    outbox(project)
        .iter()
        .filter_map(|raw| {
            let message = MessageParser::default().parse(raw.as_bytes())?;
            let subject = message.subject()?;
            subject.starts_with("Please confirm").then(|| {
                let to = message
                    .to()
                    .and_then(|to| to.first())
                    .and_then(|to| to.address())
                    .unwrap_or_default()
                    .to_owned();
                (to, message.body_text(0).unwrap_or_default().into_owned())
            })
        })
        .collect()
}

/// The confirmation link of the one email to `to`.
pub(crate) fn link_to(project: &Project, to: &str) -> String {
    wait_for("the confirmation email", Duration::from_secs(10), || {
        confirmations(project)
            .iter()
            .any(|(address, _)| address == to)
    });
    let found = confirmations(project);
    let (_, text) = found
        .iter()
        .find(|(address, _)| address == to)
        .expect("an email");
    text.split_whitespace()
        .find(|word| word.contains("/c/"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_owned()
}

/// The emails of the course to `to`, by subject.
pub(crate) fn course_emails_to(project: &Project, to: &str) -> Vec<String> {
    outbox(project)
        .iter()
        .filter_map(|raw| {
            let message = MessageParser::default().parse(raw.as_bytes())?;
            let address = message.to()?.first()?.address()?.to_owned();
            let subject = message.subject()?.to_owned();
            (address == to && !subject.starts_with("Please confirm")).then_some(subject)
        })
        .collect()
}

pub(crate) fn post(service: &Service, path: &str, origin: Option<&str>, body: &str) -> Reply {
    let mut headers = vec![("Content-Type", FORM)];
    if let Some(origin) = origin {
        headers.push(("Origin", origin));
    }
    service.request("POST", path, &headers, body.as_bytes())
}

pub(crate) fn status_text(project: &Project) -> String {
    let run = project.dripline(&["status"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.stdout
}

#[test]
fn a_signup_is_confirmed_by_the_button_and_gets_day_one_at_the_next_pass() {
    let port = free_port();
    let project = project(
        port,
        "https://coach.example.com",
        "per_client_per_hour = 12\n",
    );
    let service = Service::start(&project);
    let own = format!("http://127.0.0.1:{port}");

    let page = service.request("GET", "/s/gut-immune", &[], b"");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("name=\"email\""), "{}", page.body);
    assert!(!page.body.contains("<script"));
    assert!(
        page.headers
            .iter()
            .any(|h| h.starts_with("content-security-policy: default-src 'none'")),
        "{:?}",
        page.headers
    );

    // The hosted page posts; the answer names no address.
    let first = post(
        &service,
        "/s/gut-immune",
        Some(&own),
        "email=Nina%40Example.org&name=Nina+Simone&timezone=Europe%2FParis&company=ACME&website=",
    );
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.body.contains("Check your inbox"), "{}", first.body);
    assert!(
        !first.body.to_lowercase().contains("nina"),
        "{}",
        first.body
    );
    let link = link_to(&project, "Nina@Example.org");
    assert!(link.starts_with(&format!("{own}/c/")), "{link}");
    let path = link
        .strip_prefix(&own)
        .expect("the service's link")
        .to_owned();

    // A second signup sends nothing new and looks the same.
    let again = post(
        &service,
        "/s/gut-immune",
        Some(&own),
        "email=nina%40example.org",
    );
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        confirmations(&project).len(),
        1,
        "nothing new for a pending address"
    );

    // A GET never confirms.
    let ask = service.request("GET", &path, &[], b"");
    assert_eq!(ask.status, 200, "{ask:?}");
    assert!(ask.body.contains("<form method=\"post\">"), "{}", ask.body);
    assert!(
        status_text(&project).contains("0 confirmed, 1 waiting"),
        "{}",
        status_text(&project)
    );

    let done = service.request("POST", &path, &[("Content-Type", FORM)], b"");
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.body.contains("You are subscribed"), "{}", done.body);
    let again = service.request("POST", &path, &[("Content-Type", FORM)], b"");
    assert_eq!(again.body, done.body, "pressing twice is harmless");
    assert!(status_text(&project).contains("1 confirmed, 0 waiting"));

    // Subscribed, suppressed, honeypot: the same answer, and no email.
    assert_eq!(
        project.dripline(&["unsubscribe", "grace@example.org"]).code,
        0
    );
    for body in [
        "email=nina%40example.org",
        "email=grace%40example.org&website=",
        "email=bot%40example.org&website=http%3A%2F%2Fspam.example",
    ] {
        let reply = post(&service, "/s/gut-immune", Some(&own), body);
        assert_eq!(
            (reply.status, &reply.body),
            (first.status, &first.body),
            "{body}"
        );
    }

    // The embedding site is allowed, another is refused.
    let embedded = post(
        &service,
        "/s/gut-immune",
        Some("https://coach.example.com"),
        "email=omar%40example.net",
    );
    assert_eq!(embedded.status, 200, "{embedded:?}");
    let refused = post(
        &service,
        "/s/gut-immune",
        Some("https://evil.example"),
        "email=eve%40example.net",
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    link_to(&project, "omar@example.net");
    std::thread::sleep(Duration::from_millis(300));
    let mut mailed: Vec<String> = confirmations(&project)
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    mailed.sort();
    assert_eq!(
        mailed,
        ["Nina@Example.org", "grace@example.org", "omar@example.net"],
        "an unsubscribed address may come back through a new confirmation; nobody else got one"
    );

    // Expired, forged and unknown tokens: the plain 404 of an unknown path.
    let unknown = service.request("GET", "/no/such/page", &[], b"");
    assert_eq!(unknown.status, 404);
    let key = secret(&project);
    let expired =
        dripline::signup::token::seal(&key, &[1; 16], Utc::now() - chrono::Duration::hours(1));
    let never_issued =
        dripline::signup::token::seal(&key, &[1; 16], Utc::now() + chrono::Duration::hours(1));
    let mut forged = path.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ASCII");
    for bad in [
        format!("/c/{expired}"),
        format!("/c/{never_issued}"),
        forged,
        "/c/garbage".to_owned(),
        "/s/no-such-sequence".to_owned(),
    ] {
        for method in ["GET", "POST"] {
            let reply = service.request(method, &bad, &[], b"");
            assert_eq!(reply, unknown, "{method} {bad}");
        }
    }

    // The limit per client address.
    let started = Instant::now();
    let mut limited = None;
    for n in 0..12 {
        let reply = post(
            &service,
            "/s/gut-immune",
            None,
            &format!("email=n{n}%40example.com"),
        );
        if reply.status == 429 {
            limited = Some(n);
            break;
        }
    }
    assert!(limited.is_some(), "no 429 after 12 more posts");
    assert!(started.elapsed() < Duration::from_secs(10));

    let (status, _) = service.terminate(Duration::from_secs(15));
    assert!(status.success());

    // The export carries the consent record.
    let export = project.dripline(&["export", "gut-immune"]);
    assert_eq!(export.code, 0, "{export:?}");
    let mut rows = csv::Reader::from_reader(export.stdout.as_bytes());
    let headers = rows.headers().expect("a header").clone();
    let nina = rows
        .records()
        .map(|row| row.expect("a row"))
        .find(|row| &row[0] == "nina@example.org")
        .unwrap_or_else(|| panic!("no row for the signup: {}", export.stdout));
    let column = |name: &str| {
        let at = headers.iter().position(|h| h == name).expect(name);
        nina[at].to_owned()
    };
    assert_eq!(column("status"), "active");
    assert_eq!(column("consent_form"), "hosted");
    assert_eq!(column("consent_ip"), "127.0.0.1");
    assert!(
        column("consent_at") >= column("signed_up_at"),
        "{}",
        export.stdout
    );

    // The next pass sends day 1 to the confirmed signup, with its name.
    assert!(course_emails_to(&project, "Nina@Example.org").is_empty());
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent = course_emails_to(&project, "Nina@Example.org");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Day 1"), "{sent:?}");
    assert!(
        course_emails_to(&project, "omar@example.net").is_empty(),
        "an unconfirmed signup gets nothing"
    );
}

#[test]
fn confirmations_and_course_emails_share_the_hourly_quota() {
    let port = free_port();
    let project = project(port, "https://coach.example.com", "");
    project.write("subscribers.csv", "email,name\n");
    let config = project.read("dripline.toml").replace(
        "outbox_dir = \"outbox\"",
        "outbox_dir = \"outbox\"\nmax_per_hour = 1",
    );
    project.write("dripline.toml", config);
    let service = Service::start(&project);
    let own = format!("http://127.0.0.1:{port}");
    let first = post(
        &service,
        "/s/gut-immune",
        Some(&own),
        "email=una%40example.org",
    );
    assert_eq!(first.status, 200, "{first:?}");
    let link = link_to(&project, "una@example.org");
    let second = post(
        &service,
        "/s/gut-immune",
        Some(&own),
        "email=dos%40example.org",
    );
    assert_eq!((second.status, &second.body), (first.status, &first.body));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        confirmations(&project).len(),
        1,
        "the quota holds the second one back"
    );
    assert!(
        service.log().contains("quota is used up"),
        "{}",
        service.log()
    );

    let path = link
        .strip_prefix(&own)
        .expect("the service's link")
        .to_owned();
    let done = service.request("POST", &path, &[("Content-Type", FORM)], b"");
    assert_eq!(done.status, 200, "{done:?}");
    let (status, _) = service.terminate(Duration::from_secs(15));
    assert!(status.success());
    // Day 1 is due, but the confirmation used this hour's one email.
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(course_emails_to(&project, "una@example.org").is_empty());
}

#[test]
fn confirmations_go_through_smtp_and_a_rejected_address_bounces() {
    let server = Server::start(Options::with(|stage, to, _| {
        if stage == Stage::Rcpt && to == "gone@example.net" {
            Action::Reply("550 5.1.1 no such mailbox")
        } else {
            Action::Accept
        }
    }));
    let project = Project::empty();
    project
        .write(
            "dripline.toml",
            format!(
                "timezone = \"UTC\"\n\n[sender]\nfrom = \"Coach <coach@coaching-demo.net>\"\n\n\
                 [[drip]]\nsequence = \"demo\"\nlist = \"list.csv\"\n\n\
                 [delivery]\ntransport = \"smtp\"\nmax_per_second = 0\n\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout = \"5s\"\n\n\
                 [unsubscribe]\nbase_url = \"https://news.example.com/dripline\"\n\n\
                 [serve]\nlisten = \"127.0.0.1:0\"\ntick = \"0 0 1 1 *\"\n\n[signup.demo]\n",
                server.port
            ),
        )
        .write("list.csv", "email,name\n")
        .write(".dripline-secret", format!("{}\n", "ab".repeat(32)))
        .write(
            "sequences/demo/sequence.toml",
            "name = \"Demo\"\nsend_at = \"* * * * *\"\nfirst_step = \"immediately\"\n",
        )
        .write(
            "sequences/demo/01-hello.md",
            "+++\nsubject = \"Day 1: Hello\"\n+++\nHi {{subscriber.first_name}},\n\nWelcome.\n",
        );
    let service = Service::start(&project);
    let own = "https://news.example.com";
    for address in ["ok%40example.net", "gone%40example.net"] {
        let reply = post(
            &service,
            "/s/demo",
            Some(own),
            &format!("email={address}&name=Ok+Reader"),
        );
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    wait_for(
        "the confirmation over SMTP",
        Duration::from_secs(10),
        || {
            server
                .accepted()
                .iter()
                .any(|message| message.to == "ok@example.net")
        },
    );
    wait_for("the bounce", Duration::from_secs(10), || {
        service.log().contains("failed for good")
    });
    let accepted = server.accepted();
    let message = MessageParser::default()
        .parse(&accepted[0].data)
        .expect("a message");
    assert_eq!(message.subject(), Some("Please confirm: Demo"));
    let text = message.body_text(0).expect("a text part");
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with("https://news.example.com/dripline/c/"))
        .unwrap_or_else(|| panic!("no link in {text}"));
    let path = link.trim_start_matches("https://news.example.com/dripline");
    let done = service.request("POST", path, &[("Content-Type", FORM)], b"");
    assert_eq!(done.status, 200, "{done:?}");

    // The bounced address is suppressed and never mailed again.
    let again = post(&service, "/s/demo", Some(own), "email=gone%40example.net");
    assert_eq!(again.status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.rcpt_count("gone@example.net"), 1);
    let (status, _) = service.terminate(Duration::from_secs(15));
    assert!(status.success());
    let status = project.dripline(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON");
    assert_eq!(status["suppressed"][0]["email"], "gone@example.net");
    assert_eq!(status["suppressed"][0]["reason"], "bounced");

    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let day_one: Vec<String> = server
        .accepted()
        .iter()
        .filter_map(|message| {
            let parsed = MessageParser::default().parse(&message.data)?;
            (parsed.subject()? == "Day 1: Hello").then(|| message.to.clone())
        })
        .collect();
    assert_eq!(day_one, ["ok@example.net"]);
}

#[test]
fn the_snippet_posts_to_the_public_url() {
    let project = project(8025, "https://coach.example.com", "");
    let run = project.dripline(&["signup-form", "gut-immune"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("action=\"http://127.0.0.1:8025/s/gut-immune\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("name=\"company\""), "{}", run.stdout);
    let missing = project.dripline(&["signup-form", "other"]);
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(
        missing.stderr.contains("[signup.other]"),
        "{}",
        missing.stderr
    );

    let config = project.read("dripline.toml");
    project.write(
        "dripline.toml",
        format!("{config}\n[signup.nothing-sends-this]\nfields = [\"email\"]\n"),
    );
    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 3, "{check:?}");
    for expected in [
        "no [[drip]] sends",
        "`email` cannot be a field name",
        "dripline.toml:",
    ] {
        assert!(
            check.stderr.contains(expected),
            "{expected}: {}",
            check.stderr
        );
    }
}

/// Needs headless Chromium, like the unsubscribe browser test in serve.rs.
#[test]
#[ignore = "needs chromium and chromedriver (apt-get install -y chromium chromium-driver); run it with `cargo test -- --include-ignored`, as .ci/run does"]
fn a_browser_signs_up_on_the_hosted_and_the_embedded_form() {
    let (Some(chromium), Some(driver)) = (find_program("chromium"), find_program("chromedriver"))
    else {
        panic!(
            "chromium and chromedriver are missing: install them (apt-get install -y chromium chromium-driver) or leave out --include-ignored"
        );
    };
    let port = free_port();
    let site = TcpListener::bind("127.0.0.1:0").expect("a port for the coach's site");
    let site_port = site.local_addr().expect("an address").port();
    let project = project(port, &format!("http://127.0.0.1:{site_port}"), "");
    let snippet = project.dripline(&["signup-form", "gut-immune"]).stdout;
    std::thread::spawn(move || serve_page(&site, &snippet));
    let service = Service::start(&project);
    let browser = webdriver::Browser::start(&driver, &chromium, &project.path("chromium-profile"));

    browser.open(&format!("http://127.0.0.1:{port}/s/gut-immune"));
    browser.type_into("input[name=email]", "lena@example.org");
    browser.type_into("input[name=name]", "Lena");
    browser.click("button[type=submit]");
    wait_for_page(&browser, "Check your inbox");
    let link = link_to(&project, "lena@example.org");
    browser.open(&link);
    assert!(browser.source().contains("Confirm your subscription"));
    browser.click("button[type=submit]");
    wait_for_page(&browser, "You are subscribed");

    // The coach's site, allowed by origin; the same site under another name is not.
    browser.open(&format!("http://127.0.0.1:{site_port}/"));
    browser.type_into("input[name=email]", "kai@example.org");
    browser.click("button[type=submit]");
    wait_for_page(&browser, "Check your inbox");
    link_to(&project, "kai@example.org");
    browser.open(&format!("http://localhost:{site_port}/"));
    browser.type_into("input[name=email]", "mallory@example.org");
    browser.click("button[type=submit]");
    wait_for_page(&browser, "cannot be used from that site");

    let (status, _) = service.terminate(Duration::from_secs(15));
    assert!(status.success());
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(course_emails_to(&project, "lena@example.org").len(), 1);
    assert!(course_emails_to(&project, "kai@example.org").is_empty());
    assert!(
        !confirmations(&project)
            .iter()
            .any(|(to, _)| to == "mallory@example.org")
    );
}

fn wait_for_page(browser: &webdriver::Browser, text: &str) {
    let started = Instant::now();
    while !browser.source().contains(text) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {text:?} in {}",
            browser.source()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The coach's site: `html` for every request. Each connection gets its own
/// thread: Chromium opens spare connections it may never send a request on,
/// and a site that waited on one of those would never answer the real one.
fn serve_page(listener: &TcpListener, html: &str) {
    let page: std::sync::Arc<str> =
        format!("<!doctype html><html><body>{html}</body></html>").into();
    for stream in listener.incoming().flatten() {
        let page = page.clone();
        std::thread::spawn(move || answer_with_page(&stream, &page));
    }
}

fn answer_with_page(stream: &std::net::TcpStream, page: &str) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let _ = write!(
        &*stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
}
