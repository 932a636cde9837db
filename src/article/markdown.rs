//! Markdown to blocks: ATX and setext headings, paragraphs, lists and fenced
//! code, following CommonMark's block structure closely enough to keep
//! every block whole. Inline syntax (links, emphasis) is kept as written;
//! this module never rewrites text inside a block.

use super::Document;
use super::block::{Block, ListItem};
use super::plain::looks_like_title;

/// Parses Markdown (LF line endings) into a document.
pub(crate) fn parse(text: &str) -> Document {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let (indent, trimmed) = split_indent(line);
        let block_start = indent < 4;
        if trimmed.is_empty() {
            flush(&mut paragraph, &mut blocks);
            index += 1;
        } else if let Some(fence) = fence(trimmed).filter(|_| block_start) {
            flush(&mut paragraph, &mut blocks);
            let end = lines[index + 1..]
                .iter()
                .position(|line| closes(line, fence))
                .map_or(lines.len(), |offset| index + 1 + offset + 1);
            let code: Vec<&str> = lines[index..end]
                .iter()
                .map(|line| line.trim_end())
                .collect();
            blocks.push(Block::Verbatim(code.join("\n")));
            index = end;
        } else if let Some((level, text)) = atx_heading(trimmed).filter(|_| block_start) {
            flush(&mut paragraph, &mut blocks);
            blocks.push(Block::Heading {
                level,
                text: text.to_owned(),
            });
            index += 1;
        } else if let Some(level) =
            setext_underline(trimmed).filter(|_| block_start && !paragraph.is_empty())
        {
            let text: Vec<&str> = paragraph.iter().map(|line| line.trim()).collect();
            blocks.push(Block::Heading {
                level,
                text: text.join(" "),
            });
            paragraph.clear();
            index += 1;
        } else if block_start && is_thematic_break(trimmed) {
            // A rule carries no words and would look odd opening an email.
            flush(&mut paragraph, &mut blocks);
            index += 1;
        } else if let Some(marker) = list_marker(line).filter(|marker| {
            // Only a list starting at 1 may interrupt a paragraph.
            paragraph.is_empty() || marker.number.is_none_or(|number| number == 1)
        }) {
            flush(&mut paragraph, &mut blocks);
            let (list, end) = list(&lines, index, marker);
            blocks.push(list);
            index = end;
        } else {
            paragraph.push(line);
            index += 1;
        }
    }
    flush(&mut paragraph, &mut blocks);
    into_document(blocks)
}

fn flush(paragraph: &mut Vec<&str>, blocks: &mut Vec<Block>) {
    if !paragraph.is_empty() {
        let lines: Vec<&str> = paragraph.iter().map(|line| line.trim_end()).collect();
        blocks.push(Block::Paragraph(lines.join("\n")));
        paragraph.clear();
    }
}

/// A level-1 heading or a short stand-alone first line is the title.
fn into_document(mut blocks: Vec<Block>) -> Document {
    let title = match blocks.first() {
        _ if blocks.len() < 2 => None,
        Some(Block::Heading { level: 1, text }) => Some(text.clone()),
        Some(Block::Paragraph(text)) if !text.contains('\n') && looks_like_title(text) => {
            Some(text.trim().to_owned())
        }
        _ => None,
    };
    if title.is_some() {
        blocks.remove(0);
    }
    Document { title, blocks }
}

/// Columns of leading indentation (a tab counts as four) and the rest.
fn split_indent(line: &str) -> (usize, &str) {
    let trimmed = line.trim_start();
    let indent = line[..line.len() - trimmed.len()]
        .chars()
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum();
    (indent, trimmed.trim_end())
}

/// An opening code fence: its character and length.
fn fence(trimmed: &str) -> Option<(char, usize)> {
    let first = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let length = trimmed.chars().take_while(|&c| c == first).count();
    let info = &trimmed[length..];
    (length >= 3 && !(first == '`' && info.contains('`'))).then_some((first, length))
}

fn closes(line: &str, (character, length): (char, usize)) -> bool {
    let (indent, trimmed) = split_indent(line);
    indent < 4 && trimmed.chars().count() >= length && trimmed.chars().all(|c| c == character)
}

fn atx_heading(trimmed: &str) -> Option<(u8, &str)> {
    let level = trimmed.chars().take_while(|&c| c == '#').count();
    let rest = &trimmed[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    // A closing run of `#` is decoration, not text.
    let text = rest.trim();
    let text = match text.trim_end_matches('#') {
        stripped if stripped.is_empty() || stripped.ends_with([' ', '\t']) => stripped.trim_end(),
        _ => text,
    };
    Some((u8::try_from(level).ok()?, text))
}

fn setext_underline(trimmed: &str) -> Option<u8> {
    let first = trimmed.chars().next()?;
    let level = match first {
        '=' => 1,
        '-' => 2,
        _ => return None,
    };
    trimmed.chars().all(|c| c == first).then_some(level)
}

fn is_thematic_break(trimmed: &str) -> bool {
    let Some(first) = trimmed
        .chars()
        .next()
        .filter(|c| matches!(c, '-' | '*' | '_'))
    else {
        return false;
    };
    trimmed.chars().all(|c| c == first || c == ' ' || c == '\t')
        && trimmed.chars().filter(|&c| c == first).count() >= 3
}

/// Where a list item's marker sits and what it says.
#[derive(Clone, Copy)]
struct Marker {
    indent: usize,
    /// Bytes from the start of the line to the item's text.
    content: usize,
    number: Option<u64>,
}

fn list_marker(line: &str) -> Option<Marker> {
    let (indent, trimmed) = split_indent(line);
    if indent >= 4 {
        return None;
    }
    let start = line.len() - line.trim_start().len();
    let first = trimmed.chars().next()?;
    let (number, marker_len) = if matches!(first, '-' | '*' | '+' | '•') {
        (None, first.len_utf8())
    } else {
        let digits = trimmed.find(|c: char| !c.is_ascii_digit())?;
        if !(1..=9).contains(&digits) || !trimmed[digits..].starts_with(['.', ')']) {
            return None;
        }
        (Some(trimmed[..digits].parse().ok()?), digits + 1)
    };
    let rest = &trimmed[marker_len..];
    let text = rest.trim_start();
    if !rest.starts_with([' ', '\t']) || text.is_empty() {
        return None;
    }
    Some(Marker {
        indent,
        content: start + trimmed.len() - text.len(),
        number,
    })
}

/// Reads the list starting at `lines[start]`: its items, their
/// continuation lines and nested lists, across blank lines between items.
/// Returns the list and the index of the first line after it.
fn list(lines: &[&str], start: usize, first: Marker) -> (Block, usize) {
    let ordered = first.number.is_some();
    let mut items = vec![ListItem {
        number: first.number,
        text: lines[start][first.content..].trim_end().to_owned(),
    }];
    let mut index = start + 1;
    let mut blank_before = false;
    while let Some(line) = lines.get(index) {
        let (indent, trimmed) = split_indent(line);
        if trimmed.is_empty() {
            blank_before = true;
            index += 1;
            continue;
        }
        let sibling = list_marker(line)
            .filter(|marker| marker.indent <= first.indent + 1)
            .filter(|marker| marker.number.is_some() == ordered);
        let Some(item) = items.last_mut() else {
            break;
        };
        if let Some(marker) = sibling {
            items.push(ListItem {
                number: marker.number,
                text: line[marker.content..].trim_end().to_owned(),
            });
        } else if indent > first.indent + 1 {
            // Continuation lines and nested lists keep their indentation.
            if blank_before {
                item.text.push('\n');
            }
            item.text.push('\n');
            item.text.push_str(line.trim_end());
        } else if !blank_before && !starts_block(trimmed) {
            // A lazy continuation line, as CommonMark reads it.
            item.text.push('\n');
            item.text.push_str(trimmed);
        } else {
            break;
        }
        blank_before = false;
        index += 1;
    }
    // Blank lines after the list belong to no one; leave them to the caller.
    while index > start + 1 && lines[index - 1].trim().is_empty() {
        index -= 1;
    }
    (Block::List(items), index)
}

/// Whether a line opens a block of its own instead of continuing one.
fn starts_block(trimmed: &str) -> bool {
    atx_heading(trimmed).is_some()
        || fence(trimmed).is_some()
        || is_thematic_break(trimmed)
        || list_marker(trimmed).is_some()
        || trimmed.starts_with('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heading(level: u8, text: &str) -> Block {
        Block::Heading {
            level,
            text: text.to_owned(),
        }
    }

    fn paragraph(text: &str) -> Block {
        Block::Paragraph(text.to_owned())
    }

    fn bullet(text: &str) -> ListItem {
        ListItem {
            number: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn atx_and_setext_headings() {
        let document = parse(
            "# Title\n\nIntro.\n\n## First ##\n\nText one.\n\nSecond\n------\n\nText two.\n\nThird\n=====\nText three.\n",
        );
        assert_eq!(document.title.as_deref(), Some("Title"));
        assert_eq!(
            document.blocks,
            [
                paragraph("Intro."),
                heading(2, "First"),
                paragraph("Text one."),
                heading(2, "Second"),
                paragraph("Text two."),
                heading(1, "Third"),
                paragraph("Text three."),
            ]
        );
    }

    #[test]
    fn setext_title() {
        let document = parse("My Title\n========\n\nBody text.\n");
        assert_eq!(document.title.as_deref(), Some("My Title"));
        assert_eq!(document.blocks, [paragraph("Body text.")]);
    }

    #[test]
    fn paragraphs_keep_their_lines_and_inline_syntax() {
        let document = parse(
            "Intro paragraph here.\n\nA [link](https://x.y) and *emphasis*\nover two lines.\n",
        );
        assert_eq!(document.title, None);
        assert_eq!(
            document.blocks[1],
            paragraph("A [link](https://x.y) and *emphasis*\nover two lines.")
        );
    }

    #[test]
    fn lists_with_continuations_nesting_and_blank_lines() {
        let document = parse(
            "Text first.\n\n- one\n  still one\n- two\n  - nested\n\n- three\nlazy\n\nAfter.\n\n1. first\n2) second\n",
        );
        assert_eq!(
            document.blocks,
            [
                paragraph("Text first."),
                Block::List(vec![
                    bullet("one\n  still one"),
                    bullet("two\n  - nested"),
                    bullet("three\nlazy"),
                ]),
                paragraph("After."),
                Block::List(vec![
                    ListItem {
                        number: Some(1),
                        text: "first".to_owned()
                    },
                    ListItem {
                        number: Some(2),
                        text: "second".to_owned()
                    },
                ]),
            ]
        );
    }

    #[test]
    fn fenced_code_is_kept_verbatim() {
        let document = parse("Text.\n\n```\n# not a heading\n\n- not a list\n```\nAfter.\n");
        assert_eq!(
            document.blocks,
            [
                paragraph("Text."),
                Block::Verbatim("```\n# not a heading\n\n- not a list\n```".to_owned()),
                paragraph("After."),
            ]
        );
    }

    #[test]
    fn thematic_breaks_are_dropped() {
        let document = parse("One.\n\n---\n\nTwo.\n\n* * *\n");
        assert_eq!(document.blocks, [paragraph("One."), paragraph("Two.")]);
    }

    #[test]
    fn bullets_in_every_style() {
        let document = parse("Text.\n\n- a\n* b\n+ c\n• d\n");
        assert_eq!(
            document.blocks[1],
            Block::List(vec![bullet("a"), bullet("b"), bullet("c"), bullet("d")])
        );
    }
}
