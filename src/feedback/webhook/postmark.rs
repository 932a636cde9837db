//! Postmark's bounce and spam complaint webhooks. Postmark signs nothing:
//! the webhook URL carries HTTP Basic credentials, which are required and
//! compared in constant time. `RecordType` `Bounce` with a hard `Type`
//! bounces the address, a soft one counts; `SpamComplaint` is a
//! complaint; anything else is accepted and ignored.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Reply, Request, text};
use crate::config::{PostmarkWebhook, Project};
use crate::diagnostic::InvalidInput;
use crate::feedback::{Finding, Named, Signal};
use crate::secret::{self, Secret};

/// Bounce types that mean the address is gone (as listmonk maps them).
const HARD: &[&str] = &["HardBounce", "BadEmailAddress", "ManuallyDeactivated"];

/// Bounce types that are for now.
const SOFT: &[&str] = &[
    "SoftBounce",
    "Transient",
    "DnsError",
    "SpamNotification",
    "VirusNotification",
    "DMARCPolicy",
    "AutoResponder",
];

/// `/webhooks/postmark`.
#[derive(Debug)]
pub struct Endpoint {
    /// `username:password`, as the Authorization header carries it.
    credentials: Secret,
}

impl Endpoint {
    /// Reads the password `[webhooks.postmark]` names.
    pub fn load(project: &Project, config: &PostmarkWebhook) -> Result<Endpoint, InvalidInput> {
        let password = secret::read(
            project,
            "webhooks.postmark",
            config.password_env.as_deref(),
            config.password_file.as_deref(),
        )?;
        Ok(Endpoint {
            credentials: secret::Secret::from(format!("{}:{}", config.username, password.expose())),
        })
    }

    /// Checks the credentials, then reads the event.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Request, Reply> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
            .unwrap_or_default();
        if !secret::same(&given, self.credentials.expose().as_bytes()) {
            return Err(Reply::Refused(
                "wrong or missing Basic credentials".to_owned(),
            ));
        }
        let event: serde_json::Value = serde_json::from_slice(body)
            .map_err(|err| Reply::Malformed(format!("not JSON: {err}")))?;
        Ok(Request::Events(finding(&event).into_iter().collect()))
    }
}

/// What one Postmark event says.
fn finding(event: &serde_json::Value) -> Option<Finding> {
    let email = text(event, "Email")?;
    let kind = text(event, "Type").unwrap_or_default();
    let signal = match text(event, "RecordType")? {
        "SpamComplaint" => Signal::Complaint,
        "Bounce" if HARD.contains(&kind) => Signal::Bounce,
        "Bounce" if SOFT.contains(&kind) => Signal::SoftBounce,
        _ => return None,
    };
    let description = text(event, "Description").unwrap_or_default();
    Some(Finding {
        signal,
        named: vec![Named::Address(email.to_owned())],
        detail: crate::feedback::dsn::shorten(&format!("Postmark {kind}: {description}")),
        reference: text(event, "MessageID").map(|id| format!("postmark:{id}")),
    })
}
