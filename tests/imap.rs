//! `[mailbox]` over IMAP with TLS, against a real Dovecot (the Debian
//! package dovecot-imapd) started as a child process on 127.0.0.1 with a
//! passwd-file, its own certificate (made by `openssl` at test time) and
//! every path in a temporary folder. .ci/run installs dovecot-imapd; on a
//! machine without it this test fails and says so.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::feedback::{
    RETURN_PATH, feedback_fixture, first_to, mailto_request, outbox, suppressed,
};
use crate::support::Project;

/// A private Dovecot, stopped (by its PID) when dropped.
struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    /// The mail user's uid and gid, which own its Maildir.
    owner: (u32, u32),
}

fn dovecot_binary() -> PathBuf {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("dovecot is not installed: apt-get install dovecot-imapd (.ci/run does)")
}

fn id(args: &[&str]) -> String {
    let output = Command::new("id").args(args).output().expect("run id");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Dovecot {
    fn start() -> Dovecot {
        let binary = dovecot_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Dovecot's login processes refuse to run as root: as root, use the
        // package's own unprivileged users; otherwise run as ourselves.
        let root = id(&["-u"]) == "0";
        let (internal, login, mail_user) = if root {
            (
                "dovecot".to_owned(),
                "dovenull".to_owned(),
                "dovecot".to_owned(),
            )
        } else {
            let me = id(&["-un"]);
            (me.clone(), me.clone(), me)
        };
        let owner: (u32, u32) = (
            id(&["-u", &mail_user]).parse().unwrap(),
            id(&["-g", &mail_user]).parse().unwrap(),
        );
        let group = id(&["-gn", &internal]);
        let path = |relative: &str| dir.path().join(relative).display().to_string();
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-keyout",
            ])
            .arg(path("key.pem"))
            .arg("-out")
            .arg(path("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes the server certificate");
        assert!(made.success());
        fs::set_permissions(
            dir.path().join("key.pem"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let config = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {run}\nstate_dir = {state}\nlog_path = {log}\n\
             ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\ndefault_internal_user = {internal}\ndefault_internal_group = {group}\n\
             default_login_user = {login}\nfirst_valid_uid = 1\nmail_location = maildir:{mail}/%u\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\nservice stats {{\n  chroot =\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {users}\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n}}\n",
            run = path("run"),
            state = path("state"),
            log = path("dovecot.log"),
            cert = path("cert.pem"),
            key = path("key.pem"),
            mail = path("mail"),
            users = path("users"),
        );
        fs::write(dir.path().join("dovecot.conf"), config).unwrap();
        fs::write(
            dir.path().join("users"),
            format!(
                "bounces:{{PLAIN}}imap-s3cret:{}:{}::{}\n",
                owner.0,
                owner.1,
                path("mail/bounces")
            ),
        )
        .unwrap();
        for sub in [
            "run",
            "state",
            "mail/bounces/new",
            "mail/bounces/cur",
            "mail/bounces/tmp",
        ] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let dovecot = Dovecot {
            child: Command::new(binary)
                .args(["-F", "-c"])
                .arg(dir.path().join("dovecot.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dovecot"),
            dir,
            port,
            owner,
        };
        dovecot.own(&dovecot.dir.path().join("mail"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "dovecot did not listen:\n{}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn mail(&self, relative: &str) -> PathBuf {
        self.dir.path().join("mail/bounces").join(relative)
    }

    /// Gives `path` (recursively) to the mail user, as a delivery would.
    fn own(&self, path: &Path) {
        let status = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.owner.0, self.owner.1)])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Delivers `message` into the INBOX, as the local delivery agent does.
    fn deliver(&self, name: &str, message: &str) {
        let tmp = self.mail(&format!("tmp/{name}"));
        fs::write(&tmp, message).unwrap();
        self.own(&tmp);
        fs::rename(&tmp, self.mail(&format!("new/{name}"))).unwrap();
    }

    /// Message files of a Maildir folder (`""` for the INBOX), new and cur.
    fn messages(&self, folder: &str) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = fs::read_dir(self.mail(folder).join(sub)) {
                names.extend(
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned()),
                );
            }
        }
        names.sort();
        names
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_imap_mailbox_over_tls_is_read_moved_aside_and_flagged() {
    let dovecot = Dovecot::start();
    let project = Project::example();
    let config = project.read("dripline.toml").replace(
        "outbox_dir = \"outbox\"",
        &format!("outbox_dir = \"outbox\"\nreturn_path = \"{RETURN_PATH}\""),
    );
    project.write(
        "dripline.toml",
        format!(
            "{config}\n[mailbox]\nhost = \"localhost\"\nport = {}\nusername = \"bounces\"\npassword_file = \"imap-password\"\nca_file = \"{}\"\ntimeout = \"10s\"\n",
            dovecot.port,
            dovecot.dir.path().join("cert.pem").display()
        ),
    );
    project.write("imap-password", "imap-s3cret\n");
    project.write("subscribers.csv", "email,name\nbouncer@example.net,B\ncomplainer@example.net,C\nasker@example.net,A\nreader@example.net,R\n");
    let run = project.dripline(&["run", "--now", "2026-12-01T14:00:00Z"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent = outbox(&project);
    dovecot.deliver(
        "1764590600.M1P1.mx",
        &feedback_fixture(
            "postfix-user-unknown.eml",
            &first_to(&sent, "bouncer@example.net"),
        ),
    );
    dovecot.deliver(
        "1764590600.M2P1.mx",
        &feedback_fixture("arf-abuse.eml", &first_to(&sent, "complainer@example.net")),
    );
    dovecot.deliver(
        "1764590600.M3P1.mx",
        &mailto_request(
            &first_to(&sent, "asker@example.net").mailto(),
            "asker@example.net",
        ),
    );
    dovecot.deliver(
        "1764590600.M4P1.mx",
        "From: a@example.org\r\nTo: bounces@bounce.example.com\r\nSubject: hello\r\n\r\nhi\r\n",
    );

    let read = project.dripline(&["mailbox"]);
    assert_eq!(read.code, 0, "{read:?}\n{}", dovecot.log());
    assert_eq!(
        read.stdout.trim(),
        "mailbox: 1 bounced, 1 complained, 1 unsubscribed, 0 transient bounces counted, 0 already suppressed, 0 with nothing to do, 1 not understood and left in the mailbox"
    );
    assert!(!read.stderr.contains("imap-s3cret"), "{read:?}");
    assert_eq!(
        suppressed(&project),
        [
            ("asker@example.net".to_owned(), "unsubscribed".to_owned()),
            ("bouncer@example.net".to_owned(), "bounced".to_owned()),
            ("complainer@example.net".to_owned(), "complained".to_owned()),
        ]
    );
    assert_eq!(
        dovecot.messages(".dripline-processed").len(),
        3,
        "{}",
        dovecot.log()
    );
    let left = dovecot.messages("");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with("1764590600.M4P1.mx")
            && left[0].contains(":2,")
            && left[0].ends_with('F'),
        "{left:?}"
    );

    let again = project.dripline(&["mailbox"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains(" 0 not understood"),
        "the flagged one is not read again: {again:?}"
    );

    // A wrong password is a clear error that does not show it.
    project.write("imap-password", "wrong-guess\n");
    let refused = project.dripline(&["mailbox"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("cannot log in to localhost:")
            && refused.stderr.contains("username and the password"),
        "{refused:?}"
    );
    assert!(!refused.stderr.contains("wrong-guess"), "{refused:?}");
}
