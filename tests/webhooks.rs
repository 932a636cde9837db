//! Provider webhooks on the real `dripline serve`, over real HTTP on
//! 127.0.0.1, with real signatures: an RSA key and an X.509 certificate made
//! at test time by `openssl` sign the SNS messages (the certificate is
//! seeded into the `certificate_cache`, so nothing is fetched), and the
//! Mailgun HMAC and the Postmark credentials come from files the test writes.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::serve::{self, Service, status_json};
use crate::support::Project;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:dripline-feedback";
const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem";
const MAILGUN_KEY: &str = "key-0123456789abcdef0123456789abcdef";

/// The example project with all three webhooks, serving on a free port.
fn project() -> Project {
    let project = serve::project("0 0 1 1 *");
    let config = project.read("dripline.toml");
    project.write(
        "dripline.toml",
        format!(
            "{config}\n[webhooks.ses]\ntopic_arn = \"{TOPIC}\"\ncertificate_cache = \"sns-certificates\"\n\n[webhooks.postmark]\nusername = \"dripline\"\npassword_file = \"postmark-password\"\n\n[webhooks.mailgun]\nsigning_key_file = \"mailgun-key\"\n"
        ),
    );
    project.write("postmark-password", "s3cret-postmark\n");
    project.write("mailgun-key", format!("{MAILGUN_KEY}\n"));
    let key = project.path("sns-key.pem");
    let cert = project.path("sns-certificates/sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem");
    std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sns.amazonaws.com",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl makes the test certificate (install the openssl package)");
    assert!(made.success());
    project
}

/// What SNS signs, written here independently of dripline's own.
fn string_to_sign(message: &Value) -> String {
    let names: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    names
        .iter()
        .filter_map(|name| {
            message[*name]
                .as_str()
                .map(|value| format!("{name}\n{value}\n"))
        })
        .collect()
}

/// Signs `message` with the test key, as SNS does for `version` 1 or 2.
fn sign(project: &Project, mut message: Value, version: &str) -> Value {
    let digest = if version == "1" { "-sha1" } else { "-sha256" };
    let mut openssl = Command::new("openssl")
        .args(["dgst", digest, "-sign"])
        .arg(project.path("sns-key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write as _;
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(string_to_sign(&message).as_bytes())
        .unwrap();
    let signature = openssl.wait_with_output().unwrap();
    assert!(signature.status.success());
    message["SignatureVersion"] = json!(version);
    message["Signature"] = json!(STANDARD.encode(signature.stdout));
    message
}

fn sns_notification(ses_event: Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": ses_event.to_string(),
        "Timestamp": "2026-12-01T12:00:00.000Z",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    })
}

fn ses_bounce(address: &str, kind: &str) -> Value {
    json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": kind, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2026-12-01T12:00:00.000Z", "feedbackId": "0100018"},
        "mail": {"messageId": format!("ses-{address}"), "destination": [address]}
    })
}

fn post(service: &Service, path: &str, headers: &[(&str, &str)], body: &Value) -> u16 {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    service
        .request("POST", path, &all, body.to_string().as_bytes())
        .status
}

fn suppressed(project: &Project) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = status_json(project)["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn mailgun(event: Value, timestamp: i64, token: &str, key: &str) -> Value {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token,
            "signature": hex::encode(mac.finalize().into_bytes())},
        "event-data": event,
    })
}

fn mailgun_failed(address: &str, severity: &str) -> Value {
    json!({"event": "failed", "severity": severity, "reason": "bounce", "recipient": address,
        "id": format!("id-{address}-{severity}"),
        "delivery-status": {"code": 550, "message": "5.1.1 User unknown"}})
}

#[test]
fn signed_provider_events_suppress_and_bad_signatures_change_nothing() {
    let project = project();
    let service = Service::start(&project);

    // Amazon SES through SNS: version 2 (SHA256) and version 1 (SHA1).
    let bounce = sign(
        &project,
        sns_notification(ses_bounce("ses-bounce@example.com", "Permanent")),
        "2",
    );
    assert_eq!(
        post(
            &service,
            "/webhooks/ses",
            &[("x-amz-sns-message-type", "Notification")],
            &bounce
        ),
        200
    );
    let complaint = sign(
        &project,
        sns_notification(json!({"notificationType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": "ses-complaint@example.com"}],
                "complaintFeedbackType": "abuse", "feedbackId": "f1", "timestamp": "2026-12-01T12:00:00Z"},
            "mail": {"messageId": "m2", "destination": ["ses-complaint@example.com"]}})),
        "1",
    );
    assert_eq!(post(&service, "/webhooks/ses", &[], &complaint), 200);
    let transient = sign(
        &project,
        sns_notification(ses_bounce("ses-transient@example.com", "Transient")),
        "2",
    );
    assert_eq!(post(&service, "/webhooks/ses", &[], &transient), 200);

    // Refused: the message altered after signing, a certificate from
    // elsewhere, another topic, an unknown version, no signature.
    let mut altered = sign(
        &project,
        sns_notification(ses_bounce("victim@example.com", "Permanent")),
        "2",
    );
    altered["Message"] = json!(ses_bounce("other-victim@example.com", "Permanent").to_string());
    let mut elsewhere = sns_notification(ses_bounce("victim@example.com", "Permanent"));
    elsewhere["SigningCertURL"] = json!(
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123456789abcdef.pem"
    );
    let elsewhere = sign(&project, elsewhere, "2");
    let mut other_topic = sns_notification(ses_bounce("victim@example.com", "Permanent"));
    other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:someone-else");
    let other_topic = sign(&project, other_topic, "2");
    let mut version_3 = sign(
        &project,
        sns_notification(ses_bounce("victim@example.com", "Permanent")),
        "2",
    );
    version_3["SignatureVersion"] = json!("3");
    let mut unsigned = sns_notification(ses_bounce("victim@example.com", "Permanent"));
    unsigned["SignatureVersion"] = json!("2");
    let confirm = sign(
        &project,
        json!({"Type": "SubscriptionConfirmation", "MessageId": "c1", "Token": "t",
        "TopicArn": TOPIC, "Message": "You have chosen to subscribe",
        "SubscribeURL": "https://evil.example/confirm", "Timestamp": "2026-12-01T12:00:00Z",
        "SigningCertURL": CERT_URL}),
        "2",
    );
    for (what, message) in [
        ("altered", &altered),
        ("elsewhere", &elsewhere),
        ("other topic", &other_topic),
        ("version 3", &version_3),
        ("unsigned", &unsigned),
        ("confirm elsewhere", &confirm),
    ] {
        assert_eq!(post(&service, "/webhooks/ses", &[], message), 403, "{what}");
    }

    // Postmark: Basic credentials.
    let good = format!("Basic {}", STANDARD.encode("dripline:s3cret-postmark"));
    let wrong = format!("Basic {}", STANDARD.encode("dripline:guess"));
    let hard = json!({"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "MessageID": "883953f4",
        "Email": "pm-bounce@example.com", "Description": "The server was unable to deliver your message"});
    let spam = json!({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "MessageID": "883953f5",
        "Email": "pm-spam@example.com"});
    assert_eq!(
        post(
            &service,
            "/webhooks/postmark",
            &[("Authorization", &good)],
            &hard
        ),
        200
    );
    assert_eq!(
        post(
            &service,
            "/webhooks/postmark",
            &[("Authorization", &good)],
            &spam
        ),
        200
    );
    let victim =
        json!({"RecordType": "Bounce", "Type": "HardBounce", "Email": "victim@example.com"});
    assert_eq!(
        post(
            &service,
            "/webhooks/postmark",
            &[("Authorization", &wrong)],
            &victim
        ),
        403
    );
    assert_eq!(post(&service, "/webhooks/postmark", &[], &victim), 403);

    // Mailgun: HMAC of timestamp and token, fresh, never replayed.
    let now = chrono::Utc::now().timestamp();
    let permanent = mailgun(
        mailgun_failed("mg-bounce@example.com", "permanent"),
        now,
        "token-1",
        MAILGUN_KEY,
    );
    assert_eq!(post(&service, "/webhooks/mailgun", &[], &permanent), 200);
    assert_eq!(
        post(&service, "/webhooks/mailgun", &[], &permanent),
        403,
        "a replay"
    );
    let temporary = mailgun(
        mailgun_failed("mg-soft@example.com", "temporary"),
        now,
        "token-2",
        MAILGUN_KEY,
    );
    assert_eq!(post(&service, "/webhooks/mailgun", &[], &temporary), 200);
    let forged = mailgun(
        mailgun_failed("victim@example.com", "permanent"),
        now,
        "token-3",
        "not-the-key",
    );
    let stale = mailgun(
        mailgun_failed("victim@example.com", "permanent"),
        now - 3600,
        "token-4",
        MAILGUN_KEY,
    );
    assert_eq!(post(&service, "/webhooks/mailgun", &[], &forged), 403);
    assert_eq!(post(&service, "/webhooks/mailgun", &[], &stale), 403);

    // A provider that is not configured has no endpoint.
    assert_eq!(post(&service, "/webhooks/sendgrid", &[], &json!([])), 404);

    assert_eq!(
        suppressed(&project),
        [
            ("mg-bounce@example.com".to_owned(), "bounced".to_owned()),
            ("pm-bounce@example.com".to_owned(), "bounced".to_owned()),
            ("pm-spam@example.com".to_owned(), "complained".to_owned()),
            ("ses-bounce@example.com".to_owned(), "bounced".to_owned()),
            (
                "ses-complaint@example.com".to_owned(),
                "complained".to_owned()
            ),
        ],
        "transient bounces count but do not suppress; refused requests change nothing"
    );
    let status = status_json(&project);
    let ses = status["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "ses-bounce@example.com")
        .unwrap();
    assert_eq!(
        ses["detail"],
        "SES Permanent bounce (General) smtp; 550 5.1.1 user unknown"
    );
    assert!(
        service
            .log()
            .contains("webhook endpoint: POST http://127.0.0.1:"),
        "{}",
        service.log()
    );
    let (status, _) = service.terminate(Duration::from_secs(12));
    assert_eq!(status.code(), Some(0));
}
