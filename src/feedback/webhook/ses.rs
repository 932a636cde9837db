//! Amazon SES notifications delivered by SNS. The SNS message is verified
//! before anything else: its `TopicArn` must be the configured one, its
//! `SigningCertURL` an HTTPS URL on `sns.<region>.amazonaws.com`, and its
//! `Signature` an RSA PKCS#1 v1.5 signature, SHA1 (`SignatureVersion` 1)
//! or SHA256 (2), over the fields SNS signs, by that certificate's key.
//! `SubscriptionConfirmation` is confirmed by fetching its `SubscribeURL`
//! (also on an SNS host). A `Notification`'s `Message` is the SES event:
//! a `Permanent` bounce bounces the address, other bounces count, a
//! complaint (not `not-spam`) suppresses it as complained.

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use serde_json::Value;

use super::certificates::{self, Certificates, SnsUrl};
use super::{Reply, Request, text};
use crate::config::{Project, SesWebhook};
use crate::feedback::{Finding, Named, Signal, dsn};

/// `/webhooks/ses`.
#[derive(Debug)]
pub struct Endpoint {
    topic_arn: String,
    certificates: Certificates,
}

impl Endpoint {
    pub fn new(project: &Project, config: &SesWebhook) -> Endpoint {
        Endpoint {
            topic_arn: config.topic_arn.clone(),
            certificates: Certificates::new(
                config
                    .certificate_cache
                    .as_ref()
                    .map(|dir| project.resolve(dir)),
            ),
        }
    }

    /// Verifies the SNS message, then reads it.
    pub async fn verify(&self, body: &[u8]) -> Result<Request, Reply> {
        let refused = |why: &str| Reply::Refused(why.to_owned());
        let message: Value =
            serde_json::from_slice(body).map_err(|_| refused("not an SNS message"))?;
        let field = |name: &str| text(&message, name);
        let kind = field("Type").unwrap_or_default();
        if field("TopicArn") != Some(self.topic_arn.as_str()) {
            return Err(refused("not from the configured topic_arn"));
        }
        let url = field("SigningCertURL")
            .and_then(SnsUrl::parse)
            .filter(SnsUrl::is_certificate)
            .ok_or_else(|| refused("SigningCertURL is not an SNS certificate URL"))?;
        let signed = string_to_sign(&message, kind).ok_or_else(|| refused("fields are missing"))?;
        let signature = field("Signature")
            .and_then(|text| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(text).ok()
            })
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| refused("no signature"))?;
        let key = self.certificates.key(&url).await.map_err(|err| {
            tracing::error!("cannot get the SNS certificate: {err:#}");
            Reply::Unavailable
        })?;
        let good = match field("SignatureVersion") {
            Some("1") => VerifyingKey::<sha1::Sha1>::new(key).verify(signed.as_bytes(), &signature),
            Some("2") => {
                VerifyingKey::<sha2::Sha256>::new(key).verify(signed.as_bytes(), &signature)
            }
            _ => return Err(refused("SignatureVersion is neither 1 nor 2")),
        };
        if good.is_err() {
            return Err(refused("the signature does not verify"));
        }
        match kind {
            "Notification" => {
                let event: Value = serde_json::from_str(field("Message").unwrap_or_default())
                    .map_err(|_| Reply::Malformed("Message is not an SES event".to_owned()))?;
                Ok(Request::Events(findings(&event)))
            }
            "SubscriptionConfirmation" => field("SubscribeURL")
                .filter(|url| SnsUrl::parse(url).is_some())
                .map(|url| Request::Confirm(url.to_owned()))
                .ok_or_else(|| refused("SubscribeURL is not on an SNS host")),
            _ => Ok(Request::Events(Vec::new())),
        }
    }
}

/// Confirms an SNS subscription by fetching its (checked) `SubscribeURL`.
pub async fn confirm(url: &str) -> Reply {
    let Some(url) = SnsUrl::parse(url) else {
        return Reply::Refused("SubscribeURL is not on an SNS host".to_owned());
    };
    match certificates::get(&url).await {
        Ok(_) => {
            tracing::info!("webhook ses: confirmed the SNS subscription");
            Reply::Accepted(0)
        }
        Err(err) => {
            tracing::error!("webhook ses: cannot confirm the SNS subscription: {err:#}");
            Reply::Unavailable
        }
    }
}

/// The text SNS signs: for each field it covers, in this order, the name
/// and the value on lines of their own.
pub fn string_to_sign(message: &Value, kind: &str) -> Option<String> {
    let names: &[&str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscriptionConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return None,
    };
    let mut signed = String::new();
    for name in names {
        match text(message, name) {
            Some(value) => signed.push_str(&format!("{name}\n{value}\n")),
            // Only a notification's Subject is optional.
            None if *name == "Subject" => {}
            None => return None,
        }
    }
    Some(signed)
}

/// The findings of an SES event: one per recipient it names.
fn findings(event: &Value) -> Vec<Finding> {
    let kind = text(event, "notificationType")
        .or_else(|| text(event, "eventType"))
        .unwrap_or_default();
    let reference = text(event, "mail/messageId").map(|id| format!("ses:{id}"));
    let (signal, list, detail) = match kind {
        "Bounce" => {
            let kind = text(event, "bounce/bounceType").unwrap_or_default();
            let sub = text(event, "bounce/bounceSubType").unwrap_or_default();
            let signal = if kind == "Permanent" {
                Signal::Bounce
            } else {
                Signal::SoftBounce
            };
            (
                signal,
                "bounce/bouncedRecipients",
                format!("SES {kind} bounce ({sub})"),
            )
        }
        "Complaint" => {
            let feedback = text(event, "complaint/complaintFeedbackType").unwrap_or("abuse");
            if feedback == "not-spam" {
                return Vec::new();
            }
            (
                Signal::Complaint,
                "complaint/complainedRecipients",
                format!("SES complaint ({feedback})"),
            )
        }
        _ => return Vec::new(),
    };
    let recipients = list
        .split('/')
        .try_fold(event, |value, key| value.get(key))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    recipients
        .iter()
        .filter_map(|recipient| {
            let address = text(recipient, "emailAddress")?;
            let diagnostic = text(recipient, "diagnosticCode").unwrap_or_default();
            Some(Finding {
                signal,
                named: vec![Named::Address(address.to_owned())],
                detail: dsn::shorten(format!("{detail} {diagnostic}").trim_end()),
                reference: reference.clone(),
            })
        })
        .collect()
}
