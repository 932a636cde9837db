//! The MIME message of one email, per DESIGN 8: headers, then
//! multipart/alternative with the text part before the HTML part.
//!
//! What every email of a step shares (the sender, the subject, the list,
//! the MIME frame) is formatted once, into a [`Frame`]; each email adds
//! only its own headers (To, Date, Message-ID, List-Unsubscribe) and its
//! two bodies, already in quoted-printable.
//!
//! Every value that reaches a header is either typed (lettre encodes
//! mailboxes and the subject per RFC 2047, and folds long lines) or built
//! here from checked parts, and control characters are removed from all
//! free text first, so no input can start a header of its own.

use std::io::Write as _;
use std::ops::Range;
use std::time::SystemTime;

use lettre::message::header::{self, Header, HeaderName, HeaderValue, Headers};
use lettre::message::{Mailbox, Mailboxes};
use sha2::{Digest, Sha256};

/// What the emails of a step have in common.
pub struct Common<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub subject: &'a str,
    /// The List-Id header's value.
    pub list_id: &'a str,
    /// Their https unsubscribe link works with one click (RFC 8058).
    pub one_click: bool,
}

/// What one email has of its own.
pub struct Own<'a> {
    pub to: Mailbox,
    pub date: SystemTime,
    /// The full Message-ID, angle brackets included.
    pub message_id: &'a str,
    /// The one-click https unsubscribe URL.
    pub unsubscribe_url: Option<&'a str>,
    /// The `mailto:` unsubscribe URL.
    pub unsubscribe_mailto: Option<&'a str>,
    /// The plain-text part, quoted-printable ([`quoted_printable`]).
    pub text: &'a [u8],
    /// The HTML part, quoted-printable.
    pub html: &'a [u8],
}

/// The part of a step's messages that is the same in each, formatted.
#[derive(Debug, Clone)]
pub struct Frame {
    /// From, Subject, List-Id and Reply-To.
    head: String,
    /// The rest of the header, the first boundary and the text part's header.
    open: String,
    /// The boundary and header of the HTML part.
    between: String,
    /// The closing boundary.
    close: String,
}

impl Frame {
    /// Formats what the emails of `common` share. The boundary begins with
    /// `=_`, which quoted-printable never writes (a `=` there is followed
    /// by two hex digits or a line break), so no body can contain it; the
    /// rest is a hash of the step's subject and list, like Roundcube's.
    pub fn new(common: Common) -> Frame {
        let mut head = Headers::new();
        head.set(header::From::from(Mailboxes::from(common.from.clone())));
        head.set(header::Subject::from(single_line(common.subject)));
        head.insert_raw(raw("List-Id", common.list_id));
        if let Some(reply_to) = common.reply_to {
            head.set(header::ReplyTo::from(Mailboxes::from(reply_to.clone())));
        }
        let digest = Sha256::digest(format!("{}\n{}", common.list_id, common.subject));
        let boundary = format!("=_{}", hex::encode(&digest[..16]));
        let mut open = Headers::new();
        if common.one_click {
            open.insert_raw(raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
        }
        open.set(header::MIME_VERSION_1_0);
        let part = |kind: &str| {
            format!(
                "--{boundary}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            )
        };
        Frame {
            head: head.to_string(),
            open: format!(
                "{open}Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n{}",
                part("text/plain")
            ),
            between: format!("\r\n{}", part("text/html")),
            close: format!("\r\n--{boundary}--\r\n"),
        }
    }

    /// The message of one email in this frame.
    pub fn compose(&self, own: Own) -> Composed {
        let mut bytes = Vec::with_capacity(
            self.head.len() + self.open.len() + own.text.len() + own.html.len() + 1024,
        );
        bytes.extend_from_slice(self.head.as_bytes());
        put(&mut bytes, header::To::from(Mailboxes::from(own.to)));
        let date = put(&mut bytes, header::Date::new(own.date));
        put(
            &mut bytes,
            header::MessageId::from(own.message_id.to_owned()),
        );
        let methods: Vec<String> = [own.unsubscribe_url, own.unsubscribe_mailto]
            .into_iter()
            .flatten()
            .map(|url| format!("<{url}>"))
            .collect();
        if !methods.is_empty() {
            let mut one = Headers::with_capacity(1);
            one.insert_raw(raw("List-Unsubscribe", &methods.join(", ")));
            write_headers(&mut bytes, &one);
        }
        bytes.extend_from_slice(self.open.as_bytes());
        bytes.extend_from_slice(own.text);
        bytes.extend_from_slice(self.between.as_bytes());
        bytes.extend_from_slice(own.html);
        bytes.extend_from_slice(self.close.as_bytes());
        Composed { bytes, date }
    }
}

/// A formatted message (CRLF line ends), and where its Date header's value
/// sits in it.
#[derive(Debug, Clone)]
pub struct Composed {
    pub bytes: Vec<u8>,
    date: Range<usize>,
}

impl Composed {
    /// Gives the message another Date header, leaving the rest as it was.
    pub fn set_date(&mut self, date: SystemTime) {
        let mut dated = Vec::new();
        put(&mut dated, header::Date::new(date));
        let value = &dated[header_value(&dated)];
        let end = self.date.start + value.len();
        self.bytes.splice(self.date.clone(), value.iter().copied());
        self.date.end = end;
    }
}

/// Writes `header` onto `out` as lettre formats it; where its value is.
fn put(out: &mut Vec<u8>, header: impl Header) -> Range<usize> {
    let mut one = Headers::with_capacity(1);
    one.set(header);
    let start = out.len();
    write_headers(out, &one);
    let value = header_value(&out[start..]);
    start + value.start..start + value.end
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    write!(out, "{headers}").unwrap_or_else(|err| unreachable!("a Vec takes any write: {err}"));
}

/// Where the value of the one header in `line` is: after `Name: `, before
/// the final CRLF.
fn header_value(line: &[u8]) -> Range<usize> {
    let start = line
        .windows(2)
        .position(|pair| pair == b": ")
        .map_or(0, |at| at + 2);
    start..line.len().saturating_sub(2)
}

/// `text` as a quoted-printable body (RFC 2045 6.7) with CRLF line ends.
/// Encoded here rather than by lettre because lettre inserts each CR
/// separately and weighs encodings per part, which made MIME the
/// most expensive step of rendering; QP keeps every line short and the
/// body readable for any content. Runs of bytes that stand for
/// themselves are copied whole, found in one pass that also stops at
/// line ends: most of a body is such a run, and a byte at a time was a
/// quarter of the cost of rendering an email.
///
/// Each line is encoded on its own (the column starts again after each
/// line break), so the encoding of a text is the encodings of its lines
/// joined by CRLF: stencils encode the lines without a value once.
pub fn quoted_printable(text: &str) -> Vec<u8> {
    // Room for a soft break per line and an encoded `=` per attribute:
    // growing a body of this size mid-way costs more than the spare room.
    let mut out = Vec::with_capacity(text.len() + text.len() / 4 + 16);
    quoted_printable_into(text, &mut out);
    out
}

/// [`quoted_printable`] onto the end of `out`.
pub fn quoted_printable_into(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut column = 0;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'\n' {
            out.extend_from_slice(b"\r\n");
            column = 0;
            at += 1;
        } else if byte == b'\r' && breaks_at(bytes, at + 1) {
            // The CR of a CRLF, or of the end: the line end is written as CRLF.
            at += 1;
        } else if !stands_for_itself(byte) || (blank(byte) && line_ends_at(bytes, at + 1)) {
            // A space or tab ending a line is encoded: it would be lost.
            if column + 3 > QP_LIMIT {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            out.extend_from_slice(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
            column += 3;
            at += 1;
        } else {
            let mut end = at + literal_run(&bytes[at..]);
            if blank(bytes[end - 1]) && line_ends_at(bytes, end) {
                end -= 1;
            }
            column = copy_literal(&bytes[at..end], column, out);
            at = end;
        }
    }
}

/// Characters per encoded line before the `=` of a soft break.
const QP_LIMIT: usize = 75;

fn blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Whether a line of `bytes` ends at `at`: before the line break, or
/// before the CR that comes right before it (which is dropped).
fn line_ends_at(bytes: &[u8], at: usize) -> bool {
    breaks_at(bytes, at) || (bytes.get(at) == Some(&b'\r') && breaks_at(bytes, at + 1))
}

/// Whether `at` is an LF or the end of `bytes`.
fn breaks_at(bytes: &[u8], at: usize) -> bool {
    matches!(bytes.get(at), None | Some(b'\n'))
}

/// Copies `run` (bytes that stand for themselves) onto `out` from
/// `column` on, with soft breaks where a line would grow past
/// [`QP_LIMIT`]; returns the column after it.
fn copy_literal(mut run: &[u8], mut column: usize, out: &mut Vec<u8>) -> usize {
    while !run.is_empty() {
        if column == QP_LIMIT {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        let take = run.len().min(QP_LIMIT - column);
        out.extend_from_slice(&run[..take]);
        run = &run[take..];
        column += take;
    }
    column
}

/// Whether a byte may appear as itself in quoted-printable (a space or
/// tab only inside a line): `' '..='~'` but `=`, and tab. Branch-free, so
/// that [`literal_run`] checks 16 bytes at once.
fn stands_for_itself(byte: u8) -> bool {
    (byte.wrapping_sub(b' ') <= b'~' - b' ') & (byte != b'=') | (byte == b'\t')
}

/// How many bytes from the start of `bytes` stand for themselves.
fn literal_run(bytes: &[u8]) -> usize {
    let blocks = bytes
        .chunks_exact(16)
        .take_while(|block| {
            block
                .iter()
                .fold(true, |all, &b| all & stands_for_itself(b))
        })
        .count();
    let start = blocks * 16;
    start
        + bytes[start..]
            .iter()
            .take_while(|&&b| stands_for_itself(b))
            .count()
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), single_line(value))
}

/// `text` with control characters (CR and LF among them) made spaces.
pub fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A mailbox whose display name cannot carry line breaks into a header.
pub fn mailbox(name: Option<&str>, address: lettre::Address) -> Mailbox {
    let name = name
        .map(|name| single_line(name).trim().to_owned())
        .filter(|name| !name.is_empty());
    Mailbox::new(name, address)
}

/// The deterministic Message-ID `<sequence.step.hash@domain>`: the same on
/// every attempt, so a resend after a crash is recognisably the same email.
pub fn message_id(sequence: &str, step: &str, address: &str, domain: &str) -> String {
    let digest = Sha256::digest(format!(
        "{}\n{sequence}\n{step}",
        crate::subscribers::key(address)
    ));
    let hash = hex::encode(&digest[..8]);
    format!("<{}.{}.{hash}@{domain}>", atom(sequence), atom(step))
}

/// `List-Id: "<name>" <sequence-id.domain>` (RFC 2919). A name that is
/// not plain ASCII is written as RFC 2047 encoded words.
pub fn list_id(name: &str, sequence: &str, domain: &str) -> String {
    let name = single_line(name);
    let phrase = if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encoded_words(&name)
    };
    format!("{phrase} <{}.{domain}>", atom(sequence))
}

/// Base64 encoded words of at most 75 characters, split between characters.
fn encoded_words(text: &str) -> String {
    use base64::Engine as _;
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 45).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let chunk = &text.as_bytes()[start..end];
        words.push(format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(chunk)
        ));
        start = end;
    }
    words.join(" ")
}

/// Keeps what a Message-ID or List-Id atom may hold; anything else becomes `-`.
fn atom(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_case_blind() {
        let id = message_id(
            "gut-immune",
            "gut-barrier",
            "Ada@Example.com",
            "example.com",
        );
        assert_eq!(
            id,
            message_id(
                "gut-immune",
                "gut-barrier",
                "ada@example.com",
                "example.com"
            )
        );
        assert_ne!(
            id,
            message_id("gut-immune", "welcome", "ada@example.com", "example.com")
        );
        let hash = id
            .trim_start_matches("<gut-immune.gut-barrier.")
            .trim_end_matches("@example.com>");
        assert_eq!(hash.len(), 16, "{id}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(message_id("s", "a b@c", "x@y", "d").starts_with("<s.a-b-c."));
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_decodes_back() {
        let line = format!("{} = “quoted” café 🌿 end ", "word".repeat(30));
        let body = quoted_printable(&format!("{line}\n\nsecond\ttab\t\nx"));
        let encoded = String::from_utf8(body).unwrap();
        assert!(
            encoded.split("\r\n").all(|l| l.len() <= 76 && l.is_ascii()),
            "{encoded}"
        );
        assert!(
            encoded.contains("=3D")
                && encoded.contains("=E2=80=9C")
                && encoded.contains("end=20\r\n")
        );
        assert!(encoded.contains("\r\n\r\nsecond\ttab=09\r\nx"), "{encoded}");
        assert!(
            !encoded.contains('\n')
                || encoded.matches('\n').count() == encoded.matches("\r\n").count()
        );
    }

    /// The byte-at-a-time encoder the fast one replaced: the same output.
    fn reference(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                out.extend_from_slice(b"\r\n");
            }
            let line = line.strip_suffix('\r').unwrap_or(line).as_bytes();
            let mut column = 0;
            for (at, &byte) in line.iter().enumerate() {
                let last = at + 1 == line.len();
                let literal = (byte.is_ascii_graphic() && byte != b'=')
                    || (!last && (byte == b' ' || byte == b'\t'));
                let width = if literal { 1 } else { 3 };
                if column + width > QP_LIMIT {
                    out.extend_from_slice(b"=\r\n");
                    column = 0;
                }
                if literal {
                    out.push(byte);
                } else {
                    out.extend_from_slice(format!("={byte:02X}").as_bytes());
                }
                column += width;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn quoted_printable_matches_the_byte_at_a_time_encoder(
            text in "([a-z =\t.\r\n]|é|🌿|[A-Z]{70,80}){0,60}"
        ) {
            proptest::prop_assert_eq!(quoted_printable(&text), reference(&text));
        }

        /// So a frame's boundary, which begins with `=_`, is never in a body.
        #[test]
        fn quoted_printable_never_writes_the_boundary_mark(
            text in "([a-z =_\t.\r\n-]|=_|--=_|é|[A-Z]{70,80}){0,60}"
        ) {
            let encoded = String::from_utf8(quoted_printable(&text)).unwrap();
            proptest::prop_assert!(!encoded.contains("=_"), "{}", encoded);
        }
    }

    fn composed(frame: &Frame, date: SystemTime) -> Composed {
        frame.compose(Own {
            to: "Ada <ada@example.com>".parse().unwrap(),
            date,
            message_id: "<gut.day-1.0123@example.com>",
            unsubscribe_url: Some("https://example.com/u/token"),
            unsubscribe_mailto: None,
            text: b"Hi Ada,\r\n",
            html: b"<p>Hi Ada,</p>\r\n",
        })
    }

    #[test]
    fn a_message_in_its_frame_parses_back_with_every_header_and_part() {
        let from = "Coach <coach@example.com>".parse().unwrap();
        let frame = Frame::new(Common {
            from: &from,
            reply_to: None,
            subject: "Day 1: Your gut",
            list_id: &list_id("Gut", "gut", "example.com"),
            one_click: true,
        });
        let date = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_112_000);
        let bytes = composed(&frame, date).bytes;
        let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(message.subject(), Some("Day 1: Your gut"));
        assert_eq!(message.message_id(), Some("gut.day-1.0123@example.com"));
        assert_eq!(message.date().unwrap().to_timestamp(), 1_796_112_000);
        assert_eq!(message.body_text(0).as_deref(), Some("Hi Ada,\r\n"));
        assert_eq!(message.body_html(0).as_deref(), Some("<p>Hi Ada,</p>\r\n"));
        let raw = String::from_utf8(bytes).unwrap();
        assert!(raw.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("\r\nList-Unsubscribe: <https://example.com/u/token>\r\n"));
    }

    #[test]
    fn a_redated_message_differs_in_its_date_alone() {
        let from = "Coach <coach@example.com>".parse().unwrap();
        let frame = Frame::new(Common {
            from: &from,
            reply_to: Some(&from),
            subject: "Day 1",
            list_id: "\"Gut\" <gut.example.com>",
            one_click: false,
        });
        let early = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_112_000);
        let late = early + std::time::Duration::from_secs(86_400 * 40 + 7);
        let mut redated = composed(&frame, early);
        redated.set_date(late);
        // Twice, so the range it keeps is the new value's.
        redated.set_date(early);
        redated.set_date(late);
        assert_eq!(redated.bytes, composed(&frame, late).bytes);
        assert_ne!(redated.bytes, composed(&frame, early).bytes);
    }

    #[test]
    fn list_ids_quote_or_encode_the_name() {
        assert_eq!(
            list_id("Gut \"101\"", "gut", "example.com"),
            "\"Gut \\\"101\\\"\" <gut.example.com>"
        );
        assert_eq!(
            list_id("Gut\r\nBcc: x", "gut", "example.com"),
            "\"Gut  Bcc: x\" <gut.example.com>"
        );
        let encoded = list_id(&"Darm–Immun ".repeat(10), "gut", "example.com");
        assert!(encoded.is_ascii());
        assert!(encoded.split(' ').all(|word| word.len() <= 75), "{encoded}");
    }
}
