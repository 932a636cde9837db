//! The same rules against a real Postfix: a private instance started as a
//! child process, with its own configuration, queue and log in a temporary
//! folder, listening on 127.0.0.1 only and discarding what it accepts. Its
//! rules are the ones the feedback met: `message_size_limit = 8000` and
//! `reject_non_fqdn_helo_hostname` (given at RCPT TO, Postfix's default
//! `smtpd_delay_reject`), one recipient refused (`550 5.1.1`), and
//! `smtpd_forbid_unauth_pipelining`, which disconnects a client that sends
//! a command before its turn. It listens twice: on `port` it announces
//! PIPELINING, on `plain_port` it does not.
//!
//! Postfix's master must start as root, so the test is ignored in a plain
//! `cargo test`; .ci/run installs Postfix (without configuring the system's
//! mail daemon) and runs it with `--ignored`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rules::{assert_nobody_failed, assert_stopped, long_step};
use super::{DAY_1, DAY_2, Setup, run, status, step_counts};
use crate::support::Project;

const POSTFIX: &str = "/usr/sbin/postfix";

/// The recipient Postfix refuses (`550 5.1.1`): the 26th of a list.
const REFUSED: &str = "reader25@example.net";

/// A running private Postfix; stopped when dropped.
pub(crate) struct Postfix {
    config: PathBuf,
    log: PathBuf,
    pub(crate) port: u16,
    /// The same server without PIPELINING in its EHLO reply.
    plain_port: u16,
    child: Child,
}

fn main_cf(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "compatibility_level = 3.6\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         myhostname = mx.dripline.test\n\
         mydomain = dripline.test\n\
         myorigin = dripline.test\n\
         mydestination =\n\
         mynetworks = 127.0.0.0/8\n\
         queue_directory = {dir}/spool\n\
         data_directory = {dir}/data\n\
         maillog_file = {dir}/maillog\n\
         maillog_file_prefixes = {dir}\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         message_size_limit = 8000\n\
         smtpd_helo_required = yes\n\
         smtpd_helo_restrictions = reject_non_fqdn_helo_hostname\n\
         smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
         smtpd_recipient_restrictions = check_recipient_access texthash:{dir}/etc/recipients\n\
         smtpd_forbid_unauth_pipelining = yes\n\
         default_transport = discard:\n\
         relay_transport = discard:\n\
         local_transport = discard:\n\
         alias_maps =\n\
         alias_database =\n\
         smtputf8_enable = no\n\
         biff = no\n"
    )
}

/// Only the services an SMTP server that discards needs, none chrooted.
fn master_cf(port: u16, plain_port: u16) -> String {
    format!(
        "127.0.0.1:{port} inet n - n - - smtpd\n\
         127.0.0.1:{plain_port} inet n - n - - smtpd -o smtpd_discard_ehlo_keywords=pipelining\n\
         cleanup unix n - n - 0 cleanup\n\
         qmgr unix n - n 300 1 qmgr\n\
         rewrite unix - - n - - trivial-rewrite\n\
         bounce unix - - n - 0 bounce\n\
         defer unix - - n - 0 bounce\n\
         trace unix - - n - 0 bounce\n\
         verify unix - - n - 1 verify\n\
         flush unix n - n 1000? 0 flush\n\
         proxymap unix - - n - - proxymap\n\
         discard unix - - n - - discard\n\
         anvil unix - - n - 1 anvil\n\
         scache unix - - n - 1 scache\n\
         postlog unix-dgram n - n - 1 postlogd\n"
    )
}

impl Postfix {
    fn start(scratch: &Project) -> Postfix {
        Postfix::start_with(scratch, "", "")
    }

    /// A Postfix with `main` and `master` appended to its main.cf and
    /// master.cf (a later main.cf line overrides an earlier one).
    pub(crate) fn start_with(scratch: &Project, main: &str, master: &str) -> Postfix {
        assert!(
            Path::new(POSTFIX).is_file(),
            "Postfix is not installed: echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections && apt-get install -y postfix (.ci/run does)"
        );
        let dir = scratch.path("postfix");
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port()
        };
        let (port, plain_port) = (free_port(), free_port());
        scratch
            .write("postfix/etc/main.cf", main_cf(&dir) + main)
            .write(
                "postfix/etc/master.cf",
                master_cf(port, plain_port) + master,
            )
            .write(
                "postfix/etc/recipients",
                format!("{REFUSED} 550 5.1.1 no such user\n"),
            )
            .write("postfix/spool/.keep", "")
            .write("postfix/data/.keep", "");
        let owned = Command::new("chown")
            .args(["-R", "postfix"])
            .arg(dir.join("data"))
            .status()
            .expect("run chown");
        assert!(owned.success(), "chown postfix: run the test as root");
        let config = dir.join("etc");
        let child = Command::new(POSTFIX)
            .arg("-c")
            .arg(&config)
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Postfix");
        let postfix = Postfix {
            config,
            log: dir.join("maillog"),
            port,
            plain_port,
            child,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err()
            || TcpStream::connect(("127.0.0.1", plain_port)).is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "Postfix did not listen on 127.0.0.1:{port}; its log:\n{}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    /// The log once it holds `count` lines with `what` (Postfix delivers
    /// and logs after the client is gone), or after 10 s.
    fn log_with(&self, what: &str, count: usize) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if log.matches(what).count() >= count || started.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    /// `postfix stop`, given 10 s: a Postfix whose log daemon jammed
    /// (seen once under load: postlogd blocked on its own socket) blocks
    /// it and every process that logs, and the test run would hang instead
    /// of failing. Then the master, this test's child's child, is stopped
    /// by the PID in its lock file, and the child after it.
    fn drop(&mut self) {
        let stop = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut stop) = stop
            && !exits_within(&mut stop, Duration::from_secs(10))
        {
            let _ = stop.kill();
            let _ = stop.wait();
        }
        if !exits_within(&mut self.child, Duration::from_secs(10)) {
            let lock = self.config.with_file_name("data").join("master.lock");
            if let Some(pid) = std::fs::read_to_string(lock)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Whether `child` exits within `limit`.
fn exits_within(child: &mut Child, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
#[ignore = "needs Postfix and root; .ci/run installs Postfix and runs it with --ignored"]
fn a_real_postfix_with_a_size_limit_and_the_fqdn_helo_rule() {
    let scratch = Project::empty();
    let postfix = Postfix::start(&scratch);
    let subscribers = 20;
    let mut setup = Setup::new(subscribers);
    setup.smtp = "security = \"none\"\ntimeout = \"10s\"\n".to_owned();
    let project = setup.project_on(postfix.port);
    project.write("sequences/demo/02-more.md", long_step());

    // The default EHLO name passes reject_non_fqdn_helo_hostname, and the
    // small step goes to everyone.
    let first = run(&project, DAY_1);
    assert_eq!(first.code, 0, "{first:?}\n{}", postfix.log());
    let log = postfix.log_with("status=sent", subscribers);
    assert_eq!(log.matches("status=sent").count(), subscribers, "{log}");

    // The long step is over Postfix's SIZE: not one byte of it is sent.
    let started = Instant::now();
    let second = run(&project, DAY_2);
    assert_stopped(
        &second,
        &["at most 8000 bytes", "message_size_limit", "stays due"],
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_nobody_failed(&project);
    let state = status(&project);
    assert_eq!(step_counts(&state, 0), (subscribers as u64, 0, 0));
    assert_eq!(step_counts(&state, 1), (0, 0, 0));
    let log = postfix.log_with("status=sent", subscribers);
    assert_eq!(log.matches("status=sent").count(), subscribers, "{log}");

    // A bare EHLO name is refused at RCPT TO: the run stops, nobody fails.
    let mut bare = Setup::new(subscribers);
    bare.steps = 1;
    bare.smtp = "security = \"none\"\ntimeout = \"10s\"\nhelo_name = \"vm\"\n".to_owned();
    let refused_project = bare.project_on(postfix.port);
    let refused = run(&refused_project, DAY_1);
    assert_stopped(
        &refused,
        &[
            "504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname",
            "helo_name",
        ],
    );
    assert_nobody_failed(&refused_project);
    assert_eq!(step_counts(&status(&refused_project), 0), (0, 0, 0));
}

#[test]
#[ignore = "needs Postfix and root; .ci/run installs Postfix and runs it with --ignored"]
fn pipelining_with_a_postfix_that_disconnects_clients_out_of_turn() {
    let scratch = Project::empty();
    let postfix = Postfix::start(&scratch);
    // The rules are enforced: a client that sends the message before
    // DATA's 354 (DATA must end a group) is cut off.
    let (ehlo, answer) = pipeline_by_hand(postfix.port);
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    assert!(
        !answer.contains("354")
            && answer.contains("554 5.5.0 Error: SMTP protocol synchronization"),
        "{answer}\n{}",
        postfix.log()
    );
    let (ehlo, _) = pipeline_by_hand(postfix.plain_port);
    assert!(!ehlo.contains("PIPELINING"), "{ehlo}");
    let log = postfix.log_with("improper command pipelining after DATA", 2);
    assert_eq!(
        log.matches("improper command pipelining").count(),
        2,
        "{log}"
    );

    let subscribers = 30;
    for port in [postfix.port, postfix.plain_port] {
        let mut setup = Setup::new(subscribers);
        setup.steps = 1;
        setup.smtp = "security = \"none\"\ntimeout = \"10s\"\n".to_owned();
        let project = setup.project_on(port);
        let sent = run(&project, DAY_1);
        // One recipient refused at RCPT TO: it alone fails, and bounces.
        assert_eq!(sent.code, 4, "{sent:?}\n{}", postfix.log());
        assert!(
            sent.stderr.contains(&format!(
                "550 5.1.1 <{REFUSED}>: Recipient address rejected"
            )),
            "{sent:?}"
        );
        let state = status(&project);
        assert_eq!(step_counts(&state, 0), (subscribers as u64 - 1, 0, 1));
        let bounced: Vec<&Value> = state["suppressed"]
            .as_array()
            .expect("suppressed")
            .iter()
            .filter(|entry| entry["reason"] == "bounced")
            .collect();
        assert!(
            bounced.len() == 1 && bounced[0]["email"] == REFUSED,
            "{state}"
        );
    }
    let log = postfix.log_with("status=sent", 2 * (subscribers - 1));
    // Both ways, every command came in its turn: Postfix would have said
    // so, and hung up.
    assert_eq!(
        log.matches("improper command pipelining").count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("status=sent").count(),
        2 * (subscribers - 1),
        "{log}"
    );
}

/// Says EHLO, then sends MAIL FROM, RCPT TO, DATA and a message in one
/// write, as no client may; returns the EHLO reply and what came back.
fn pipeline_by_hand(port: u16) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect to Postfix");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let read = |socket: &mut TcpStream, until: &str| {
        let mut text = String::new();
        let mut buffer = [0; 4096];
        while !text.lines().any(|line| line.starts_with(until)) {
            match socket.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            }
        }
        text
    };
    read(&mut socket, "220 ");
    socket
        .write_all(b"EHLO client.example.com\r\n")
        .expect("EHLO");
    let ehlo = read(&mut socket, "250 ");
    socket
        .write_all(
            b"MAIL FROM:<coach@example.com>\r\nRCPT TO:<ada@example.net>\r\nDATA\r\n\
              Subject: early\r\n\r\ntoo early\r\n.\r\n",
        )
        .expect("the group");
    let answer = read(&mut socket, "554");
    (ehlo, answer)
}
