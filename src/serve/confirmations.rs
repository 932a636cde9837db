//! The confirmation sender: mails the double opt-in emails that signups
//! left due in the state, outside the HTTP requests (so every post answers
//! alike and at once), through the configured transport.
//!
//! It wakes when a signup is recorded, and every [`ROUND`] for retries. The
//! sending rules are the drip's, bar one: the hour and day quotas count
//! confirmations and course emails together ([`engine::budget`]); the
//! one-a-day rule does not apply (a confirmation is no course email, and
//! it does not delay day 1). A recipient rejected for good is marked
//! bounced, as by the engine.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::{Shared, stopping};
use crate::config::Project;
use crate::delivery::{Configured, DeliveryError, Parcel, Transport as _};
use crate::engine;
use crate::render::confirmation::{self, Confirmation};
use crate::signup::token;
use crate::store::signups::{Mailed, Outgoing, Signups as _};
use crate::store::{Reason, Store};
use crate::token::Key;

/// How often the sender looks for due confirmations without being woken.
const ROUND: Duration = Duration::from_secs(60);

/// Confirmations taken from the state at once.
const BATCH: u32 = 64;

/// Attempts at one confirmation email before giving up.
const MAX_ATTEMPTS: u32 = 5;

/// Sends confirmations until shutdown.
pub async fn run(
    config_file: &Path,
    key: Key,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if let Err(err) = round(config_file, &key, &shared).await {
            tracing::error!(
                "cannot send signup confirmations: {err:#}; trying again in {}s",
                ROUND.as_secs()
            );
        }
        tokio::select! {
            () = shared.outgoing.notified() => {}
            () = tokio::time::sleep(ROUND) => {}
            () = stopping(&mut shutdown) => return,
        }
    }
}

/// Sends what is due, a batch at a time, within the quotas.
async fn round(config_file: &Path, key: &Key, shared: &Shared) -> anyhow::Result<()> {
    let store = &shared.store;
    let mut renderers: HashMap<String, Confirmation> = HashMap::new();
    loop {
        let project = Project::load(config_file)?;
        let Some(base_url) = project.config.unsubscribe.base_url.clone() else {
            return Ok(());
        };
        let budget = engine::budget(&project.config.delivery, store, Utc::now()).await?;
        let limit = budget.map_or(BATCH, |left| {
            BATCH.min(u32::try_from(left).unwrap_or(BATCH))
        });
        if limit == 0 {
            tracing::info!("signup confirmations wait: the hour or day quota is used up");
            return Ok(());
        }
        let transport = Configured::open(&project, false).await?;
        let outgoing = store.take_outgoing(limit).await?;
        if outgoing.is_empty() {
            transport.close().await;
            return Ok(());
        }
        let mut stop = false;
        for item in &outgoing {
            let confirmation = match renderers.entry(item.sequence.clone()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(Confirmation::new(
                        &item.sequence,
                        &shared.sequence_name(&item.sequence),
                        &project.config.sender,
                    )?)
                }
            };
            let result = if stop {
                Mailed::Retry
            } else {
                let sent = send(
                    store,
                    &transport,
                    confirmation,
                    &project,
                    key,
                    &base_url,
                    item,
                )
                .await;
                stop = sent.1;
                sent.0
            };
            store.mailed(&item.token_id, result, Utc::now()).await?;
        }
        transport.close().await;
        if stop {
            return Ok(());
        }
    }
}

/// Renders and sends one confirmation; the result, and whether the server
/// could not be reached (the round stops).
async fn send(
    store: &impl Store,
    transport: &Configured,
    confirmation: &Confirmation,
    project: &Project,
    key: &Key,
    base_url: &str,
    item: &Outgoing,
) -> (Mailed, bool) {
    let Some(parcel) = parcel(confirmation, project, key, base_url, item) else {
        return (Mailed::Failed, false);
    };
    let retry = if item.attempt < MAX_ATTEMPTS {
        Mailed::Retry
    } else {
        Mailed::Failed
    };
    match transport.send(&parcel).await {
        Ok(_) => {
            tracing::info!(
                "sent the signup confirmation for {} to {}",
                item.sequence,
                item.email
            );
            (Mailed::Sent, false)
        }
        Err(DeliveryError::Unreachable(reason) | DeliveryError::Refused(reason)) => {
            tracing::warn!("signup confirmations wait: {reason}");
            (Mailed::Retry, true)
        }
        Err(DeliveryError::Transient(reply)) => {
            tracing::warn!(
                "the signup confirmation to {} failed for now: {reply}",
                item.email
            );
            (retry, false)
        }
        Err(DeliveryError::Permanent { reply, recipient }) => {
            tracing::error!(
                "the signup confirmation to {} failed for good: {reply}",
                item.email
            );
            if recipient
                && let Err(err) = store
                    .suppress(
                        &item.email,
                        Reason::Bounced,
                        &format!("the signup confirmation was rejected: {reply}"),
                        Utc::now(),
                    )
                    .await
            {
                tracing::error!("cannot mark {} bounced: {err:#}", item.email);
            }
            (Mailed::Failed, false)
        }
    }
}

/// The message for one confirmation; `None` (logged) when it cannot be built.
fn parcel(
    confirmation: &Confirmation,
    project: &Project,
    key: &Key,
    base_url: &str,
    item: &Outgoing,
) -> Option<Parcel> {
    let mut id = [0; 16];
    let to: Option<lettre::Address> = item.address.parse().ok();
    let (Ok(()), Some(to)) = (hex::decode_to_slice(&item.token_id, &mut id), to) else {
        tracing::error!(
            "a signup of {} has a bad id or address; it is not mailed",
            item.sequence
        );
        return None;
    };
    let url = format!("{base_url}/c/{}", token::seal(key, &id, item.expires_at));
    let rendered = confirmation.render(&confirmation::Request {
        to: to.clone(),
        name: item.name.as_deref(),
        url: &url,
        expires_at: item.expires_at,
        id: &item.token_id,
        date: Utc::now().fixed_offset(),
    });
    match rendered {
        Ok(email) => Some(Parcel {
            // No VERP token: a confirmation is no delivery of the course.
            from: project.config.envelope_sender(None),
            to,
            message_id: email.message_id.clone(),
            bytes: email.message.bytes,
        }),
        Err(err) => {
            tracing::error!(
                "cannot render the signup confirmation for {}: {err:#}",
                item.sequence
            );
            None
        }
    }
}
