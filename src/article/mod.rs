//! The splitter: pure functions from an article's text to a multi-day course.
//!
//! It owns reading the article's structure (front matter, title, headings
//! and their levels, the blocks that are never cut, the closing call to
//! action), choosing how many emails it makes, and packing whole units
//! into days so that each day stands alone. It touches no disk: reading
//! the article and writing the sequence folder belong to the caller.

mod block;
mod cta;
mod front;
mod label;
mod links;
mod markdown;
mod pack;
mod plain;
mod section;

use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::Path;

use block::Block;
use section::{Opening, Unit};

pub use links::{LinkProblem, unusable_links};

/// A long article gets about a two-minute read an email.
const WORDS_PER_DAY: usize = 400;
/// An article of at most this many two-minute reads (under about 1,400
/// words) is short: its sections decide its length.
const SHORT_ARTICLE_DAYS: usize = 3;
/// A short article with clear sections gets one a day, up to this many.
const MAX_SECTION_DAYS: usize = 7;
/// An article with this many headings gets at least this many emails.
const MIN_DAYS_WITH_HEADINGS: usize = 5;
/// Without `--days`, never more emails than this.
const MAX_FREE_DAYS: usize = 12;
/// Days open at coarser places (headings before paragraphs) as long as
/// the longest day stays under half again (or this many words more than)
/// the shortest longest day that cutting anywhere allows.
const TOLERATED_EXTRA_WORDS: u64 = 100;
/// A day longer than this is worth a warning.
const LONG_DAY_WORDS: usize = 600;

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
        None => free_days(&document.blocks, &units),
        Some(days) => fixed_days(days.get(), &units)?,
    };
    let days = write_days(&document, format, opening_title.as_deref(), &runs);
    Ok(Course {
        title: match find_title {
            true => document
                .title
                .as_deref()
                .map(|title| label::plain(title, format)),
            false => document.title.clone(),
        },
        warnings: long_days(&days, &runs, &units),
        days,
        cta: closing.map(|closing| closing.cta),
    })
}

/// As many days as the article suggests: about 400 words each for a long
/// article, one section a day (up to seven) for a short one (under about
/// 1,400 words) with clear sections, at least five with five or more headings, at most twelve;
/// fewer only when days would otherwise fall under 40 words. Runs are
/// ranges of blocks.
fn free_days(blocks: &[Block], units: &[Unit]) -> Vec<Range<usize>> {
    let pieces = section::joined(units);
    let total: usize = units.iter().map(|unit| unit.words).sum();
    let headings = blocks
        .iter()
        .filter(|block| matches!(block, Block::Heading { .. }))
        .count();
    let by_length = (total + WORDS_PER_DAY / 2) / WORDS_PER_DAY;
    let mut wanted = if by_length <= SHORT_ARTICLE_DAYS {
        by_length.max(section::sections(units).min(MAX_SECTION_DAYS))
    } else {
        by_length
    };
    if headings >= MIN_DAYS_WITH_HEADINGS {
        wanted = wanted.max(MIN_DAYS_WITH_HEADINGS);
    }
    let wanted = wanted.clamp(1, MAX_FREE_DAYS.min(pieces.len()));
    let top = section::top_level(units);
    let at_headings =
        |days: usize| pack_pieces(&pieces, top, days, section::TINY_WORDS, Opening::Deeper);
    let anywhere =
        |days: usize| pack_pieces(&pieces, top, days, section::TINY_WORDS, Opening::Paragraph);
    // The wanted number, at headings if it can; else, rather than cut
    // between paragraphs to make fewer days than wanted, fewer days at
    // headings, as long as the length allows.
    let by_length = by_length.clamp(1, wanted);
    at_headings(wanted)
        .or_else(|| anywhere(wanted))
        .or_else(|| (by_length..wanted).rev().find_map(at_headings))
        .or_else(|| (1..wanted).rev().find_map(anywhere))
        .unwrap_or_else(|| std::iter::once(0..blocks.len()).collect())
}

/// Exactly `days` days: the joined pieces when there are enough, else the
/// units themselves (then a day may open after a lead-in or with a short
/// intro alone); no day under 40 words unless that is impossible.
fn fixed_days(days: usize, units: &[Unit]) -> Result<Vec<Range<usize>>, SplitError> {
    if days > units.len() {
        return Err(SplitError::TooFewParts {
            requested: days,
            available: units.len(),
        });
    }
    let joined = section::joined(units);
    let pieces = if days <= joined.len() {
        joined
    } else {
        units.to_vec()
    };
    let top = section::top_level(units);
    let pack = |min: usize| pack_pieces(&pieces, top, days, min, Opening::Paragraph);
    Ok(pack(section::TINY_WORDS)
        .or_else(|| pack(0))
        .unwrap_or_else(|| {
            std::iter::once(0..pieces.last().map_or(0, |last| last.blocks.end)).collect()
        }))
}

/// Packs `pieces` into `days` days of at least `min` words; returns ranges
/// of blocks. Days open at top-level headings only when that leaves the
/// longest day within reach of the best that cutting anywhere could do
/// (half again as long, or 100 words more); else at headings one level
/// down too, and so on, down to `finest`. Among the packings within reach,
/// the fewest days open at the finest level, then the days are most even.
fn pack_pieces(
    pieces: &[Unit],
    top: Option<u8>,
    days: usize,
    min: usize,
    finest: Opening,
) -> Option<Vec<Range<usize>>> {
    let weights =
        |pieces: &[Unit]| -> Vec<usize> { pieces.iter().map(|piece| piece.words).collect() };
    let best = pack::shortest_longest(&weights(pieces), days, min)?;
    let cap = (best * 3 / 2).max(best + TOLERATED_EXTRA_WORDS);
    [
        Opening::Section,
        Opening::Subsection,
        Opening::Deeper,
        Opening::Paragraph,
    ]
    .into_iter()
    .filter(|&level| level <= finest)
    .find_map(|level| {
        let coarse = section::coarsened(pieces, top, level);
        if coarse.len() < days {
            return None;
        }
        let costs: Vec<u64> = coarse
            .iter()
            .map(|piece| open_cost(section::opening(piece, top)))
            .collect();
        let runs = pack::pack(&weights(&coarse), days, &costs, min, cap)?;
        Some(
            runs.iter()
                .map(|run| coarse[run.start].blocks.start..coarse[run.end - 1].blocks.end)
                .collect(),
        )
    })
}

/// What opening a day at each kind of place costs, against a day that is
/// off the average by the whole average (100): any number of uneven days
/// is better than one more day opening at a finer place.
fn open_cost(opening: Opening) -> u64 {
    match opening {
        Opening::Section => 0,
        Opening::Subsection => 1_000,
        Opening::Deeper => 2_000,
        Opening::Paragraph => 3_000,
    }
}

/// A warning for each day over 600 words, saying whether it can be cut.
fn long_days(days: &[Day], runs: &[Range<usize>], units: &[Unit]) -> Vec<String> {
    let total: usize = days.iter().map(|day| day.words).sum();
    let suggested = total.div_ceil(WORDS_PER_DAY);
    days.iter()
        .zip(runs)
        .enumerate()
        .filter(|(_, (day, _))| day.words > LONG_DAY_WORDS)
        .map(|(index, (day, run))| {
            let pieces = units
                .iter()
                .filter(|unit| run.start <= unit.blocks.start && unit.blocks.end <= run.end)
                .count();
            let number = index + 1;
            if pieces <= 1 {
                format!(
                    "day {number} has {} words in one block that is never cut (a long paragraph, list or table); shorten it or break it up by hand",
                    day.words
                )
            } else {
                format!(
                    "day {number} has {} words, more than a few minutes' read; pass --days {suggested} for about {WORDS_PER_DAY} words an email",
                    day.words
                )
            }
        })
        .collect()
}

/// Writes each run of blocks as a day: body (with the definitions it
/// uses), subject, preheader and slug. `opening_title` opens day 1.
fn write_days(
    document: &Document,
    format: Format,
    opening_title: Option<&str>,
    runs: &[Range<usize>],
) -> Vec<Day> {
    let mut days = Vec::with_capacity(runs.len());
    let mut slugs = Vec::with_capacity(runs.len());
    let orphans = unused_footnotes(document);
    for (index, run) in runs.iter().enumerate() {
        let blocks = &document.blocks[run.clone()];
        let title = opening_title.filter(|_| index == 0);
        let mut parts: Vec<String> = Vec::with_capacity(blocks.len() + 2);
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
        let words: usize = parts
            .iter()
            .map(|part| block::count_words(&label::plain(part, format)))
            .sum();
        let last = index + 1 == runs.len();
        parts.extend(definitions_for(
            document,
            run,
            last.then_some(orphans.as_slice()),
        ));
        // Day 1 without an opening heading is named after the article.
        let first_name = title.or(document.title.as_deref().filter(|_| index == 0));
        let headline = label::headline(
            blocks,
            first_name,
            document.title.as_deref(),
            index + 1,
            format,
        );
        slugs.push(label::slug(&headline));
        days.push(Day {
            subject: label::subject(index + 1, &headline),
            preheader: label::preheader(blocks, &headline, format),
            slug: String::new(),
            body: format!("{}\n", parts.join("\n\n")),
            words,
        });
    }
    for (day, slug) in days.iter_mut().zip(label::unique_slugs(slugs)) {
        day.slug = slug;
    }
    days
}

/// The definitions the blocks of `run` use, in source order: reference
/// definitions together, then each footnote; `orphans` (footnotes nobody
/// refers to) are added where given, so that no text is lost.
fn definitions_for(
    document: &Document,
    run: &Range<usize>,
    orphans: Option<&[usize]>,
) -> Vec<String> {
    let used: Vec<&String> = document.uses[run.clone()].iter().flatten().collect();
    let wanted = |index: usize| {
        used.contains(&&document.definitions[index].label)
            || orphans.is_some_and(|orphans| orphans.contains(&index))
    };
    let (references, footnotes): (Vec<&Definition>, Vec<&Definition>) =
        (0..document.definitions.len())
            .filter(|&index| wanted(index))
            .map(|index| &document.definitions[index])
            .partition(|definition| !definition.label.starts_with('^'));
    let mut parts: Vec<String> = Vec::new();
    if !references.is_empty() {
        let lines: Vec<&str> = references
            .iter()
            .map(|definition| definition.markdown.as_str())
            .collect();
        parts.push(lines.join("\n"));
    }
    parts.extend(footnotes.iter().map(|footnote| footnote.markdown.clone()));
    parts
}

/// Footnotes no block refers to.
fn unused_footnotes(document: &Document) -> Vec<usize> {
    (0..document.definitions.len())
        .filter(|&index| {
            let label = &document.definitions[index].label;
            label.starts_with('^') && !document.uses.iter().flatten().any(|used| used == label)
        })
        .collect()
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
