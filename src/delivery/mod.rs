//! Getting a finished message out of the machine: one [`Transport`] trait,
//! with the outbox (files) and SMTP behind it.
//!
//! A transport sends one message to one recipient and says how it went,
//! sorting failures into the kinds the engine acts on differently. It
//! knows nothing of sequences, schedules or state.

pub mod outbox;

use std::future::Future;

use lettre::Address;

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
}

/// A way to deliver messages.
pub trait Transport: Sync {
    /// Delivers one message; on success returns the server's reply.
    fn send(&self, parcel: &Parcel) -> impl Future<Output = Result<String, DeliveryError>> + Send;
}
