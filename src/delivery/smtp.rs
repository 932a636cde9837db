//! The SMTP transport: `concurrency` sessions to the configured server,
//! kept open between messages, one transaction per message.
//!
//! It drives lettre's SMTP client ([`AsyncSmtpConnection`]) itself rather
//! than lettre's pooled transport, because the engine needs to know which
//! command a failure answered: a 5xx to RCPT TO may bounce the address, a
//! 5xx to MAIL FROM does not, and a connection lost after the message was
//! sent may have delivered it (DESIGN.md section 8; the rules are in
//! [`super::reply`]). The message goes out as the renderer formatted it
//! (and DKIM signed it), so its Message-ID and headers are exactly those
//! recorded. When the server announces SIZE, MAIL FROM carries the size,
//! and a message over the limit is never transmitted. When it announces
//! PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA go in one write and
//! their replies are read in order, with the same per-command verdicts
//! ([`super::wire`]); and a message waiting for a session has its
//! commands written right behind the end of the message before it, so a
//! message costs one round trip instead of four ([`super::pool`]).
//!
//! Once the server refuses the sender or the session for good, every
//! further message is refused at once without a word to the server: the
//! pass stops with one message, not one per subscriber.
//!
//! Passwords live in a [`Secret`] that prints as `[redacted]`; no error or
//! log line built here contains one. The per-second limit is paced here
//! (governor); hour and day budgets need the store and live in the engine.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::pool;
use super::reply::{
    Failure, Stage, announced_size, announces, classify, reply_text, response_text,
};
use super::wire::{self, Group};
use super::{DeliveryError, Parcel, Transport, Unreachable, hello};
use crate::config::{Project, Security};
use crate::diagnostic::{InvalidInput, Problem};
use crate::secret::{self, Secret};

/// Failures in a row after which the transport stops trying: sessions
/// that could not be opened, or that stopped answering before a message
/// was handed over. Every further message is
/// [`DeliveryError::Unreachable`] at once, so a dead or stalled server
/// costs a few timeouts, not one per subscriber.
const GIVE_UP_AFTER: u32 = 3;

/// A pooled connection idle longer than this is checked with NOOP first.
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// Sends through the `[smtp]` server of a project.
pub struct Smtp {
    host: String,
    port: u16,
    security: Security,
    /// For STARTTLS.
    tls: Option<TlsParameters>,
    /// For `security = "tls"`.
    implicit_tls: Option<tokio_native_tls::TlsConnector>,
    login: Option<(String, Secret)>,
    /// Where the password came from, for messages (`$VAR` or a file name).
    password_source: String,
    hello: ClientId,
    timeout: Duration,
    pool: Arc<Pool>,
    limiter: Option<DefaultDirectRateLimiter>,
    failures: AtomicU32,
    last_failure: Mutex<String>,
    /// Set once the server refused the sender or the session for good.
    refused: Mutex<Option<String>>,
}

/// An open session and what the server announced in it.
struct Session {
    connection: AsyncSmtpConnection,
    /// The SIZE extension: `None` without it, `Some(0)` without a limit.
    size: Option<u64>,
    /// The server announced PIPELINING.
    pipelining: bool,
}

/// What a message in line needs for its commands to be written by the
/// session before it.
#[derive(Clone)]
struct Envelope {
    from: Address,
    to: Address,
    /// The message's size in bytes, for SIZE.
    size: usize,
    /// Whether the message is 7-bit, or needs 8BITMIME.
    ascii: bool,
}

/// The pool of this transport's sessions, and what it hands out.
type Pool = pool::Pool<Session, Envelope>;
type Lease = pool::Lease<Session, Envelope>;
type Turn = pool::Turn<Session, Envelope>;
type Waiting = pool::Waiting<Session, Envelope>;

/// How a transaction starts in the session it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A session just opened.
    Fresh,
    /// A session from the pool, which the server may have closed meanwhile.
    Reused,
    /// Its commands went out behind the message before it; their replies
    /// come next.
    Chained,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server())
            .field("security", &self.security)
            .field("login", &self.login)
            .field("hello", &self.hello)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be opened.
enum Opening {
    /// No TCP connection (refused, unreachable, unknown host).
    Socket(std::io::Error),
    /// The TLS handshake of `security = "tls"` failed.
    Tls(native_tls::Error),
    /// The greeting or EHLO failed.
    Smtp(lettre::transport::smtp::Error),
}

/// An implicit-TLS stream made here rather than by lettre, so that its
/// socket has TCP_NODELAY like the others.
#[derive(Debug)]
struct TlsSocket(tokio_native_tls::TlsStream<tokio::net::TcpStream>);

impl AsyncRead for TlsSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().get_ref().get_ref().peer_addr()
    }
}

/// Reads the password `[smtp]` names, if any, and where it came from.
fn password(project: &Project) -> Result<Option<(Secret, String)>, InvalidInput> {
    let smtp = &project.config.smtp;
    let secret = secret::read_optional(
        project,
        "smtp",
        smtp.password_env.as_deref(),
        smtp.password_file.as_deref(),
    )?;
    let source = match (&smtp.password_env, &smtp.password_file) {
        (Some(name), _) => format!("${name}"),
        (None, Some(path)) => project.resolve(path).display().to_string(),
        (None, None) => String::new(),
    };
    Ok(secret.map(|secret| (secret, source)))
}

/// TLS settings for STARTTLS (lettre's) and for implicit TLS (a
/// connector of our own), trusting `ca_file` besides the system's roots.
fn tls_settings(
    host: &str,
    ca_file: Option<&Path>,
) -> Result<(TlsParameters, tokio_native_tls::TlsConnector), InvalidInput> {
    let mut parameters = TlsParameters::builder(host.to_owned());
    let mut connector = native_tls::TlsConnector::builder();
    if let Some(path) = ca_file {
        let problem = |message: String| InvalidInput::from(Problem::error(path, message));
        let pem = std::fs::read(path)
            .map_err(|err| problem(format!("cannot read [smtp] ca_file: {err}")))?;
        let not_pem = |err: &dyn fmt::Display| {
            problem(format!("[smtp] ca_file is not a PEM certificate: {err}"))
        };
        parameters =
            parameters.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| not_pem(&e))?);
        connector.add_root_certificate(
            native_tls::Certificate::from_pem(&pem).map_err(|e| not_pem(&e))?,
        );
    }
    let cannot = |err: &dyn fmt::Display| -> InvalidInput {
        Problem::error("[smtp]", format!("cannot set up TLS for {host}: {err}")).into()
    };
    let parameters = parameters.build().map_err(|e| cannot(&e))?;
    let connector = connector.build().map_err(|e| cannot(&e))?;
    Ok((parameters, connector.into()))
}

impl Smtp {
    /// The transport `[smtp]` and `[delivery]` of `project` describe. Reads
    /// the password and the CA file; connects to nothing yet.
    pub fn new(project: &Project) -> Result<Smtp, InvalidInput> {
        let smtp = &project.config.smtp;
        let delivery = &project.config.delivery;
        let login = match (&smtp.username, password(project)?) {
            (Some(user), Some((secret, source))) => Some((user.clone(), secret, source)),
            (Some(user), None) => {
                return Err(Problem::error(
                    &project.config_file,
                    format!("[smtp] username = \"{user}\" but no password: set password_env or password_file"),
                )
                .into());
            }
            (None, Some(_)) => {
                return Err(Problem::error(
                    &project.config_file,
                    "[smtp] names a password but no username: set username",
                )
                .into());
            }
            (None, None) => None,
        };
        let (tls, implicit_tls) = match smtp.security {
            Security::None => (None, None),
            Security::Starttls | Security::Tls => {
                let ca_file = smtp.ca_file.as_ref().map(|path| project.resolve(path));
                let (parameters, connector) = tls_settings(&smtp.host, ca_file.as_deref())?;
                let implicit = (smtp.security == Security::Tls).then_some(connector);
                (Some(parameters), implicit)
            }
        };
        let limiter = NonZeroU32::new(delivery.max_per_second)
            .map(|rate| RateLimiter::direct(Quota::per_second(rate).allow_burst(NonZeroU32::MIN)));
        let (login, password_source) = match login {
            Some((user, secret, source)) => (Some((user, secret)), source),
            None => (None, String::new()),
        };
        Ok(Smtp {
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            tls,
            implicit_tls,
            login,
            password_source,
            hello: hello::client_id(
                smtp.helo_name.as_deref(),
                hello::machine_name().as_deref(),
                project.config.sender.from.email.domain(),
            ),
            timeout: smtp.timeout,
            pool: Pool::new(delivery.concurrency.get() as usize),
            limiter,
            failures: AtomicU32::new(0),
            last_failure: Mutex::new(String::new()),
            refused: Mutex::new(None),
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens one session (connect, TLS, login) and keeps it for the first
    /// message. Run before claiming anything, so a dead server fails the
    /// run with one message instead of one per subscriber.
    pub async fn probe(&self) -> Result<(), Unreachable> {
        match self.open().await {
            Ok(session) => {
                self.pool.add(session);
                Ok(())
            }
            Err(err) => Err(Unreachable(err.to_string())),
        }
    }

    /// Says goodbye (QUIT) on every idle session.
    pub async fn close(&self) {
        for mut session in self.pool.drain() {
            let _ = tokio::time::timeout(self.timeout, session.connection.command(Quit)).await;
        }
    }

    /// "cannot open an SMTP session with host:port: what. hint"
    fn cannot_open(&self, what: &str, hint: &str) -> String {
        format!(
            "cannot open an SMTP session with {}: {what}. {hint}",
            self.server()
        )
    }

    fn hint_network(&self) -> String {
        format!(
            "Check [smtp] host and port in dripline.toml, that the server runs and that this machine may reach {}",
            self.server()
        )
    }

    /// A failed SMTP command while opening: refused for good on a 5xx
    /// reply (`permanent_hint` says what to change), unreachable otherwise.
    fn opening_failed(
        &self,
        what: &str,
        err: &lettre::transport::smtp::Error,
        permanent_hint: &str,
    ) -> DeliveryError {
        // A reply reads as the server wrote it: `535 5.7.8 ...`.
        let detail = if err.status().is_some() {
            reply_text(err)
        } else {
            chain(err)
        };
        let what = format!("{what}: {detail}");
        if err.is_permanent() {
            DeliveryError::Refused(self.cannot_open(&what, permanent_hint))
        } else {
            DeliveryError::Unreachable(self.cannot_open(&what, &self.hint_network()))
        }
    }

    /// Connects, secures, learns the server's SIZE and logs in. On
    /// failure, a message naming the server and what to check:
    /// [`DeliveryError::Refused`] when the server refused for good (the
    /// EHLO name, the login), [`DeliveryError::Unreachable`] otherwise.
    async fn open(&self) -> Result<Session, DeliveryError> {
        let mut connection = self.secure().await?;
        let helo_hint = format!(
            "The server may want another EHLO name than `{}`: set [smtp] helo_name to this machine's public, fully-qualified host name, e.g. helo_name = \"mail.example.com\"",
            self.hello
        );
        // lettre keeps no SIZE from its EHLO: ask again, on the secured
        // connection and before the login (a new EHLO may reset one).
        let ehlo = connection.command(Ehlo::new(self.hello.clone()));
        let (size, pipelining) = match tokio::time::timeout(self.timeout, ehlo).await {
            Ok(Ok(response)) => (
                announced_size(response.message()),
                announces(response.message(), "PIPELINING"),
            ),
            Ok(Err(err)) => {
                let _ = tokio::time::timeout(self.timeout, connection.abort()).await;
                return Err(self.opening_failed("EHLO failed", &err, &helo_hint));
            }
            // A server that stopped answering gets no QUIT to wait for.
            Err(_) => {
                return Err(DeliveryError::Unreachable(
                    self.cannot_open("no reply to EHLO in time", &self.hint_network()),
                ));
            }
        };
        self.log_in(&mut connection).await?;
        Ok(Session {
            connection,
            size,
            pipelining,
        })
    }

    /// Connects, reads the greeting, says EHLO and, with `starttls`,
    /// switches to TLS.
    async fn secure(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let server = self.server();
        let unreachable =
            |what: String, hint: &str| DeliveryError::Unreachable(self.cannot_open(&what, hint));
        let mut connection = match tokio::time::timeout(self.timeout, self.connect_stream()).await {
            Err(_) => {
                return Err(unreachable(
                    format!(
                        "no greeting within {}",
                        humantime::format_duration(self.timeout)
                    ),
                    &format!(
                        "Check that {server} is an SMTP server (port 465 wants security = \"tls\") and [smtp] timeout"
                    ),
                ));
            }
            Ok(Err(Opening::Socket(err))) => {
                return Err(unreachable(err.to_string(), &self.hint_network()));
            }
            Ok(Err(Opening::Tls(err))) => {
                return Err(unreachable(
                    format!("TLS failed: {}", chain(&err)),
                    "Check [smtp] security (465 is usually \"tls\", 587 \"starttls\") and that the server's certificate is trusted (ca_file for a private CA)",
                ));
            }
            Ok(Err(Opening::Smtp(err))) => {
                return Err(self.opening_failed(
                    &format!("the server refused the session as `{}`", self.hello),
                    &err,
                    "If it wants a fully-qualified EHLO name, set [smtp] helo_name to this machine's public host name, e.g. helo_name = \"mail.example.com\"",
                ));
            }
            Ok(Ok(connection)) => connection,
        };
        if self.security != Security::Starttls {
            return Ok(connection);
        }
        if !connection.can_starttls() {
            connection.abort().await;
            return Err(unreachable(
                "the server does not offer STARTTLS, and security = \"starttls\" sends nothing (no password, no email) unencrypted".to_owned(),
                "Use security = \"tls\" if the port expects TLS from the start, or security = \"none\" to send unencrypted on purpose",
            ));
        }
        let tls = self
            .tls
            .clone()
            .ok_or_else(|| unreachable("no TLS settings".to_owned(), ""))?;
        match tokio::time::timeout(self.timeout, connection.starttls(tls, &self.hello)).await {
            Ok(Ok(())) => Ok(connection),
            Ok(Err(err)) => Err(unreachable(
                format!("STARTTLS failed: {}", chain(&err)),
                "Check that the server's certificate is valid for [smtp] host and trusted (ca_file for a private CA)",
            )),
            Err(_) => Err(unreachable(
                "no reply to STARTTLS in time".to_owned(),
                &self.hint_network(),
            )),
        }
    }

    /// Logs in when `[smtp]` has a username. After a failed login the
    /// session ends politely (QUIT).
    async fn log_in(&self, connection: &mut AsyncSmtpConnection) -> Result<(), DeliveryError> {
        let Some((user, password)) = &self.login else {
            return Ok(());
        };
        let credentials = Credentials::new(user.clone(), password.expose().to_owned());
        let login = connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials);
        match tokio::time::timeout(self.timeout, login).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => {
                let _ = tokio::time::timeout(self.timeout, connection.abort()).await;
                Err(self.opening_failed(
                    &format!("the login as `{user}` failed"),
                    &err,
                    &format!(
                        "Check [smtp] username and the password in {}",
                        self.password_source
                    ),
                ))
            }
            // A server that stopped answering gets no QUIT to wait for.
            Err(_) => Err(DeliveryError::Unreachable(
                self.cannot_open("no reply to AUTH in time", &self.hint_network()),
            )),
        }
    }

    /// Connects and reads the greeting. Without implicit TLS the socket is
    /// made here, with TCP_NODELAY: lettre writes a message and its final
    /// dot separately, and Nagle's algorithm would hold the dot back until
    /// the server's delayed ACK (about 40 ms a message).
    async fn connect_stream(&self) -> Result<AsyncSmtpConnection, Opening> {
        let socket = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(Opening::Socket)?;
        // Only a latency optimisation: go on without it.
        let _ = socket.set_nodelay(true);
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit_tls {
            Some(connector) => Box::new(TlsSocket(
                connector
                    .connect(&self.host, socket)
                    .await
                    .map_err(Opening::Tls)?,
            )),
            None => Box::new(socket),
        };
        AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(Opening::Smtp)
    }

    /// A session for a message with `envelope`, and how its transaction
    /// starts: the turn the pool gives it, a pooled session idle too long
    /// checked with NOOP first, a new one opened when there is room. A
    /// message that waited in line while the server refused the sender or
    /// the session goes no further, unless its commands already went out.
    async fn session_for(&self, envelope: &Envelope) -> Result<(Lease, Start), DeliveryError> {
        loop {
            let turn = self.pool.take(envelope.clone()).await;
            if let (Some(reason), Turn::Free(..) | Turn::Open(_)) = (self.refusal(), &turn) {
                if let Turn::Free(lease, _) = turn {
                    lease.give_back();
                }
                return Err(DeliveryError::Refused(reason));
            }
            match turn {
                Turn::Chained(lease) => return Ok((lease, Start::Chained)),
                Turn::Free(mut lease, since) => {
                    let connection =
                        &mut lease.session.as_mut().expect("a free session").connection;
                    if since.elapsed() < IDLE_CHECK
                        || matches!(
                            tokio::time::timeout(self.timeout, connection.test_connected()).await,
                            Ok(true)
                        )
                    {
                        return Ok((lease, Start::Reused));
                    }
                    // Gone stale: dropped, which frees its room.
                }
                Turn::Open(mut lease) => {
                    lease.session = Some(self.connect().await?);
                    return Ok((lease, Start::Fresh));
                }
            }
        }
    }

    /// A new session, counting failures in a row; past [`GIVE_UP_AFTER`]
    /// it no longer tries.
    async fn connect(&self) -> Result<Session, DeliveryError> {
        if self.failures.load(Ordering::Relaxed) >= GIVE_UP_AFTER {
            let last = self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            return Err(DeliveryError::Unreachable(last));
        }
        let opened = self.open().await;
        match &opened {
            Err(DeliveryError::Unreachable(message)) => self.count_failure(message),
            Err(refused @ DeliveryError::Refused(_)) => self.remember(refused),
            _ => {}
        }
        opened
    }

    /// Counts a failure towards [`GIVE_UP_AFTER`]; a delivered message
    /// resets the count.
    fn count_failure(&self, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        message.clone_into(
            &mut self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Keeps the first refusal of the sender or the session: every later
    /// message gets it at once.
    fn remember(&self, error: &DeliveryError) {
        if let DeliveryError::Refused(reason) = error {
            self.refused
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| reason.clone());
        }
    }

    fn refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One SMTP transaction in `session`, started as `start` says. A
    /// message larger than the server's SIZE is not sent at all. With
    /// PIPELINING, the next message in line that fits has its commands
    /// written right behind this message: it is returned, for its turn.
    async fn transact(
        &self,
        session: &mut Session,
        parcel: &Parcel,
        envelope: &Envelope,
        start: Start,
    ) -> (Result<String, (Stage, Failure)>, Option<Waiting>) {
        let began = match start {
            Start::Chained => self.pipelined(&mut session.connection, None).await,
            Start::Fresh | Start::Reused => self.envelope(session, envelope).await,
        };
        if let Err(failure) = began {
            return (Err(failure), None);
        }
        // The message and its final dot in one write. A message is UTF-8
        // as rendered; should one not be, lettre's codec sends it.
        let Ok(text) = std::str::from_utf8(&parcel.bytes) else {
            let sent = self
                .step(Stage::Message, session.connection.message(&parcel.bytes))
                .await
                .map(|response| response_text(&response));
            return (sent, None);
        };
        let next = if session.pipelining {
            self.pool.chain(|next| fits(session, next).is_ok())
        } else {
            None
        };
        let then = next.as_ref().map(|next| commands(session, &next.envelope));
        let message = wire::Message {
            text,
            then: then.as_ref(),
        };
        let sent = self
            .step(Stage::Message, session.connection.command(message))
            .await
            .map(|response| response_text(&response));
        (sent, next)
    }

    /// MAIL FROM, RCPT TO and DATA for `envelope`, in one write with
    /// PIPELINING, else one by one; `Ok` once DATA has its 354.
    async fn envelope(
        &self,
        session: &mut Session,
        envelope: &Envelope,
    ) -> Result<(), (Stage, Failure)> {
        fits(session, envelope)?;
        let group = commands(session, envelope);
        let connection = &mut session.connection;
        if session.pipelining {
            return self.pipelined(connection, Some(&group)).await;
        }
        self.step(Stage::MailFrom, connection.command(group.mail))
            .await?;
        self.step(Stage::RcptTo, connection.command(group.rcpt))
            .await?;
        self.step(Stage::Data, connection.command(Data)).await?;
        Ok(())
    }

    /// MAIL FROM, RCPT TO and DATA in one write (`group`; `None` when the
    /// session before wrote them), then their three replies in order.
    /// Every reply is read, so the session stays in step, and
    /// the first failure is the one that counts: a refused RCPT TO fails
    /// the DATA after it too, and only the RCPT TO's reply says why. A
    /// server that answers DATA with 354 all the same gets an empty
    /// message ended at once.
    async fn pipelined(
        &self,
        connection: &mut AsyncSmtpConnection,
        group: Option<&Group>,
    ) -> Result<(), (Stage, Failure)> {
        let mut first = None;
        for stage in [Stage::MailFrom, Stage::RcptTo, Stage::Data] {
            let reply = match group {
                Some(group) if stage == Stage::MailFrom => {
                    self.reply(connection.command(group)).await
                }
                _ => self.reply(connection.read_response()).await,
            };
            match reply {
                Ok(_) if stage == Stage::Data && first.is_some() => {
                    let empty = wire::Message {
                        text: "",
                        then: None,
                    };
                    let _ = self.reply(connection.command(empty)).await;
                }
                Ok(_) => {}
                // Nothing more will come: what failed first says why.
                Err(failure @ (Failure::Broken(_) | Failure::Timeout)) => {
                    return Err(first.unwrap_or((stage, failure)));
                }
                Err(failure) => {
                    first.get_or_insert((stage, failure));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn step(
        &self,
        stage: Stage,
        command: impl Future<Output = Result<Response, lettre::transport::smtp::Error>>,
    ) -> Result<Response, (Stage, Failure)> {
        self.reply(command)
            .await
            .map_err(|failure| (stage, failure))
    }

    /// The reply to a command, within the timeout.
    async fn reply(
        &self,
        command: impl Future<Output = Result<Response, lettre::transport::smtp::Error>>,
    ) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(Failure::of(&err)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// What a failed transaction means; a refusal names the server and is
    /// kept for every later message.
    fn failed(&self, stage: Stage, failure: Failure) -> DeliveryError {
        let error = match classify(stage, failure) {
            DeliveryError::Refused(reason) => {
                DeliveryError::Refused(format!("{} {reason}", self.server()))
            }
            other => other,
        };
        self.remember(&error);
        error
    }
}

/// An error with its sources, `a: b: c`, each said once: lettre's errors
/// print their source too, and nest (`Connection error: Connection error:
/// tls handshake failed`), and TLS errors repeat OpenSSL's words.
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(layer) = current {
        current = layer.source();
        let text = layer.to_string();
        if parts.iter().any(|part| part.contains(&text)) {
            continue;
        }
        // A layer's own words: its text without its source's.
        let own = match current.map(ToString::to_string) {
            Some(inner) => text
                .strip_suffix(&inner)
                .map_or(text.as_str(), |own| own.trim_end_matches([':', ' ']))
                .to_owned(),
            None => text,
        };
        if !own.is_empty() && parts.last() != Some(&own) {
            parts.push(own);
        }
    }
    parts.join(": ")
}

impl Transport for Smtp {
    async fn send(&self, parcel: &Parcel) -> Result<String, DeliveryError> {
        if let Some(reason) = self.refusal() {
            return Err(DeliveryError::Refused(reason));
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let envelope = envelope(parcel);
        let (mut lease, start) = self.session_for(&envelope).await?;
        let session = lease.session.as_mut().expect("a session in the lease");
        let (mut result, mut next) = self.transact(session, parcel, &envelope, start).await;
        // A pooled session the server closed meanwhile fails at once, before
        // anything was handed over: one fresh session gets the message.
        if start != Start::Fresh && matches!(result, Err((Stage::MailFrom, Failure::Broken(_)))) {
            lease.session = None;
            let session = lease.session.insert(self.connect().await?);
            (result, next) = self
                .transact(session, parcel, &envelope, Start::Fresh)
                .await;
        }
        let session = lease.session.as_mut().expect("a session in the lease");
        match result {
            Ok(reply) => {
                self.failures.store(0, Ordering::Relaxed);
                hand_on(lease, next, true);
                Ok(reply)
            }
            Err((stage, Failure::Timeout)) if stage != Stage::Message => {
                // The session opened but the server stopped answering.
                self.count_failure(&format!(
                    "{} stopped answering: no reply to {stage} within {}s",
                    self.server(),
                    self.timeout.as_secs()
                ));
                hand_on(lease, next, false);
                Err(classify(stage, Failure::Timeout))
            }
            Err((stage, failure)) => {
                // After the message, the transaction is over: no RSET, which
                // would also undo the commands of the next one.
                let keep = failure.keeps_connection()
                    && (stage == Stage::Message
                        || matches!(
                            tokio::time::timeout(self.timeout, session.connection.command(Rset))
                                .await,
                            Ok(Ok(_))
                        ));
                hand_on(lease, next, keep);
                Err(self.failed(stage, failure))
            }
        }
    }
}

/// Passes a session on once its message is done: to the message whose
/// commands went out behind it (or, when the session is lost, its room),
/// else back to the pool; a session not kept is closed.
fn hand_on(mut lease: Lease, next: Option<Waiting>, keep: bool) {
    match (next, keep) {
        (Some(next), true) => {
            next.give(Turn::Chained(lease));
        }
        (Some(next), false) => {
            lease.session = None;
            next.give(Turn::Open(lease));
        }
        (None, true) => lease.give_back(),
        (None, false) => drop(lease),
    }
}

/// What the pool keeps of a parcel waiting in line.
fn envelope(parcel: &Parcel) -> Envelope {
    Envelope {
        from: parcel.from.clone(),
        to: parcel.to.clone(),
        size: parcel.bytes.len(),
        ascii: parcel.bytes.is_ascii(),
    }
}

/// Whether a message of `envelope` is within the server's SIZE.
fn fits(session: &Session, envelope: &Envelope) -> Result<(), (Stage, Failure)> {
    match session.size {
        Some(limit) if limit > 0 && envelope.size as u64 > limit => Err((
            Stage::MailFrom,
            Failure::TooBig {
                size: envelope.size,
                limit,
            },
        )),
        _ => Ok(()),
    }
}

/// MAIL FROM and RCPT TO for `envelope`: with its SIZE when the server
/// announced SIZE, and 8BITMIME for a message that is not 7-bit when the
/// server announced that.
fn commands(session: &Session, envelope: &Envelope) -> Group {
    let mut options = Vec::new();
    if session.size.is_some() {
        options.push(MailParameter::Size(envelope.size));
    }
    if !envelope.ascii
        && session
            .connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
    {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Group {
        mail: Mail::new(Some(envelope.from.clone()), options),
        rcpt: Rcpt::new(envelope.to.clone(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints its source after its own words, as lettre's do.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<dyn std::error::Error>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.1 {
                Some(source) => write!(f, "{}: {source}", self.0),
                None => f.write_str(self.0),
            }
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref()
        }
    }

    /// An error whose text already holds its source's, not at the end.
    #[derive(Debug)]
    struct Layer2(&'static str, Layer);

    impl fmt::Display for Layer2 {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer2 {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn an_error_chain_says_each_thing_once() {
        let nested = Layer(
            "Connection error",
            Some(Box::new(Layer(
                "Connection error",
                Some(Box::new(Layer("certificate verify failed", None))),
            ))),
        );
        assert_eq!(
            chain(&nested),
            "Connection error: certificate verify failed"
        );
        let reply = Layer(
            "permanent error (535)",
            Some(Box::new(Layer("5.7.8 authentication failed", None))),
        );
        assert_eq!(
            chain(&reply),
            "permanent error (535): 5.7.8 authentication failed"
        );
        // A layer that says its source's words in the middle of its own.
        let tls = Layer(
            "STARTTLS",
            Some(Box::new(Layer2(
                "verify failed (self-signed certificate)",
                Layer("verify failed", None),
            ))),
        );
        assert_eq!(
            chain(&tls),
            "STARTTLS: verify failed (self-signed certificate)"
        );
    }
}
