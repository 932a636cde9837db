//! A bounded load test of the signup and unsubscribe endpoints: the real
//! `dripline serve` on 127.0.0.1, `N` signups posted by 16 concurrent
//! keep-alive clients, the `N` confirmations pressed the same way, one
//! `dripline run` (every confirmed signup must get day 1 exactly once),
//! then `N` one-click unsubscribes. Prints the latency of each endpoint and
//! checks that nothing was lost. `cargo bench --bench signup`
//! (`SIGNUP_BENCH_N`, default 400, at most 5,000).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;

fn main() {
    let n: usize = std::env::var("SIGNUP_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
        .min(5000);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temporary folder");
    let project = dir.path();
    copy(repo, project);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let config = std::fs::read_to_string(project.join("dripline.toml"))
        .expect("config")
        .replace("http://127.0.0.1:8025", &format!("http://127.0.0.1:{port}"));
    std::fs::write(
        project.join("dripline.toml"),
        format!("{config}\n[serve]\nlisten = \"127.0.0.1:{port}\"\ntick = \"0 0 1 1 *\"\n\n[signup.gut-immune]\nmax_pending = 100000\nper_client_per_hour = 100000\n"),
    )
    .expect("write config");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let emails: Vec<String> = (0..n).map(|i| format!("load{i}@example.net")).collect();

    let serve = start(project);
    let bodies: Vec<(String, Vec<u8>)> = emails
        .iter()
        .map(|email| {
            (
                "/s/gut-immune".to_owned(),
                format!("email={}", email.replace('@', "%40")).into_bytes(),
            )
        })
        .collect();
    report("POST /s/gut-immune (signup)", &load(addr, bodies));
    let links = wait_for_links(project, n);
    let confirms: Vec<(String, Vec<u8>)> =
        links.into_iter().map(|link| (link, Vec::new())).collect();
    report("POST /c/{token} (confirm)", &load(addr, confirms));
    stop(serve);

    let before = eml_count(project);
    let run = Command::new(env!("CARGO_BIN_EXE_dripline"))
        .arg("run")
        .current_dir(project)
        .output()
        .expect("dripline run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let day_one = day_one_to_signups(project);
    println!(
        "dripline run after the confirmations: {} new emails, day 1 to {day_one} of {n} signups",
        eml_count(project) - before
    );
    assert_eq!(day_one, n, "every confirmed signup gets day 1 exactly once");

    // The one-click links of the day-1 emails, as a mail client posts them.
    let unsubscribes: Vec<(String, Vec<u8>)> = unsubscribe_links(project)
        .into_iter()
        .map(|path| (path, b"List-Unsubscribe=One-Click".to_vec()))
        .collect();
    assert_eq!(
        unsubscribes.len(),
        n,
        "a one-click link in every day-1 email"
    );
    let serve = start(project);
    report(
        "POST /u/{token} (one-click unsubscribe)",
        &load(addr, unsubscribes),
    );
    stop(serve);
    let status = Command::new(env!("CARGO_BIN_EXE_dripline"))
        .args(["status", "--json"])
        .current_dir(project)
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let suppressed = status["suppressed"].as_array().map_or(0, Vec::len);
    println!("suppressed after the unsubscribes: {suppressed} (of {n})");
    assert!(suppressed >= n, "every unsubscribe recorded");
}

/// The example project (config, sequence, list) into `to`.
fn copy(repo: &Path, to: &Path) {
    let status = Command::new("cp")
        .args(["-r", "dripline.toml", "subscribers.csv", "sequences"])
        .arg(to)
        .current_dir(repo)
        .status()
        .expect("cp");
    assert!(status.success());
}

fn start(project: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dripline"))
        .arg("serve")
        .current_dir(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dripline serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    assert!(line.starts_with("listening on"), "{line}");
    child
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// Posts every (path, body) from [`CLIENTS`] keep-alive connections; the
/// latency of each request. Every answer must be a 200.
fn load(addr: SocketAddr, requests: Vec<(String, Vec<u8>)>) -> (Vec<Duration>, Duration) {
    let queue = Arc::new(Mutex::new(requests));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut reader = BufReader::new(TcpStream::connect(addr).expect("connect"));
                loop {
                    let Some((path, body)) = queue.lock().expect("queue").pop() else {
                        return latencies;
                    };
                    let at = Instant::now();
                    let status = post(&mut reader, addr, &path, &body);
                    latencies.push(at.elapsed());
                    assert_eq!(status, 200, "POST {path}");
                }
            })
        })
        .collect();
    let mut all: Vec<Duration> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("a client"))
        .collect();
    all.sort();
    (all, started.elapsed())
}

fn post(reader: &mut BufReader<TcpStream>, addr: SocketAddr, path: &str, body: &[u8]) -> u16 {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = reader.get_mut();
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body).expect("send body");
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).expect("header");
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    status
}

fn report(what: &str, (latencies, total): &(Vec<Duration>, Duration)) {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "{what}: {} requests from {CLIENTS} clients in {:.2} s ({:.0}/s); latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        total.as_secs_f64(),
        latencies.len() as f64 / total.as_secs_f64(),
        at(0.5),
        at(0.95),
        at(0.99),
        at(1.0)
    );
}

fn emls(project: &Path) -> Vec<String> {
    std::fs::read_dir(project.join("outbox"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn eml_count(project: &Path) -> usize {
    emls(project).len()
}

/// The confirmation links, once all `n` emails are in the outbox (at most a minute).
fn wait_for_links(project: &Path, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let links: Vec<String> = emls(project)
            .iter()
            .filter_map(|raw| {
                let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
                let text = message.body_text(0)?;
                let link = text.split_whitespace().find(|w| w.contains("/c/"))?;
                Some(link.split_once("/c/")?.1.to_owned())
            })
            .map(|token| format!("/c/{token}"))
            .collect();
        if links.len() >= n {
            println!(
                "confirmation emails: {n} in the outbox {:.2} s after the last signup",
                started.elapsed().as_secs_f64()
            );
            return links;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {n} confirmation emails after a minute",
            links.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The paths of the https `List-Unsubscribe` links of the day-1 emails to
/// the load test's addresses.
fn unsubscribe_links(project: &Path) -> Vec<String> {
    emls(project)
        .iter()
        .filter(|raw| raw.contains("@example.net"))
        .filter_map(|raw| {
            let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
            if !message.subject()?.starts_with("Day 1") {
                return None;
            }
            let header = message.header_raw("List-Unsubscribe")?;
            let start = header.find("/u/")?;
            let end = header[start..].find('>')? + start;
            Some(header[start..end].to_owned())
        })
        .collect()
}

/// Day-1 emails to the load test's addresses.
fn day_one_to_signups(project: &Path) -> usize {
    emls(project)
        .iter()
        .filter(|raw| raw.contains("@example.net") && raw.contains("Day 1"))
        .filter(|raw| {
            mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .and_then(|m| m.subject().map(|s| s.starts_with("Day 1")))
                .unwrap_or(false)
        })
        .count()
}
