//! Recording a [`Finding`]: resolve who it names, then suppress the address
//! or count a transient bounce, through the [`Store`]. A finding that names
//! nobody dripline sent to changes nothing.

use chrono::{DateTime, Utc};

use super::{Finding, Named, SOFT_BOUNCE_LIMIT, SOFT_BOUNCE_WINDOW, Signal};
use crate::store::{Reason, Store};
use crate::token::{self, Key};

/// What recording a finding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The address is suppressed from now on.
    Suppressed { email: String, reason: Reason },
    /// It already was (the first reason stays).
    AlreadySuppressed { email: String },
    /// A transient bounce, counted: `count` of [`SOFT_BOUNCE_LIMIT`].
    Counted { email: String, count: u64 },
    /// No token or address in it names an email dripline sent.
    Unresolved,
}

/// Resolves `finding` and records it at `now`.
pub async fn apply(
    store: &impl Store,
    keys: &[Key],
    finding: &Finding,
    now: DateTime<Utc>,
) -> anyhow::Result<Applied> {
    let Some((email, about)) = resolve(store, keys, &finding.named).await? else {
        return Ok(Applied::Unresolved);
    };
    let (reason, detail) = match finding.signal {
        Signal::Bounce => (Reason::Bounced, finding.detail.clone()),
        Signal::Complaint => (Reason::Complained, finding.detail.clone()),
        Signal::Unsubscribe => (Reason::Unsubscribed, finding.detail.clone()),
        Signal::SoftBounce => {
            let reference = finding
                .reference
                .clone()
                .or(about)
                .unwrap_or_else(|| finding.detail.clone());
            let count = store
                .soft_bounce(&email, &reference, now, now - SOFT_BOUNCE_WINDOW)
                .await?;
            if count < SOFT_BOUNCE_LIMIT {
                return Ok(Applied::Counted { email, count });
            }
            (
                Reason::Bounced,
                format!(
                    "{count} transient bounces within {} days, the last: {}",
                    SOFT_BOUNCE_WINDOW.num_days(),
                    finding.detail
                ),
            )
        }
    };
    Ok(if store.suppress(&email, reason, &detail, now).await? {
        Applied::Suppressed { email, reason }
    } else {
        Applied::AlreadySuppressed { email }
    })
}

/// The subscriber key the first resolvable name stands for, with the email
/// (`sequence/step`) when a token named one.
async fn resolve(
    store: &impl Store,
    keys: &[Key],
    named: &[Named],
) -> anyhow::Result<Option<(String, Option<String>)>> {
    for name in named {
        match name {
            Named::Token(text, purpose) => {
                let Some(id) = token::open(keys, text, *purpose) else {
                    continue;
                };
                if let Some(email) = store.addressed(&id.text()).await? {
                    let about = format!("{}/{}", email.sequence, email.step);
                    return Ok(Some((email.email, Some(about))));
                }
            }
            Named::Legacy(text) => {
                if let Some((email, _)) = token::verify_legacy(keys, text) {
                    return Ok(Some((email, None)));
                }
            }
            Named::Address(address) => {
                return Ok(Some((crate::subscribers::key(address), None)));
            }
        }
    }
    Ok(None)
}

/// Where a mailbox message goes once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Recorded (or nothing to do): moved aside to the processed folder.
    Processed,
    /// Not understood, or naming nobody: left in place, flagged, for a person.
    Left,
}

/// What one pass over a mailbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub bounced: u64,
    pub complained: u64,
    pub unsubscribed: u64,
    /// Transient bounces counted, short of the limit.
    pub soft: u64,
    /// About addresses that were suppressed already.
    pub already: u64,
    /// Understood, nothing to do.
    pub nothing: u64,
    /// Not understood or naming nobody: left for a person.
    pub left: u64,
}

impl Tally {
    /// Whether it did or saw anything.
    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bounced, {} complained, {} unsubscribed, {} transient bounces counted, {} already suppressed, {} with nothing to do, {} not understood and left in the mailbox",
            self.bounced,
            self.complained,
            self.unsubscribed,
            self.soft,
            self.already,
            self.nothing,
            self.left
        )
    }
}

/// Reads one mailbox message, records what it says and counts it in
/// `tally`; `name` identifies it in the log.
pub async fn handle(
    store: &impl Store,
    keys: &[Key],
    addresses: &super::mail::Addresses,
    raw: &[u8],
    name: &str,
    now: DateTime<Utc>,
    tally: &mut Tally,
) -> anyhow::Result<Disposition> {
    let finding = match super::mail::read(raw, addresses) {
        super::Verdict::Act(finding) => finding,
        super::Verdict::Nothing(why) => {
            tracing::debug!("{name}: {why}: nothing to do");
            tally.nothing += 1;
            return Ok(Disposition::Processed);
        }
        super::Verdict::Unknown(why) => {
            tracing::warn!("{name}: {why}; left in the mailbox for a person to read");
            tally.left += 1;
            return Ok(Disposition::Left);
        }
    };
    match apply(store, keys, &finding, now).await? {
        Applied::Suppressed { email, reason } => {
            tracing::info!("{email} {}: {}", reason.as_str(), finding.detail);
            *match reason {
                Reason::Bounced => &mut tally.bounced,
                Reason::Complained => &mut tally.complained,
                Reason::Unsubscribed => &mut tally.unsubscribed,
            } += 1;
        }
        Applied::AlreadySuppressed { email } => {
            tracing::debug!("{email} was suppressed already: {}", finding.detail);
            tally.already += 1;
        }
        Applied::Counted { email, count } => {
            tracing::info!(
                "{email}: transient bounce {count} of {SOFT_BOUNCE_LIMIT}: {}",
                finding.detail
            );
            tally.soft += 1;
        }
        Applied::Unresolved => {
            tracing::warn!(
                "{name}: {}, but its token names no email dripline sent; left in the mailbox",
                finding.detail
            );
            tally.left += 1;
            return Ok(Disposition::Left);
        }
    }
    Ok(Disposition::Processed)
}
