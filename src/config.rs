//! `dripline.toml`: the operator's configuration.
//!
//! Parsing is strict (an unknown key is an error naming the file, line and
//! the keys allowed) and typed at the boundary: time zones, addresses,
//! durations and cron expressions become real values while the TOML is
//! read, so their errors carry the line and caret. Checks that need the
//! disk (does the referenced sequence exist?) happen in [`Project::load`].
//! Secrets are never read from this file: only the names of the
//! environment variables or files that hold them.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;

use crate::crontab::CronSchedule;
use crate::diagnostic::{InvalidInput, Problem, Report};
use crate::sequence;
use crate::subscribers::Columns;
use crate::zone::Zone;

/// The file name `dripline` looks for in the project directory.
pub const FILE_NAME: &str = "dripline.toml";

/// The whole of `dripline.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Time zone for subscribers whose row and sequence name none (IANA name).
    #[serde(default)]
    pub timezone: Zone,
    /// Who the emails come from.
    pub sender: Sender,
    /// Which list file feeds which sequence; one or more.
    #[serde(default)]
    pub drip: Vec<Drip>,
    /// How emails leave: transport and limits.
    #[serde(default)]
    pub delivery: Delivery,
    /// The SMTP server, for `transport = "smtp"`.
    #[serde(default)]
    pub smtp: Smtp,
    /// DKIM signing; off when absent.
    pub dkim: Option<Dkim>,
    /// One-click unsubscribe links and the key that signs them.
    #[serde(default)]
    pub unsubscribe: Unsubscribe,
    /// Where send state lives.
    #[serde(default)]
    pub state: State,
    /// `dripline serve`: the HTTP endpoint and the tick schedule.
    #[serde(default)]
    pub serve: Serve,
    /// `[signup.<sequence>]`: the signup form of each sequence that has one.
    #[serde(default)]
    pub signup: BTreeMap<String, Spanned<Signup>>,
    /// Where bounces, complaints and mailto unsubscribes arrive; off when absent.
    pub mailbox: Option<FeedbackMailbox>,
    /// Provider webhooks `dripline serve` answers; each is off unless set.
    #[serde(default)]
    pub webhooks: Webhooks,
}

/// `[webhooks]`: bounce and complaint events from the sending provider,
/// posted to `dripline serve` at `/webhooks/<provider>`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// Amazon SES notifications through an SNS topic: `/webhooks/ses`.
    pub ses: Option<SesWebhook>,
    /// Postmark's bounce and spam complaint webhooks: `/webhooks/postmark`.
    pub postmark: Option<PostmarkWebhook>,
    /// Mailgun's event webhooks: `/webhooks/mailgun`.
    pub mailgun: Option<MailgunWebhook>,
}

/// `[webhooks.ses]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesWebhook {
    /// The SNS topic whose messages are accepted (its ARN); others are refused.
    pub topic_arn: String,
    /// A folder for SNS signing certificates, relative to the config file:
    /// each is fetched once (from `https://sns.<region>.amazonaws.com/`
    /// only) and kept there.
    pub certificate_cache: Option<PathBuf>,
}

/// `[webhooks.postmark]`: the HTTP Basic credentials set on the webhook
/// (`https://USER:PASSWORD@news.example.com/dripline/webhooks/postmark`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmarkWebhook {
    pub username: String,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// The file that holds the password, relative to the config file.
    pub password_file: Option<PathBuf>,
}

/// `[webhooks.mailgun]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailgunWebhook {
    /// The environment variable that holds the webhook signing key.
    pub signing_key_env: Option<String>,
    /// The file that holds the webhook signing key, relative to the config file.
    pub signing_key_file: Option<PathBuf>,
    /// How old a signed request may be; older ones (and any token seen
    /// before) are refused as replays.
    #[serde(default = "five_minutes", deserialize_with = "duration")]
    pub max_age: Duration,
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

/// `[sender]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// The From header, `Name <address>` or a bare address. Required.
    #[serde(deserialize_with = "mailbox")]
    pub from: Mailbox,
    /// Where replies go, when not to `from`.
    #[serde(default, deserialize_with = "optional_mailbox")]
    pub reply_to: Option<Mailbox>,
    /// The postal address every footer shows (CAN-SPAM).
    #[serde(default)]
    pub postal_address: Option<String>,
}

/// `[[drip]]`: a list file that feeds a sequence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drip {
    /// The sequence id: a folder under `sequences/`.
    pub sequence: Spanned<String>,
    /// The list file (CSV), relative to the config file.
    pub list: Spanned<PathBuf>,
    /// The list's own names for the columns dripline reads, when they are
    /// neither dripline's nor a known export's: `{ email = "E-mail" }`.
    #[serde(default)]
    pub columns: Columns,
}

/// `[delivery]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// `outbox` writes .eml files; `smtp` sends.
    pub transport: Transport,
    /// Where the outbox transport writes, relative to the config file.
    pub outbox_dir: PathBuf,
    /// Parallel SMTP sessions.
    pub concurrency: std::num::NonZeroU32,
    /// Provider limit per second; 0 = unlimited.
    pub max_per_second: u32,
    /// Provider limit per hour; 0 = unlimited.
    pub max_per_hour: u32,
    /// Provider limit per day; 0 = unlimited. The rest waits for the next run.
    pub max_per_day: u32,
    /// Transient failures, across runs, before giving up on an email.
    pub max_attempts: std::num::NonZeroU32,
    /// How late a due email may still go out; later ones wait for the next slot.
    #[serde(deserialize_with = "duration")]
    pub catch_up: Duration,
    /// The envelope sender (MAIL FROM), where bounces go: each email is
    /// sent from `local+TOKEN@domain` (VERP), so every bounce names its
    /// subscriber and step. Default: the sender's address, without a token.
    #[serde(deserialize_with = "optional_bounce_address")]
    pub return_path: Option<lettre::Address>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            transport: Transport::Outbox,
            outbox_dir: PathBuf::from("outbox"),
            concurrency: std::num::NonZeroU32::new(4).unwrap_or(std::num::NonZeroU32::MIN),
            max_per_second: 10,
            max_per_hour: 0,
            max_per_day: 0,
            max_attempts: std::num::NonZeroU32::new(8).unwrap_or(std::num::NonZeroU32::MIN),
            catch_up: Duration::from_secs(12 * 3600),
            return_path: None,
        }
    }
}

/// How emails leave the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Write each email as an .eml file into `outbox_dir`.
    Outbox,
    /// Send through `[smtp]`.
    Smtp,
}

/// `[smtp]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// The server's host name.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// `starttls`, `tls` (implicit TLS) or `none`.
    pub security: Security,
    /// The login name, when the server wants one.
    pub username: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// The file that holds the password, relative to the config file.
    pub password_file: Option<PathBuf>,
    /// How long to wait for the server before giving up on a step.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// An extra certificate (PEM) to trust for the server, relative to the
    /// config file: for a private CA or a self-signed server.
    pub ca_file: Option<PathBuf>,
    /// The name given in EHLO; by default this machine's host name when it
    /// is fully qualified, else the domain of `[sender] from`.
    #[serde(deserialize_with = "optional_host_name")]
    pub helo_name: Option<String>,
    /// Present only to explain where a password belongs instead.
    #[serde(rename = "password", deserialize_with = "refuse_plain_password")]
    _password: Option<std::convert::Infallible>,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: "localhost".to_owned(),
            port: 587,
            security: Security::Starttls,
            username: None,
            password_env: None,
            password_file: None,
            timeout: Duration::from_secs(30),
            ca_file: None,
            helo_name: None,
            _password: None,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Starttls,
    Tls,
    None,
}

/// `[dkim]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dkim {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The DNS selector (`s=`).
    pub selector: String,
    /// The private key: RSA (PKCS#1 or PKCS#8 PEM) or Ed25519.
    pub private_key_file: PathBuf,
}

/// `[unsubscribe]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Unsubscribe {
    /// The public URL where `dripline serve` answers, e.g. `https://news.example.com/dripline`.
    #[serde(deserialize_with = "optional_web_url")]
    pub base_url: Option<String>,
    /// An address for `mailto:` unsubscribes.
    #[serde(deserialize_with = "optional_mailbox")]
    pub mailto: Option<Mailbox>,
    /// The HMAC key file (64 hex characters), relative to the config file.
    pub secret_file: PathBuf,
    /// A former key file whose links `dripline serve` still accepts, so
    /// the secret can be rotated without breaking links already sent.
    pub previous_secret_file: Option<PathBuf>,
}

impl Default for Unsubscribe {
    fn default() -> Self {
        Unsubscribe {
            base_url: None,
            mailto: None,
            secret_file: PathBuf::from(".dripline-secret"),
            previous_secret_file: None,
        }
    }
}

/// `[state]`: a SQLite file (`path`, the default) or a PostgreSQL
/// database (`url_env`, or `url` with `password_env`/`password_file`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct State {
    /// The SQLite file, relative to the config file; `dripline.db` when
    /// no database URL is set.
    pub path: Option<PathBuf>,
    /// The environment variable that holds the PostgreSQL URL, password
    /// included.
    pub url_env: Option<String>,
    /// The PostgreSQL URL, without a password.
    pub url: Option<String>,
    /// The environment variable that holds the database password, with `url`.
    pub password_env: Option<String>,
    /// The file that holds the database password, with `url`, relative to
    /// the config file.
    pub password_file: Option<PathBuf>,
    /// How long an instance may miss its heartbeats before the others take
    /// over its claims (PostgreSQL only).
    #[serde(deserialize_with = "duration")]
    pub instance_timeout: Duration,
}

impl Default for State {
    fn default() -> Self {
        State {
            path: None,
            url_env: None,
            url: None,
            password_env: None,
            password_file: None,
            instance_timeout: Duration::from_secs(60),
        }
    }
}

impl State {
    /// The SQLite file when no database URL is set, as written.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match (&self.url, &self.url_env) {
            (None, None) => Some(self.path.as_deref().unwrap_or(Path::new("dripline.db"))),
            _ => None,
        }
    }

    /// Settings that contradict each other, as messages.
    fn problems(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        let postgres = self.url.is_some() || self.url_env.is_some();
        if self.path.is_some() && postgres {
            problems.push("[state] sets both path (a SQLite file) and a PostgreSQL URL: keep one");
        }
        if self.url.is_some() && self.url_env.is_some() {
            problems.push("[state] sets both url and url_env: keep one");
        }
        if self.url.is_none() && (self.password_env.is_some() || self.password_file.is_some()) {
            problems.push(
                "[state] password_env and password_file go with url (a URL without its password); with url_env the URL in the environment carries it",
            );
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            problems.push("[state] sets both password_env and password_file: keep one");
        }
        if self.instance_timeout < Duration::from_secs(1) {
            problems.push("[state] instance_timeout must be at least 1s");
        }
        problems
    }
}

/// `[serve]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Serve {
    /// The address the HTTP endpoint binds.
    pub listen: SocketAddr,
    /// How often the service looks for due emails (cron).
    pub tick: CronSchedule,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the
    /// signup limits and the consent record); from anyone else it is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            tick: every_minute(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[signup.<sequence>]`: a signup form with double opt-in for one sequence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Signup {
    /// Sites whose embedded form may post here, e.g. `https://www.example.com`;
    /// the hosted page at `/s/<sequence>` always may.
    #[serde(deserialize_with = "origins")]
    pub allowed_origins: Vec<String>,
    /// Extra fields the form asks for (optional text), available to
    /// templates as `subscriber.fields.<name>`.
    pub fields: Vec<String>,
    /// How long the confirmation link works.
    #[serde(deserialize_with = "duration")]
    pub confirm_within: Duration,
    /// Requests waiting for their confirmation, at most; beyond, the form
    /// asks people to try again later.
    pub max_pending: u32,
    /// Posts from one client address per hour, at most.
    pub per_client_per_hour: u32,
}

impl Default for Signup {
    fn default() -> Self {
        Signup {
            allowed_origins: Vec::new(),
            fields: Vec::new(),
            confirm_within: Duration::from_secs(48 * 3600),
            max_pending: 1000,
            per_client_per_hour: 10,
        }
    }
}

/// `[mailbox]`: a Maildir folder, or an IMAP server reached over TLS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackMailbox {
    /// A Maildir (with cur/, new/ and tmp/), relative to the config file.
    pub maildir: Option<PathBuf>,
    /// The IMAP server's host name.
    pub host: Option<String>,
    /// The IMAP port: 993 (TLS from the start) by default.
    #[serde(default = "imaps_port")]
    pub port: u16,
    /// `tls` (the default), or `none` for a server on this machine.
    #[serde(default = "tls")]
    pub security: Security,
    /// The IMAP login name.
    pub username: Option<String>,
    /// The environment variable that holds the IMAP password.
    pub password_env: Option<String>,
    /// The file that holds the IMAP password, relative to the config file.
    pub password_file: Option<PathBuf>,
    /// The IMAP folder to read.
    #[serde(default = "inbox")]
    pub folder: String,
    /// Where processed messages move to (created when missing).
    #[serde(default = "processed_folder")]
    pub processed_folder: String,
    /// An extra certificate (PEM) to trust for the IMAP server.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for the IMAP server.
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Present only to explain where a password belongs instead.
    #[serde(
        default,
        rename = "password",
        deserialize_with = "refuse_plain_password"
    )]
    _password: Option<std::convert::Infallible>,
}

fn imaps_port() -> u16 {
    993
}

fn tls() -> Security {
    Security::Tls
}

fn inbox() -> String {
    "INBOX".to_owned()
}

fn processed_folder() -> String {
    "dripline-processed".to_owned()
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn every_minute() -> CronSchedule {
    "* * * * *"
        .parse()
        .unwrap_or_else(|err| unreachable!("the default tick parses: {err}"))
}

impl Config {
    /// Parses the text of `file`. Pure: `file` only names the source in errors.
    pub fn parse(file: &Path, source: &str) -> Result<Config, Problem> {
        toml::from_str(source).map_err(|err| Problem::from_toml(file, source, &err))
    }

    /// The envelope sender of an email whose bounce token is `token`:
    /// `return_path` tagged with it (VERP), or else the sender's address.
    pub fn envelope_sender(&self, token: Option<&str>) -> lettre::Address {
        match (&self.delivery.return_path, token) {
            (Some(address), Some(token)) => crate::token::tagged(address, token),
            (Some(address), None) => address.clone(),
            (None, _) => self.sender.from.email.clone(),
        }
    }
}

/// A loaded project: the config and the directory its paths are relative to.
#[derive(Debug)]
pub struct Project {
    /// The directory holding the config file.
    pub dir: PathBuf,
    /// The config file itself.
    pub config_file: PathBuf,
    pub config: Config,
    /// The config's text, to point at lines in later problems.
    source: String,
}

impl Project {
    /// Reads and validates the config at `config_file`, checking that what
    /// it refers to exists. Every problem is reported at once.
    pub fn load(config_file: &Path) -> Result<Project, InvalidInput> {
        let project = Project::open(config_file)?;
        let report = project.validate();
        if report.has_errors() {
            return Err(InvalidInput(report));
        }
        Ok(project)
    }

    /// Reads and parses the config at `config_file` without looking at
    /// the files it refers to; [`Project::validate`] does that.
    pub fn open(config_file: &Path) -> Result<Project, Problem> {
        let source = fs::read_to_string(config_file).map_err(|err| {
            let hint = if err.kind() == std::io::ErrorKind::NotFound {
                "; run dripline in a project folder (one holding dripline.toml, see the README), or pass --config PATH"
            } else {
                ""
            };
            Problem::error(config_file, format!("cannot read the config: {err}{hint}"))
        })?;
        let config = Config::parse(config_file, &source)?;
        Ok(Project {
            dir: config_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            config_file: config_file.to_path_buf(),
            config,
            source,
        })
    }

    /// A path from the config, made relative to the project directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.dir.join(path)
    }

    /// The folder that holds every sequence.
    pub fn sequences_dir(&self) -> PathBuf {
        self.dir.join(sequence::SEQUENCES_DIR)
    }

    /// The folder that holds the project's own templates.
    pub fn templates_dir(&self) -> PathBuf {
        self.dir.join("templates")
    }

    /// Checks what the config refers to: sequences and list files exist,
    /// and settings that only make sense together.
    pub fn validate(&self) -> Report {
        let mut report = Report::default();
        let file = &self.config_file;
        let at = |span, message: String| Problem::error(file, message).at_span(&self.source, span);
        if self.config.drip.is_empty() {
            report.push(Problem::error(
                file,
                "no [[drip]] table: add one that names a sequence and a list file, e.g.\n  [[drip]]\n  sequence = \"gut-immune\"\n  list = \"subscribers.csv\"",
            ));
        }
        for drip in &self.config.drip {
            let id = drip.sequence.get_ref();
            if let Err(reason) = sequence::validate_id(id) {
                report.push(at(drip.sequence.span(), reason));
            } else {
                let dir = self.sequences_dir().join(id);
                if !dir.join(sequence::SETTINGS_FILE).is_file() {
                    report.push(at(
                        drip.sequence.span(),
                        format!(
                            "sequence `{id}` not found: there is no {}; create it with `dripline split ARTICLE --name {id}`",
                            dir.join(sequence::SETTINGS_FILE).display()
                        ),
                    ));
                }
            }
            let list = self.resolve(drip.list.get_ref());
            if !list.is_file() {
                report.push(at(
                    drip.list.span(),
                    format!(
                        "list file {} not found; create it with a header row such as `email,name`",
                        list.display()
                    ),
                ));
            }
        }
        let smtp = &self.config.smtp;
        if smtp.password_env.is_some() && smtp.password_file.is_some() {
            report.push(Problem::error(
                file,
                "[smtp] sets both password_env and password_file: keep one",
            ));
        }
        for problem in self.config.state.problems() {
            report.push(Problem::error(file, problem));
        }
        match &self.config.mailbox {
            Some(mailbox) => {
                for problem in mailbox_problems(file, mailbox) {
                    report.push(problem);
                }
            }
            None => {
                for warning in unread_feedback(file, &self.config) {
                    report.push(warning);
                }
            }
        }
        let unsubscribe = &self.config.unsubscribe;
        if self.config.delivery.transport == Transport::Smtp
            && unsubscribe.base_url.is_none()
            && unsubscribe.mailto.is_none()
        {
            report.push(Problem::error(
                file,
                "transport = \"smtp\" needs an unsubscribe method (bulk senders must offer one): set base_url (where `dripline serve` is reachable) or mailto in [unsubscribe], e.g.\n  [unsubscribe]\n  base_url = \"https://news.example.com/dripline\"\n  mailto = \"unsubscribe@example.com\"",
            ));
        }
        for (sequence, signup) in &self.config.signup {
            for reason in crate::signup::problems(
                sequence,
                signup.get_ref(),
                &self.config.drip,
                unsubscribe.base_url.is_some(),
            ) {
                report.push(at(signup.span(), reason));
            }
        }
        report
    }
}

/// Warnings, when sending for real, for feedback addresses that nothing
/// reads (there is no `[mailbox]`): unsubscribe requests by email would go
/// unanswered.
fn unread_feedback(file: &Path, config: &Config) -> Vec<Problem> {
    let mut warnings = Vec::new();
    if config.delivery.transport != Transport::Smtp {
        return warnings;
    }
    if let Some(mailto) = &config.unsubscribe.mailto {
        warnings.push(Problem::warning(
            file,
            format!(
                "[unsubscribe] mailto: requests go to {}+TOKEN@{}, but there is no [mailbox] to read them, so nobody is unsubscribed by email: add a [mailbox] that receives that address (docs/operations.md)",
                mailto.email.user(),
                mailto.email.domain()
            ),
        ));
    }
    if let Some(return_path) = &config.delivery.return_path {
        warnings.push(Problem::warning(
            file,
            format!(
                "[delivery] return_path: bounces go to {}+TOKEN@{}, but there is no [mailbox] to read them: add one (docs/operations.md)",
                return_path.user(),
                return_path.domain()
            ),
        ));
    }
    warnings
}

/// What is wrong with `[mailbox]` as a whole.
fn mailbox_problems(file: &Path, mailbox: &FeedbackMailbox) -> Vec<Problem> {
    let mut problems = Vec::new();
    match (&mailbox.maildir, &mailbox.host) {
        (Some(_), Some(_)) => problems.push(Problem::error(
            file,
            "[mailbox] sets both maildir and host: read either a Maildir or an IMAP server",
        )),
        (None, None) => problems.push(Problem::error(
            file,
            "[mailbox] names no mailbox: set maildir = \"Maildir\" (a folder a local mail server delivers to) or host, username and password_env for IMAP",
        )),
        (None, Some(_)) => {
            if mailbox.username.is_none() {
                problems.push(Problem::error(file, "[mailbox] host needs a username"));
            }
            if mailbox.password_env.is_some() == mailbox.password_file.is_some() {
                problems.push(Problem::error(
                    file,
                    "[mailbox] host needs exactly one of password_env (an environment variable) and password_file",
                ));
            }
            let local = matches!(
                mailbox.host.as_deref(),
                Some("localhost" | "127.0.0.1" | "::1")
            );
            if mailbox.security == Security::Starttls || (mailbox.security == Security::None && !local) {
                problems.push(Problem::error(
                    file,
                    "[mailbox] security is \"tls\" (port 993), or \"none\" only for a server on this machine (host = \"localhost\"): the password must not cross the network unencrypted",
                ));
            }
        }
        (Some(_), None) => {}
    }
    problems
}

fn mailbox<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Mailbox, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_mailbox(&text).map_err(serde::de::Error::custom)
}

fn optional_mailbox<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Mailbox>, D::Error> {
    mailbox(deserializer).map(Some)
}

fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    text.parse().map_err(|err| {
        format!("`{text}` is not an email address ({err}); write `Name <address@example.com>` or `address@example.com`")
    })
}

/// An address a `+TOKEN` can be added to: its local part has no `+` yet.
fn optional_bounce_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<lettre::Address>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let address: lettre::Address = text.parse().map_err(|err| {
        serde::de::Error::custom(format!(
            "`{text}` is not an email address ({err}); write a bare address such as \"bounces@bounce.example.com\""
        ))
    })?;
    if address.user().contains('+') {
        return Err(serde::de::Error::custom(format!(
            "`{text}` already has a `+` in its local part; dripline adds `+TOKEN` itself: write \"{}@{}\"",
            address.user().split('+').next().unwrap_or_default(),
            address.domain()
        )));
    }
    Ok(Some(address))
}

fn duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|err| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({err}); write for example \"30s\", \"15m\" or \"12h\""
        ))
    })
}

fn origins<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| {
            crate::signup::origin(text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not an origin; write the scheme and host of the site, without a path, e.g. \"https://www.example.com\""
                ))
            })
        })
        .collect()
}

fn optional_web_url<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !text.contains(char::is_whitespace) =>
        {
            Ok(Some(text.trim_end_matches('/').to_owned()))
        }
        _ => Err(serde::de::Error::custom(format!(
            "`{text}` is not a web address; write the public URL of `dripline serve`, e.g. \"https://news.example.com/dripline\""
        ))),
    }
}

fn optional_host_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let literal = text.starts_with('[') && text.ends_with(']');
    if !text.is_empty()
        && (literal
            || text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')))
    {
        Ok(Some(text))
    } else {
        Err(serde::de::Error::custom(format!(
            "`{text}` is not a host name; write this machine's public, fully-qualified name, e.g. \"mail.example.com\""
        )))
    }
}

fn refuse_plain_password<'de, D: serde::Deserializer<'de>>(
    _: D,
) -> Result<Option<std::convert::Infallible>, D::Error> {
    Err(serde::de::Error::custom(
        "a password never goes in dripline.toml: set password_env to the name of an environment variable that holds it (e.g. password_env = \"DRIPLINE_SMTP_PASSWORD\") and export that variable, or password_file to a file only you can read",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<Config, String> {
        Config::parse(Path::new("dripline.toml"), source).map_err(|problem| problem.to_string())
    }

    const MINIMAL: &str = "[sender]\nfrom = \"Coach <hello@example.com>\"\n";

    #[test]
    fn minimal_config_takes_the_documented_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.timezone.to_string(), "UTC");
        assert_eq!(config.delivery.transport, Transport::Outbox);
        assert_eq!(config.delivery.outbox_dir, Path::new("outbox"));
        assert_eq!(config.delivery.concurrency.get(), 4);
        assert_eq!(config.delivery.max_per_second, 10);
        assert_eq!(config.delivery.max_attempts.get(), 8);
        assert_eq!(config.delivery.catch_up, Duration::from_secs(43_200));
        assert_eq!(config.smtp.port, 587);
        assert_eq!(config.smtp.security, Security::Starttls);
        assert_eq!(config.smtp.timeout, Duration::from_secs(30));
        assert_eq!(config.smtp.helo_name, None);
        assert_eq!(
            config.unsubscribe.secret_file,
            Path::new(".dripline-secret")
        );
        assert_eq!(config.state.sqlite_path(), Some(Path::new("dripline.db")));
        assert_eq!(config.serve.listen.to_string(), "127.0.0.1:8025");
        assert_eq!(config.serve.tick.source(), "* * * * *");
        assert!(config.dkim.is_none());
    }

    #[test]
    fn a_plain_password_is_refused_with_the_way_to_do_it() {
        let err = parse(&format!("{MINIMAL}[smtp]\npassword = \"hunter2\"\n")).unwrap_err();
        assert!(err.contains("password_env"), "{err}");
        assert!(!err.contains("hunter2 "), "{err}");
    }

    #[test]
    fn a_return_path_takes_the_token_itself() {
        let config = parse(&format!(
            "{MINIMAL}[delivery]\nreturn_path = \"bounces@bounce.example.com\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.envelope_sender(Some("abc")).to_string(),
            "bounces+abc@bounce.example.com"
        );
        assert_eq!(
            config.envelope_sender(None).to_string(),
            "bounces@bounce.example.com"
        );
        let plain = parse(MINIMAL).unwrap();
        assert_eq!(
            plain.envelope_sender(Some("abc")).to_string(),
            "hello@example.com"
        );
        let err = parse(&format!(
            "{MINIMAL}[delivery]\nreturn_path = \"bounces+x@bounce.example.com\"\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("write \"bounces@bounce.example.com\""),
            "{err}"
        );
    }

    #[test]
    fn a_mailbox_is_a_maildir_or_an_imap_server_with_its_password_elsewhere() {
        let problems = |table: &str| {
            let config = parse(&format!("{MINIMAL}[mailbox]\n{table}")).unwrap();
            mailbox_problems(Path::new("dripline.toml"), config.mailbox.as_ref().unwrap())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(problems("maildir = \"Maildir\"\n"), "");
        assert_eq!(
            problems("host = \"imap.example.com\"\nusername = \"b\"\npassword_env = \"P\"\n"),
            ""
        );
        assert!(problems("").contains("names no mailbox"));
        assert!(problems("maildir = \"M\"\nhost = \"h\"\n").contains("both maildir and host"));
        assert!(
            problems("host = \"h\"\nusername = \"b\"\n").contains("exactly one of password_env")
        );
        let plain = "username = \"b\"\npassword_env = \"P\"\nsecurity = \"none\"\n";
        assert!(problems(&format!("host = \"imap.example.com\"\n{plain}")).contains("unencrypted"));
        assert_eq!(problems(&format!("host = \"localhost\"\n{plain}")), "");
        let err = parse(&format!(
            "{MINIMAL}[mailbox]\nhost = \"h\"\npassword = \"hunter2\"\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("password_env") && !err.contains("hunter2 "),
            "{err}"
        );
    }

    #[test]
    fn feedback_addresses_nothing_reads_are_warned_about_when_sending() {
        let warnings = |extra: &str| {
            let config = parse(&format!("{MINIMAL}{extra}")).unwrap();
            unread_feedback(Path::new("dripline.toml"), &config)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let smtp = "[delivery]\ntransport = \"smtp\"\nreturn_path = \"bounces@b.example.com\"\n[unsubscribe]\nmailto = \"unsubscribe@example.com\"\n";
        let found = warnings(smtp);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("unsubscribe+TOKEN@example.com") && found[0].contains("no [mailbox]")
        );
        assert!(found[1].contains("bounces+TOKEN@b.example.com"));
        assert!(warnings(&smtp.replace("smtp", "outbox")).is_empty());
    }

    #[test]
    fn bad_values_name_the_line() {
        let err = parse(&format!("{MINIMAL}[delivery]\ncatch_up = \"soon\"\n")).unwrap_err();
        assert!(
            err.starts_with("error: dripline.toml:4:12: `soon` is not a duration"),
            "{err}"
        );
        let err = parse("[sender]\nfrom = \"not an address\"\n").unwrap_err();
        assert!(
            err.starts_with("error: dripline.toml:2:8: `not an address` is not an email address"),
            "{err}"
        );
        let err = parse(&format!("{MINIMAL}[unsubscribe]\nbase_url = \"ftp://x\"\n")).unwrap_err();
        assert!(err.contains("is not a web address"), "{err}");
        let err = parse(&format!("{MINIMAL}[smtp]\nhelo_name = \"my host\"\n")).unwrap_err();
        assert!(err.contains("is not a host name"), "{err}");
    }
}
