//! The splitter: pure functions from an article's text to a multi-day course.
//!
//! It owns reading the article's structure (front matter, title, headings
//! and their levels, the blocks that are never cut, the closing call to
//! action), choosing how many emails it makes, and packing whole units
//! into days so that each day stands alone. It touches no disk: reading
//! the article and writing the sequence folder belong to the caller.

mod block;
mod course;
mod cta;
mod front;
mod label;
mod links;
mod markdown;
mod pack;
mod plain;
mod section;
mod write;

use std::num::NonZeroUsize;
use std::path::Path;

use block::Block;

pub use links::{LinkProblem, unusable_links};

/// What an article becomes: the days of a course, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    /// The article's title: its front matter's, or a first line that
    /// stands alone as one.
    pub title: Option<String>,
    /// One entry per email, in order; never empty.
    pub days: Vec<Day>,
    /// The closing call to action, when the article ends with one.
    pub cta: Option<CallToAction>,
    /// What the coach should know before sending: days too long to read in
    /// a few minutes, and why.
    pub warnings: Vec<String>,
}

/// One email's worth of the article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// `Day N: <first heading>` (or the title / first words when there is no heading).
    pub subject: String,
    /// The first sentence of the day's body text.
    pub preheader: String,
    /// A short ASCII slug for the file name (`gut-barrier`).
    pub slug: String,
    /// The day's content as Markdown.
    pub body: String,
    /// The words a reader sees in it.
    pub words: usize,
}

/// A closing invitation with a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallToAction {
    /// The Markdown link's text, or a generic "Learn more" for the coach to edit.
    pub text: String,
    /// The http(s) link the article closes with.
    pub url: String,
}

/// Why an article could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// Nothing but whitespace (or Markdown rules) to split.
    #[error("the article is empty")]
    Empty,
    /// NUL or control bytes, or bytes that are not UTF-8.
    #[error("the article is not text (it contains binary data)")]
    Binary,
    /// `days` asked for more emails than the article has blocks.
    #[error(
        "the article has only {available} sections and paragraphs, so it cannot fill {requested} days; use --days {available} or fewer"
    )]
    TooFewParts { requested: usize, available: usize },
}

/// Which syntax the article is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text pasted from a web page or a document.
    PlainText,
    /// CommonMark; its inline syntax is kept in the bodies.
    Markdown,
}

impl Format {
    /// The format a file name suggests: `.md`, `.markdown` and kin are
    /// Markdown, anything else plain text. Looks at the name only.
    pub fn from_path(path: &Path) -> Format {
        let markdown = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| {
                ["md", "markdown", "mdown", "mkd", "mkdn"]
                    .iter()
                    .any(|known| extension.eq_ignore_ascii_case(known))
            });
        if markdown {
            Format::Markdown
        } else {
            Format::PlainText
        }
    }
}

/// An article parsed into blocks, before it is cut into days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    /// The first line, when it stands alone as a title.
    pub title: Option<String>,
    /// Everything after the title, in order.
    pub blocks: Vec<Block>,
    /// For each block, the labels of the definitions it uses.
    pub uses: Vec<Vec<String>>,
    /// Reference definitions and footnotes, in source order, to be carried
    /// into every day that uses them.
    pub definitions: Vec<Definition>,
}

/// A reference definition (`[label]: url`) or a footnote (`[^label]: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Definition {
    /// The folded label; footnotes' start with `^`.
    pub label: String,
    /// The definition as written.
    pub markdown: String,
    /// Where it was in the source, to keep their order.
    pub at: usize,
}

impl Document {
    /// A document whose blocks use no definitions (plain text).
    pub(crate) fn without_references(title: Option<String>, blocks: Vec<Block>) -> Document {
        Document {
            title,
            uses: vec![Vec::new(); blocks.len()],
            blocks,
            definitions: Vec::new(),
        }
    }
}

/// Turns an article file's bytes into text: strips a UTF-8 byte-order
/// mark and makes every line end in LF.
///
/// Rejects NUL and other control bytes and invalid UTF-8 as
/// [`SplitError::Binary`], and whitespace-only text as [`SplitError::Empty`].
pub fn decode(bytes: &[u8]) -> Result<String, SplitError> {
    if bytes.contains(&0) {
        return Err(SplitError::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SplitError::Binary)?;
    normalise(text)
}

/// The checks and clean-up `decode` does, for text already in memory.
fn normalise(text: &str) -> Result<String, SplitError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Tabs and line breaks occur in text (a vertical tab is a word
    // processor's line break); other control characters don't.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{b}' | '\u{c}'))
    {
        return Err(SplitError::Binary);
    }
    if text.trim().is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(text
        .replace("\r\n", "\n")
        .replace(['\r', '\u{b}', '\u{c}', '\u{2028}', '\u{2029}'], "\n"))
}

/// Splits `text` into a course of `days` emails, or as many as its length
/// and sections suggest when `days` is `None`.
///
/// Units (a paragraph, list, table, code block, quote or HTML block, with
/// the headings above it) are never cut. The text is checked and
/// normalised as [`decode`] does.
pub fn split(text: &str, format: Format, days: Option<NonZeroUsize>) -> Result<Course, SplitError> {
    let text = normalise(text)?;
    let front = front::strip(&text);
    let find_title = front.title.is_none();
    let mut document = match format {
        Format::PlainText => plain::parse(front.body, find_title),
        Format::Markdown => markdown::parse(front.body, find_title),
    };
    // The front matter's title names the course and is not sent; a first
    // heading that repeats it (or its first part) opens day 1 as the title.
    let mut opening_title = document.title.clone().filter(|_| find_title);
    if let Some(title) = front.title {
        if let Some(Block::Heading { level: 1, text }) = document.blocks.first()
            && title.starts_with(&label::plain(text, format))
        {
            opening_title = Some(text.clone());
            document.blocks.remove(0);
            document.uses.remove(0);
        }
        document.title = Some(title);
    }
    if document.blocks.is_empty() {
        return Err(SplitError::Empty);
    }
    let closing = cta::find(&document.blocks);
    let units = section::units(
        &document.blocks,
        closing.as_ref().map(|closing| closing.first_block),
        format,
    );
    let runs = match days {
        None => course::free_days(&document.blocks, &units),
        Some(days) => course::fixed_days(days.get(), &units)?,
    };
    let days = write::write_days(&document, format, opening_title.as_deref(), &runs);
    Ok(Course {
        title: match find_title {
            true => document
                .title
                .as_deref()
                .map(|title| label::plain(title, format)),
            false => document.title.clone(),
        },
        warnings: write::long_days(&days, &runs, &units),
        days,
        cta: closing.map(|closing| closing.cta),
    })
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
