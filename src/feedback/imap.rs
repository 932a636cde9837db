//! An IMAP server as the feedback mailbox, over TLS (port 993): every
//! message in `folder` not flagged and not deleted is fetched with
//! `BODY.PEEK[]` (so nothing is marked seen before it is recorded); a
//! processed one is moved to `processed_folder` (`UID MOVE`, or `UID COPY`
//! and `\Deleted` with `UID EXPUNGE` where MOVE is missing), one not
//! understood is flagged `\Flagged` and left. Nothing is ever deleted
//! before its copy exists.
//!
//! A small client of its own: LOGIN, SELECT, UID SEARCH/FETCH/MOVE/STORE,
//! with literals read by their length; every reply waits at most the
//! configured timeout. The password is sent only inside TLS (or to a
//! server on this machine with `security = "none"`) and never logged.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};

use super::apply::{self, Disposition, Tally};
use super::mail::Addresses;
use crate::config::{FeedbackMailbox, Project, Security};
use crate::secret::{self, Secret};
use crate::store::Store;
use crate::token::Key;

/// The largest message fetched; a bigger literal is refused.
const MAX_LITERAL: usize = 32 * 1024 * 1024;

/// A byte stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One server response: its line(s), with each literal's bytes kept apart.
#[derive(Debug, Default)]
struct Response {
    text: String,
    literals: Vec<Vec<u8>>,
}

/// A logged-in IMAP session.
struct Session {
    stream: BufReader<Box<dyn Stream>>,
    tag: u32,
    timeout: Duration,
    capabilities: String,
}

/// Processes `[mailbox]`'s IMAP folder once.
pub async fn process(
    project: &Project,
    config: &FeedbackMailbox,
    store: &impl Store,
    keys: &[Key],
    addresses: &Addresses,
    now: DateTime<Utc>,
) -> anyhow::Result<Tally> {
    let host = config.host.as_deref().context("[mailbox] has no host")?;
    let user = config
        .username
        .as_deref()
        .context("[mailbox] has no username")?;
    let password = secret::read(
        project,
        "mailbox",
        config.password_env.as_deref(),
        config.password_file.as_deref(),
    )?;
    let ca_file = config.ca_file.as_ref().map(|path| project.resolve(path));
    let server = format!("{host}:{}", config.port);
    let mut session = Session::open(host, config, ca_file.as_deref())
        .await
        .with_context(|| format!("cannot reach the IMAP server {server}"))?;
    session
        .login(user, &password)
        .await
        .with_context(|| format!("cannot log in to {server} as {user}"))?;
    let tally = session
        .read_folder(config, store, keys, addresses, now)
        .await
        .with_context(|| format!("IMAP {server}, folder {}", config.folder))?;
    session.logout().await;
    Ok(tally)
}

impl Session {
    async fn open(
        host: &str,
        config: &FeedbackMailbox,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Session> {
        let timeout = config.timeout;
        let tcp =
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, config.port)))
                .await
                .context("no answer in time")??;
        let stream: Box<dyn Stream> = match config.security {
            Security::None => Box::new(tcp),
            Security::Tls | Security::Starttls => {
                let mut builder = native_tls::TlsConnector::builder();
                if let Some(path) = ca_file {
                    let pem = std::fs::read(path).with_context(|| {
                        format!("cannot read [mailbox] ca_file {}", path.display())
                    })?;
                    builder.add_root_certificate(
                        native_tls::Certificate::from_pem(&pem).with_context(|| {
                            format!(
                                "[mailbox] ca_file {} is not a PEM certificate",
                                path.display()
                            )
                        })?,
                    );
                }
                let connector = tokio_native_tls::TlsConnector::from(builder.build()?);
                Box::new(
                    tokio::time::timeout(timeout, connector.connect(host, tcp))
                        .await
                        .context("no TLS handshake in time")?
                        .context("the TLS handshake failed; check [mailbox] host, port (993) and ca_file")?,
                )
            }
        };
        let mut session = Session {
            stream: BufReader::new(stream),
            tag: 0,
            timeout,
            capabilities: String::new(),
        };
        let greeting = session.read_response().await?;
        if !greeting.text.starts_with("* OK") {
            bail!(
                "the server did not greet as IMAP: {}",
                first_line(&greeting.text)
            );
        }
        Ok(session)
    }

    async fn login(&mut self, user: &str, password: &Secret) -> anyhow::Result<()> {
        if [user, password.expose()]
            .iter()
            .any(|text| text.contains(['\r', '\n']))
        {
            bail!("the IMAP username or password holds a line break, which IMAP cannot send");
        }
        let command = format!("LOGIN {} {}", quoted(user), quoted(password.expose()));
        self.command(&command).await.map_err(|_| {
            anyhow::anyhow!(
                "the server refused the login; check [mailbox] username and the password"
            )
        })?;
        let capability = self.command("CAPABILITY").await?;
        self.capabilities = capability
            .iter()
            .map(|response| response.text.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(())
    }

    async fn read_folder(
        &mut self,
        config: &FeedbackMailbox,
        store: &impl Store,
        keys: &[Key],
        addresses: &Addresses,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Tally> {
        self.command(&format!("SELECT {}", quoted(&config.folder)))
            .await?;
        let found = self.command("UID SEARCH NOT FLAGGED NOT DELETED").await?;
        let uids: Vec<u32> = found
            .iter()
            .filter_map(|response| response.text.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_whitespace().filter_map(|uid| uid.parse().ok()))
            .collect();
        let mut tally = Tally::default();
        let mut created = false;
        for uid in uids {
            let fetched = self
                .command(&format!("UID FETCH {uid} BODY.PEEK[]"))
                .await?;
            let Some(raw) = fetched
                .into_iter()
                .find_map(|r| r.literals.into_iter().next())
            else {
                continue;
            };
            let name = format!("UID {uid}");
            match apply::handle(store, keys, addresses, &raw, &name, now, &mut tally).await? {
                Disposition::Processed => {
                    if !created {
                        // Already there is fine: only the move must work.
                        let _ = self
                            .command(&format!("CREATE {}", quoted(&config.processed_folder)))
                            .await;
                        created = true;
                    }
                    self.move_to(uid, &config.processed_folder).await?;
                }
                Disposition::Left => {
                    self.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Flagged)"))
                        .await?;
                }
            }
        }
        Ok(tally)
    }

    /// Moves one message, never deleting it before its copy exists.
    async fn move_to(&mut self, uid: u32, folder: &str) -> anyhow::Result<()> {
        let folder = quoted(folder);
        if self.capabilities.contains(" MOVE") {
            self.command(&format!("UID MOVE {uid} {folder}")).await?;
            return Ok(());
        }
        self.command(&format!("UID COPY {uid} {folder}")).await?;
        self.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted \\Seen)"))
            .await?;
        if self.capabilities.contains(" UIDPLUS") {
            self.command(&format!("UID EXPUNGE {uid}")).await?;
        }
        Ok(())
    }

    async fn logout(&mut self) {
        let _ = self.command("LOGOUT").await;
    }

    /// Sends `command` and reads up to its tagged reply; the untagged
    /// responses before it are returned when that reply is OK.
    async fn command(&mut self, command: &str) -> anyhow::Result<Vec<Response>> {
        self.tag += 1;
        let tag = format!("d{}", self.tag);
        let line = format!("{tag} {command}\r\n");
        tokio::time::timeout(self.timeout, async {
            self.stream.get_mut().write_all(line.as_bytes()).await?;
            self.stream.get_mut().flush().await
        })
        .await
        .context("the server stopped answering")??;
        let verb = command
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let mut untagged = Vec::new();
        loop {
            let response = self.read_response().await?;
            if let Some(status) = response.text.strip_prefix(&format!("{tag} ")) {
                if status.starts_with("OK") {
                    return Ok(untagged);
                }
                bail!("{verb}: {}", first_line(status));
            }
            untagged.push(response);
        }
    }

    /// Reads one response, with any literals (`{n}` then n bytes).
    async fn read_response(&mut self) -> anyhow::Result<Response> {
        let mut response = Response::default();
        loop {
            let mut line = Vec::new();
            let read = tokio::time::timeout(self.timeout, self.stream.read_until(b'\n', &mut line))
                .await
                .context("the server stopped answering")??;
            if read == 0 {
                bail!("the server closed the connection");
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            response.text.push_str(text);
            let Some(length) = literal_length(text) else {
                return Ok(response);
            };
            if length > MAX_LITERAL {
                bail!("a message of {length} bytes is larger than dripline reads");
            }
            let mut literal = vec![0; length];
            tokio::time::timeout(self.timeout, self.stream.read_exact(&mut literal))
                .await
                .context("the server stopped answering")??;
            response.literals.push(literal);
        }
    }
}

/// The length of the literal a line announces at its end (`… {123}`).
fn literal_length(line: &str) -> Option<usize> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    line[open + 1..line.len() - 1]
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_quoting() {
        assert_eq!(literal_length("* 1 FETCH (UID 7 BODY[] {1234}"), Some(1234));
        assert_eq!(literal_length("* 1 FETCH (UID 7 BODY[] {12+}"), Some(12));
        assert_eq!(literal_length("* OK {not a literal"), None);
        assert_eq!(literal_length("d1 OK done"), None);
        assert_eq!(quoted("pa\"ss\\word"), "\"pa\\\"ss\\\\word\"");
    }
}
