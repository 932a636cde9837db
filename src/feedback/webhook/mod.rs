//! Provider webhooks: `POST /webhooks/ses`, `/webhooks/postmark` and
//! `/webhooks/mailgun` on `dripline serve`. Each request is verified first
//! (SNS message signature, Basic credentials, Mailgun HMAC), on the bytes
//! received; one that fails gets a 4xx and changes nothing. A verified
//! event names the address it is about, and its bounces and complaints are
//! recorded as the mailbox's are ([`super::apply`]).
//!
//! A provider without a `[webhooks.…]` table has no endpoint (404, like any
//! unknown path): an endpoint never runs without its secret.

pub mod certificates;
pub mod mailgun;
pub mod postmark;
pub mod ses;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

use super::Finding;
use super::apply::{self, Applied};
use crate::config::Project;
use crate::diagnostic::InvalidInput;
use crate::store::Store;
use crate::token::Key;

/// The configured endpoints, with their secrets read.
#[derive(Debug, Default)]
pub struct Endpoints {
    pub ses: Option<ses::Endpoint>,
    pub postmark: Option<postmark::Endpoint>,
    pub mailgun: Option<mailgun::Endpoint>,
}

impl Endpoints {
    /// Reads `[webhooks]` and the secrets it names.
    pub fn load(project: &Project) -> Result<Endpoints, InvalidInput> {
        let config = &project.config.webhooks;
        Ok(Endpoints {
            ses: config
                .ses
                .as_ref()
                .map(|ses| ses::Endpoint::new(project, ses)),
            postmark: config
                .postmark
                .as_ref()
                .map(|postmark| postmark::Endpoint::load(project, postmark))
                .transpose()?,
            mailgun: config
                .mailgun
                .as_ref()
                .map(|mailgun| mailgun::Endpoint::load(project, mailgun))
                .transpose()?,
        })
    }

    /// The paths that answer, for the start-up log.
    pub fn paths(&self) -> Vec<&'static str> {
        [
            self.ses.as_ref().map(|_| "/webhooks/ses"),
            self.postmark.as_ref().map(|_| "/webhooks/postmark"),
            self.mailgun.as_ref().map(|_| "/webhooks/mailgun"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// How a webhook request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Verified; this many events recorded (the others were of no interest).
    Accepted(usize),
    /// No such endpoint.
    NotFound,
    /// The credentials or the signature do not verify: nothing changed.
    Refused(String),
    /// Verified but not understood: nothing changed.
    Malformed(String),
    /// The state could not be written: the provider should retry.
    Unavailable,
}

/// What a verified request asks for.
pub enum Request {
    /// Events to record.
    Events(Vec<Finding>),
    /// An SNS subscription to confirm by fetching this URL.
    Confirm(String),
}

/// Verifies and records one request to `/webhooks/{provider}`.
pub async fn handle(
    endpoints: &Endpoints,
    provider: &str,
    headers: &HeaderMap,
    body: &[u8],
    store: &impl Store,
    keys: &[Key],
    now: DateTime<Utc>,
) -> Reply {
    let verified = match provider {
        "ses" => match &endpoints.ses {
            Some(endpoint) => endpoint.verify(body).await,
            None => return Reply::NotFound,
        },
        "postmark" => match &endpoints.postmark {
            Some(endpoint) => endpoint.verify(headers, body),
            None => return Reply::NotFound,
        },
        "mailgun" => match &endpoints.mailgun {
            Some(endpoint) => endpoint.verify(body, now),
            None => return Reply::NotFound,
        },
        _ => return Reply::NotFound,
    };
    let findings = match verified {
        Ok(Request::Events(findings)) => findings,
        Ok(Request::Confirm(url)) => return ses::confirm(&url).await,
        Err(reply) => {
            tracing::warn!("webhook {provider}: {reply:?}; nothing changed");
            return reply;
        }
    };
    let mut recorded = 0;
    for finding in &findings {
        match apply::apply(store, keys, finding, now).await {
            Ok(Applied::Unresolved) => {}
            Ok(applied) => {
                recorded += 1;
                tracing::info!("webhook {provider}: {applied:?}: {}", finding.detail);
            }
            Err(err) => {
                tracing::error!("webhook {provider}: cannot record an event: {err:#}");
                return Reply::Unavailable;
            }
        }
    }
    Reply::Accepted(recorded)
}

/// The string at `path` in a JSON value (`a/b/c`), if any.
fn text<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a str> {
    path.split('/')
        .try_fold(value, |value, key| value.get(key))?
        .as_str()
}
