//! `dripline serve`: the real binary on a free port, driven with real
//! HTTP requests (a small HTTP/1.1 client over `TcpStream`), real signals
//! and a real browser.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dripline::token::{self, Key};

use crate::support::Project;

/// The example project, serving on a free port with the given tick.
pub(crate) fn project(tick: &str) -> Project {
    let project = Project::example();
    let config = project.read("dripline.toml");
    project.write(
        "dripline.toml",
        format!("{config}\n[serve]\nlisten = \"127.0.0.1:0\"\ntick = \"{tick}\"\n"),
    );
    project
}

/// A running `dripline serve`, killed if the test ends without stopping it.
pub(crate) struct Service {
    child: Child,
    pub(crate) addr: SocketAddr,
    stderr: std::path::PathBuf,
}

impl Service {
    pub(crate) fn start(project: &Project) -> Service {
        let stderr = project.path("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dripline"))
            .arg("serve")
            .current_dir(project.path(""))
            .env_remove("DRIPLINE_CONFIG")
            .env_remove("DRIPLINE_LOG")
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("start dripline serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read stdout");
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            panic!(
                "serve did not say where it listens: {line:?}\n{}",
                fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        Service {
            addr: addr.parse().expect("an address"),
            child,
            stderr,
        }
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn connect(&self) -> Connection {
        Connection::open(self.addr)
    }

    /// One request on a fresh connection.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.connect().request(method, path, headers, body)
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    pub(crate) fn terminate(self, limit: Duration) -> (ExitStatus, Duration) {
        self.signal("-TERM", limit)
    }

    /// Sends `signal` (`-TERM`, `-INT`) and waits for the exit, at most `limit`.
    fn signal(mut self, signal: &str, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "serve still running {limit:?} after SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Header lines as received, lower-case names, without `date`.
    pub(crate) headers: Vec<String>,
    pub(crate) body: String,
}

/// A keep-alive HTTP/1.1 connection.
struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Connection {
            reader: BufReader::new(stream),
            host: addr.to_string(),
        }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).expect("send head");
        stream.write_all(body).expect("send body");

        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("status line");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header");
            let name = name.to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse().expect("a length");
            }
            if name != "date" {
                headers.push(format!("{name}:{value}"));
            }
        }
        if method == "HEAD" {
            length = 0;
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        Reply {
            status,
            headers,
            body: String::from_utf8(body).expect("UTF-8 body"),
        }
    }
}

pub(crate) fn secret(project: &Project) -> Key {
    Key::from_file(&project.path(".dripline-secret")).expect("the secret serve created")
}

pub(crate) fn status_json(project: &Project) -> serde_json::Value {
    let run = project.dripline(&["status", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).expect("JSON")
}

fn suppressed(project: &Project) -> Vec<String> {
    let mut emails: Vec<String> = status_json(project)["suppressed"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| entry["email"].as_str().expect("an email").to_owned())
        .collect();
    emails.sort();
    emails
}

/// The text of every email in the outbox.
pub(crate) fn outbox(project: &Project) -> Vec<String> {
    let Ok(entries) = fs::read_dir(project.path("outbox")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
        .map(|entry| fs::read_to_string(entry.path()).expect("read email"))
        .collect()
}

pub(crate) fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn get_asks_and_post_unsubscribes_urlencoded_or_multipart() {
    let project = project("* * * * * *");
    project.write("subscribers.csv", "email,name\nada@example.com,Ada\n");
    let service = Service::start(&project);
    let key = secret(&project);
    let path = |email: &str| format!("/u/{}", token::sign_legacy(&key, email, "gut-immune"));

    let page = service.request("GET", &path("grace@example.org"), &[], b"");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body
            .contains("Your Gut, Your Immune System, and Inflammation"),
        "{}",
        page.body
    );
    assert!(page.body.contains("grace@example.org"), "{}", page.body);
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(
        page.headers
            .contains(&"referrer-policy: no-referrer".to_owned()),
        "{page:?}"
    );
    let head = service.request("HEAD", &path("grace@example.org"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        suppressed(&project),
        Vec::<String>::new(),
        "a GET changes nothing"
    );

    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    for _ in 0..3 {
        let done = service.request(
            "POST",
            &path("grace@example.org"),
            &form,
            b"List-Unsubscribe=One-Click",
        );
        assert_eq!(done.status, 200, "{done:?}");
        assert!(done.body.contains("You are unsubscribed"), "{}", done.body);
    }
    let boundary = "----dripline-test-boundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let done = service.request(
        "POST",
        &path("Maria@Example.org"),
        &[("Content-Type", &content_type)],
        multipart.as_bytes(),
    );
    assert_eq!(done.status, 200, "{done:?}");
    let done = service.request("POST", &path("ada@example.com"), &[], b"");
    assert_eq!(done.status, 200, "an empty body unsubscribes too: {done:?}");
    assert_eq!(
        suppressed(&project),
        ["ada@example.com", "grace@example.org", "maria@example.org"]
    );

    // The list changes while the service runs: the next pass reads it,
    // sends to the newcomer and to none of the unsubscribed.
    project.write(
        "subscribers.csv",
        "email,name\nada@example.com,Ada\ngrace@example.org,Grace\nmaria@example.org,María\nbob@example.com,Bob\n",
    );
    wait_for("the next pass to mail bob", Duration::from_secs(15), || {
        outbox(&project)
            .iter()
            .any(|email| email.contains("bob@example.com"))
    });
    let emails = outbox(&project);
    for address in ["grace@example.org", "maria@example.org"] {
        assert!(
            !emails.iter().any(|email| email.contains(address)),
            "{address} got an email after unsubscribing"
        );
    }
    // The pass that wrote bob's email may still be recording it.
    let health = || {
        let reply = service.request("GET", "/healthz", &[], b"");
        assert_eq!(reply.status, 200);
        serde_json::from_str::<serde_json::Value>(&reply.body).expect("JSON")
    };
    // A pass that read the list while it was being written may have failed
    // before it: wait for one that finished after bob's email was there.
    let mailed = chrono::Utc::now();
    wait_for("a pass finished since", Duration::from_secs(15), || {
        health()["last_pass"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .is_some_and(|at| at > mailed)
    });
    let health = health();
    assert_eq!(health["status"], "ok", "{health}\n{}", service.log());
    assert_eq!(health["last_pass_ok"], true, "{health}");

    let (status, _) = service.terminate(Duration::from_secs(12));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn forged_tokens_get_exactly_the_404_of_an_unknown_path() {
    let project = project("0 0 1 1 *");
    let old_key = Key::create(&project.path("old-secret")).expect("old key");
    let config = project.read("dripline.toml");
    project.write(
        "dripline.toml",
        config.replace(
            "secret_file = \".dripline-secret\"",
            "secret_file = \".dripline-secret\"\nprevious_secret_file = \"old-secret\"",
        ),
    );
    let service = Service::start(&project);
    let key = secret(&project);
    let mut connection = service.connect();
    let mut get = |path: &str| connection.request("GET", path, &[], b"");

    let unknown = get("/no-such-page");
    assert_eq!(unknown.status, 404);
    assert_eq!(get("/u/"), unknown);
    let real = token::sign_legacy(&key, "ada@example.com", "gut-immune");
    assert_eq!(
        get(&format!("/u/{real}")).status,
        200,
        "the real token works"
    );
    let rotated = token::sign_legacy(&old_key, "ada@example.com", "gut-immune");
    assert_eq!(
        get(&format!("/u/{rotated}")).status,
        200,
        "a link signed with the previous key still works"
    );

    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for n in 0..10_000 {
        let length = 1 + random.below(120);
        let mut forged: String = (0..length)
            .map(|_| alphabet[random.below(alphabet.len())] as char)
            .collect();
        if n % 2 == 0 {
            let dot = random.below(forged.len());
            forged.insert(dot, '.');
        }
        assert_eq!(get(&format!("/u/{forged}")), unknown, "{forged}");
    }

    let other_key = Key::from_bytes([7; 32]);
    let mut tampered = Vec::new();
    for i in 0..100 {
        let address = format!("person{i}@example.com");
        let token = token::sign_legacy(&key, &address, "gut-immune");
        let (payload, tag) = token.split_once('.').expect("a dot");
        // One character changed, at five places.
        for step in 0..5 {
            let at = (i * 7 + step * 31) % token.len();
            let mut bytes = token.clone().into_bytes();
            bytes[at] = match bytes[at] {
                b'A' => b'B',
                b'.' => b'A',
                _ => b'A',
            };
            tampered.push(String::from_utf8(bytes).expect("ASCII"));
        }
        // The address swapped, the sequence swapped, another key, cut short.
        let swapped = URL_SAFE_NO_PAD.encode(format!("gut-immune\nperson{}@example.com", i + 1));
        tampered.push(format!("{swapped}.{tag}"));
        let other_sequence = URL_SAFE_NO_PAD.encode(format!("other-course\n{address}"));
        tampered.push(format!("{other_sequence}.{tag}"));
        tampered.push(token::sign_legacy(&other_key, &address, "gut-immune"));
        tampered.push(format!("{payload}.{}", &tag[..tag.len() - 1]));
        tampered.push(format!("{payload}{tag}"));
    }
    assert_eq!(tampered.len(), 1_000);
    for forged in &tampered {
        assert_eq!(get(&format!("/u/{forged}")), unknown, "{forged}");
    }
    // A POST with a forged token changes nothing and says nothing either.
    // The body is left unread, so each POST gets its own connection.
    let body = b"List-Unsubscribe=One-Click";
    let unknown = service.request("POST", "/no-such-page", &[], body);
    assert_eq!(unknown.status, 404);
    for forged in tampered.iter().step_by(10) {
        let reply = service.request("POST", &format!("/u/{forged}"), &[], body);
        assert_eq!(reply, unknown, "{forged}");
    }
    assert_eq!(suppressed(&project), Vec::<String>::new());
}

#[test]
fn oversized_requests_are_refused_and_change_nothing() {
    let project = project("0 0 1 1 *");
    let service = Service::start(&project);
    let path = format!(
        "/u/{}",
        token::sign_legacy(&secret(&project), "ada@example.com", "gut-immune")
    );
    let big = vec![b'x'; 200 * 1024];
    let reply = service.request("POST", &path, &[], &big);
    assert_eq!(reply.status, 413, "{reply:?}");
    let huge_header = "y".repeat(32 * 1024);
    let reply = service.request("GET", &path, &[("X-Padding", &huge_header)], b"");
    assert_eq!(reply.status, 431, "{reply:?}");
    assert_eq!(suppressed(&project), Vec::<String>::new());
}

#[test]
fn run_while_serve_holds_the_state_exits_5_and_sigint_stops_it() {
    let project = project("0 0 1 1 *");
    let service = Service::start(&project);
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("in use by another dripline"), "{run:?}");
    let (status, _) = service.signal("-INT", Duration::from_secs(12));
    assert_eq!(status.code(), Some(0));
    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "the lock is released at exit: {run:?}");
}

#[test]
fn sigterm_mid_pass_finishes_the_batch_and_loses_or_doubles_nothing() {
    const SUBSCRIBERS: usize = 5_000;
    let project = project("* * * * * *");
    let mut list = String::from("email,name\n");
    for i in 0..SUBSCRIBERS {
        list.push_str(&format!("reader{i}@example.com,Reader {i}\n"));
    }
    project.write("subscribers.csv", list);
    let service = Service::start(&project);
    let log = service.stderr.clone();
    let count = || fs::read_dir(project.path("outbox")).map_or(0, |dir| dir.count());
    wait_for("the outbox to fill", Duration::from_secs(60), || {
        count() >= 200
    });
    // An unsubscribe while the pass writes is recorded at once.
    let last = format!("reader{}@example.com", SUBSCRIBERS - 1);
    let path = format!(
        "/u/{}",
        token::sign_legacy(&secret(&project), &last, "gut-immune")
    );
    let reply = service.request("POST", &path, &[], b"List-Unsubscribe=One-Click");
    assert_eq!(reply.status, 200, "{reply:?}");
    let (status, took) = service.terminate(Duration::from_secs(12));
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    let before = count();
    assert!(
        before < SUBSCRIBERS,
        "the pass finished before SIGTERM; make the list longer"
    );
    let log = fs::read_to_string(log).expect("the log");
    assert!(log.contains("stopped early for shutdown"), "{log}");

    let run = project.dripline(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let files: Vec<String> = fs::read_dir(project.path("outbox"))
        .expect("outbox")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eml"))
        .collect();
    let resent = files.iter().filter(|name| name.ends_with("-2.eml")).count();
    assert!(
        resent <= dripline::engine::BATCH,
        "{resent} emails went twice"
    );
    assert_eq!(
        files.len() - resent,
        SUBSCRIBERS - 1,
        "everyone but the unsubscribed got day 1 once"
    );
    let steps = &status_json(&project)["sequences"][0]["steps"][0];
    assert_eq!(steps["sent"], SUBSCRIBERS as u64 - 1, "{steps}");
    assert_eq!(steps["pending"], 0, "{steps}");
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

pub(crate) fn find_program(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Needs headless Chromium, so it is ignored by a plain `cargo test`;
/// `.ci/run` installs the browser and runs it with `--include-ignored`, and
/// there a missing browser fails the test instead of skipping it.
#[test]
#[ignore = "needs chromium and chromedriver (apt-get install -y chromium chromium-driver); run it with `cargo test -- --include-ignored`, as .ci/run does"]
fn a_browser_opens_the_link_and_clicks_unsubscribe() {
    let (Some(chromium), Some(driver)) = (find_program("chromium"), find_program("chromedriver"))
    else {
        panic!(
            "chromium and chromedriver are missing: install them (apt-get install -y chromium chromium-driver) or leave out --include-ignored"
        );
    };
    let project = project("0 0 1 1 *");
    let service = Service::start(&project);
    let url = format!(
        "http://{}/u/{}",
        service.addr,
        token::sign_legacy(&secret(&project), "grace@example.org", "gut-immune")
    );
    let browser = webdriver::Browser::start(&driver, &chromium, &project.path("chromium-profile"));

    browser.open(&url);
    let page = browser.source();
    assert!(page.contains("Unsubscribe from"), "{page}");
    assert!(page.contains("grace@example.org"), "{page}");
    assert_eq!(
        suppressed(&project),
        Vec::<String>::new(),
        "opening the link changes nothing"
    );

    browser.click("button[type=submit]");
    let started = Instant::now();
    let mut page = browser.source();
    while !page.contains("You are unsubscribed") && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        page = browser.source();
    }
    assert!(page.contains("You are unsubscribed"), "{page}");
    assert_eq!(suppressed(&project), ["grace@example.org"]);
}

/// Just enough WebDriver (plain HTTP and JSON) to drive headless Chromium
/// through chromedriver.
pub(crate) mod webdriver {
    use std::net::{SocketAddr, TcpListener};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    pub struct Browser {
        driver: Child,
        addr: SocketAddr,
        session: String,
        /// Browser tests take turns: two Chromiums beside the rest of the
        /// suite on two cores made page loads miss the driver's timeout.
        _turn: std::sync::MutexGuard<'static, ()>,
    }

    static ONE_BROWSER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    impl Browser {
        pub fn start(driver: &Path, chromium: &Path, profile: &Path) -> Browser {
            let turn = ONE_BROWSER_AT_A_TIME
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut browser = Browser {
                driver: child,
                addr,
                session: String::new(),
                _turn: turn,
            };
            let started = Instant::now();
            while browser.call("GET", "/status", None).is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "chromedriver did not start"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let capabilities = json!({
                "capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--disable-dev-shm-usage",
                            format!("--user-data-dir={}", profile.display()),
                        ]
                    }
                }}
            });
            let reply = browser
                .call("POST", "/session", Some(capabilities))
                .expect("a session");
            browser.session = reply["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {reply}"))
                .to_owned();
            browser
        }

        pub fn open(&self, url: &str) {
            self.session_call("POST", "/url", json!({ "url": url }));
        }

        pub fn source(&self) -> String {
            let reply = self.session_call("GET", "/source", Value::Null);
            reply["value"].as_str().unwrap_or_default().to_owned()
        }

        pub fn click(&self, css: &str) {
            let element = self.element(css);
            self.session_call("POST", &format!("/element/{element}/click"), json!({}));
        }

        /// Types `text` into the element `css` finds.
        pub fn type_into(&self, css: &str, text: &str) {
            let element = self.element(css);
            self.session_call(
                "POST",
                &format!("/element/{element}/value"),
                json!({ "text": text }),
            );
        }

        fn element(&self, css: &str) -> String {
            let found = self.session_call(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": css }),
            );
            found["value"]
                .as_object()
                .and_then(|object| object.values().next())
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no element {css}: {found}"))
                .to_owned()
        }

        fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
            let path = format!("/session/{}{path}", self.session);
            let body = (method == "POST").then_some(body);
            let reply = self
                .call(method, &path, body)
                .unwrap_or_else(|| panic!("chromedriver did not answer {path}"));
            assert!(
                reply["value"].get("error").is_none(),
                "{method} {path}: {reply}"
            );
            reply
        }

        /// One WebDriver command; `None` when chromedriver is not there (yet).
        fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
            use std::io::{BufRead as _, BufReader, Read as _, Write as _};
            let mut stream = std::net::TcpStream::connect(self.addr).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .ok()?;
            let body = body.map(|body| body.to_string()).unwrap_or_default();
            write!(
                stream,
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.addr,
                body.len()
            )
            .ok()?;
            // chromedriver keeps the connection open after its reply.
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).ok()?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().ok()?;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok()?;
            serde_json::from_slice(&body).ok()
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            if !self.session.is_empty() {
                let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
            }
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }
}
