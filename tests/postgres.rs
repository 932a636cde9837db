//! A real, throwaway PostgreSQL for the tests: Debian's `postgresql`
//! binaries, started once per test process as a child (initdb and the
//! server as the `postgres` user when the tests run as root), on
//! 127.0.0.1 and a port picked here, with its data in a temporary folder.
//! Each test gets a database of its own, so tests stay parallel.
//!
//! No PostgreSQL binaries is a loud failure, never a skipped test:
//! `.ci/run` installs the package. The server gets SIGINT (a fast
//! shutdown) when the test process ends, through `setpriv --pdeathsig`
//! from a thread that lives as long as the process.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The running server.
struct Server {
    port: u16,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The URL of a new, empty database (`postgres://postgres@127.0.0.1:PORT/NAME`).
pub fn database() -> String {
    let server = SERVER.get_or_init(start);
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    psql(server.port, &format!("CREATE DATABASE {name}"));
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}

/// Runs one SQL statement in the `postgres` database, as the superuser.
fn psql(port: u16, sql: &str) {
    let output = Command::new(bin_dir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql `{sql}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Where Debian keeps the binaries: /usr/lib/postgresql/VERSION/bin, the
/// newest version installed.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb), and the PostgreSQL tests never pass without running: apt-get install -y postgresql (.ci/run does)"
        ),
    }
}

/// The command that runs `program` as the `postgres` user when the tests
/// run as root (initdb and the server refuse root), with SIGINT to it
/// when this process ends.
fn as_postgres(program: &Path) -> Command {
    let root = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
    let mut command = Command::new("setpriv");
    command.arg("--pdeathsig=INT");
    if root {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    command.arg("--").arg(program);
    command
}

/// Removes data folders of earlier test processes whose server stopped
/// (a clean shutdown removes postmaster.pid).
fn remove_stale_folders() {
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("dripline-pg.")
            && !entry.path().join("data/postmaster.pid").exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start() -> Server {
    let bin = bin_dir();
    remove_stale_folders();
    let dir = tempfile::Builder::new()
        .prefix("dripline-pg.")
        .tempdir()
        .expect("temporary folder")
        .keep();
    if std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0) {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the data folder");
    }
    let data = dir.join("data");
    let initdb = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ])
        .output()
        .expect("run initdb");
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    for _ in 0..5 {
        let port = free_port();
        if let Some(server) = serve(&bin, &dir, port) {
            return server;
        }
    }
    panic!("PostgreSQL did not start; see {}/server.log", dir.display());
}

/// Starts the server on `port`; `None` when it exits (the port was taken).
fn serve(bin: &Path, dir: &Path, port: u16) -> Option<Server> {
    let log = std::fs::File::create(dir.join("server.log")).expect("server log");
    let mut command = as_postgres(&bin.join("postgres"));
    command
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=400",
        ])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("server log"))
        .stderr(log);
    let (started, exited) = std::sync::mpsc::channel();
    // The thread that spawns the server must outlive it: the death signal
    // follows the spawning thread.
    std::thread::spawn(move || {
        let mut child = command.spawn().expect("start postgres");
        let _ = child.wait();
        let _ = started.send(());
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if exited.try_recv().is_ok() {
            return None;
        }
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return Some(Server { port });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
        .expect("a `postgres` user (the postgresql package creates it)")
}
