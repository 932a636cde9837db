//! The SMTP transport: `concurrency` sessions to the configured server,
//! kept open between messages, one transaction per message.
//!
//! It drives lettre's SMTP client ([`AsyncSmtpConnection`]) itself rather
//! than lettre's pooled transport, because the engine needs to know which
//! command a failure answered: a 5xx to RCPT TO bounces the address, a
//! 5xx to MAIL FROM or DATA does not, and a connection lost after the
//! message was sent may have delivered it (DESIGN.md section 8). The
//! message goes out as the renderer formatted it (and DKIM signed it), so
//! its Message-ID and headers are exactly those recorded.
//!
//! Passwords live in a [`Secret`] that prints as `[redacted]`; no error or
//! log line built here contains one. The per-second limit is paced here
//! (governor); hour and day budgets need the store and live in the engine.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::{Response, Severity};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{DeliveryError, Parcel, Transport, Unreachable};
use crate::config::{Project, Security};
use crate::diagnostic::{InvalidInput, Problem};

/// Failures in a row after which the transport stops trying: sessions
/// that could not be opened, or that stopped answering before a message
/// was handed over. Every further message is
/// [`DeliveryError::Unreachable`] at once, so a dead or stalled server
/// costs a few timeouts, not one per subscriber.
const GIVE_UP_AFTER: u32 = 3;

/// A pooled connection idle longer than this is checked with NOOP first.
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// A password, read from the environment or a file. It never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(password: String) -> Secret {
        Secret(password)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

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
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
    limiter: Option<DefaultDirectRateLimiter>,
    failures: AtomicU32,
    last_failure: Mutex<String>,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server())
            .field("security", &self.security)
            .field("login", &self.login)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The SMTP command a failure answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    MailFrom,
    RcptTo,
    Data,
    /// The message was sent; the server's verdict on it was awaited.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the message",
        })
    }
}

/// How a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The server answered with a 4xx or 5xx reply.
    Reply { permanent: bool, text: String },
    /// The connection broke or the reply made no sense.
    Broken(String),
    /// No reply within the timeout.
    Timeout,
}

impl Failure {
    fn of(error: &lettre::transport::smtp::Error) -> Failure {
        match error.status() {
            Some(code) => Failure::Reply {
                permanent: code.severity == Severity::PermanentNegativeCompletion,
                text: reply_text(error),
            },
            None if error.is_timeout() => Failure::Timeout,
            None => Failure::Broken(error.to_string()),
        }
    }

    /// Whether the session can go on (after RSET).
    fn keeps_connection(&self) -> bool {
        matches!(self, Failure::Reply { text, .. } if !text.starts_with("421"))
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

/// `550 5.1.1 no such user` from a lettre reply error.
fn reply_text(error: &lettre::transport::smtp::Error) -> String {
    let code = error
        .status()
        .map(|code| code.to_string())
        .unwrap_or_default();
    let message = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default();
    format!("{code} {message}").trim().to_owned()
}

fn response_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim()
        .to_owned()
}

/// Whether a permanent reply to RCPT TO says the address itself is bad
/// (no such mailbox, no such domain, mailbox disabled), which bounces it.
/// A policy rejection (`5.7.x`: a blocklist, relaying denied, spam) is
/// about the sender or the message, and must not suppress a whole list.
fn rejects_the_address(reply: &str) -> bool {
    let mut words = reply.split_whitespace();
    let basic = words.next().unwrap_or_default();
    match words.next().filter(|word| word.starts_with("5.")) {
        Some(enhanced) => {
            (enhanced.starts_with("5.1.") && !matches!(enhanced, "5.1.7" | "5.1.8"))
                || enhanced == "5.2.1"
        }
        // Without an enhanced code: the basic codes for a bad mailbox.
        None => matches!(basic, "550" | "551" | "553"),
    }
}

/// What a failed command means for the message (DESIGN.md section 8).
fn classify(stage: Stage, failure: Failure) -> DeliveryError {
    match (stage, failure) {
        (Stage::RcptTo, Failure::Reply {
            permanent: true,
            text,
        }) => DeliveryError::Permanent {
            recipient: rejects_the_address(&text),
            reply: text,
        },
        (_, Failure::Reply {
            permanent: true,
            text,
        }) => DeliveryError::Permanent {
            reply: text,
            recipient: false,
        },
        (_, Failure::Reply { text, .. }) => DeliveryError::Transient(text),
        (Stage::Message, Failure::Broken(reason)) => DeliveryError::Transient(format!(
            "the connection broke after the message was sent ({reason}): it may have arrived; it goes again with the same Message-ID"
        )),
        (Stage::Message, Failure::Timeout) => DeliveryError::Transient(
            "no reply after the message was sent: it may have arrived; it goes again with the same Message-ID"
                .to_owned(),
        ),
        (stage, Failure::Broken(reason)) => DeliveryError::Transient(format!(
            "the connection broke at {stage}, before the message was handed over: {reason}"
        )),
        (stage, Failure::Timeout) => DeliveryError::Transient(format!(
            "no reply to {stage} in time; the message was not handed over"
        )),
    }
}

/// Reads the password `[smtp]` names, if any.
fn password(project: &Project) -> Result<Option<(Secret, String)>, InvalidInput> {
    let smtp = &project.config.smtp;
    let file = &project.config_file;
    if let Some(name) = &smtp.password_env {
        return match std::env::var(name) {
            Ok(value) => Ok(Some((Secret::new(value), format!("${name}")))),
            Err(_) => Err(Problem::error(
                file,
                format!("[smtp] password_env names `{name}`, which is not set: export {name} before running dripline"),
            )
            .into()),
        };
    }
    if let Some(path) = &smtp.password_file {
        let path = project.resolve(path);
        return match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some((
                Secret::new(text.trim_end_matches(['\r', '\n']).to_owned()),
                path.display().to_string(),
            ))),
            Err(err) => Err(Problem::error(
                &path,
                format!("cannot read the SMTP password file named by [smtp] password_file: {err}"),
            )
            .into()),
        };
    }
    Ok(None)
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
            hello: ClientId::default(),
            timeout: smtp.timeout,
            max_idle: delivery.concurrency.get() as usize,
            idle: Mutex::new(Vec::new()),
            limiter,
            failures: AtomicU32::new(0),
            last_failure: Mutex::new(String::new()),
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
        let connection = self.open().await.map_err(Unreachable)?;
        self.check_in(connection);
        Ok(())
    }

    /// Says goodbye (QUIT) on every idle session.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for mut session in idle {
            let _ = tokio::time::timeout(self.timeout, session.connection.command(Quit)).await;
        }
    }

    /// Connects, secures and logs in; on failure, a message naming the
    /// server and what to check.
    async fn open(&self) -> Result<AsyncSmtpConnection, String> {
        let server = self.server();
        let hint_network = format!(
            "Check [smtp] host and port in dripline.toml, that the server runs and that this machine may reach {server}"
        );
        let fail = |what: String, hint: &str| {
            format!("cannot open an SMTP session with {server}: {what}. {hint}")
        };
        let mut connection = match tokio::time::timeout(self.timeout, self.connect_stream()).await {
            Err(_) => {
                return Err(fail(
                    format!(
                        "no greeting within {}",
                        humantime::format_duration(self.timeout)
                    ),
                    &format!(
                        "Check that {server} is an SMTP server (port 465 wants security = \"tls\") and [smtp] timeout"
                    ),
                ));
            }
            Ok(Err(Opening::Socket(err))) => return Err(fail(err.to_string(), &hint_network)),
            Ok(Err(Opening::Tls(err))) => {
                return Err(fail(
                    format!("TLS failed: {}", chain(&err)),
                    "Check [smtp] security (465 is usually \"tls\", 587 \"starttls\") and that the server's certificate is trusted (ca_file for a private CA)",
                ));
            }
            Ok(Err(Opening::Smtp(err))) => return Err(fail(chain(&err), &hint_network)),
            Ok(Ok(connection)) => connection,
        };
        if self.security == Security::Starttls {
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(fail(
                    "the server does not offer STARTTLS, and security = \"starttls\" sends nothing (no password, no email) unencrypted".to_owned(),
                    "Use security = \"tls\" if the port expects TLS from the start, or security = \"none\" to send unencrypted on purpose",
                ));
            }
            let tls = self
                .tls
                .clone()
                .ok_or_else(|| fail("no TLS settings".to_owned(), ""))?;
            match tokio::time::timeout(self.timeout, connection.starttls(tls, &self.hello)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    return Err(fail(
                        format!("STARTTLS failed: {}", chain(&err)),
                        "Check that the server's certificate is valid for [smtp] host and trusted (ca_file for a private CA)",
                    ));
                }
                Err(_) => {
                    return Err(fail(
                        "no reply to STARTTLS in time".to_owned(),
                        &hint_network,
                    ));
                }
            }
        }
        if let Some((user, password)) = &self.login {
            let credentials = Credentials::new(user.clone(), password.expose().to_owned());
            let login = connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials);
            match tokio::time::timeout(self.timeout, login).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    return Err(fail(
                        format!("the login as `{user}` failed: {}", chain(&err)),
                        &format!(
                            "Check [smtp] username and the password in {}",
                            self.password_source
                        ),
                    ));
                }
                Err(_) => return Err(fail("no reply to AUTH in time".to_owned(), &hint_network)),
            }
        }
        Ok(connection)
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

    fn check_in(&self, connection: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// A session from the pool, or a new one. `Ok((connection, reused))`.
    async fn check_out(&self) -> Result<(AsyncSmtpConnection, bool), DeliveryError> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(mut session) = idle else { break };
            if session.since.elapsed() < IDLE_CHECK
                || matches!(
                    tokio::time::timeout(self.timeout, session.connection.test_connected()).await,
                    Ok(true)
                )
            {
                return Ok((session.connection, true));
            }
        }
        self.connect().await.map(|connection| (connection, false))
    }

    /// A new session, counting failures in a row; past [`GIVE_UP_AFTER`]
    /// it no longer tries.
    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        if self.failures.load(Ordering::Relaxed) >= GIVE_UP_AFTER {
            let last = self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            return Err(DeliveryError::Unreachable(last));
        }
        match self.open().await {
            Ok(connection) => Ok(connection),
            Err(message) => {
                self.count_failure(&message);
                Err(DeliveryError::Unreachable(message))
            }
        }
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

    /// One SMTP transaction on `connection`.
    async fn transact(
        &self,
        connection: &mut AsyncSmtpConnection,
        parcel: &Parcel,
    ) -> Result<String, (Stage, Failure)> {
        let mut options = Vec::new();
        if !parcel.bytes.is_ascii()
            && connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
        {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = Mail::new(Some(parcel.from.clone()), options);
        self.step(Stage::MailFrom, connection.command(mail)).await?;
        let rcpt = Rcpt::new(parcel.to.clone(), Vec::new());
        self.step(Stage::RcptTo, connection.command(rcpt)).await?;
        self.step(Stage::Data, connection.command(Data)).await?;
        let response = self
            .step(Stage::Message, connection.message(&parcel.bytes))
            .await?;
        Ok(response_text(&response))
    }

    async fn step(
        &self,
        stage: Stage,
        command: impl Future<Output = Result<Response, lettre::transport::smtp::Error>>,
    ) -> Result<Response, (Stage, Failure)> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err((stage, Failure::of(&err))),
            Err(_) => Err((stage, Failure::Timeout)),
        }
    }
}

/// An error with its sources, `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Transport for Smtp {
    async fn send(&self, parcel: &Parcel) -> Result<String, DeliveryError> {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let (mut connection, reused) = self.check_out().await?;
        let mut result = self.transact(&mut connection, parcel).await;
        // A pooled session the server closed meanwhile fails at once, before
        // anything was handed over: one fresh session gets the message.
        if reused && matches!(result, Err((Stage::MailFrom, Failure::Broken(_)))) {
            connection = self.connect().await?;
            result = self.transact(&mut connection, parcel).await;
        }
        match result {
            Ok(reply) => {
                self.failures.store(0, Ordering::Relaxed);
                self.check_in(connection);
                Ok(reply)
            }
            Err((stage, Failure::Timeout)) if stage != Stage::Message => {
                // The session opened but the server stopped answering.
                self.count_failure(&format!(
                    "{} stopped answering: no reply to {stage} within {}s",
                    self.server(),
                    self.timeout.as_secs()
                ));
                Err(classify(stage, Failure::Timeout))
            }
            Err((stage, failure)) => {
                if failure.keeps_connection()
                    && matches!(
                        tokio::time::timeout(self.timeout, connection.command(Rset)).await,
                        Ok(Ok(_))
                    )
                {
                    self.check_in(connection);
                }
                Err(classify(stage, failure))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(permanent: bool, text: &str) -> Failure {
        Failure::Reply {
            permanent,
            text: text.to_owned(),
        }
    }

    #[test]
    fn only_a_rejected_recipient_bounces() {
        assert_eq!(
            classify(Stage::RcptTo, reply(true, "550 5.1.1 no such user")),
            DeliveryError::Permanent {
                reply: "550 5.1.1 no such user".to_owned(),
                recipient: true
            }
        );
        for policy in [
            "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
            "550 5.7.1 relaying denied",
            "554 transaction failed",
            "550 5.1.8 bad sender address",
        ] {
            assert!(
                matches!(
                    classify(Stage::RcptTo, reply(true, policy)),
                    DeliveryError::Permanent {
                        recipient: false,
                        ..
                    }
                ),
                "{policy}"
            );
        }
        for bad_address in [
            "550 no such user",
            "550 5.1.2 bad domain",
            "550 5.2.1 disabled",
        ] {
            assert!(
                matches!(
                    classify(Stage::RcptTo, reply(true, bad_address)),
                    DeliveryError::Permanent {
                        recipient: true,
                        ..
                    }
                ),
                "{bad_address}"
            );
        }
        for stage in [Stage::MailFrom, Stage::Data, Stage::Message] {
            assert!(matches!(
                classify(stage, reply(true, "554 no")),
                DeliveryError::Permanent {
                    recipient: false,
                    ..
                }
            ));
        }
    }

    #[test]
    fn temporary_replies_and_lost_connections_are_retried() {
        assert_eq!(
            classify(Stage::RcptTo, reply(false, "451 later")),
            DeliveryError::Transient("451 later".to_owned())
        );
        for stage in [Stage::MailFrom, Stage::Message] {
            for failure in [Failure::Timeout, Failure::Broken("reset".to_owned())] {
                assert!(matches!(
                    classify(stage, failure),
                    DeliveryError::Transient(_)
                ));
            }
        }
        let DeliveryError::Transient(unknown) = classify(Stage::Message, Failure::Timeout) else {
            unreachable!()
        };
        assert!(unknown.contains("same Message-ID"), "{unknown}");
    }

    #[test]
    fn a_421_closes_the_session() {
        assert!(!reply(false, "421 closing").keeps_connection());
        assert!(reply(false, "451 later").keeps_connection());
        assert!(!Failure::Timeout.keeps_connection());
    }

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(secret.to_string(), "[redacted]");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(("user", secret))).contains("hunter2"));
    }
}
