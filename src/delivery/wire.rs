//! What a session writes in one go, as text for lettre's connection to
//! send: the pipelined command group of RFC 2920 (MAIL FROM, RCPT TO and
//! DATA together) and a message with its dot-stuffing and final dot.
//!
//! lettre writes each command separately and waits for its reply, and
//! writes a message through a codec that copies it a byte at a time and
//! then writes the final dot on its own: two system calls and, with
//! TCP_NODELAY, two packets. Built here, the group and the message are
//! one write each. Pure: no I/O.

use std::fmt;

use lettre::transport::smtp::commands::{Mail, Rcpt};

/// MAIL FROM, RCPT TO and DATA in one write, for a server that announced
/// PIPELINING. DATA ends the group, as RFC 2920 wants: the message waits
/// for its 354.
pub(super) struct Group {
    pub mail: Mail,
    pub rcpt: Rcpt,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}DATA\r\n", self.mail, self.rcpt)
    }
}

/// A message as it goes after DATA's 354 (RFC 5321 4.5.2): a `.` that
/// begins a line is doubled, and `<CRLF>.<CRLF>` ends it, exactly as
/// lettre's own codec writes it; `then`, the commands of the next
/// message, go in the same write (RFC 2920: message content may begin a
/// group).
pub(super) struct Message<'a> {
    pub text: &'a str,
    pub then: Option<&'a Group>,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text;
        let mut from = 0;
        for dot in line_start_dots(text) {
            // Up to and with the dot, then one more.
            f.write_str(&text[from..=dot])?;
            f.write_str(".")?;
            from = dot + 1;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")?;
        match self.then {
            Some(group) => write!(f, "{group}"),
            None => Ok(()),
        }
    }
}

/// Where `text` has a dot that begins a line (after CRLF, or at the very
/// start). A message's lines rarely begin with one, so looking for `\n.`
/// (memmem) finds few candidates, where looking for dots would stop at
/// every sentence.
fn line_start_dots(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    let first = text.starts_with('.').then_some(0);
    let after_crlf = memchr::memmem::find_iter(bytes, b"\n.")
        .filter(|&newline| newline > 0 && bytes[newline - 1] == b'\r')
        .map(|newline| newline + 1);
    first.into_iter().chain(after_crlf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lettre's transparency rule, a byte at a time: a dot after CRLF (or
    /// at the very start) is doubled.
    fn stuffed_by_lettre_rule(text: &str) -> String {
        let mut out = String::new();
        let mut line_start = true;
        let mut after_cr = false;
        for c in text.chars() {
            out.push(c);
            if c == '.' && line_start {
                out.push('.');
            }
            line_start = after_cr && c == '\n';
            after_cr = c == '\r';
        }
        out + "\r\n.\r\n"
    }

    fn message(text: &str) -> String {
        Message { text, then: None }.to_string()
    }

    #[test]
    fn the_next_messages_commands_follow_the_final_dot() {
        let group = Group {
            mail: Mail::new(Some("bounces@example.com".parse().unwrap()), Vec::new()),
            rcpt: Rcpt::new("ada@example.com".parse().unwrap(), Vec::new()),
        };
        let written = Message {
            text: "Hi\r\n.",
            then: Some(&group),
        }
        .to_string();
        assert_eq!(
            written,
            "Hi\r\n..\r\n.\r\nMAIL FROM:<bounces@example.com>\r\nRCPT TO:<ada@example.com>\r\nDATA\r\n"
        );
    }

    #[test]
    fn dots_that_begin_a_line_are_doubled() {
        assert_eq!(
            message(".a\r\n..b\r\nc.\r\n.\r\nd\n.e"),
            "..a\r\n...b\r\nc.\r\n..\r\nd\n.e\r\n.\r\n"
        );
        assert_eq!(message(""), "\r\n.\r\n");
    }

    proptest::proptest! {
        #[test]
        fn the_wire_form_is_what_lettre_would_send(text in "([a.\\r\\n]|\r\n\\.){0,40}") {
            proptest::prop_assert_eq!(message(&text), stuffed_by_lettre_rule(&text));
        }
    }

    #[test]
    fn a_group_ends_with_data() {
        let group = Group {
            mail: Mail::new(Some("coach@example.com".parse().unwrap()), Vec::new()),
            rcpt: Rcpt::new("ada@example.net".parse().unwrap(), Vec::new()),
        };
        assert_eq!(
            group.to_string(),
            "MAIL FROM:<coach@example.com>\r\nRCPT TO:<ada@example.net>\r\nDATA\r\n"
        );
    }
}
