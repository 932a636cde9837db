//! A small SMTP server on 127.0.0.1 for the delivery tests.
//!
//! A script decides, per recipient, what the server does at RCPT TO and at
//! the end of DATA: accept, answer with a given reply (421 also closes),
//! drop the connection without a word, or stall. It can offer STARTTLS
//! with a given certificate and AUTH PLAIN, and it can go down (accept
//! and close at once) and come back. It keeps every message it accepted.
//!
//! It can also apply a real server's rules, with Postfix's replies: a
//! SIZE limit (checked against `SIZE=` at MAIL FROM and against the
//! message), a fully-qualified HELO name (refused at RCPT TO, as Postfix
//! does with `smtpd_delay_reject`), one password, a login required, a
//! refused sender.
//!
//! It announces PIPELINING (RFC 2920) unless told not to, and enforces its
//! rules as Postfix's `smtpd_forbid_unauth_pipelining` does: a command
//! that arrives while one that must end a group (EHLO, DATA, AUTH,
//! STARTTLS, NOOP, QUIT; any command without PIPELINING) is unanswered
//! gets `554 5.5.0 Error: SMTP protocol synchronization` and the
//! connection closes. It counts the transactions that came pipelined, and
//! the messages whose end came with the next transaction's commands.
//!
//! Written here rather than with mailin-embedded: its handler must answer
//! every command with a reply, so it cannot drop a connection after DATA
//! without a word or stall mid-session, which are the cases DESIGN.md
//! section 8 is about.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// Where in a transaction the script is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Rcpt,
    DataEnd,
}

/// What the server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Answer with this reply (`451 4.7.1 later`); a 421 also closes.
    Reply(&'static str),
    /// Close the connection without a reply.
    Drop,
    /// Never answer.
    Stall,
    /// Accept, then go down: every connection is closed from now on.
    AcceptThenGoDown,
    /// Take the message (it counts as accepted), then answer 250 only
    /// after this long: a slow server, and a window in which a killed
    /// client leaves a delivered email unrecorded.
    AcceptSlowly(std::time::Duration),
}

/// Decides per stage, recipient and how many times this recipient reached
/// this stage before (0 the first time).
pub type Script = Arc<dyn Fn(Stage, &str, usize) -> Action + Send + Sync>;

/// A message the server took.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub data: Vec<u8>,
    /// Over TLS.
    pub secure: bool,
}

#[derive(Default)]
struct State {
    accepted: Vec<Received>,
    /// Messages whose DATA was read and then the connection dropped.
    dropped: Vec<Received>,
    seen: HashMap<(Stage, String), usize>,
    logins: Vec<(String, String)>,
    connections: usize,
    /// Every MAIL FROM command line.
    mail_from: Vec<String>,
    /// Every EHLO or HELO name.
    helos: Vec<String>,
    quits: usize,
    /// Bytes of message data read, accepted or not.
    data_bytes: usize,
    /// MAIL FROM commands that arrived with more commands behind them.
    pipelined: usize,
    /// Messages whose end came with the next transaction's commands.
    chained: usize,
    /// Sessions closed for breaking the pipelining rules.
    out_of_step: usize,
}

/// How the server is set up.
pub struct Options {
    pub script: Script,
    /// A certificate and key (PEM) to offer STARTTLS with.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Offer AUTH PLAIN (after STARTTLS when TLS is offered).
    pub auth: bool,
    /// Never send the greeting.
    pub stall_greeting: bool,
    /// Speak TLS from the first byte (port 465 style) instead of STARTTLS.
    pub implicit_tls: bool,
    /// The SIZE it announces and enforces.
    pub size: usize,
    /// Refuse a HELO name without a dot at RCPT TO (504 5.5.2).
    pub fqdn_helo: bool,
    /// The reply to every EHLO or HELO, instead of 250.
    pub refuse_helo: Option<&'static str>,
    /// The reply to every MAIL FROM, instead of 250.
    pub reject_sender: Option<&'static str>,
    /// Refuse MAIL FROM without a login (530 5.7.0).
    pub require_auth: bool,
    /// The only password AUTH accepts; any when `None`.
    pub password: Option<&'static str>,
    /// Announce PIPELINING.
    pub pipelining: bool,
}

impl Options {
    /// Accepts everything.
    pub fn accept_all() -> Options {
        Options::with(|_, _, _| Action::Accept)
    }

    pub fn with(script: impl Fn(Stage, &str, usize) -> Action + Send + Sync + 'static) -> Options {
        Options {
            script: Arc::new(script),
            tls: None,
            auth: false,
            stall_greeting: false,
            implicit_tls: false,
            size: 10_000_000,
            fqdn_helo: false,
            refuse_helo: None,
            reject_sender: None,
            require_auth: false,
            password: None,
            pipelining: true,
        }
    }
}

struct Shared {
    options: Options,
    acceptor: Option<tokio_native_tls::TlsAcceptor>,
    state: Mutex<State>,
    down: AtomicBool,
}

/// A running server; it stops when dropped.
pub struct Server {
    pub port: u16,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    pub fn start(options: Options) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test server runtime");
        let acceptor = options.tls.as_ref().map(|(cert, key)| {
            let identity = native_tls::Identity::from_pkcs8(cert, key).expect("test identity");
            tokio_native_tls::TlsAcceptor::from(
                native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"),
            )
        });
        let shared = Arc::new(Shared {
            options,
            acceptor,
            state: Mutex::new(State::default()),
            down: AtomicBool::new(false),
        });
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let serving = Arc::clone(&shared);
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if serving.down.load(Ordering::SeqCst) {
                    drop(socket);
                    continue;
                }
                serving.state.lock().unwrap().connections += 1;
                let session = Arc::clone(&serving);
                tokio::spawn(async move { session.serve(socket).await });
            }
        });
        Server {
            port,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Every message accepted, in order.
    pub fn accepted(&self) -> Vec<Received> {
        self.shared.state.lock().unwrap().accepted.clone()
    }

    /// Messages read in full and then answered by a dropped connection.
    pub fn dropped(&self) -> Vec<Received> {
        self.shared.state.lock().unwrap().dropped.clone()
    }

    /// How many times each recipient reached RCPT TO.
    pub fn rcpt_count(&self, to: &str) -> usize {
        let state = self.shared.state.lock().unwrap();
        state
            .seen
            .get(&(Stage::Rcpt, to.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// How many connections it took.
    pub fn connections(&self) -> usize {
        self.shared.state.lock().unwrap().connections
    }

    /// (user, password) of every login.
    pub fn logins(&self) -> Vec<(String, String)> {
        self.shared.state.lock().unwrap().logins.clone()
    }

    /// Every MAIL FROM command line, in order.
    pub fn mail_from(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().mail_from.clone()
    }

    /// Every EHLO or HELO name, in order.
    pub fn helos(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().helos.clone()
    }

    /// How many times a client said QUIT.
    pub fn quits(&self) -> usize {
        self.shared.state.lock().unwrap().quits
    }

    /// Bytes of message data read, accepted or not.
    pub fn data_bytes(&self) -> usize {
        self.shared.state.lock().unwrap().data_bytes
    }

    /// Transactions whose MAIL FROM came with the commands after it.
    pub fn pipelined(&self) -> usize {
        self.shared.state.lock().unwrap().pipelined
    }

    /// Sessions closed for sending a command before its turn.
    /// Messages whose final dot came in one write with what followed.
    pub fn chained(&self) -> usize {
        self.shared.state.lock().unwrap().chained
    }

    pub fn out_of_step(&self) -> usize {
        self.shared.state.lock().unwrap().out_of_step
    }

    /// Comes back after [`Action::AcceptThenGoDown`].
    pub fn come_back(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

enum End {
    Closed,
    StartTls,
}

impl Shared {
    async fn serve(self: Arc<Self>, socket: tokio::net::TcpStream) {
        if self.options.stall_greeting {
            std::future::pending::<()>().await;
        }
        if self.options.implicit_tls {
            if let Some(acceptor) = &self.acceptor
                && let Ok(tls) = acceptor.accept(socket).await
            {
                let mut secure = BufReader::new(tls);
                if secure.write_all(b"220 test ESMTP\r\n").await.is_ok() {
                    self.session(&mut secure, true).await;
                }
            }
            return;
        }
        let mut plain = BufReader::new(socket);
        if plain.write_all(b"220 test ESMTP\r\n").await.is_err() {
            return;
        }
        if let End::StartTls = self.session(&mut plain, false).await
            && let Some(acceptor) = &self.acceptor
            && let Ok(tls) = acceptor.accept(plain.into_inner()).await
        {
            let mut secure = BufReader::new(tls);
            self.session(&mut secure, true).await;
        }
    }

    fn ask(&self, stage: Stage, to: &str) -> Action {
        let before = {
            let mut state = self.state.lock().unwrap();
            let count = state.seen.entry((stage, to.to_owned())).or_insert(0);
            *count += 1;
            *count - 1
        };
        (self.options.script)(stage, to, before)
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        secure: bool,
    ) -> End {
        let mut to: Vec<String> = Vec::new();
        // A MAIL FROM was accepted and its transaction is open.
        let mut mail = false;
        let mut helo = String::new();
        let mut logged_in = false;
        let mut line = String::new();
        loop {
            line.clear();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return End::Closed,
                Ok(_) => {}
            }
            if self.down.load(Ordering::SeqCst) {
                return End::Closed;
            }
            let command = line.trim_end().to_owned();
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let ends_group = matches!(
                verb.as_str(),
                "EHLO" | "HELO" | "DATA" | "AUTH" | "STARTTLS" | "NOOP" | "QUIT"
            );
            if !stream.buffer().is_empty() {
                if ends_group || !self.options.pipelining {
                    self.state.lock().unwrap().out_of_step += 1;
                    let _ = stream
                        .write_all(b"554 5.5.0 Error: SMTP protocol synchronization\r\n")
                        .await;
                    return End::Closed;
                }
                if verb == "MAIL" {
                    self.state.lock().unwrap().pipelined += 1;
                }
            }
            let reply: String = match verb.as_str() {
                "EHLO" | "HELO" => {
                    helo = command
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    self.state.lock().unwrap().helos.push(helo.clone());
                    if let Some(reply) = self.options.refuse_helo {
                        if stream
                            .write_all(format!("{reply}\r\n").as_bytes())
                            .await
                            .is_err()
                        {
                            return End::Closed;
                        }
                        continue;
                    }
                    let mut reply = String::from("250-test\r\n250-8BITMIME\r\n");
                    if self.acceptor.is_some() && !secure {
                        reply.push_str("250-STARTTLS\r\n");
                    }
                    if self.options.auth && (secure || self.acceptor.is_none()) {
                        reply.push_str("250-AUTH PLAIN\r\n");
                    }
                    if self.options.pipelining {
                        reply.push_str("250-PIPELINING\r\n");
                    }
                    reply.push_str(&format!("250 SIZE {}\r\n", self.options.size));
                    reply
                }
                "STARTTLS" if self.acceptor.is_some() && !secure => {
                    let _ = stream.write_all(b"220 go ahead\r\n").await;
                    return End::StartTls;
                }
                "AUTH" => {
                    let initial = command.split_whitespace().nth(2).unwrap_or_default();
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(initial)
                        .unwrap_or_default();
                    let parts: Vec<String> = decoded
                        .split(|&b| b == 0)
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect();
                    if let [_, user, password] = &parts[..] {
                        self.state
                            .lock()
                            .unwrap()
                            .logins
                            .push((user.clone(), password.clone()));
                        if self
                            .options
                            .password
                            .is_some_and(|wanted| wanted != password)
                        {
                            "535 5.7.8 Error: authentication failed: bad password\r\n".to_owned()
                        } else {
                            logged_in = true;
                            "235 ok\r\n".to_owned()
                        }
                    } else {
                        "501 bad AUTH\r\n".to_owned()
                    }
                }
                "MAIL" => {
                    to.clear();
                    mail = false;
                    self.state.lock().unwrap().mail_from.push(command.clone());
                    let declared = command
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("SIZE="))
                        .and_then(|size| size.parse::<usize>().ok());
                    if declared.is_some_and(|size| size > self.options.size) {
                        "552 5.3.4 Message size exceeds fixed limit\r\n".to_owned()
                    } else if self.options.require_auth && !logged_in {
                        "530 5.7.0 Authentication required\r\n".to_owned()
                    } else if let Some(reply) = self.options.reject_sender {
                        format!("{reply}\r\n")
                    } else {
                        mail = true;
                        "250 ok\r\n".to_owned()
                    }
                }
                "RCPT" if !mail => "503 5.5.1 Error: need MAIL command\r\n".to_owned(),
                "RCPT" => {
                    let address = command
                        .split_once('<')
                        .and_then(|(_, rest)| rest.split_once('>'))
                        .map(|(address, _)| address.to_owned())
                        .unwrap_or_default();
                    if self.options.fqdn_helo && !helo.contains('.') {
                        let reply = format!(
                            "504 5.5.2 <{helo}>: Helo command rejected: need fully-qualified hostname\r\n"
                        );
                        if stream.write_all(reply.as_bytes()).await.is_err() {
                            return End::Closed;
                        }
                        continue;
                    }
                    match self.ask(Stage::Rcpt, &address) {
                        Action::Accept | Action::AcceptThenGoDown | Action::AcceptSlowly(_) => {
                            to.push(address);
                            "250 ok\r\n".to_owned()
                        }
                        Action::Reply(text) => {
                            let _ = stream.write_all(format!("{text}\r\n").as_bytes()).await;
                            if text.starts_with("421") {
                                return End::Closed;
                            }
                            continue;
                        }
                        Action::Drop => return End::Closed,
                        Action::Stall => std::future::pending().await,
                    }
                }
                "DATA" if !mail || to.is_empty() => {
                    "554 5.5.1 Error: no valid recipients\r\n".to_owned()
                }
                "DATA" => {
                    if stream.write_all(b"354 go on\r\n").await.is_err() {
                        return End::Closed;
                    }
                    let mut data = Vec::new();
                    loop {
                        let mut raw = Vec::new();
                        match stream.read_until(b'\n', &mut raw).await {
                            Ok(0) | Err(_) => return End::Closed,
                            Ok(_) => {}
                        }
                        if raw == b".\r\n" {
                            if !stream.buffer().is_empty() {
                                self.state.lock().unwrap().chained += 1;
                            }
                            break;
                        }
                        let unstuffed = raw.strip_prefix(b".").unwrap_or(&raw);
                        data.extend_from_slice(unstuffed);
                    }
                    self.state.lock().unwrap().data_bytes += data.len();
                    mail = false;
                    if data.len() > self.options.size {
                        let _ = stream
                            .write_all(b"552 5.3.4 Message size exceeds fixed limit\r\n")
                            .await;
                        continue;
                    }
                    let recipient = to.first().cloned().unwrap_or_default();
                    let received = Received {
                        to: recipient.clone(),
                        data,
                        secure,
                    };
                    match self.ask(Stage::DataEnd, &recipient) {
                        Action::Accept => {
                            self.state.lock().unwrap().accepted.push(received);
                            "250 queued\r\n".to_owned()
                        }
                        Action::AcceptSlowly(wait) => {
                            self.state.lock().unwrap().accepted.push(received);
                            tokio::time::sleep(wait).await;
                            "250 queued\r\n".to_owned()
                        }
                        Action::AcceptThenGoDown => {
                            self.state.lock().unwrap().accepted.push(received);
                            let _ = stream.write_all(b"250 queued\r\n").await;
                            self.down.store(true, Ordering::SeqCst);
                            return End::Closed;
                        }
                        Action::Reply(text) => format!("{text}\r\n"),
                        Action::Drop => {
                            self.state.lock().unwrap().dropped.push(received);
                            return End::Closed;
                        }
                        Action::Stall => std::future::pending().await,
                    }
                }
                "RSET" => {
                    to.clear();
                    mail = false;
                    "250 ok\r\n".to_owned()
                }
                "NOOP" => "250 ok\r\n".to_owned(),
                "QUIT" => {
                    self.state.lock().unwrap().quits += 1;
                    let _ = stream.write_all(b"221 bye\r\n").await;
                    return End::Closed;
                }
                _ => "500 unknown command\r\n".to_owned(),
            };
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return End::Closed;
            }
        }
    }
}
