//! The splitter: pure functions from an article's text to a multi-day course.
//!
//! It owns recognising the title, headings, paragraphs, lists and the closing
//! call to action, and packing whole sections into days. It touches no disk:
//! reading the article and writing the sequence folder belong to the caller.

use std::num::NonZeroUsize;

/// What an article becomes: the days of a course, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    /// The article's title, when its first line stands alone as one.
    pub title: Option<String>,
    /// One entry per email, in order; never empty.
    pub days: Vec<Day>,
    /// The closing call to action, when the article ends with one.
    pub cta: Option<CallToAction>,
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
}

/// A closing invitation with a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallToAction {
    pub text: String,
    pub url: String,
}

/// Why an article could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the article is empty")]
    Empty,
    #[error("the article is not text (it contains binary data)")]
    Binary,
    #[error(
        "the article has only {available} sections and paragraphs, so it cannot fill {requested} days; use --days {available} or fewer"
    )]
    TooFewParts { requested: usize, available: usize },
}

/// Which syntax the article is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    PlainText,
    Markdown,
}

impl Format {
    /// The format a file name suggests: `.md` and `.markdown` are Markdown.
    pub fn of(path: &std::path::Path) -> Format {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("md") || ext.eq_ignore_ascii_case("markdown") => {
                Format::Markdown
            }
            _ => Format::PlainText,
        }
    }
}

/// Turns a file's bytes into article text (stub until the splitter lands).
pub fn decode(bytes: &[u8]) -> Result<String, SplitError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| SplitError::Binary)
}

/// Splits `text` into a course of `days` emails, or as many as its sections
/// and length suggest when `days` is `None`.
pub fn split(text: &str, format: Format, days: Option<NonZeroUsize>) -> Result<Course, SplitError> {
    let _ = (text, format, days);
    todo!("splitter")
}
