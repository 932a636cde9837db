//! The days as the coach will edit them: each run of blocks written as
//! Markdown, with the reference definitions and footnotes it uses, its
//! subject, preheader and slug; and the warnings about days too long to
//! read in a few minutes.

use std::ops::Range;

use super::block::{self, Block};
use super::course::WORDS_PER_DAY;
use super::label;
use super::section::Unit;
use super::{Day, Definition, Document, Format};

/// A day longer than this is worth a warning.
const LONG_DAY_WORDS: usize = 600;

/// A warning for each day over 600 words, saying whether it can be cut.
pub(crate) fn long_days(days: &[Day], runs: &[Range<usize>], units: &[Unit]) -> Vec<String> {
    let total: usize = days.iter().map(|day| day.words).sum();
    // Enough days for two-minute reads, and at least one more than now.
    let suggested = total.div_ceil(WORDS_PER_DAY).max(days.len() + 1);
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
                    "day {number} has {} words, more than a few minutes' read; pass --days {suggested} to cut it (about {WORDS_PER_DAY} words an email is a two-minute read)",
                    day.words
                )
            }
        })
        .collect()
}

/// Writes each run of blocks as a day: body (with the definitions it
/// uses), subject, preheader and slug. `opening_title` opens day 1.
pub(crate) fn write_days(
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
