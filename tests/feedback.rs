//! Feedback after the handover, end to end: the real binary sends with a
//! VERP return path, real-format bounces (Postfix, Exim, Gmail, Exchange,
//! Office 365), an ARF complaint, a delay notice and mailto requests are
//! dropped into a real Maildir, and `dripline mailbox` or `dripline serve`
//! reads them. Fixtures and where they come from: tests/fixtures/feedback/.
//! One test goes through a real Postfix instead: it bounces a delivery with
//! its own DSN to the VERP address and delivers it, and a mailto request,
//! into a Maildir, set up as docs/operations.md describes.

use std::fs;
use std::time::Duration;

use mail_parser::MessageParser;

use crate::serve::{self, Service, status_json, wait_for};
use crate::support::{Project, fixture};

/// The envelope sender the tests configure.
pub(crate) const RETURN_PATH: &str = "bounces@bounce.example.com";

/// An email as the outbox holds it.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) to: String,
    /// The VERP envelope sender, from the outbox file's Return-Path.
    pub(crate) bounce_address: String,
    /// The List-Unsubscribe header's value.
    pub(crate) list_unsubscribe: String,
}

impl Sent {
    /// The `mailto:` address of its List-Unsubscribe.
    pub(crate) fn mailto(&self) -> String {
        let start = self.list_unsubscribe.find("mailto:").expect("a mailto") + "mailto:".len();
        let rest = &self.list_unsubscribe[start..];
        rest[..rest.find('?').expect("a subject")].to_owned()
    }

    /// The path of its https link (`/u/TOKEN`).
    fn link_path(&self) -> String {
        let start = self.list_unsubscribe.find("/u/").expect("a link");
        let rest = &self.list_unsubscribe[start..];
        rest[..rest.find('>').expect("the end of the link")].to_owned()
    }
}

/// The example project with a return path, a Maildir and `list` as its list.
fn project(list: &str, serve_tick: Option<&str>) -> Project {
    let project = match serve_tick {
        Some(tick) => serve::project(tick),
        None => Project::example(),
    };
    let config = project.read("dripline.toml").replace(
        "outbox_dir = \"outbox\"",
        &format!("outbox_dir = \"outbox\"\nreturn_path = \"{RETURN_PATH}\""),
    );
    project.write(
        "dripline.toml",
        format!("{config}\n[mailbox]\nmaildir = \"Maildir\"\n"),
    );
    project.write("subscribers.csv", format!("email,name\n{list}"));
    for folder in ["new", "cur", "tmp"] {
        fs::create_dir_all(project.path(&format!("Maildir/{folder}"))).expect("Maildir");
    }
    project
}

/// Every email in the outbox, by recipient.
pub(crate) fn outbox(project: &Project) -> Vec<Sent> {
    let Ok(entries) = fs::read_dir(project.path("outbox")) else {
        return Vec::new();
    };
    let mut sent: Vec<Sent> = entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
        .map(|entry| {
            let bytes = fs::read(entry.path()).expect("read email");
            let message = MessageParser::default().parse(&bytes[..]).expect("MIME");
            let header = |name: &str| {
                message
                    .header_raw(name)
                    .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            Sent {
                to: message
                    .to()
                    .and_then(|to| to.first())
                    .and_then(|to| to.address())
                    .expect("To")
                    .to_owned(),
                bounce_address: header("Return-Path").trim_matches(['<', '>']).to_owned(),
                list_unsubscribe: header("List-Unsubscribe"),
            }
        })
        .collect();
    sent.sort_by(|a, b| a.to.cmp(&b.to));
    sent
}

/// The first email sent to `to`.
pub(crate) fn first_to(sent: &[Sent], to: &str) -> Sent {
    sent.iter()
        .find(|s| s.to == to)
        .unwrap_or_else(|| panic!("no email to {to}"))
        .clone()
}

/// A fixture with its placeholders filled in for the email `sent`.
pub(crate) fn feedback_fixture(name: &str, sent: &Sent) -> String {
    fs::read_to_string(fixture(&format!("feedback/{name}")))
        .expect("fixture")
        .replace("@@BOUNCE@@", &sent.bounce_address)
        .replace("@@RETURN_PATH@@", RETURN_PATH)
        .replace("@@LIST_UNSUBSCRIBE@@", &sent.list_unsubscribe)
}

/// Delivers `message` into the Maildir's new/, as a mail server would.
fn deliver(project: &Project, name: &str, message: &str) {
    project.write(&format!("Maildir/tmp/{name}"), message);
    fs::rename(
        project.path(&format!("Maildir/tmp/{name}")),
        project.path(&format!("Maildir/new/{name}")),
    )
    .expect("deliver");
}

/// A mailto unsubscribe request as a mail client composes it, from `from`.
pub(crate) fn mailto_request(to: &str, from: &str) -> String {
    format!(
        "Return-Path: <{from}>\r\nDelivered-To: {to}\r\nFrom: {from}\r\nTo: {to}\r\nSubject: unsubscribe\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <req-{from}>\r\n\r\nunsubscribe\r\n"
    )
}

/// Suppressed addresses with their reasons, sorted.
pub(crate) fn suppressed(project: &Project) -> Vec<(String, String)> {
    let status = status_json(project);
    let mut found: Vec<(String, String)> = status["suppressed"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

pub(crate) fn files_in(project: &Project, folder: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(project.path(folder))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Which fixture each subscriber's email gets back, and the reason it
/// should be suppressed for (`None`: not suppressed).
const CASES: &[(&str, &str, Option<&str>)] = &[
    (
        "postfix@example.net",
        "postfix-user-unknown.eml",
        Some("bounced"),
    ),
    ("exim@example.net", "exim-user-unknown.eml", Some("bounced")),
    (
        "gmail@example.net",
        "gmail-user-unknown.eml",
        Some("bounced"),
    ),
    (
        "exchange@example.net",
        "exchange2007-user-unknown.eml",
        Some("bounced"),
    ),
    (
        "office@example.net",
        "office365-user-unknown.eml",
        Some("bounced"),
    ),
    ("policy@example.net", "exim-policy-block.eml", None),
    ("delayed@example.net", "delayed.eml", None),
    ("arf@example.net", "arf-abuse.eml", Some("complained")),
    ("rfc@example.net", "rfc5965-abuse.eml", Some("complained")),
];

#[test]
fn a_maildir_of_real_bounces_complaints_and_requests_suppresses_exactly_their_subscribers() {
    let mut list: String = CASES
        .iter()
        .map(|(to, _, _)| format!("{to},Reader\n"))
        .collect();
    list.push_str("asker@example.net,Asker\nbystander@example.net,Bystander\n");
    let project = project(&list, None);
    let run = project.dripline(&["run", "--now", "2026-12-01T14:00:00Z"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent = outbox(&project);
    assert_eq!(sent.len(), CASES.len() + 2);
    for email in &sent {
        let (local, domain) = email.bounce_address.split_once('@').expect("an address");
        assert_eq!(domain, "bounce.example.com");
        let token = local.strip_prefix("bounces+").expect("VERP");
        assert_eq!(token.len(), 24, "{token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let name = email.to.split('@').next().unwrap();
        for place in [&email.bounce_address, &email.list_unsubscribe] {
            assert!(!place.contains(name), "{place} shows {}", email.to);
        }
    }
    for (index, (to, name, _)) in CASES.iter().enumerate() {
        deliver(
            &project,
            &format!("1764590400.M{index}P1.mx"),
            &feedback_fixture(name, &first_to(&sent, to)),
        );
    }
    // The asker's request, sent from another address than the subscribed
    // one: the token decides, not From.
    let asker = first_to(&sent, "asker@example.net");
    deliver(
        &project,
        "1764590400.M20P1.mx",
        &mailto_request(&asker.mailto(), "someone-else@example.org"),
    );
    // A forged request and a bounce with a made-up token change nothing;
    // a plain message is not understood. All three are left.
    deliver(
        &project,
        "1764590400.M21P1.mx",
        &mailto_request(
            &format!("unsubscribe+{}@example.com", "a".repeat(24)),
            "eve@example.org",
        ),
    );
    let forged_bounce = feedback_fixture(
        "postfix-user-unknown.eml",
        &Sent {
            bounce_address: format!("bounces+{}@bounce.example.com", "b".repeat(24)),
            ..first_to(&sent, "bystander@example.net")
        },
    );
    deliver(&project, "1764590400.M22P1.mx", &forged_bounce);
    deliver(
        &project,
        "1764590400.M23P1.mx",
        "From: a@example.org\r\nTo: bounces@bounce.example.com\r\nSubject: hello\r\n\r\nhi\r\n",
    );

    let read = project.dripline(&["mailbox"]);
    assert_eq!(read.code, 0, "{read:?}");
    assert_eq!(
        read.stdout.trim(),
        "mailbox: 5 bounced, 2 complained, 1 unsubscribed, 1 transient bounces counted, 0 already suppressed, 1 with nothing to do, 3 not understood and left in the mailbox",
        "{read:?}"
    );
    let mut expected: Vec<(String, String)> = CASES
        .iter()
        .filter_map(|(to, _, reason)| reason.map(|reason| (to.to_string(), reason.to_owned())))
        .collect();
    expected.push(("asker@example.net".to_owned(), "unsubscribed".to_owned()));
    expected.sort();
    assert_eq!(suppressed(&project), expected);

    // The export carries who is suppressed, why and when, as CSV.
    let export = project.dripline(&["export", "gut-immune"]);
    assert_eq!(export.code, 0, "{export:?}");
    let mut rows = csv::Reader::from_reader(export.stdout.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(|row| row.expect("a CSV row")).collect();
    assert_eq!(rows.len(), CASES.len() + 2);
    let row = |email: &str| {
        rows.iter()
            .find(|row| &row[0] == email)
            .unwrap_or_else(|| panic!("no row for {email}: {}", export.stdout))
    };
    assert_eq!(&row("bystander@example.net")[1], "active");
    assert_eq!(&row("asker@example.net")[5], "unsubscribed");
    assert_eq!(&row("asker@example.net")[7], "mailto request");
    let gmail = row("gmail@example.net");
    assert_eq!((&gmail[1], &gmail[5]), ("bounced", "bounced"));
    assert!(
        gmail[6].starts_with("20") && gmail[6].ends_with('Z'),
        "{gmail:?}"
    );
    assert!(gmail[7].contains("5.1.1"), "{gmail:?}");
    assert_eq!(&row("rfc@example.net")[5], "complained");

    // Processed messages moved aside, the others left flagged; none lost.
    assert_eq!(files_in(&project, "Maildir/new"), Vec::<String>::new());
    let processed = files_in(&project, "Maildir/.dripline-processed/cur");
    assert_eq!(processed.len(), CASES.len() + 1, "{processed:?}");
    assert!(
        processed.iter().all(|name| name.ends_with(":2,S")),
        "{processed:?}"
    );
    let left = files_in(&project, "Maildir/cur");
    assert_eq!(
        left,
        [
            "1764590400.M21P1.mx:2,F",
            "1764590400.M22P1.mx:2,F",
            "1764590400.M23P1.mx:2,F"
        ]
    );

    // A second read finds nothing new and changes nothing.
    let again = project.dripline(&["mailbox"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains(" 0 not understood"), "{again:?}");
    assert_eq!(files_in(&project, "Maildir/cur").len(), 3);

    // The next day's emails go to everyone not suppressed, and only to them.
    fs::remove_dir_all(project.path("outbox")).expect("empty the outbox");
    let run = project.dripline(&["run", "--now", "2026-12-02T14:00:00Z"]);
    assert_eq!(run.code, 0, "{run:?}");
    let recipients: Vec<String> = outbox(&project).into_iter().map(|s| s.to).collect();
    assert_eq!(
        recipients,
        [
            "bystander@example.net",
            "delayed@example.net",
            "policy@example.net"
        ]
    );

    let text = project.dripline(&["status"]);
    let line = text
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("office@example.net"))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(
        line.contains(" bounced ") && line.contains("Remote Server returned '550 5.1.10 RESOLVER"),
        "{line}"
    );
    assert!(
        text.stdout
            .contains("Suppressed: 1 unsubscribed, 5 bounced, 2 complained"),
        "{}",
        text.stdout
    );
}

#[test]
fn three_transient_bounces_of_three_emails_bounce_the_address() {
    let project = project("policy@example.net,Policy\n", None);
    for (day, expect_suppressed) in [(1, false), (2, false), (3, true)] {
        fs::remove_dir_all(project.path("outbox")).ok();
        let run = project.dripline(&["run", "--now", &format!("2026-12-0{day}T14:00:00Z")]);
        assert_eq!(run.code, 0, "{run:?}");
        let sent = outbox(&project);
        assert_eq!(sent.len(), 1, "day {day}");
        let bounce = feedback_fixture("exim-policy-block.eml", &sent[0]);
        // The same report twice counts once.
        deliver(&project, &format!("17645904{day}0.M1P1.mx"), &bounce);
        deliver(&project, &format!("17645904{day}0.M2P1.mx"), &bounce);
        let read = project.dripline(&["mailbox"]);
        assert_eq!(read.code, 0, "{read:?}");
        let found = suppressed(&project);
        assert_eq!(
            !found.is_empty(),
            expect_suppressed,
            "day {day}: {found:?} {read:?}"
        );
    }
    let status = status_json(&project);
    let entry = &status["suppressed"][0];
    assert_eq!(entry["reason"], "bounced");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap()
            .starts_with("3 transient bounces within 30 days"),
        "{entry}"
    );
    fs::remove_dir_all(project.path("outbox")).ok();
    let run = project.dripline(&["run", "--now", "2026-12-04T14:00:00Z"]);
    assert_eq!(run.code, 0);
    assert!(
        outbox(&project).is_empty(),
        "a bounced address gets nothing more"
    );
}

#[test]
fn serve_honours_a_mailto_request_a_click_and_a_bounce_within_one_tick() {
    let project = project(
        "asker@example.net,Asker\nclicker@example.net,Clicker\nbouncer@example.net,Bouncer\nreader@example.net,Reader\n",
        Some("* * * * * *"),
    );
    let service = Service::start(&project);
    wait_for("day 1 in the outbox", Duration::from_secs(20), || {
        outbox(&project).len() == 4
    });
    let sent = outbox(&project);

    // The link of a sent email: the page names the list, the POST unsubscribes.
    let clicker = first_to(&sent, "clicker@example.net");
    let page = service.request("GET", &clicker.link_path(), &[], b"");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("clicker@example.net"), "{}", page.body);
    let done = service.request(
        "POST",
        &clicker.link_path(),
        &[],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(done.status, 200, "{done:?}");

    // The asker only sends the mailto request; the bouncer's mailbox is gone.
    let asker = first_to(&sent, "asker@example.net");
    deliver(
        &project,
        "1764590500.M1P1.mx",
        &mailto_request(&asker.mailto(), "asker@example.net"),
    );
    let bouncer = first_to(&sent, "bouncer@example.net");
    deliver(
        &project,
        "1764590500.M2P1.mx",
        &feedback_fixture("postfix-user-unknown.eml", &bouncer),
    );
    wait_for(
        "the next tick to read the mailbox",
        Duration::from_secs(15),
        || suppressed(&project).len() == 3,
    );
    assert_eq!(
        suppressed(&project),
        [
            ("asker@example.net".to_owned(), "unsubscribed".to_owned()),
            ("bouncer@example.net".to_owned(), "bounced".to_owned()),
            ("clicker@example.net".to_owned(), "unsubscribed".to_owned()),
        ]
    );
    assert!(
        service.log().contains("mailbox: 1 bounced"),
        "{}",
        service.log()
    );
    let (status, _) = service.terminate(Duration::from_secs(12));
    assert_eq!(status.code(), Some(0));

    // The rest of the course goes to the reader alone: one email a day at
    // 14:00 UTC (the example's 08:00 New York slot has passed by then).
    let today = chrono::Utc::now().date_naive();
    for day in 2..=7 {
        let at = (today + chrono::Days::new(day))
            .and_hms_opt(14, 0, 0)
            .unwrap()
            .and_utc();
        let run = project.dripline(&["run", "--now", &at.to_rfc3339()]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let later: Vec<String> = outbox(&project)
        .into_iter()
        .map(|s| s.to)
        .filter(|to| to != "reader@example.net")
        .collect();
    assert_eq!(later.len(), 3, "only day 1 went to the three: {later:?}");
    assert_eq!(
        outbox(&project).len(),
        3 + 7,
        "the reader got the whole course"
    );
}

/// The bounce domain of the real-Postfix test.
const BOUNCE_DOMAIN: &str = "bounce.dripline.test";

/// Sends `message` from `from` to `to` through the SMTP server on `port`,
/// as a subscriber's mail client would.
fn submit(port: u16, from: &str, to: &str, message: &str) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut expect = |code: &str| loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a reply");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect("220");
    for (command, code) in [
        ("EHLO client.dripline.test".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        expect(code);
    }
    writer.write_all(message.as_bytes()).unwrap();
    writer.write_all(b"\r\n.\r\nQUIT\r\n").unwrap();
    expect("250");
}

#[test]
#[ignore = "needs Postfix and root; .ci/run installs Postfix and runs it with --ignored"]
fn a_real_postfix_returns_its_own_bounce_to_the_verp_address_and_delivers_mailto_requests() {
    let scratch = Project::empty();
    let mail = scratch.path("postfix/mail");
    fs::create_dir_all(&mail).unwrap();
    let chowned = std::process::Command::new("chown")
        .args(["-R", "postfix:postfix"])
        .arg(&mail)
        .status()
        .unwrap();
    assert!(chowned.success());
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, "postfix"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // As docs/operations.md sets it up: recipient_delimiter, both addresses
    // to one Maildir; the course goes to a domain whose mail fails for good.
    let postfix = crate::smtp::postfix::Postfix::start_with(
        &scratch,
        &format!(
            "message_size_limit = 10240000\n\
             recipient_delimiter = +\n\
             virtual_mailbox_domains = {BOUNCE_DOMAIN}\n\
             virtual_mailbox_base = {base}\n\
             virtual_mailbox_maps = inline:{{ bounces@{BOUNCE_DOMAIN}=Maildir/, unsubscribe@{BOUNCE_DOMAIN}=Maildir/ }}\n\
             virtual_uid_maps = static:{uid}\n\
             virtual_gid_maps = static:{gid}\n\
             virtual_minimum_uid = 1\n\
             transport_maps = inline:{{ dead.dripline.test=nouser: }}\n",
            base = mail.display(),
            uid = id("-u"),
            gid = id("-g"),
        ),
        // Accepted at RCPT, then failed for good at delivery, as a mailbox
        // that does not exist behind a relay: exit 67 (EX_NOUSER) is 5.1.1.
        "virtual unix - n n - - virtual\n\
         nouser unix - n n - - pipe flags=q user=nobody argv=/bin/sh -c { exit 67 }\n",
    );
    let maildir = mail.join("Maildir");
    let project = Project::empty();
    project
        .write(
            "dripline.toml",
            format!(
                "timezone = \"UTC\"\n\n[sender]\nfrom = \"Coach <coach@coaching-demo.net>\"\n\n\
                 [[drip]]\nsequence = \"demo\"\nlist = \"list.csv\"\n\n\
                 [delivery]\ntransport = \"smtp\"\nmax_per_second = 0\nreturn_path = \"bounces@{BOUNCE_DOMAIN}\"\n\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout = \"10s\"\n\n\
                 [unsubscribe]\nbase_url = \"https://news.example.com/dripline\"\nmailto = \"unsubscribe@{BOUNCE_DOMAIN}\"\n\n\
                 [mailbox]\nmaildir = \"{}\"\n",
                postfix.port,
                maildir.display()
            ),
        )
        .write("list.csv", "email,name\ngone@dead.dripline.test,Gone\nasker@live.dripline.test,Asker\nreader@live.dripline.test,Reader\n")
        .write(".dripline-secret", format!("{}\n", "cd".repeat(32)))
        .write("sequences/demo/sequence.toml", "name = \"Demo\"\nsend_at = \"0 8 * * *\"\n")
        .write("sequences/demo/01-hello.md", "+++\nsubject = \"Day 1: Hello\"\n+++\nHi {{subscriber.first_name}},\n\nWelcome.\n")
        .write("sequences/demo/02-more.md", "+++\nsubject = \"Day 2: More\"\n+++\nMore.\n");
    let run = project.dripline(&["run", "--now", "2026-12-01T08:00:00Z"]);
    assert_eq!(run.code, 0, "{run:?}\n{}", postfix.log());

    // The asker writes to the mailto address of their email, from elsewhere.
    let key = dripline::token::Key::from_bytes([0xcd; 32]);
    let id = dripline::token::DeliveryId::of(&key, "demo", "asker@live.dripline.test", "hello");
    let token = dripline::token::seal(&key, id, dripline::token::Purpose::Unsubscribe);
    let mailto = format!("unsubscribe+{token}@{BOUNCE_DOMAIN}");
    let request = format!(
        "From: someone@live.dripline.test\r\nTo: {mailto}\r\nSubject: unsubscribe\r\nMessage-ID: <request@live.dripline.test>\r\n\r\nunsubscribe"
    );
    submit(
        postfix.port,
        "someone@live.dripline.test",
        &mailto,
        &request,
    );

    let arrived = || files_in_dir(&maildir.join("new")).len() == 2;
    let started = std::time::Instant::now();
    while !arrived() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the bounce and the request did not arrive:\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bounce = files_in_dir(&maildir.join("new"))
        .into_iter()
        .map(|name| fs::read_to_string(maildir.join("new").join(name)).unwrap())
        .find(|text| text.contains("multipart/report"))
        .expect("Postfix's DSN");
    assert!(bounce.contains("X-Original-To: bounces+"), "{bounce}");

    let read = project.dripline(&["mailbox"]);
    assert_eq!(read.code, 0, "{read:?}");
    assert!(
        read.stdout
            .starts_with("mailbox: 1 bounced, 0 complained, 1 unsubscribed,"),
        "{read:?}"
    );
    assert!(
        read.stdout
            .ends_with("0 not understood and left in the mailbox\n"),
        "{read:?}"
    );
    let status = status_json(&project);
    let reasons: Vec<(String, String, String)> = status["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
                s["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(
        (reasons[0].0.as_str(), reasons[0].1.as_str()),
        ("asker@live.dripline.test", "unsubscribed")
    );
    assert_eq!(
        (reasons[1].0.as_str(), reasons[1].1.as_str()),
        ("gone@dead.dripline.test", "bounced")
    );
    assert!(
        reasons[1]
            .2
            .starts_with("DSN failed 5.1.1 from mx.dripline.test"),
        "{reasons:?}"
    );

    // Day 2 goes to the reader alone.
    let sent_before = postfix.log().matches("status=sent").count();
    let run = project.dripline(&["run", "--now", "2026-12-02T08:00:00Z"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(": 1 sent,"), "{run:?}");
    let started = std::time::Instant::now();
    while postfix.log().matches("status=sent").count() == sent_before {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        postfix
            .log()
            .matches("to=<gone@dead.dripline.test>")
            .count(),
        1,
        "the bounced address got day 1 only:\n{}",
        postfix.log()
    );
}

fn files_in_dir(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
