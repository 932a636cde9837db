//! Plain text to blocks: the title, bare-line headings, paragraphs and lists.
//!
//! Plain text comes in two shapes. Pasted from a web page it has one
//! paragraph per line and often no blank lines at all; from a document it
//! has blank-line-separated paragraphs, possibly hard-wrapped. This module
//! tells them apart chunk by chunk and recognises headings by their shape.
//! It only reads text; escaping for Markdown belongs to `block`.

use super::Document;
use super::block::{Block, ListItem};

/// A heading is at most this many words and characters.
const HEADING_MAX_WORDS: usize = 14;
const HEADING_MAX_CHARS: usize = 100;
/// A heading may end in `!` ("You Did It!"); a longer line that does is
/// a sentence.
const EXCLAMATION_MAX_WORDS: usize = 5;
/// Titles may be a little longer than headings.
const TITLE_MAX_WORDS: usize = 15;
const TITLE_MAX_CHARS: usize = 120;
/// In a hard-wrapped chunk, a line shorter than this share of the longest
/// line ended early: it closes a paragraph or is a heading.
const WRAPPED_SHARE: f64 = 0.6;
/// Lines shorter than this are never taken for hard-wrapped prose.
const WRAP_MIN_WIDTH: usize = 40;

/// Parses plain text (LF line endings) into a document; its first line
/// may be the title when `find_title` (the front matter has none).
pub(crate) fn parse(text: &str, find_title: bool) -> Document {
    let lines: Vec<Line> = text.lines().map(Line::classify).collect();
    let chunks: Vec<&[Line]> = lines
        .split(|line| matches!(line, Line::Blank))
        .filter(|chunk| !chunk.is_empty())
        .collect();
    // Without blank lines between them, every line is a paragraph of its own.
    let separated = chunks.len() > 1;

    let mut raws: Vec<Raw> = Vec::new();
    let mut previous_line: Option<&str> = None;
    for chunk in chunks {
        let wrap_width = if separated { wrap_width(chunk) } else { None };
        let mut previous_in_chunk: Option<&Line> = None;
        // An indented line after a list item continues that item.
        let mut item_open = false;
        for line in chunk {
            match line {
                Line::Item { number, text } => {
                    let item = ListItem {
                        number: *number,
                        text: (*text).to_owned(),
                    };
                    match raws.last_mut() {
                        Some(Raw::List(items))
                            if items.last().map(|last| last.number.is_some())
                                == Some(number.is_some()) =>
                        {
                            items.push(item)
                        }
                        _ => raws.push(Raw::List(vec![item])),
                    }
                    item_open = true;
                }
                Line::Text { text, indented } => {
                    let continues_item = *indented && item_open;
                    item_open = continues_item;
                    let continues_paragraph = match (wrap_width, previous_in_chunk) {
                        (Some(width), Some(Line::Text { text: before, .. })) => {
                            joins(before, width) && !is_byline(before) && !is_byline(text)
                        }
                        _ => false,
                    };
                    match raws.last_mut() {
                        Some(Raw::List(items)) if continues_item => {
                            if let Some(last) = items.last_mut() {
                                last.text.push(' ');
                                last.text.push_str(text);
                            }
                        }
                        Some(Raw::Paragraph {
                            text: joined,
                            alone,
                            ..
                        }) if continues_paragraph => {
                            joined.push(' ');
                            joined.push_str(text);
                            *alone = false;
                        }
                        _ => raws.push(Raw::Paragraph {
                            text: (*text).to_owned(),
                            alone: true,
                            after_lead_in: previous_line.is_some_and(leads_in),
                        }),
                    }
                }
                Line::Blank => {}
            }
            previous_line = Some(line.text());
            previous_in_chunk = Some(line);
        }
    }
    into_document(raws, find_title)
}

/// One source line, classified on its own.
enum Line<'a> {
    Blank,
    Item { number: Option<u64>, text: &'a str },
    Text { text: &'a str, indented: bool },
}

impl<'a> Line<'a> {
    fn classify(line: &'a str) -> Self {
        let trimmed = line.trim();
        if trimmed.is_empty() || is_separator(trimmed) {
            return Line::Blank;
        }
        if let Some((number, text)) = list_item(trimmed) {
            return Line::Item { number, text };
        }
        Line::Text {
            text: trimmed,
            indented: line.starts_with(char::is_whitespace),
        }
    }

    fn text(&self) -> &'a str {
        match self {
            Line::Blank => "",
            Line::Item { text, .. } | Line::Text { text, .. } => text,
        }
    }
}

/// A paragraph or list before headings and the title are told apart.
enum Raw {
    Paragraph {
        text: String,
        /// The paragraph is one source line, so it may be a heading.
        alone: bool,
        /// The line before ended in `:` or `,`, so this one is body text.
        after_lead_in: bool,
    },
    List(Vec<ListItem>),
}

/// A line such as `***` or `- - -` that separates parts of the text. It
/// carries no words, so it reads as a blank line.
fn is_separator(trimmed: &str) -> bool {
    let marks = |c: char| matches!(c, '-' | '*' | '_' | '=' | '~' | '#' | '•' | '·');
    trimmed.chars().all(|c| marks(c) || c.is_whitespace())
        && trimmed.chars().filter(|&c| marks(c)).count() >= 3
}

/// A list item written with `-`, `*`, `•` (and kin) or `1.` / `1)`.
/// Returns the item's number (for an ordered item) and its text.
fn list_item(line: &str) -> Option<(Option<u64>, &str)> {
    let mut chars = line.chars();
    let first = chars.next()?;
    if matches!(first, '•' | '◦' | '▪' | '‣') {
        let text = chars.as_str().trim_start();
        return (!text.is_empty()).then_some((None, text));
    }
    if matches!(first, '-' | '*') {
        let rest = chars.as_str();
        let text = rest.trim_start();
        return (rest.starts_with(char::is_whitespace) && !text.is_empty()).then_some((None, text));
    }
    // Up to three digits: "2020. was a year" is a sentence, not an item.
    let digits = line.find(|c: char| !c.is_ascii_digit())?;
    if !(1..=3).contains(&digits) {
        return None;
    }
    let rest = line[digits..].strip_prefix(['.', ')'])?;
    let text = rest.trim_start();
    let number = line[..digits].parse().ok()?;
    (rest.starts_with(char::is_whitespace) && !text.is_empty()).then_some((Some(number), text))
}

/// The width a chunk is hard-wrapped at, or `None` when its lines are
/// paragraphs of their own. Wrapped lines mostly break mid-sentence; a
/// line per paragraph mostly ends in punctuation.
fn wrap_width(chunk: &[Line]) -> Option<usize> {
    let texts: Vec<&str> = chunk
        .iter()
        .filter_map(|line| match line {
            Line::Text { text, .. } => Some(*text),
            _ => None,
        })
        .collect();
    let (_, inner) = texts.split_last()?;
    if inner.is_empty() {
        return None;
    }
    let width = texts.iter().map(|text| text.chars().count()).max()?;
    let open = inner.iter().filter(|text| !ends_sentence(text)).count();
    (width >= WRAP_MIN_WIDTH && open * 2 >= inner.len()).then_some(width)
}

/// Whether the line after `before` continues its paragraph, in a chunk
/// hard-wrapped at `width`.
fn joins(before: &str, width: usize) -> bool {
    let long = before.chars().count() as f64 >= WRAPPED_SHARE * width as f64;
    long || !(ends_sentence(before) || looks_like_heading(before))
}

fn ends_sentence(text: &str) -> bool {
    text.trim_end()
        .ends_with(['.', '!', '?', ':', ';', '…', '"', '”', '’', '\'', ')'])
}

/// A line ending in `:` or `,` leads in to what follows, which is body text.
fn leads_in(text: &str) -> bool {
    text.trim_end().ends_with([':', ','])
}

/// The shape of a heading: short, no closing punctuation, not a list item,
/// not a quotation, not a continuation, not a link.
pub(crate) fn looks_like_heading(text: &str) -> bool {
    let text = text.trim_end();
    has_heading_shape(text, HEADING_MAX_WORDS, HEADING_MAX_CHARS)
        && (!text.ends_with('?') || is_question_heading(text))
        && (!text.ends_with('!') || text.split_whitespace().count() <= EXCLAMATION_MAX_WORDS)
}

/// The shape of a title: a heading's, a little longer.
pub(crate) fn looks_like_title(text: &str) -> bool {
    has_heading_shape(text, TITLE_MAX_WORDS, TITLE_MAX_CHARS)
}

fn has_heading_shape(text: &str, max_words: usize, max_chars: usize) -> bool {
    let text = text.trim();
    let Some(first) = text.chars().next() else {
        return false;
    };
    let words = text.split_whitespace().count();
    words <= max_words
        && text.chars().count() <= max_chars
        && !text.ends_with(['.', ',', ';', ':', '…', '-', '–', '—'])
        && !matches!(
            first,
            '"' | '“'
                | '”'
                | '‘'
                | '’'
                | '\''
                | '«'
                | '»'
                | '„'
                | '‚'
                | '‹'
                | '›'
                | '('
                | '…'
                | '>'
                | '['
                | '—'
                | '–'
                | '~'
        )
        && !first.is_lowercase()
        && text.chars().any(char::is_alphanumeric)
        && !text.contains("://")
        && !text.contains("www.")
        && list_item(text).is_none()
        && !is_byline(text)
}

/// Words that open a byline or a date line ("By Jane Doe", "Posted on …").
const BYLINE_OPENERS: &[&str] = &[
    "by ",
    "written by",
    "posted ",
    "published",
    "updated",
    "last updated",
    "photo",
    "image",
    "credit",
    "source",
    "por ",
    "von ",
];

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A byline, a date line or a reading-time note: never a heading.
fn is_byline(text: &str) -> bool {
    let lower = text.to_lowercase();
    let dated = MONTHS.iter().any(|month| lower.contains(month))
        && lower
            .split(|c: char| !c.is_ascii_digit())
            .any(|digits| digits.len() == 4);
    BYLINE_OPENERS
        .iter()
        .any(|opener| lower.starts_with(opener))
        || lower.contains("min read")
        || dated
}

/// Words that open a question a writer uses as a heading ("Why does sleep
/// matter?"), as opposed to a question inside the prose ("Hmm...I wonder
/// what that could be for?").
const QUESTION_WORDS: &[&str] = &[
    "what", "why", "how", "when", "where", "who", "which", "can", "could", "should", "is", "are",
    "do", "does", "will", "qué", "por qué", "cómo", "cuándo", "was", "warum", "wie", "wann",
];

fn is_question_heading(text: &str) -> bool {
    let lower = text.to_lowercase();
    let first = lower
        .trim_start_matches(['¿', '¡'])
        .split_whitespace()
        .next()
        .unwrap_or("");
    !text.contains("...")
        && !text.contains('…')
        && text.split_whitespace().count() >= 3
        && (QUESTION_WORDS.contains(&first)
            || QUESTION_WORDS
                .iter()
                .any(|word| word.contains(' ') && lower.trim_start_matches('¿').starts_with(word)))
}

/// Tells the title and headings from paragraphs.
fn into_document(raws: Vec<Raw>, find_title: bool) -> Document {
    let standalone = |raw: &Raw, shape: fn(&str) -> bool| match raw {
        Raw::Paragraph {
            text,
            alone: true,
            after_lead_in: false,
        } => shape(text),
        _ => false,
    };
    let title = match raws.first() {
        Some(Raw::Paragraph { text, .. })
            if find_title && raws.len() > 1 && standalone(&raws[0], looks_like_title) =>
        {
            Some(text.clone())
        }
        _ => None,
    };
    let skip = usize::from(title.is_some());
    let mut blocks = Vec::with_capacity(raws.len());
    // A short question or exclamation after a short line is the first
    // sentence of its section, not a second heading.
    let body = |raw: &Raw| match raw {
        Raw::Paragraph { text, .. } => {
            !standalone(raw, looks_like_heading) || text.ends_with(['?', '!'])
        }
        Raw::List(_) => true,
    };
    let numbered = numbered_headings(&raws);
    for (index, raw) in raws.iter().enumerate().skip(skip) {
        let after_heading = blocks.last().is_some_and(Block::is_heading);
        let followed_by_body = raws.get(index + 1).is_some_and(body);
        // A line above a credit ("— Name, role") is a pull quote.
        let quoted = matches!(raws.get(index + 1), Some(Raw::Paragraph { text, .. })
            if text.starts_with(['—', '–', '―']));
        match raw {
            Raw::List(items) if numbered[index] => {
                blocks.extend(items.iter().map(|item| Block::Heading {
                    level: 2,
                    text: format!("{}. {}", item.number.unwrap_or_default(), item.text),
                }))
            }
            Raw::Paragraph { text, .. }
                if !after_heading
                    && followed_by_body
                    && !quoted
                    && standalone(raw, looks_like_heading) =>
            {
                blocks.push(Block::Heading {
                    level: 2,
                    text: text.clone(),
                })
            }
            Raw::Paragraph { text, .. } => blocks.push(Block::Paragraph(text.clone())),
            Raw::List(items) => blocks.push(Block::List(items.clone())),
        }
    }
    Document::without_references(title, blocks)
}

/// Which lists are numbered headings ("1. Single-task" above a paragraph,
/// later "2. Batch the small stuff"): one heading-shaped item, not after a
/// lead-in, followed by a paragraph, and numbered in sequence with another
/// such line. A lone numbered line stays a list.
fn numbered_headings(raws: &[Raw]) -> Vec<bool> {
    let numbers: Vec<Option<u64>> = raws
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let Raw::List(items) = raw else {
                return None;
            };
            let [item] = items.as_slice() else {
                return None;
            };
            let after_lead_in = index.checked_sub(1).is_some_and(
                |before| matches!(&raws[before], Raw::Paragraph { text, .. } if leads_in(text)),
            );
            let followed_by_paragraph = matches!(raws.get(index + 1), Some(Raw::Paragraph { .. }));
            item.number.filter(|_| {
                !after_lead_in && followed_by_paragraph && looks_like_heading(&item.text)
            })
        })
        .collect();
    numbers
        .iter()
        .map(|number| {
            number.is_some_and(|number| {
                numbers
                    .iter()
                    .flatten()
                    .any(|&other| other + 1 == number || number + 1 == other)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(document: &Document) -> Vec<String> {
        document
            .blocks
            .iter()
            .map(|block| match block {
                Block::Heading { text, .. } => format!("H {text}"),
                Block::Paragraph(text) => format!("P {text}"),
                Block::List(items) => format!("L {}", items.len()),
                Block::Verbatim(text) => format!("V {text}"),
            })
            .collect()
    }

    #[test]
    fn one_paragraph_per_line_without_blank_lines() {
        let document = parse(
            "How to rest?\nRest is a skill.\nSleep Comes First\nGo to bed early.\nIt helps:\n- repair\n- mood\nThe key is regulation.\n",
            true,
        );
        assert_eq!(document.title.as_deref(), Some("How to rest?"));
        assert_eq!(
            kinds(&document),
            [
                "P Rest is a skill.",
                "H Sleep Comes First",
                "P Go to bed early.",
                "P It helps:",
                "L 2",
                "P The key is regulation.",
            ]
        );
    }

    #[test]
    fn hard_wrapped_paragraphs_are_joined() {
        let text = "A Title\n\nThis paragraph is wrapped at a fixed width so that\nit spans more than one line of the file and ends\nhere.\n\nA Heading Here\n\nAnother paragraph, also wrapped at a fixed width\nof fifty characters or so.\n";
        let document = parse(text, true);
        assert_eq!(document.title.as_deref(), Some("A Title"));
        assert_eq!(
            kinds(&document),
            [
                "P This paragraph is wrapped at a fixed width so that it spans more than one line of the file and ends here.",
                "H A Heading Here",
                "P Another paragraph, also wrapped at a fixed width of fifty characters or so.",
            ]
        );
    }

    #[test]
    fn a_heading_may_sit_directly_above_its_wrapped_paragraph() {
        let text = "Title\n\nMoving Forward\nThis paragraph is wrapped at a fixed width so that\nit spans more than one line.\n";
        assert_eq!(
            kinds(&parse(text, true)),
            [
                "H Moving Forward",
                "P This paragraph is wrapped at a fixed width so that it spans more than one line.",
            ]
        );
    }

    #[test]
    fn short_lines_after_a_lead_in_are_body_text() {
        let document = parse(
            "Title\nInstead of thinking:\n“I need to fix my gut”\nTry this\nMore text here.\n",
            true,
        );
        assert_eq!(
            kinds(&document),
            [
                "P Instead of thinking:",
                "P “I need to fix my gut”",
                "H Try this",
                "P More text here.",
            ]
        );
    }

    #[test]
    fn body_sentences_are_never_headings() {
        for line in [
            "In simple terms, beneficial microbes can:",
            "Again, this isn’t about fear.",
            "The key is regulation.",
            "“I need to fix my gut”",
            "…it supports healing.",
            "- a list item",
            "🌿 https://example.com/offer",
        ] {
            assert!(!looks_like_heading(line), "{line}");
        }
        assert!(looks_like_heading(
            "The Gut Barrier: A Key Piece of the Puzzle"
        ));
        assert!(looks_like_heading("The Gut–Immune Connection"));
    }

    #[test]
    fn lists_in_every_bullet_style() {
        let document = parse(
            "Intro text here.\n- dash\n* star\n• bullet\n1. one\n2) two\n",
            true,
        );
        assert_eq!(
            document.blocks[1],
            Block::List(vec![
                ListItem {
                    number: None,
                    text: "dash".to_owned()
                },
                ListItem {
                    number: None,
                    text: "star".to_owned()
                },
                ListItem {
                    number: None,
                    text: "bullet".to_owned()
                },
            ])
        );
        assert!(
            matches!(&document.blocks[2], Block::List(items) if items.len() == 2 && items[1].number == Some(2))
        );
    }

    #[test]
    fn a_question_after_a_heading_is_body_text() {
        let document = parse(
            "Title\nText here.\nA Question for You\nWhat made you smile?\nHit reply.\n",
            true,
        );
        assert_eq!(
            kinds(&document),
            [
                "P Text here.",
                "H A Question for You",
                "P What made you smile?",
                "P Hit reply.",
            ]
        );
    }

    #[test]
    fn separator_lines_read_as_blank_lines() {
        let document = parse("Some text here.\n* * *\nMore text here.\n---\n", true);
        assert_eq!(kinds(&document), ["P Some text here.", "P More text here."]);
    }

    #[test]
    fn numbered_lines_in_sequence_above_paragraphs_are_headings() {
        let document = parse(
            "Ten Tips\n\nIntro text here.\n\n1. Single-task\n\nDo one thing.\n\n2) Batch the small stuff\n\nAnswer email twice.\n\nTry this:\n\n1. Walk\n\nThen rest.\n",
            true,
        );
        assert_eq!(
            kinds(&document),
            [
                "P Intro text here.",
                "H 1. Single-task",
                "P Do one thing.",
                "H 2. Batch the small stuff",
                "P Answer email twice.",
                "P Try this:",
                "L 1",
                "P Then rest.",
            ]
        );
    }

    #[test]
    fn a_last_short_line_is_not_a_heading() {
        let document = parse("Some text here.\nThank you\n", true);
        assert_eq!(kinds(&document), ["P Some text here.", "P Thank you"]);
        assert_eq!(document.title, None);
    }

    #[test]
    fn list_items_parse_their_markers() {
        assert_eq!(list_item("- x"), Some((None, "x")));
        assert_eq!(list_item("•x"), Some((None, "x")));
        assert_eq!(list_item("12) x"), Some((Some(12), "x")));
        assert_eq!(list_item("2020. was a year"), None);
        assert_eq!(list_item("-5 degrees"), None);
        assert_eq!(list_item("1.5 million"), None);
        assert_eq!(list_item("-"), None);
    }
}
