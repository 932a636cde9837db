//! The article's building blocks (headings, paragraphs, lists, verbatim
//! code) and how each one is written back as Markdown.
//!
//! It owns escaping: plain text must not turn into Markdown syntax by
//! accident, and no article text may turn into a Handlebars expression.
//! It does not decide what a block is; the parsers do.

use super::Format;
use super::markdown::visible;

/// One block of an article, in reading order. A day holds whole blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    /// A heading; `level` is 1..=6 as in Markdown.
    Heading { level: u8, text: String },
    /// A paragraph. Plain-text paragraphs are one line; Markdown ones keep
    /// their line breaks.
    Paragraph(String),
    /// A list, kept whole.
    List(Vec<ListItem>),
    /// Markdown written back as is: a Markdown list, table, code block,
    /// blockquote or HTML block.
    Verbatim(String),
}

/// One list item. `text` may hold further lines (Markdown continuation
/// lines and nested lists keep their indentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListItem {
    /// The source number of an ordered item; `None` for a bullet.
    pub number: Option<u64>,
    pub text: String,
}

impl Block {
    /// How many words the block contributes to a day's length: the words
    /// a reader sees, so Markdown's URLs and syntax do not count.
    pub(crate) fn words(&self, format: Format) -> usize {
        match (self, format) {
            (Block::List(items), _) => items.iter().map(|item| count_words(&item.text)).sum(),
            (
                Block::Heading { text, .. } | Block::Paragraph(text) | Block::Verbatim(text),
                Format::Markdown,
            ) => count_words(&visible(text)),
            (Block::Heading { text, .. } | Block::Paragraph(text) | Block::Verbatim(text), _) => {
                count_words(text)
            }
        }
    }

    /// Whether the block leads in to the next one (ends in `:` or `,`), so
    /// a day must not end with it.
    pub(crate) fn leads_in(&self) -> bool {
        let text = match self {
            Block::Paragraph(text) => text.as_str(),
            Block::List(items) => items.last().map_or("", |item| item.text.as_str()),
            Block::Heading { .. } | Block::Verbatim(_) => return false,
        };
        text.trim_end().ends_with([':', ','])
    }

    /// Whether the block is a heading (headings travel with what follows).
    pub(crate) fn is_heading(&self) -> bool {
        matches!(self, Block::Heading { .. })
    }

    /// The block as Markdown, without a trailing newline.
    ///
    /// Plain-text blocks are escaped so that they render as the words they
    /// are; Markdown blocks keep their syntax. Both escape `{{` because the
    /// body is later rendered as a Handlebars template.
    pub(crate) fn to_markdown(&self, format: Format) -> String {
        let markdown = match self {
            Block::Heading { level, text } => {
                format!("{} {}", "#".repeat(usize::from(*level)), text.trim())
            }
            Block::Paragraph(text) => match format {
                Format::PlainText => escape_line_start(text),
                Format::Markdown => markdown_paragraph(text),
            },
            Block::List(items) => items
                .iter()
                .map(|item| list_item(item, format))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Verbatim(text) if text.starts_with(['`', '~', ' ', '\t']) => text
                .lines()
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Verbatim(text) => markdown_paragraph(text),
        };
        escape_handlebars(&markdown)
    }
}

/// Words are whitespace-separated runs, and an emoji counts as one. Text
/// written without spaces (Chinese, Japanese) counts two and a half
/// characters a word, which reads in about the time an English word does.
pub(crate) fn count_words(text: &str) -> usize {
    let mut words = 0;
    let mut unspaced = 0;
    for token in text.split_whitespace() {
        let ideographs = token.chars().filter(|&c| is_unspaced(c)).count();
        unspaced += ideographs;
        if ideographs < token.chars().count() {
            words += 1;
        }
    }
    words + (unspaced * 2).div_ceil(5)
}

/// Han, kana and CJK punctuation: scripts written without spaces.
fn is_unspaced(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}' | '\u{ff00}'..='\u{ff60}' | '\u{20000}'..='\u{2ffff}')
}

fn list_item(item: &ListItem, format: Format) -> String {
    let marker = match item.number {
        Some(number) => format!("{number}."),
        None => "-".to_owned(),
    };
    let text = match format {
        Format::PlainText => escape_line_start(&item.text),
        Format::Markdown => markdown_paragraph(&item.text),
    };
    format!("{marker} {text}")
}

/// Markdown paragraphs keep their lines, but a hard break written as two
/// trailing spaces becomes a backslash break: output has no trailing spaces.
fn markdown_paragraph(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len().saturating_sub(1);
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let trimmed = line.trim_end();
            if index < last && line.ends_with("  ") && !trimmed.is_empty() {
                format!("{trimmed}\\")
            } else {
                trimmed.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A backslash in front of anything at the start of a plain-text line that
/// Markdown would read as syntax: a heading, quote, list marker, fence,
/// thematic break, HTML tag or link reference definition.
fn escape_line_start(line: &str) -> String {
    let ordered_marker = line
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&end| (1..=9).contains(&end))
        .filter(|&end| {
            let rest = &line[end..];
            (rest.starts_with('.') || rest.starts_with(')'))
                && rest[1..].chars().next().is_none_or(char::is_whitespace)
        });
    if let Some(end) = ordered_marker {
        return format!("{}\\{}", &line[..end], &line[end..]);
    }
    let bullet = ["-", "*", "+"].iter().any(|marker| {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.chars().next().is_none_or(char::is_whitespace))
    });
    let breaks = line.chars().filter(|c| !c.is_whitespace()).count() >= 3
        && line
            .chars()
            .all(|c| matches!(c, '-' | '*' | '_' | '=') || c.is_whitespace());
    let html = line
        .strip_prefix('<')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
    let reference = line.starts_with('[') && line.contains("]:");
    let syntax = line.starts_with('#')
        || line.starts_with('>')
        || line.starts_with("```")
        || line.starts_with("~~~")
        || bullet
        || breaks
        || html
        || reference;
    if syntax {
        format!("\\{line}")
    } else {
        line.to_owned()
    }
}

/// `{{` becomes `\{{` so that Handlebars prints it instead of evaluating
/// it; one already escaped is left alone.
fn escape_handlebars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        if !out.ends_with('\\') {
            out.push('\\');
        }
        out.push_str("{{");
        rest = &after[2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> String {
        Block::Paragraph(text.to_owned()).to_markdown(Format::PlainText)
    }

    #[test]
    fn plain_text_that_looks_like_markdown_is_escaped() {
        assert_eq!(plain("# not a heading"), "\\# not a heading");
        assert_eq!(plain("> not a quote"), "\\> not a quote");
        assert_eq!(plain("+ not a list"), "\\+ not a list");
        assert_eq!(plain("1. not a list"), "1\\. not a list");
        assert_eq!(plain("2020) was a year"), "2020\\) was a year");
        assert_eq!(plain("---"), "\\---");
        assert_eq!(plain("<div> tag"), "\\<div> tag");
        assert_eq!(plain("[1]: a note"), "\\[1]: a note");
    }

    #[test]
    fn ordinary_plain_text_is_left_alone() {
        for text in [
            "1.5 million people",
            "-5 degrees",
            "*emphasis* stays",
            "3 < 4",
            "A “quoted” word 🌿",
        ] {
            assert_eq!(plain(text), text);
        }
    }

    #[test]
    fn handlebars_openers_are_escaped_once() {
        assert_eq!(plain("Hi {{name}}"), "Hi \\{{name}}");
        assert_eq!(plain("{{a}} and {{b}}"), "\\{{a}} and \\{{b}}");
        let markdown = Block::Paragraph("already \\{{x}}".to_owned());
        assert_eq!(markdown.to_markdown(Format::Markdown), "already \\{{x}}");
    }

    #[test]
    fn lists_become_markdown_lists() {
        let list = Block::List(vec![
            ListItem {
                number: None,
                text: "one".to_owned(),
            },
            ListItem {
                number: None,
                text: "# two".to_owned(),
            },
        ]);
        assert_eq!(list.to_markdown(Format::PlainText), "- one\n- \\# two");
        let ordered = Block::List(vec![ListItem {
            number: Some(3),
            text: "three".to_owned(),
        }]);
        assert_eq!(ordered.to_markdown(Format::Markdown), "3. three");
    }

    #[test]
    fn markdown_hard_breaks_lose_their_trailing_spaces() {
        let block = Block::Paragraph("line one  \nline two  ".to_owned());
        assert_eq!(block.to_markdown(Format::Markdown), "line one\\\nline two");
    }

    #[test]
    fn words_count_list_items_and_emoji() {
        let list = Block::List(vec![ListItem {
            number: None,
            text: "Stress → gut 🌿".to_owned(),
        }]);
        assert_eq!(list.words(Format::PlainText), 4);
    }

    #[test]
    fn words_in_every_script() {
        assert_eq!(count_words("장 건강은 면역의 시작입니다."), 4);
        // Twenty-three Han characters read like ten words.
        assert_eq!(
            count_words("肠道是人体最大的免疫器官之一我们每天都要照顾它"),
            10
        );
        assert_eq!(count_words("El intestino, 🌿 y la inmunidad"), 6);
    }

    #[test]
    fn markdown_words_are_the_visible_ones() {
        let block = Block::Paragraph("See [the study](https://example.com/a/b) now.".to_owned());
        assert_eq!(block.words(Format::Markdown), 4);
    }
}
