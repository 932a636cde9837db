//! Which blocks travel together, and what it costs to open a day where.
//!
//! A unit is the smallest piece a day may hold: one paragraph, list,
//! table, code block, quote or HTML block with the headings right above it
//! (a heading never ends a day), or the closing call to action with its
//! link. Joined units are what free splitting packs: a unit after a lead-in
//! line (`It helps:`) joins the one before it, and the intro before the
//! first heading is one piece, joined to the first section when it is too
//! short to be sent alone. Packing the pieces into days is `pack`'s.

use std::ops::Range;

use super::Format;
use super::block::Block;

/// A section shorter than this (a "Thank you!", a one-paragraph coda) is
/// not sent alone, and no day is shorter unless the article is.
pub(crate) const TINY_WORDS: usize = 40;
/// A last section of one paragraph shorter than this is a coda, never a
/// day of its own.
pub(crate) const CODA_WORDS: usize = 60;
/// An intro shorter than this is not sent alone.
pub(crate) const SHORT_INTRO_WORDS: usize = 200;

/// Blocks that stay on the same day, their length, and what opens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    pub blocks: Range<usize>,
    pub words: usize,
    /// The highest level of the headings the unit opens with.
    pub level: Option<u8>,
    /// The block before the unit leads in to it.
    pub after_lead_in: bool,
}

/// Where a day may open, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Opening {
    /// At a top-level heading.
    Section,
    /// At a heading one level down.
    Subsection,
    /// At a deeper heading.
    Deeper,
    /// Between paragraphs.
    Paragraph,
}

/// Groups `blocks` into units. The blocks from `closing_from` on (the call
/// to action) form one unit.
pub(crate) fn units(blocks: &[Block], closing_from: Option<usize>, format: Format) -> Vec<Unit> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    for (index, block) in blocks.iter().enumerate() {
        let in_closing = closing_from.is_some_and(|first| index > first);
        match ranges.last_mut() {
            Some(last) if in_closing && start == index => last.end = index + 1,
            _ if matches!(block, Block::Heading { .. }) => continue,
            _ => ranges.push(start..index + 1),
        }
        start = index + 1;
    }
    // Headings with nothing below them close the last unit.
    match ranges.last_mut() {
        Some(last) => last.end = blocks.len(),
        None if !blocks.is_empty() => ranges.push(0..blocks.len()),
        None => {}
    }
    ranges
        .into_iter()
        .map(|range| Unit {
            words: blocks[range.clone()]
                .iter()
                .map(|block| block.words(format))
                .sum(),
            level: blocks[range.clone()]
                .iter()
                .map_while(|block| match block {
                    Block::Heading { level, .. } => Some(*level),
                    _ => None,
                })
                .min(),
            after_lead_in: range
                .start
                .checked_sub(1)
                .is_some_and(|before| blocks[before].leads_in()),
            blocks: range,
        })
        .collect()
}

/// The highest heading level the units open with: the article's sections.
pub(crate) fn top_level(units: &[Unit]) -> Option<u8> {
    units.iter().filter_map(|unit| unit.level).min()
}

/// Where a day opening at `unit` opens, for an article whose sections
/// are at `top` level.
pub(crate) fn opening(unit: &Unit, top: Option<u8>) -> Opening {
    match (unit.level, top) {
        (Some(level), Some(top)) if level <= top => Opening::Section,
        (Some(level), Some(top)) if level == top + 1 => Opening::Subsection,
        (Some(_), _) => Opening::Deeper,
        (None, _) => Opening::Paragraph,
    }
}

/// Joins the units that free splitting must not separate: a unit after a
/// lead-in joins the one before it; the intro before the first heading is
/// one piece, and joins the first section's opening unit when it is under
/// 200 words; a coda (a last section of one paragraph under 60 words)
/// joins the one before it. An article without headings keeps its
/// paragraphs apart.
pub(crate) fn joined(units: &[Unit]) -> Vec<Unit> {
    let first_heading = units.iter().position(|unit| unit.level.is_some());
    let intro_end = match first_heading {
        Some(0) | None => 0,
        Some(first) => {
            let words: usize = units[..first].iter().map(|unit| unit.words).sum();
            if words < SHORT_INTRO_WORDS {
                first + 1
            } else {
                first
            }
        }
    };
    // A last section of one short paragraph is a coda: it closes the day before.
    let coda = units
        .last()
        .filter(|last| units.len() > 1 && last.level.is_some() && last.words < CODA_WORDS)
        .map(|_| units.len() - 1);
    let mut joined: Vec<Unit> = Vec::with_capacity(units.len());
    for (index, unit) in units.iter().enumerate() {
        let joins = unit.after_lead_in || (index > 0 && index < intro_end) || Some(index) == coda;
        match joined.last_mut() {
            Some(last) if joins => {
                last.blocks.end = unit.blocks.end;
                last.words += unit.words;
            }
            _ => joined.push(unit.clone()),
        }
    }
    joined
}

/// `pieces` with every piece that opens at a finer place than `level`
/// joined to the one before it.
pub(crate) fn coarsened(pieces: &[Unit], top: Option<u8>, level: Opening) -> Vec<Unit> {
    let mut coarse: Vec<Unit> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match coarse.last_mut() {
            Some(last) if opening(piece, top) > level => {
                last.blocks.end = piece.blocks.end;
                last.words += piece.words;
            }
            _ => coarse.push(piece.clone()),
        }
    }
    coarse
}

/// How many sections worth a day the article has: runs of units from one
/// top-level heading to the next, with an intro of 200 words or more
/// counted as one, after each tiny section (under 40 words) has joined a
/// neighbour.
pub(crate) fn sections(units: &[Unit]) -> usize {
    let top = top_level(units);
    let mut totals: Vec<usize> = Vec::new();
    for unit in units {
        match totals.last_mut() {
            Some(total) if opening(unit, top) != Opening::Section => *total += unit.words,
            _ => totals.push(unit.words),
        }
    }
    let intro_short = units.first().is_some_and(|first| first.level.is_none())
        && totals
            .first()
            .is_some_and(|&words| words < SHORT_INTRO_WORDS);
    if intro_short && totals.len() > 1 {
        let intro = totals.remove(0);
        totals[0] += intro;
    }
    // Tiny sections gather until they are worth a day; a tiny rest joins
    // the last one.
    let mut merged: Vec<usize> = Vec::with_capacity(totals.len());
    let mut pending = 0;
    for total in totals {
        pending += total;
        if pending >= TINY_WORDS {
            merged.push(pending);
            pending = 0;
        }
    }
    if pending > 0 && merged.is_empty() {
        merged.push(pending);
    }
    merged.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heading(level: u8) -> Block {
        Block::Heading {
            level,
            text: "Heading".to_owned(),
        }
    }

    fn words(count: usize) -> Block {
        Block::Paragraph(vec!["word"; count].join(" "))
    }

    fn ranges(units: &[Unit]) -> Vec<Range<usize>> {
        units.iter().map(|unit| unit.blocks.clone()).collect()
    }

    #[test]
    fn headings_travel_with_the_block_below() {
        let blocks = [
            words(3),
            heading(2),
            heading(3),
            words(2),
            words(1),
            heading(2),
        ];
        let units = units(&blocks, None, Format::Markdown);
        assert_eq!(ranges(&units), [0..1, 1..4, 4..6]);
        assert_eq!(units[1].words, 4);
        assert_eq!(units[1].level, Some(2));
        assert_eq!(units[2].level, None);
    }

    #[test]
    fn the_closing_call_to_action_is_one_unit() {
        let blocks = [words(3), words(20), words(2)];
        assert_eq!(
            ranges(&units(&blocks, Some(1), Format::PlainText)),
            [0..1, 1..3]
        );
    }

    #[test]
    fn openings_follow_the_heading_levels() {
        let blocks = [
            words(3),
            heading(1),
            words(2),
            heading(2),
            words(1),
            heading(4),
            words(1),
            words(1),
        ];
        let units = units(&blocks, None, Format::Markdown);
        let top = top_level(&units);
        let openings: Vec<Opening> = units.iter().map(|unit| opening(unit, top)).collect();
        assert_eq!(
            openings,
            [
                Opening::Paragraph,
                Opening::Section,
                Opening::Subsection,
                Opening::Deeper,
                Opening::Paragraph
            ]
        );
    }

    #[test]
    fn lead_ins_and_a_short_intro_join_what_follows() {
        let blocks = [
            words(30),
            heading(2),
            words(50),
            Block::Paragraph("It helps:".to_owned()),
            words(5),
            heading(2),
            words(60),
        ];
        let units = units(&blocks, None, Format::PlainText);
        assert!(units[3].after_lead_in);
        // The 30-word intro joins the first section's first unit; the
        // list after "It helps:" joins its lead-in.
        assert_eq!(ranges(&joined(&units)), [0..3, 3..5, 5..7]);
    }

    #[test]
    fn a_long_intro_stands_alone_and_paragraphs_without_headings_stay_apart() {
        let blocks = [words(150), words(100), heading(2), words(80)];
        let long_intro = units(&blocks, None, Format::PlainText);
        assert_eq!(ranges(&joined(&long_intro)), [0..2, 2..4]);
        let blocks = [words(10), words(20), words(30)];
        let no_headings = units(&blocks, None, Format::PlainText);
        assert_eq!(ranges(&joined(&no_headings)), [0..1, 1..2, 2..3]);
    }

    #[test]
    fn sections_count_those_worth_a_day() {
        let blocks = [
            words(30),
            heading(2),
            words(50),
            heading(3),
            words(50),
            heading(2),
            words(10),
            heading(2),
            words(45),
        ];
        // A short intro joining the first section (130), then 10 (tiny)
        // and 45 words, which gather into one.
        assert_eq!(sections(&units(&blocks, None, Format::PlainText)), 2);
        let tiny = [
            heading(2),
            words(20),
            heading(2),
            words(12),
            heading(2),
            words(30),
        ];
        assert_eq!(sections(&units(&tiny, None, Format::PlainText)), 1);
    }
}
