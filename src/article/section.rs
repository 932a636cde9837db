//! Which blocks travel together. A unit is the smallest piece a day may
//! hold: one paragraph, list or code block with the headings right above
//! it (a heading never ends a day), or the closing call to action with its
//! link. A section is the run of units from one top-level heading to the
//! next; an article without headings has one section per unit, so it is
//! split at paragraph boundaries. Packing the pieces into days is `pack`'s.

use std::ops::Range;

use super::block::Block;

/// A section shorter than this (a "Thank you!", a one-paragraph coda) is
/// not sent alone; it joins a neighbour.
pub(crate) const TINY_WORDS: usize = 40;

/// Blocks that must stay on the same day, and their length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    pub blocks: Range<usize>,
    pub words: usize,
}

/// Groups `blocks` into units. The blocks from `closing_from` on (the call
/// to action) form one unit.
pub(crate) fn units(blocks: &[Block], closing_from: Option<usize>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut start = 0;
    for (index, block) in blocks.iter().enumerate() {
        let in_closing = closing_from.is_some_and(|first| index > first);
        match units.last_mut() {
            Some(last) if in_closing && start == index => last.blocks.end = index + 1,
            _ if block.is_heading() => continue,
            _ => units.push(Unit {
                blocks: start..index + 1,
                words: 0,
            }),
        }
        start = index + 1;
    }
    // Headings with nothing below them close the last unit.
    match units.last_mut() {
        Some(last) => last.blocks.end = blocks.len(),
        None if !blocks.is_empty() => units.push(Unit {
            blocks: 0..blocks.len(),
            words: 0,
        }),
        None => {}
    }
    for unit in &mut units {
        unit.words = blocks[unit.blocks.clone()].iter().map(Block::words).sum();
    }
    units
}

/// Groups units into sections, as ranges of unit indices. A section opens
/// at a heading of level 1 or 2 (or of the article's highest level, when
/// deeper): writers mix `#` and `##` for their sections, while `###` and
/// below are subsections that stay inside theirs.
pub(crate) fn sections(blocks: &[Block], units: &[Unit]) -> Vec<Range<usize>> {
    let section_level = blocks
        .iter()
        .filter_map(|block| match block {
            Block::Heading { level, .. } => Some(*level),
            _ => None,
        })
        .min()
        .map(|top| top.max(2));
    let opens = |unit: &Unit| match section_level {
        None => true,
        Some(section_level) => blocks[unit.blocks.clone()]
            .iter()
            .take_while(|block| block.is_heading())
            .any(|block| matches!(block, Block::Heading { level, .. } if *level <= section_level)),
    };
    let mut sections: Vec<Range<usize>> = Vec::new();
    for (index, unit) in units.iter().enumerate() {
        match sections.last_mut() {
            Some(last) if !opens(unit) => last.end = index + 1,
            _ => sections.push(index..index + 1),
        }
    }
    sections
}

/// What opening a day at each unit costs when sections must be cut: a
/// section's first unit nothing; inside a section 2; right after a
/// paragraph ending in `:` (which introduces what follows) 3.
pub(crate) fn cut_costs(blocks: &[Block], units: &[Unit], sections: &[Range<usize>]) -> Vec<u64> {
    let mut costs: Vec<u64> = units
        .iter()
        .map(|unit| {
            let lead_in = unit.blocks.start.checked_sub(1).is_some_and(|before| {
                matches!(&blocks[before], Block::Paragraph(text) if text.trim_end().ends_with(':'))
            });
            if lead_in { 3 } else { 2 }
        })
        .collect();
    for section in sections {
        if let Some(cost) = costs.get_mut(section.start) {
            *cost = 0;
        }
    }
    costs
}

/// Merges each tiny section into a neighbour: the first into the next, the
/// last into the previous, others into the shorter neighbour. One pass, so
/// an article of thousands of one-line paragraphs stays quick.
pub(crate) fn merge_tiny(sections: Vec<Range<usize>>, units: &[Unit]) -> Vec<Range<usize>> {
    let words = |section: &Range<usize>| -> usize {
        units[section.clone()].iter().map(|unit| unit.words).sum()
    };
    let totals: Vec<usize> = sections.iter().map(words).collect();
    // Merged sections with their word counts. A tiny one on top is
    // waiting for the next section to join it.
    let mut merged: Vec<(Range<usize>, usize)> = Vec::with_capacity(sections.len());
    for (index, section) in sections.iter().enumerate() {
        let total = totals[index];
        match merged.last_mut() {
            Some(last) if last.1 < TINY_WORDS => {
                last.0.end = section.end;
                last.1 += total;
            }
            Some(last)
                if total < TINY_WORDS
                    && totals.get(index + 1).is_none_or(|&next| next >= last.1) =>
            {
                last.0.end = section.end;
                last.1 += total;
            }
            _ => merged.push((section.clone(), total)),
        }
    }
    // A tiny section left at the end joins the one before it.
    if merged.len() > 1
        && merged.last().is_some_and(|last| last.1 < TINY_WORDS)
        && let Some((last, total)) = merged.pop()
        && let Some(before) = merged.last_mut()
    {
        before.0.end = last.end;
        before.1 += total;
    }
    merged.into_iter().map(|(section, _)| section).collect()
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
        let units = units(&blocks, None);
        let ranges: Vec<_> = units.iter().map(|unit| unit.blocks.clone()).collect();
        assert_eq!(ranges, [0..1, 1..4, 4..6]);
        assert_eq!(units[1].words, 4);
    }

    #[test]
    fn the_closing_call_to_action_is_one_unit() {
        let blocks = [words(3), words(20), words(2)];
        let ranges: Vec<_> = units(&blocks, Some(1))
            .iter()
            .map(|unit| unit.blocks.clone())
            .collect();
        assert_eq!(ranges, [0..1, 1..3]);
    }

    #[test]
    fn sections_open_at_top_level_headings_only() {
        let blocks = [
            words(3),
            heading(2),
            words(2),
            heading(3),
            words(1),
            heading(2),
            words(1),
        ];
        let units = units(&blocks, None);
        assert_eq!(sections(&blocks, &units), [0..1, 1..3, 3..4]);
    }

    #[test]
    fn without_headings_every_unit_is_a_section() {
        let blocks = [words(3), words(2), words(1)];
        let units = units(&blocks, None);
        assert_eq!(sections(&blocks, &units), [0..1, 1..2, 2..3]);
    }

    #[test]
    fn cutting_after_a_lead_in_costs_most() {
        let blocks = [
            heading(2),
            words(3),
            Block::Paragraph("It helps:".to_owned()),
            words(2),
            heading(2),
            words(1),
        ];
        let units = units(&blocks, None);
        let sections = sections(&blocks, &units);
        assert_eq!(cut_costs(&blocks, &units, &sections), [0, 2, 3, 0]);
    }

    #[test]
    fn tiny_sections_join_a_neighbour() {
        let blocks = [words(10), words(100), words(30), words(200), words(5)];
        let units = units(&blocks, None);
        let sections = sections(&blocks, &units);
        // The intro joins the next; 30 joins the shorter neighbour; the coda the previous.
        assert_eq!(merge_tiny(sections, &units), [0..3, 3..5]);
    }

    #[test]
    fn tiny_sections_in_a_row_gather_until_they_are_not() {
        let blocks = [
            words(10),
            words(10),
            words(30),
            words(100),
            words(20),
            words(20),
        ];
        let units = units(&blocks, None);
        let sections = sections(&blocks, &units);
        // 10 + 10 + 30 reach 50; the first 20 joins its shorter neighbour.
        assert_eq!(merge_tiny(sections, &units), [0..3, 3..4, 4..6]);
    }

    #[test]
    fn a_lone_tiny_section_stays() {
        let blocks = [words(3)];
        let units = units(&blocks, None);
        assert_eq!(merge_tiny(sections(&blocks, &units), &units), vec![0..1]);
    }
}
