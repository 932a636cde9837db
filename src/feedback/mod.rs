//! Feedback after the handover: bounces (DSN and text), spam complaints
//! (ARF), `mailto:` unsubscribe requests and provider webhooks, turned into
//! suppressions.
//!
//! Every channel is identified by a token dripline issued, never by a
//! `From:` someone else controls: the VERP envelope sender
//! (`bounces+TOKEN@…`, [`crate::token::Purpose::Bounce`]) comes back as a
//! bounce's recipient, and the `List-Unsubscribe` token
//! (`unsubscribe+TOKEN@…`, `/u/TOKEN`) as a mailto request's recipient or
//! inside a complaint's returned message. Provider webhooks, whose requests
//! are verified first, name the address. The readers ([`mail`], [`dsn`])
//! are pure; [`apply`] records what they found through the [`Store`];
//! [`maildir`] and [`imap`] fetch and file the messages.
//!
//! [`Store`]: crate::store::Store

pub mod apply;
pub mod dsn;
pub mod fields;
pub mod imap;
pub mod mail;
pub mod mailbox;
pub mod maildir;
pub mod webhook;

use crate::token::Purpose;

/// Transient bounces of distinct emails within [`SOFT_BOUNCE_WINDOW`]
/// after which the address counts as bounced.
pub const SOFT_BOUNCE_LIMIT: u64 = 3;

/// How far back transient bounces count.
pub const SOFT_BOUNCE_WINDOW: chrono::Duration = chrono::Duration::days(30);

/// What a report says about the subscriber it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The address does not take email: suppress it as bounced.
    Bounce,
    /// A failure for now (or a policy block): counted; repeated ones bounce.
    SoftBounce,
    /// Marked as spam: suppress it as complained.
    Complaint,
    /// Asked to stop: suppress it as unsubscribed.
    Unsubscribe,
}

/// Who a report is about, as it names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// A token dripline issued, for this purpose.
    Token(String, Purpose),
    /// An unsubscribe link token in the format of older emails.
    Legacy(String),
    /// An address, from a provider whose request was verified.
    Address(String),
}

/// A report that calls for an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub signal: Signal,
    /// Who it may be about, most trusted first; the first that resolves wins.
    pub named: Vec<Named>,
    /// How it came about, for `status` and `export`.
    pub detail: String,
    /// What makes two transient bounces the same one (a provider's message
    /// id); by default the email the token resolves to.
    pub reference: Option<String>,
}

/// What reading a message or an event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Something to record.
    Act(Finding),
    /// Understood, and nothing to do (a delay notice, an automatic reply, a
    /// report of a kind that suppresses nobody).
    Nothing(String),
    /// Not understood: left where it is for a person to look at.
    Unknown(String),
}
