//! Reading one message from the feedback mailbox: a DSN, an ARF complaint,
//! a `mailto:` unsubscribe request, a text bounce in one of the older
//! shapes (Exim, qmail, Exchange), or something else. Pure: bytes in, a
//! [`Verdict`] out.
//!
//! Who it is about comes from tokens only: the envelope recipient
//! (`Delivered-To`, `X-Original-To`, … then `To`) for bounces and mailto
//! requests, and the returned message's `List-Unsubscribe` and
//! `Return-Path` for complaints (feedback loops report to an address of
//! their own, not to the VERP one). `From:` is never trusted, and neither
//! is `Final-Recipient` (it may be an alias, and anyone can write one).

use lettre::Address;
use mail_parser::{Message, MessageParser, MimeHeaders as _};

use super::dsn::{self, Status};
use super::fields::{self, Field};
use super::{Finding, Named, Signal, Verdict};
use crate::token::{Purpose, TOKEN_LEN};

/// The addresses dripline hands out with a `+TOKEN`: the envelope sender
/// and the `mailto:` unsubscribe address.
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    pub bounce: Option<Address>,
    pub unsubscribe: Option<Address>,
}

/// Headers that name the envelope recipient, most reliable first: the
/// delivering server adds the first ones, the sender writes `To`.
const RECIPIENT_HEADERS: &[&str] = &[
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "to",
    "cc",
];

/// Subjects of text bounces (Postfix, Exim, Exchange, Gmail, qmail-style
/// relays), lower case.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "mail delivery failed",
    "undeliverable",
    "delivery status notification (failure)",
    "failure notice",
    "returned mail",
    "delivery failure",
];

/// Reads one raw message.
pub fn read(raw: &[u8], addresses: &Addresses) -> Verdict {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Verdict::Unknown("not an email message".to_owned());
    };
    let head = head_of(&message);
    let envelope = envelope_tokens(&head, addresses);
    let Reports {
        delivery_status,
        feedback,
        returned,
    } = Reports::of(&message);
    let mut inside = returned_tokens(&returned);
    if let Some(report) = feedback {
        // Complaint reports come to the feedback loop's address: the
        // returned message says whose email it was.
        let mut named = inside;
        named.extend(envelope.bounce.clone());
        return complaint(&report, named);
    }
    if let Some(status) = delivery_status {
        let mut named = envelope.bounce;
        named.append(&mut inside);
        return bounce(&status, named);
    }
    if !envelope.unsubscribe.is_empty() {
        return Verdict::Act(Finding {
            signal: Signal::Unsubscribe,
            named: envelope.unsubscribe,
            detail: "mailto request".to_owned(),
            reference: None,
        });
    }
    if !envelope.bounce.is_empty() {
        let body = message
            .body_text(0)
            .map(|text| text.into_owned())
            .unwrap_or_default();
        return text_bounce(&head, &body, envelope.bounce);
    }
    Verdict::Unknown("not a bounce, complaint or unsubscribe request for dripline".to_owned())
}

/// A message's header fields, names in lower case, values unfolded.
fn head_of(message: &Message) -> Vec<Field> {
    message
        .headers_raw()
        .map(|(name, value)| (name.to_ascii_lowercase(), unfold(value)))
        .collect()
}

/// The report parts of a message, wherever they sit in its MIME tree
/// (never assuming which part comes first).
#[derive(Debug, Default)]
struct Reports {
    /// The body of `message/delivery-status` (or its `global` form).
    delivery_status: Option<String>,
    /// The body of `message/feedback-report`.
    feedback: Option<String>,
    /// The header fields of the returned message or headers.
    returned: Vec<Field>,
}

impl Reports {
    fn of(message: &Message) -> Reports {
        let mut reports = Reports::default();
        for part in &message.parts {
            let Some(kind) = part.content_type() else {
                continue;
            };
            let subtype = kind.subtype().unwrap_or_default().to_ascii_lowercase();
            let text = || String::from_utf8_lossy(part.contents()).into_owned();
            match (kind.ctype().to_ascii_lowercase().as_str(), subtype.as_str()) {
                ("message", "delivery-status" | "global-delivery-status") => {
                    reports.delivery_status = Some(text());
                }
                ("message", "feedback-report") => reports.feedback = Some(text()),
                ("message", "rfc822" | "global") => {
                    reports
                        .returned
                        .extend(part.message().map(head_of).unwrap_or_default());
                }
                ("text", "rfc822-headers") | ("message", "global-headers") => {
                    reports.returned.extend(fields::block(&text()));
                }
                _ => {}
            }
        }
        reports
    }
}

/// Header values come folded; the parts are one line.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Tokens in the envelope recipient headers.
#[derive(Debug, Default)]
struct Envelope {
    bounce: Vec<Named>,
    unsubscribe: Vec<Named>,
}

fn envelope_tokens(head: &[Field], addresses: &Addresses) -> Envelope {
    let mut envelope = Envelope::default();
    for header in RECIPIENT_HEADERS {
        for (_, value) in head.iter().filter(|(name, _)| name == header) {
            for address in address_like(value) {
                for (base, purpose, found) in [
                    (&addresses.bounce, Purpose::Bounce, &mut envelope.bounce),
                    (
                        &addresses.unsubscribe,
                        Purpose::Unsubscribe,
                        &mut envelope.unsubscribe,
                    ),
                ] {
                    if let Some(token) = base.as_ref().and_then(|base| tag_of(base, address)) {
                        let named = Named::Token(token, purpose);
                        if !found.contains(&named) {
                            found.push(named);
                        }
                    }
                }
            }
        }
    }
    envelope
}

/// Every word of `value` that looks like an address.
fn address_like(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c.is_whitespace() || "<>,;\"()".contains(c))
        .filter(|word| word.contains('@'))
}

/// The `TOKEN` of `local+TOKEN@domain` when `base` is `local@domain`.
fn tag_of(base: &Address, address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let tag = local
        .to_ascii_lowercase()
        .strip_prefix(&format!("{}+", base.user().to_ascii_lowercase()))?
        .to_owned();
    (domain.eq_ignore_ascii_case(base.domain()) && tag.len() == TOKEN_LEN).then_some(tag)
}

/// Tokens in the headers of a returned message: its `List-Unsubscribe`
/// (https `/u/TOKEN` or `mailto:…+TOKEN@`) and its VERP `Return-Path`.
fn returned_tokens(head: &[Field]) -> Vec<Named> {
    let mut named = Vec::new();
    for (name, value) in head {
        match name.as_str() {
            "list-unsubscribe" => {
                for uri in value
                    .split([',', '<', '>'])
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                {
                    named.extend(link_token(uri));
                }
            }
            "return-path" => named.extend(verp_tokens(value)),
            _ => {}
        }
    }
    named
}

/// Bounce tokens of VERP addresses in `value` (`bounces+TOKEN@…`),
/// wherever the address was configured: a returned `Return-Path` or an
/// ARF `Original-Mail-From` names the envelope sender as it was sent.
fn verp_tokens(value: &str) -> impl Iterator<Item = Named> + '_ {
    address_like(value).filter_map(|address| {
        let local = address.rsplit_once('@')?.0;
        let tag = local.rsplit_once('+')?.1.to_ascii_lowercase();
        (tag.len() == TOKEN_LEN).then_some(Named::Token(tag, Purpose::Bounce))
    })
}

/// The token of one `List-Unsubscribe` URI.
fn link_token(uri: &str) -> Option<Named> {
    if let Some(mailto) = uri.strip_prefix("mailto:") {
        let local = mailto.split(['@', '?']).next()?;
        let tag = local.rsplit_once('+')?.1.to_ascii_lowercase();
        return (tag.len() == TOKEN_LEN).then_some(Named::Token(tag, Purpose::Unsubscribe));
    }
    let token = uri.rsplit_once("/u/")?.1.split(['?', '#', '/']).next()?;
    if token.len() == TOKEN_LEN {
        Some(Named::Token(
            token.to_ascii_lowercase(),
            Purpose::Unsubscribe,
        ))
    } else {
        (!token.is_empty()).then(|| Named::Legacy(token.to_owned()))
    }
}

/// A `message/feedback-report`: an `abuse` report is a complaint; other
/// types (`not-spam`, `auth-failure`, …) suppress nobody.
fn complaint(report: &str, named: Vec<Named>) -> Verdict {
    let fields = fields::block(report);
    let kind = fields::get(&fields, "feedback-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if kind != "abuse" {
        return Verdict::Nothing(format!("a feedback report of type `{kind}`"));
    }
    let mut named = named;
    named.extend(
        fields::get(&fields, "original-mail-from")
            .into_iter()
            .flat_map(verp_tokens),
    );
    if named.is_empty() {
        return Verdict::Unknown(
            "a complaint whose returned message carries no dripline token".to_owned(),
        );
    }
    let agent = fields::get(&fields, "user-agent").unwrap_or("unknown");
    Verdict::Act(Finding {
        signal: Signal::Complaint,
        named,
        detail: dsn::shorten(&format!("ARF abuse report ({agent})")),
        reference: None,
    })
}

/// A `message/delivery-status` report.
fn bounce(status: &str, named: Vec<Named>) -> Verdict {
    let Some(report) = dsn::read(status) else {
        return Verdict::Unknown("a delivery report with no recipient in it".to_owned());
    };
    let Some(signal) = report.signal else {
        return Verdict::Nothing(report.detail);
    };
    if named.is_empty() {
        return Verdict::Unknown(format!("{}, naming no dripline token", report.detail));
    }
    Verdict::Act(Finding {
        signal,
        named,
        detail: report.detail,
        reference: None,
    })
}

/// Mail to a bounce token that is not a DSN: a bounce in an older text
/// shape, an automatic reply, or something else.
fn text_bounce(head: &[Field], body: &str, named: Vec<Named>) -> Verdict {
    let subject = fields::get(head, "subject")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let from = fields::get(head, "from")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let failed_recipients = fields::get(head, "x-failed-recipients").is_some();
    let looks_like_bounce = failed_recipients
        || from.contains("mailer-daemon")
        || from.contains("postmaster")
        || BOUNCE_SUBJECTS
            .iter()
            .any(|marker| subject.contains(marker));
    if !looks_like_bounce {
        let automatic = fields::get(head, "auto-submitted")
            .is_some_and(|v| !v.eq_ignore_ascii_case("no"))
            || fields::get(head, "x-autoreply").is_some()
            || ["out of office", "automatic reply", "auto:"]
                .iter()
                .any(|m| subject.contains(m));
        return if automatic {
            Verdict::Nothing("an automatic reply to the bounce address".to_owned())
        } else {
            Verdict::Unknown("mail to the bounce address that is not a bounce".to_owned())
        };
    }
    // The line with a server's reply (`550 5.1.1 …`) says it best; prose
    // before it may mention codes too ("see DSN 5.1.10 Errors …").
    let replied = body
        .lines()
        .filter(|line| has_reply_code(line))
        .find_map(Status::find);
    let (signal, code) = match replied.or_else(|| Status::find(body)) {
        Some(status) => match status.signal() {
            Some(signal) => (signal, status.to_string()),
            None => return Verdict::Nothing(format!("a text report with status {status}")),
        },
        // Exim says so in words when it gives up.
        None if body
            .to_ascii_lowercase()
            .contains("this is a permanent error") =>
        {
            (Signal::Bounce, "permanent".to_owned())
        }
        None => {
            return Verdict::Unknown("a text bounce with no status code in it".to_owned());
        }
    };
    let line = body
        .lines()
        .map(str::trim)
        .filter(|line| line.contains(&code))
        .max_by_key(|line| has_reply_code(line))
        .unwrap_or_default();
    Verdict::Act(Finding {
        signal,
        named,
        detail: dsn::shorten(&format!("text bounce {code}: {line}")),
        reference: None,
    })
}

/// Whether `line` holds an SMTP reply code such as `550 ` or `#550 `.
fn has_reply_code(line: &str) -> bool {
    line.as_bytes().windows(4).any(|w| {
        matches!(w[0], b'4' | b'5')
            && w[1].is_ascii_digit()
            && w[2].is_ascii_digit()
            && matches!(w[3], b' ' | b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses() -> Addresses {
        Addresses {
            bounce: Some("bounces@bounce.example.com".parse().unwrap()),
            unsubscribe: Some("unsubscribe@example.com".parse().unwrap()),
        }
    }

    const TOKEN: &str = "abcdefghijklmnopqrstuvwx";

    #[test]
    fn tags_match_the_configured_address_only() {
        let base: Address = "bounces@bounce.example.com".parse().unwrap();
        assert_eq!(
            tag_of(
                &base,
                &format!("Bounces+{}@Bounce.Example.com", TOKEN.to_uppercase())
            )
            .as_deref(),
            Some(TOKEN)
        );
        assert_eq!(
            tag_of(&base, &format!("bounces+{TOKEN}@other.example.com")),
            None
        );
        assert_eq!(
            tag_of(&base, &format!("other+{TOKEN}@bounce.example.com")),
            None
        );
        assert_eq!(tag_of(&base, "bounces+short@bounce.example.com"), None);
    }

    #[test]
    fn a_mailto_request_is_an_unsubscribe_whoever_sends_it() {
        let raw = format!(
            "From: Someone Else <eve@example.org>\r\nTo: unsubscribe+{TOKEN}@example.com\r\nSubject: unsubscribe\r\n\r\nplease\r\n"
        );
        let Verdict::Act(finding) = read(raw.as_bytes(), &addresses()) else {
            panic!("not acted on");
        };
        assert_eq!(finding.signal, Signal::Unsubscribe);
        assert_eq!(
            finding.named,
            [Named::Token(TOKEN.to_owned(), Purpose::Unsubscribe)]
        );
    }

    #[test]
    fn list_unsubscribe_tokens_are_found_in_every_form() {
        assert_eq!(
            link_token(&format!("https://x.example/dripline/u/{TOKEN}")),
            Some(Named::Token(TOKEN.to_owned(), Purpose::Unsubscribe))
        );
        assert_eq!(
            link_token(&format!(
                "mailto:unsubscribe+{TOKEN}@example.com?subject=unsubscribe"
            )),
            Some(Named::Token(TOKEN.to_owned(), Purpose::Unsubscribe))
        );
        assert_eq!(
            link_token("https://x.example/u/Z3V0.bWFj"),
            Some(Named::Legacy("Z3V0.bWFj".to_owned()))
        );
        assert_eq!(link_token("mailto:unsubscribe@example.com"), None);
    }

    #[test]
    fn other_mail_is_left() {
        let raw = b"From: a@example.org\r\nTo: hello@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
        assert!(matches!(read(raw, &addresses()), Verdict::Unknown(_)));
        let reply = format!(
            "From: a@example.org\r\nTo: bounces+{TOKEN}@bounce.example.com\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\naway\r\n"
        );
        assert!(matches!(
            read(reply.as_bytes(), &addresses()),
            Verdict::Nothing(_)
        ));
    }
}
