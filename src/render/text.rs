//! Wrapping the plain-text part at 78 columns without ever breaking a URL.
//!
//! Lines break only at spaces, so a word longer than the line (in practice
//! a URL) is never split: it goes on a line of its own. Quote and list
//! prefixes carry over to the lines a long line is broken into.

/// The column the text part wraps at (RFC 5322's recommended limit).
pub const WIDTH: usize = 78;

/// `text` with every line longer than `width` characters broken at spaces.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for line in text.split('\n') {
        let line = line.trim_end();
        // A line of no more bytes than columns fits, whatever it holds.
        if line.len() <= width || line.chars().count() <= width {
            out.push_str(line);
            out.push('\n');
        } else {
            wrap_line(line, width, &mut out);
        }
    }
    // `split` yields one line after the last newline; keep the count of
    // newlines the text had.
    out.pop();
    out
}

fn wrap_line(line: &str, width: usize, out: &mut String) {
    let (first, rest) = prefixes(line);
    let mut current = String::from(first);
    let mut prefix_len = first.chars().count();
    let mut len = prefix_len;
    let mut empty = true;
    for word in line[first.len()..]
        .split(' ')
        .filter(|word| !word.is_empty())
    {
        let word_len = word.chars().count();
        if !empty && len + 1 + word_len > width {
            out.push_str(current.trim_end());
            out.push('\n');
            current.clear();
            current.push_str(&rest);
            prefix_len = rest.chars().count();
            len = prefix_len;
            empty = true;
        }
        if !empty {
            current.push(' ');
            len += 1;
        }
        current.push_str(word);
        len += word_len;
        empty = false;
    }
    if !empty || len > prefix_len {
        out.push_str(current.trim_end());
        out.push('\n');
    }
}

/// The prefix of a line (indentation, `> ` quote marks, a list marker)
/// and the prefix its continuation lines take.
fn prefixes(line: &str) -> (&str, String) {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let mut end = indent;
    while line[end..].starts_with("> ") {
        end += 2;
    }
    let quotes = end;
    let rest = &line[end..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let marker = if rest.starts_with("- ") || rest.starts_with("* ") {
        2
    } else if digits > 0 && rest[digits..].starts_with(". ") {
        digits + 2
    } else {
        0
    };
    end += marker;
    let continuation = format!("{}{}", &line[..quotes], " ".repeat(marker));
    (&line[..end], continuation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_kept() {
        assert_eq!(wrap("a\n\nb  \n", 78), "a\n\nb\n");
    }

    #[test]
    fn long_lines_break_at_spaces() {
        let line = "word ".repeat(30);
        let wrapped = wrap(line.trim_end(), 20);
        assert!(wrapped.lines().all(|l| l.len() <= 20), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 30);
    }

    #[test]
    fn a_long_url_gets_a_line_of_its_own_and_is_never_broken() {
        let url = format!(
            "https://example.com/{}?utm_source=dripline",
            "a".repeat(100)
        );
        let wrapped = wrap(&format!("Read more at {url} when you can."), 78);
        assert_eq!(wrapped, format!("Read more at\n{url}\nwhen you can."));
    }

    #[test]
    fn prefixes_carry_over() {
        let wrapped = wrap(&format!("> - {}", "quoted item ".repeat(10).trim_end()), 30);
        let lines: Vec<_> = wrapped.lines().collect();
        assert!(lines[0].starts_with("> - quoted"));
        assert!(
            lines[1..].iter().all(|l| l.starts_with(">   quoted")),
            "{wrapped}"
        );
        let numbered = wrap(&format!("12. {}", "x ".repeat(20).trim_end()), 20);
        assert!(
            numbered.lines().skip(1).all(|l| l.starts_with("    x")),
            "{numbered}"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let line = "é".repeat(78);
        assert_eq!(wrap(&line, 78), line);
    }
}
