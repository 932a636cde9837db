//! Mailgun's event webhooks. The body carries `signature.timestamp`,
//! `signature.token` and `signature.signature`, the hex HMAC-SHA256 of
//! timestamp and token (concatenated) under the webhook signing key. A
//! request older than `max_age` or with a token seen before is a replay
//! and refused. `failed` events with `severity` `permanent` bounce the
//! address, `temporary` ones count; `complained` is a complaint and
//! `unsubscribed` an unsubscribe.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Reply, Request, text};
use crate::config::{MailgunWebhook, Project};
use crate::diagnostic::InvalidInput;
use crate::feedback::{Finding, Named, Signal};
use crate::secret::{self, Secret};

/// `/webhooks/mailgun`.
#[derive(Debug)]
pub struct Endpoint {
    key: Secret,
    max_age: chrono::Duration,
    /// Tokens accepted within `max_age`, with their timestamps.
    seen: Mutex<HashMap<String, i64>>,
}

impl Endpoint {
    /// Reads the signing key `[webhooks.mailgun]` names.
    pub fn load(project: &Project, config: &MailgunWebhook) -> Result<Endpoint, InvalidInput> {
        Ok(Endpoint {
            key: secret::read(
                project,
                "webhooks.mailgun",
                config.signing_key_env.as_deref(),
                config.signing_key_file.as_deref(),
            )?,
            max_age: chrono::Duration::from_std(config.max_age)
                .unwrap_or(chrono::Duration::minutes(5)),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Checks the signature, its age and its token, then reads the event.
    pub fn verify(&self, body: &[u8], now: DateTime<Utc>) -> Result<Request, Reply> {
        let request: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| Reply::Refused("not a signed Mailgun request".to_owned()))?;
        let field = |name| text(&request, &format!("signature/{name}")).unwrap_or_default();
        let (timestamp, token, signature) =
            (field("timestamp"), field("token"), field("signature"));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose().as_bytes())
            .unwrap_or_else(|err| unreachable!("HMAC accepts any key length: {err}"));
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        let signature = hex::decode(signature).unwrap_or_default();
        // `verify_slice` compares in constant time.
        if token.is_empty() || mac.verify_slice(&signature).is_err() {
            return Err(Reply::Refused("the signature does not verify".to_owned()));
        }
        let at = timestamp.parse::<i64>().unwrap_or_default();
        if (now.timestamp() - at).abs() > self.max_age.num_seconds() {
            return Err(Reply::Refused(format!(
                "signed at {at}, more than {}s from now: a replay, or a clock that is off",
                self.max_age.num_seconds()
            )));
        }
        if !self.remember(token, at, now) {
            return Err(Reply::Refused("a token seen before: a replay".to_owned()));
        }
        let event = request
            .get("event-data")
            .ok_or_else(|| Reply::Malformed("no event-data".to_owned()))?;
        Ok(Request::Events(finding(event).into_iter().collect()))
    }

    /// Records `token`; false when it was seen within `max_age`.
    fn remember(&self, token: &str, at: i64, now: DateTime<Utc>) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = now.timestamp() - self.max_age.num_seconds();
        seen.retain(|_, at| *at >= oldest);
        seen.insert(token.to_owned(), at).is_none()
    }
}

/// What one Mailgun event says.
fn finding(event: &serde_json::Value) -> Option<Finding> {
    let recipient = text(event, "recipient")?;
    let signal = match (text(event, "event")?, text(event, "severity")) {
        ("failed", Some("permanent")) | ("bounced", _) => Signal::Bounce,
        ("failed", _) => Signal::SoftBounce,
        ("complained", _) => Signal::Complaint,
        ("unsubscribed", _) => Signal::Unsubscribe,
        _ => return None,
    };
    let message = text(event, "delivery-status/message")
        .or_else(|| text(event, "delivery-status/description"))
        .unwrap_or_default();
    let kind = text(event, "event").unwrap_or_default();
    Some(Finding {
        signal,
        named: vec![Named::Address(recipient.to_owned())],
        detail: crate::feedback::dsn::shorten(&format!("Mailgun {kind}: {message}")),
        reference: text(event, "message/headers/message-id")
            .or_else(|| text(event, "id"))
            .map(|id| format!("mailgun:{id}")),
    })
}
