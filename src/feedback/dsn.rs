//! Delivery status notifications (RFC 3464) and the status codes in them
//! (RFC 3463): which failures mean the address is gone and which are for
//! now. Pure.
//!
//! Every per-recipient group is read (a DSN can report several), and the
//! most serious outcome wins. `failed` with a 5.x.x status bounces the
//! address, except 5.7.x (a policy or reputation block, about the sender,
//! not the address) and 5.2.2 (mailbox full, which RFC 3463 calls
//! transient): those and 4.x.x failures are soft, counted, and bounce only
//! when repeated. A `delayed` notice is not a failure: the server still
//! tries, and a failure notice follows if it gives up. `delivered`,
//! `relayed` and `expanded` are successes.

use super::Signal;
use super::fields::{self, Field};

/// An RFC 3463 enhanced status code: class, subject, detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub class: u16,
    pub subject: u16,
    pub detail: u16,
}

impl Status {
    /// Parses `5.1.1` at the start of `text` (a comment may follow).
    pub fn parse(text: &str) -> Option<Status> {
        let code = text
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .next()?;
        let mut numbers = code.split('.').map(|n| n.parse::<u16>().ok());
        let status = Status {
            class: numbers.next()??,
            subject: numbers.next()??,
            detail: numbers.next()??,
        };
        (numbers.next().is_none() && matches!(status.class, 2 | 4 | 5)).then_some(status)
    }

    /// The first enhanced status code anywhere in free text (a text bounce,
    /// a diagnostic): `550 5.1.1 User unknown`, `(#5.1.1)`.
    pub fn find(text: &str) -> Option<Status> {
        let bytes = text.as_bytes();
        (0..bytes.len()).find_map(|at| {
            let starts_word =
                at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'.');
            (starts_word && matches!(bytes[at], b'4' | b'5') && bytes.get(at + 1) == Some(&b'.'))
                .then(|| Status::parse(&text[at..]))
                .flatten()
        })
    }

    /// What a failure with this status means for the address.
    pub fn signal(self) -> Option<Signal> {
        match (self.class, self.subject, self.detail) {
            (2, _, _) => None,
            (5, 7, _) | (5, 2, 2) | (4, _, _) => Some(Signal::SoftBounce),
            _ => Some(Signal::Bounce),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What a DSN reports about its most serious recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `None` when no recipient failed (delays and successes).
    pub signal: Option<Signal>,
    /// For the record: status, reporting server and diagnostic.
    pub detail: String,
}

/// Reads the body of a `message/delivery-status` part; `None` when it has
/// no per-recipient group.
pub fn read(body: &str) -> Option<Report> {
    let groups = fields::groups(body);
    let (per_message, recipients) = groups.split_first()?;
    let reporter = fields::get(per_message, "reporting-mta").map(fields::untyped);
    let outcomes: Vec<(Option<Signal>, String)> = recipients
        .iter()
        .filter(|group| {
            fields::get(group, "final-recipient").is_some()
                || fields::get(group, "action").is_some()
        })
        .map(|group| recipient(group, reporter))
        .collect();
    let worst = outcomes
        .iter()
        .max_by_key(|(signal, _)| match signal {
            Some(Signal::Bounce) => 2,
            Some(_) => 1,
            None => 0,
        })?
        .clone();
    Some(Report {
        signal: worst.0,
        detail: worst.1,
    })
}

/// One per-recipient group: its outcome and a line for the record.
fn recipient(group: &[Field], reporter: Option<&str>) -> (Option<Signal>, String) {
    let action = fields::get(group, "action").map(|action| {
        action
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
    let status = fields::get(group, "status").and_then(Status::parse);
    let signal = match (action.as_deref(), status) {
        (Some("delayed" | "delivered" | "relayed" | "expanded"), _) => None,
        (_, Some(status)) => status.signal(),
        // Failed, with no code that says how: counted, not final.
        (Some("failed"), None) => Some(Signal::SoftBounce),
        _ => None,
    };
    let mut detail = format!(
        "DSN {} {}",
        action.as_deref().unwrap_or("without action"),
        status.map_or_else(|| "without status".to_owned(), |s| s.to_string())
    );
    if let Some(reporter) = reporter {
        detail.push_str(&format!(" from {reporter}"));
    }
    if let Some(diagnostic) = fields::get(group, "diagnostic-code") {
        detail.push_str(&format!(": {}", fields::untyped(diagnostic)));
    }
    (signal, shorten(&detail))
}

/// `text` cut to a length that suits a status line.
pub fn shorten(text: &str) -> String {
    const LIMIT: usize = 200;
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(groups: &[&str]) -> String {
        format!(
            "Reporting-MTA: dns; mx.example.net\n\n{}",
            groups.join("\n\n")
        )
    }

    #[test]
    fn status_codes_parse_and_classify() {
        let status = |text| Status::parse(text).and_then(Status::signal);
        assert_eq!(status("5.1.1"), Some(Signal::Bounce));
        assert_eq!(status("5.1.10 (RecipientNotFound)"), Some(Signal::Bounce));
        assert_eq!(status("5.7.1"), Some(Signal::SoftBounce));
        assert_eq!(status("5.2.2"), Some(Signal::SoftBounce));
        assert_eq!(status("4.4.7"), Some(Signal::SoftBounce));
        assert_eq!(status("2.0.0"), None);
        assert_eq!(Status::parse("550"), None);
        assert_eq!(Status::parse("6.1.1"), None);
        assert_eq!(Status::parse("5.1"), None);
        assert_eq!(
            Status::find("said: 550 5.1.1 <a@b>: User unknown").map(|s| s.to_string()),
            Some("5.1.1".to_owned())
        );
        assert_eq!(
            Status::find("(#5.4.6)").map(|s| s.to_string()),
            Some("5.4.6".to_owned())
        );
        assert_eq!(Status::find("version 15.1.2 and 1.5.0"), None);
    }

    #[test]
    fn every_recipient_is_read_and_the_worst_wins() {
        let report = read(&dsn(&[
            "Final-Recipient: rfc822; a@example.net\nAction: delayed\nStatus: 4.4.1",
            "Final-Recipient: rfc822; b@example.net\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown",
        ]))
        .unwrap();
        assert_eq!(report.signal, Some(Signal::Bounce));
        assert_eq!(
            report.detail,
            "DSN failed 5.1.1 from mx.example.net: 550 5.1.1 User unknown"
        );
    }

    #[test]
    fn delays_and_successes_are_not_failures_and_policy_blocks_are_soft() {
        let one = |group: &str| read(&dsn(&[group])).unwrap().signal;
        assert_eq!(
            one("Final-Recipient: rfc822; a@x\nAction: delayed\nStatus: 4.4.1"),
            None
        );
        assert_eq!(
            one("Final-Recipient: rfc822; a@x\nAction: relayed\nStatus: 2.0.0"),
            None
        );
        assert_eq!(
            one("Final-Recipient: rfc822; a@x\nAction: failed\nStatus: 5.7.1"),
            Some(Signal::SoftBounce)
        );
        assert_eq!(
            one("Final-Recipient: rfc822; a@x\nAction: failed\nStatus: 4.4.7"),
            Some(Signal::SoftBounce)
        );
        assert_eq!(
            one("Final-Recipient: rfc822; a@x\nAction: failed"),
            Some(Signal::SoftBounce)
        );
        assert_eq!(read("Reporting-MTA: dns; x\n"), None);
    }
}
