//! Getting a finished message out of the machine: one [`Transport`] trait,
//! with the outbox (files) and SMTP behind it, and DKIM signing in front.
//!
//! A transport sends one message to one recipient and says how it went,
//! sorting failures into the kinds the engine acts on differently. It
//! knows nothing of sequences, schedules or state.

pub mod dkim;
mod hello;
pub mod outbox;
mod pool;
mod reply;
pub mod smtp;
mod wire;

use std::future::Future;

use anyhow::Context as _;
use lettre::Address;

use crate::config::{self, Project};

/// One message for one recipient, ready to go.
#[derive(Debug, Clone)]
pub struct Parcel {
    /// The envelope sender (MAIL FROM).
    pub from: Address,
    /// The envelope recipient (RCPT TO).
    pub to: Address,
    /// The Message-ID, angle brackets included.
    pub message_id: String,
    /// The formatted message (headers and body, CRLF line endings).
    pub bytes: Vec<u8>,
}

/// Why a message did not go out. The engine branches on these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later: a 4xx reply, a connection that failed or timed out.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Do not try again: a 5xx reply. `recipient` when the server rejected
    /// the recipient address itself, which marks it bounced.
    #[error("permanent failure: {reply}")]
    Permanent { reply: String, recipient: bool },
    /// The message was never handed over: the server could not be reached
    /// or refused the session. It is not an attempt; the message stays due.
    /// Several in a row stop the pass (see [`Unreachable`]).
    #[error("{0}")]
    Unreachable(String),
    /// The server refused something about the sender or the session, not
    /// this recipient (HELO, the sender address, relaying or login
    /// required, a message larger than it accepts): no email can get
    /// through until the operator changes something. Not an attempt; the
    /// message stays due and the pass stops at once.
    #[error("{0}")]
    Refused(String),
}

/// The mail server cannot be reached: the pass stops before claiming more,
/// with one message that names the server and what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// A way to deliver messages.
pub trait Transport: Sync {
    /// Delivers one message; on success returns the server's reply.
    fn send(&self, parcel: &Parcel) -> impl Future<Output = Result<String, DeliveryError>> + Send;
}

/// The transport `[delivery]` chose, with DKIM signing when `[dkim]` is set.
#[derive(Debug)]
pub enum Configured {
    Outbox(dkim::Signing<outbox::Outbox>),
    Smtp(Box<dkim::Signing<smtp::Smtp>>),
}

impl Configured {
    /// Sets up the project's transport. With SMTP and `probe`, one session
    /// is opened first, so a dead server is one clear [`Unreachable`]
    /// error before anything is claimed.
    pub async fn open(project: &Project, probe: bool) -> anyhow::Result<Configured> {
        let signer = match &project.config.dkim {
            Some(config) => Some(dkim::Signer::load(
                config,
                &project.resolve(&config.private_key_file),
            )?),
            None => None,
        };
        match project.config.delivery.transport {
            config::Transport::Outbox => {
                let dir = project.resolve(&project.config.delivery.outbox_dir);
                let outbox = outbox::Outbox::new(&dir)
                    .with_context(|| format!("cannot create the outbox {}", dir.display()))?;
                Ok(Configured::Outbox(dkim::Signing::new(outbox, signer)))
            }
            config::Transport::Smtp => {
                let smtp = smtp::Smtp::new(project)?;
                if probe {
                    smtp.probe()
                        .await
                        .map_err(|err| Unreachable(format!("{err}\nNothing was sent.")))?;
                }
                Ok(Configured::Smtp(Box::new(dkim::Signing::new(smtp, signer))))
            }
        }
    }

    /// Where the emails went, for the closing line of a command.
    pub fn destination(&self, project: &Project) -> String {
        match self {
            Configured::Outbox(_) => format!(
                "emails are in {}",
                project
                    .resolve(&project.config.delivery.outbox_dir)
                    .display()
            ),
            Configured::Smtp(smtp) => format!("sent through {}", smtp.inner().server()),
        }
    }

    /// Ends open sessions politely.
    pub async fn close(&self) {
        if let Configured::Smtp(smtp) = self {
            smtp.inner().close().await;
        }
    }
}

impl Transport for Configured {
    async fn send(&self, parcel: &Parcel) -> Result<String, DeliveryError> {
        match self {
            Configured::Outbox(outbox) => outbox.send(parcel).await,
            Configured::Smtp(smtp) => smtp.send(parcel).await,
        }
    }
}
