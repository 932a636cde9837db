//! How many emails an article makes, and where each day opens: the
//! course model. Without `--days`: about a two-minute read an email for a
//! long article, one section a day for a short one, at least five with
//! five headings, at most twelve. Days open at the coarsest headings that
//! keep them even, then deeper ones, then between paragraphs. Pure: it
//! sees blocks and units, their words and levels, never text.

use std::ops::Range;

use super::SplitError;
use super::block::Block;
use super::pack;
use super::section::{self, Opening, Unit};

/// A long article gets about a two-minute read an email.
pub(crate) const WORDS_PER_DAY: usize = 400;
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

/// As many days as the article suggests: about 400 words each for a long
/// article, one section a day (up to seven) for a short one (under about
/// 1,400 words) with clear sections, at least five with five or more headings, at most twelve;
/// fewer only when days would otherwise fall under 40 words. Runs are
/// ranges of blocks.
pub(crate) fn free_days(blocks: &[Block], units: &[Unit]) -> Vec<Range<usize>> {
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
pub(crate) fn fixed_days(days: usize, units: &[Unit]) -> Result<Vec<Range<usize>>, SplitError> {
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
