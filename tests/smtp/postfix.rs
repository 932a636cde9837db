//! The same rules against a real Postfix: a private instance started as a
//! child process, with its own configuration, queue and log in a temporary
//! folder, listening on 127.0.0.1 only and discarding what it accepts. Its
//! rules are the ones the feedback met: `message_size_limit = 8000` and
//! `reject_non_fqdn_helo_hostname` (given at RCPT TO, Postfix's default
//! `smtpd_delay_reject`).
//!
//! Postfix's master must start as root, so the test is ignored in a plain
//! `cargo test`; .ci/run installs Postfix (without configuring the system's
//! mail daemon) and runs it with `--ignored`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::rules::{assert_nobody_failed, assert_stopped, long_step};
use super::{DAY_1, DAY_2, Setup, run, status, step_counts};
use crate::support::Project;

const POSTFIX: &str = "/usr/sbin/postfix";

/// A running private Postfix; stopped when dropped.
pub(crate) struct Postfix {
    config: PathBuf,
    log: PathBuf,
    pub(crate) port: u16,
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
fn master_cf(port: u16) -> String {
    format!(
        "127.0.0.1:{port} inet n - n - - smtpd\n\
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        scratch
            .write("postfix/etc/main.cf", main_cf(&dir) + main)
            .write("postfix/etc/master.cf", master_cf(port) + master)
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
            child,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "Postfix did not listen on 127.0.0.1:{port}; its log:\n{}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
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
    assert_eq!(
        postfix.log().matches("status=sent").count(),
        subscribers,
        "{}",
        postfix.log()
    );

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
    assert_eq!(
        postfix.log().matches("status=sent").count(),
        subscribers,
        "{}",
        postfix.log()
    );

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
