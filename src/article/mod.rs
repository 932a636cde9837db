//! The splitter: pure functions from an article's text to a multi-day course.
//!
//! It owns recognising the title, headings, paragraphs, lists and the closing
//! call to action, and packing whole sections into days. It touches no disk:
//! reading the article and writing the sequence folder belong to the caller.

mod block;
mod cta;
mod label;
mod markdown;
mod pack;
mod plain;
mod section;

use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::Path;

use block::Block;
use section::Unit;

/// Aim for about this many words an email when the number of days is free.
const TARGET_WORDS_PER_DAY: usize = 200;
/// Add days (up to one per section) while the longest day is longer.
const MAX_WORDS_PER_DAY: usize = 500;

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

/// Splits `text` into a course of `days` emails, or as many as its sections
/// and length suggest when `days` is `None`.
///
/// Sections are never cut unless `days` asks for more days than there are
/// sections; then days are cut between blocks, never inside one. The
/// text is checked and normalised as [`decode`] does.
pub fn split(text: &str, format: Format, days: Option<NonZeroUsize>) -> Result<Course, SplitError> {
    let text = normalise(text)?;
    let document = match format {
        Format::PlainText => plain::parse(&text),
        Format::Markdown => markdown::parse(&text),
    };
    if document.blocks.is_empty() {
        return Err(SplitError::Empty);
    }
    let closing = cta::find(&document.blocks);
    let units = section::units(
        &document.blocks,
        closing.as_ref().map(|closing| closing.first_block),
    );
    let sections = section::sections(&document.blocks, &units);
    let runs = match days {
        None => free_days(&units, &sections),
        Some(days) => fixed_days(days.get(), &document.blocks, &units, &sections)?,
    };
    Ok(Course {
        title: document
            .title
            .as_deref()
            .map(|title| label::plain(title, format)),
        days: write_days(&document, format, &units, &runs),
        cta: closing.map(|closing| closing.cta),
    })
}

/// As many days as the article's length suggests (about 200 words each),
/// more if a day would pass 500 words, never more than its sections.
fn free_days(units: &[Unit], sections: &[Range<usize>]) -> Vec<Range<usize>> {
    let sections = section::merge_tiny(sections.to_vec(), units);
    let total: usize = units.iter().map(|unit| unit.words).sum();
    let wanted = (total + TARGET_WORDS_PER_DAY / 2) / TARGET_WORDS_PER_DAY;
    let mut days = wanted.clamp(1, sections.len());
    loop {
        let runs = pack_sections(units, &sections, days);
        let longest = runs.iter().map(|run| words(units, run)).max().unwrap_or(0);
        if longest <= MAX_WORDS_PER_DAY || days >= sections.len() {
            return runs;
        }
        days += 1;
    }
}

/// Exactly `days` days: whole sections when there are enough (tiny ones
/// joined to a neighbour when that still leaves enough), else cut between
/// blocks, preferring cuts at section boundaries.
fn fixed_days(
    days: usize,
    blocks: &[Block],
    units: &[Unit],
    sections: &[Range<usize>],
) -> Result<Vec<Range<usize>>, SplitError> {
    if days > units.len() {
        return Err(SplitError::TooFewParts {
            requested: days,
            available: units.len(),
        });
    }
    let merged = section::merge_tiny(sections.to_vec(), units);
    if days <= merged.len() {
        return Ok(pack_sections(units, &merged, days));
    }
    if days <= sections.len() {
        return Ok(pack_sections(units, sections, days));
    }
    let weights: Vec<usize> = units.iter().map(|unit| unit.words).collect();
    let cut_costs = section::cut_costs(blocks, units, sections);
    Ok(pack::pack(&weights, days, &cut_costs))
}

/// Packs whole sections into `days` days; returns runs of units.
fn pack_sections(units: &[Unit], sections: &[Range<usize>], days: usize) -> Vec<Range<usize>> {
    let weights: Vec<usize> = sections
        .iter()
        .map(|section| words(units, section))
        .collect();
    pack::pack(&weights, days, &vec![0; sections.len()])
        .iter()
        .map(|run| span(sections, run))
        .collect()
}

/// The items `run` of `groups` covers, each group being a range of items.
/// `run` is non-empty and in bounds: packing only makes such runs.
fn span(groups: &[Range<usize>], run: &Range<usize>) -> Range<usize> {
    groups[run.start].start..groups[run.end - 1].end
}

fn words(units: &[Unit], run: &Range<usize>) -> usize {
    units[run.clone()].iter().map(|unit| unit.words).sum()
}

/// Writes each run of units as a day: body, subject, preheader and slug.
fn write_days(
    document: &Document,
    format: Format,
    units: &[Unit],
    runs: &[Range<usize>],
) -> Vec<Day> {
    let mut days = Vec::with_capacity(runs.len());
    let mut slugs = Vec::with_capacity(runs.len());
    for (index, run) in runs.iter().enumerate() {
        // Runs are non-empty and in bounds: packing only makes such runs.
        let blocks = &document.blocks[units[run.start].blocks.start..units[run.end - 1].blocks.end];
        // The title opens day 1 and names it unless a heading does.
        let title = document.title.as_deref().filter(|_| index == 0);
        let mut parts: Vec<String> = Vec::with_capacity(blocks.len() + 1);
        if let Some(title) = title {
            parts.push(
                Block::Heading {
                    level: 1,
                    text: title.to_owned(),
                }
                .to_markdown(format),
            );
        }
        parts.extend(blocks.iter().map(|block| block.to_markdown(format)));
        let headline = label::headline(blocks, title, format);
        slugs.push(label::slug(&headline));
        days.push(Day {
            subject: label::subject(index + 1, &headline),
            preheader: label::preheader(blocks, format),
            slug: String::new(),
            body: format!("{}\n", parts.join("\n\n")),
        });
    }
    for (day, slug) in days.iter_mut().zip(label::unique_slugs(slugs)) {
        day.slug = slug;
    }
    days
}

#[cfg(test)]
mod tests;
