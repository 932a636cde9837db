//! What an SMTP server's answer means for a message: pure rules, no I/O.
//!
//! The engine acts differently on each kind of failure (DESIGN.md section
//! 8): a 5xx to RCPT TO that says the address is bad bounces it; a
//! permanent refusal of the sender or the session (HELO, the sender
//! address, relaying or login required, a message larger than the server
//! takes) is no subscriber's fault and stops the run with everything due;
//! anything temporary is retried. Many servers (Postfix by default, with
//! `smtpd_delay_reject`) give HELO, client and sender rejections in reply
//! to RCPT TO, so the words of the reply count, not only the command.

use std::fmt;

use lettre::transport::smtp::response::{Response, Severity};

use super::DeliveryError;

/// The SMTP command a failure answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    MailFrom,
    RcptTo,
    Data,
    /// The message was sent; the server's verdict on it was awaited.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the message",
        })
    }
}

/// How a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The server answered with a 4xx or 5xx reply.
    Reply { permanent: bool, text: String },
    /// The connection broke or the reply made no sense.
    Broken(String),
    /// No reply within the timeout.
    Timeout,
    /// Not sent at all: the message is larger than the server's SIZE.
    TooBig { size: usize, limit: u64 },
}

impl Failure {
    pub(super) fn of(error: &lettre::transport::smtp::Error) -> Failure {
        match error.status() {
            Some(code) => Failure::Reply {
                permanent: code.severity == Severity::PermanentNegativeCompletion,
                text: reply_text(error),
            },
            None if error.is_timeout() => Failure::Timeout,
            None => Failure::Broken(error.to_string()),
        }
    }

    /// Whether the session can go on (after RSET).
    pub(super) fn keeps_connection(&self) -> bool {
        match self {
            Failure::Reply { text, .. } => !text.starts_with("421"),
            Failure::TooBig { .. } => true,
            Failure::Broken(_) | Failure::Timeout => false,
        }
    }
}

/// `550 5.1.1 no such user` from a lettre reply error.
pub(super) fn reply_text(error: &lettre::transport::smtp::Error) -> String {
    let code = error
        .status()
        .map(|code| code.to_string())
        .unwrap_or_default();
    let message = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default();
    format!("{code} {message}").trim().to_owned()
}

/// `250 2.0.0 queued as 4F1C9` from a reply.
pub(super) fn response_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim()
        .to_owned()
}

/// What the SIZE extension of an EHLO reply says (RFC 1870): `None`
/// without SIZE, `Some(0)` for SIZE with no fixed limit, `Some(n)` for a
/// limit of n bytes.
pub(super) fn announced_size<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    lines.into_iter().find_map(|line| {
        let mut words = line.split_whitespace();
        words
            .next()
            .filter(|keyword| keyword.eq_ignore_ascii_case("SIZE"))
            .map(|_| words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
    })
}

/// A permanent refusal that is about the sender or the session, not the
/// recipient: every email would get the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The EHLO name.
    Helo,
    /// This machine: relaying denied, a login or TLS required, a blocklist.
    Client,
    /// The envelope sender.
    Sender,
    /// The message size.
    TooBig,
}

impl Refusal {
    /// Which refusal `reply` (to `stage`) is, if it is one.
    fn of(stage: Stage, reply: &str) -> Option<Refusal> {
        let mut words = reply.split_whitespace();
        let basic = words.next().unwrap_or_default();
        let enhanced = words.next().filter(|word| word.starts_with("5."));
        // Addresses are the recipient's own words: `<bob@relay.example>`
        // must not read as a relaying refusal.
        let text = without_addresses(reply).to_ascii_lowercase();
        let says = |phrases: &[&str]| phrases.iter().any(|phrase| text.contains(phrase));
        // A full mailbox (5.2.2, "mailbox size exceeds quota") is the
        // recipient's; only a message-size code or, without an enhanced
        // code, a 552 to MAIL FROM or the message or such words count.
        let too_big = matches!(enhanced, Some("5.3.4" | "5.2.3"))
            || (enhanced.is_none()
                && ((basic == "552" && matches!(stage, Stage::MailFrom | Stage::Message))
                    || says(&["too big", "too large", "size exceeds"])));
        if too_big {
            Some(Refusal::TooBig)
        } else if says(&["helo", "ehlo"]) {
            Some(Refusal::Helo)
        } else if basic == "530"
            || matches!(enhanced, Some("5.7.0" | "5.7.8" | "5.7.9" | "5.7.11"))
            || says(&[
                "relay access denied",
                "relaying denied",
                "relay not permitted",
                "relaying not allowed",
                "not permitted to relay",
                "unable to relay",
                "authentication required",
                "authentication is required",
                "must authenticate",
                "not authenticated",
                "client host rejected",
                "blocked using",
                "starttls",
            ])
        {
            Some(Refusal::Client)
        } else if stage == Stage::MailFrom
            || matches!(enhanced, Some("5.1.7" | "5.1.8"))
            || says(&["sender address", "sender domain"])
        {
            Some(Refusal::Sender)
        } else {
            None
        }
    }

    /// What the server refused and what to change.
    fn explain(self, stage: Stage, reply: &str) -> String {
        let (what, fix) = match self {
            Refusal::Helo => (
                "refused dripline's EHLO name",
                "Set [smtp] helo_name to this machine's public, fully-qualified host name (one with a DNS record), e.g. helo_name = \"mail.example.com\"",
            ),
            Refusal::Client => (
                "refused to take mail from this machine",
                "Log in ([smtp] username with password_env or password_file), use security = \"starttls\", or ask the server's administrator to allow this machine",
            ),
            Refusal::Sender => (
                "refused the sender address",
                "Check [sender] from: the server (and the login, if any) must be allowed to send as that address and its domain",
            ),
            Refusal::TooBig => (
                "refused the message as too large",
                "Make the step shorter (text, images, template) or raise the server's message size limit (Postfix: message_size_limit)",
            ),
        };
        format!("{what} at {stage}: {reply}. {fix}")
    }
}

/// `reply` with every `<...>` part removed.
fn without_addresses(reply: &str) -> String {
    let mut text = String::with_capacity(reply.len());
    let mut depth = 0usize;
    for c in reply.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    text
}

/// Whether a permanent reply to RCPT TO says the address itself is bad
/// (no such mailbox, no such domain, mailbox disabled), which bounces it.
/// A policy rejection (`5.7.x`: spam, a recipient's own rules) is about
/// the message, and must not suppress a whole list.
fn rejects_the_address(reply: &str) -> bool {
    let mut words = reply.split_whitespace();
    let basic = words.next().unwrap_or_default();
    match words.next().filter(|word| word.starts_with("5.")) {
        Some(enhanced) => {
            (enhanced.starts_with("5.1.") && !matches!(enhanced, "5.1.7" | "5.1.8"))
                || enhanced == "5.2.1"
        }
        // Without an enhanced code: the basic codes for a bad mailbox.
        None => matches!(basic, "550" | "551" | "553"),
    }
}

/// What a failed command means for the message (DESIGN.md section 8).
pub(super) fn classify(stage: Stage, failure: Failure) -> DeliveryError {
    match (stage, failure) {
        (_, Failure::TooBig { size, limit }) => DeliveryError::Refused(format!(
            "takes messages of at most {limit} bytes (its SIZE), and this one is {size} bytes: nothing of it was sent. Make the step shorter (text, images, template) or raise the server's message size limit (Postfix: message_size_limit)"
        )),
        (
            stage,
            Failure::Reply {
                permanent: true,
                text,
            },
        ) => match Refusal::of(stage, &text) {
            Some(refusal) => DeliveryError::Refused(refusal.explain(stage, &text)),
            None => DeliveryError::Permanent {
                recipient: stage == Stage::RcptTo && rejects_the_address(&text),
                reply: text,
            },
        },
        (_, Failure::Reply { text, .. }) => DeliveryError::Transient(text),
        (Stage::Message, Failure::Broken(reason)) => DeliveryError::Transient(format!(
            "the connection broke after the message was sent ({reason}): it may have arrived; it goes again with the same Message-ID"
        )),
        (Stage::Message, Failure::Timeout) => DeliveryError::Transient(
            "no reply after the message was sent: it may have arrived; it goes again with the same Message-ID"
                .to_owned(),
        ),
        (stage, Failure::Broken(reason)) => DeliveryError::Transient(format!(
            "the connection broke at {stage}, before the message was handed over: {reason}"
        )),
        (stage, Failure::Timeout) => DeliveryError::Transient(format!(
            "no reply to {stage} in time; the message was not handed over"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(permanent: bool, text: &str) -> Failure {
        Failure::Reply {
            permanent,
            text: text.to_owned(),
        }
    }

    fn refused(stage: Stage, text: &str) -> String {
        match classify(stage, reply(true, text)) {
            DeliveryError::Refused(message) => message,
            other => panic!("{text} at {stage}: {other:?}"),
        }
    }

    #[test]
    fn only_a_rejected_recipient_bounces() {
        assert_eq!(
            classify(Stage::RcptTo, reply(true, "550 5.1.1 no such user")),
            DeliveryError::Permanent {
                reply: "550 5.1.1 no such user".to_owned(),
                recipient: true
            }
        );
        for policy in [
            "550 5.7.1 message refused by the recipient's rules",
            "554 transaction failed",
        ] {
            assert!(
                matches!(
                    classify(Stage::RcptTo, reply(true, policy)),
                    DeliveryError::Permanent {
                        recipient: false,
                        ..
                    }
                ),
                "{policy}"
            );
        }
        for bad_address in [
            "550 no such user",
            "550 5.1.2 bad domain",
            "550 5.2.1 disabled",
            "550 5.1.1 <alice@relay.example>: Recipient address rejected: User unknown",
            "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in relay recipient table",
        ] {
            assert!(
                matches!(
                    classify(Stage::RcptTo, reply(true, bad_address)),
                    DeliveryError::Permanent {
                        recipient: true,
                        ..
                    }
                ),
                "{bad_address}"
            );
        }
        for stage in [Stage::Data, Stage::Message] {
            assert!(matches!(
                classify(stage, reply(true, "554 5.7.1 spam")),
                DeliveryError::Permanent {
                    recipient: false,
                    ..
                }
            ));
        }
    }

    #[test]
    fn refusals_of_the_sender_or_the_session_name_what_to_change() {
        // Postfix gives these at RCPT TO (smtpd_delay_reject = yes).
        for (text, fix) in [
            (
                "504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname",
                "helo_name",
            ),
            (
                "553 5.7.1 <coach@example.com>: Sender address rejected: not owned by user",
                "[sender] from",
            ),
            ("550 5.1.8 bad sender address", "[sender] from"),
            (
                "553 5.1.0 <coach@example.com>: Sender address rejected: User unknown in local recipient table",
                "[sender] from",
            ),
            (
                "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied",
                "Log in",
            ),
            ("554 5.7.1 <bob@example.net>: Relay access denied", "Log in"),
            ("530 5.7.0 Authentication required", "Log in"),
            (
                "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
                "administrator",
            ),
        ] {
            let message = refused(Stage::RcptTo, text);
            assert!(message.contains(text) && message.contains(fix), "{message}");
        }
        assert!(refused(Stage::MailFrom, "553 5.7.1 not yours").contains("[sender] from"));
        assert!(refused(Stage::MailFrom, "530 5.7.0 Authentication required").contains("Log in"));
        for (stage, text) in [
            (
                Stage::MailFrom,
                "552 5.3.4 Message size exceeds fixed limit",
            ),
            (Stage::Message, "552 5.3.4 Message size exceeds fixed limit"),
            (Stage::Message, "552 message too big"),
        ] {
            assert!(
                refused(stage, text).contains("message_size_limit"),
                "{text}"
            );
        }
        // A full mailbox is the recipient's.
        for full in [
            "552 5.2.2 mailbox full",
            "552 5.2.2 <bob@example.net>: mailbox size exceeds quota",
        ] {
            assert!(matches!(
                classify(Stage::RcptTo, reply(true, full)),
                DeliveryError::Permanent { .. }
            ));
            assert!(matches!(
                classify(Stage::Message, reply(true, full)),
                DeliveryError::Permanent { .. }
            ));
        }
        let DeliveryError::Refused(big) = classify(
            Stage::MailFrom,
            Failure::TooBig {
                size: 12_634,
                limit: 8_000,
            },
        ) else {
            unreachable!()
        };
        assert!(
            big.contains("12634 bytes") && big.contains("at most 8000"),
            "{big}"
        );
    }

    #[test]
    fn temporary_replies_and_lost_connections_are_retried() {
        assert_eq!(
            classify(Stage::RcptTo, reply(false, "451 later")),
            DeliveryError::Transient("451 later".to_owned())
        );
        assert!(matches!(
            classify(
                Stage::RcptTo,
                reply(
                    false,
                    "450 4.1.8 <x@example.com>: Sender address rejected: Domain not found"
                )
            ),
            DeliveryError::Transient(_)
        ));
        for stage in [Stage::MailFrom, Stage::Message] {
            for failure in [Failure::Timeout, Failure::Broken("reset".to_owned())] {
                assert!(matches!(
                    classify(stage, failure),
                    DeliveryError::Transient(_)
                ));
            }
        }
        let DeliveryError::Transient(unknown) = classify(Stage::Message, Failure::Timeout) else {
            unreachable!()
        };
        assert!(unknown.contains("same Message-ID"), "{unknown}");
    }

    #[test]
    fn a_421_closes_the_session() {
        assert!(!reply(false, "421 closing").keeps_connection());
        assert!(reply(false, "451 later").keeps_connection());
        assert!(!Failure::Timeout.keeps_connection());
    }

    #[test]
    fn the_size_extension_is_read_from_ehlo() {
        assert_eq!(
            announced_size(["test", "8BITMIME", "SIZE 8000"]),
            Some(8000)
        );
        assert_eq!(announced_size(["test", "SIZE"]), Some(0));
        assert_eq!(announced_size(["test", "PIPELINING"]), None);
    }
}
