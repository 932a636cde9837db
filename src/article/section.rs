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
/// at a heading of the article's highest level; deeper headings stay
/// inside their section.
pub(crate) fn sections(blocks: &[Block], units: &[Unit]) -> Vec<Range<usize>> {
    let top_level = blocks
        .iter()
        .filter_map(|block| match block {
            Block::Heading { level, .. } => Some(*level),
            _ => None,
        })
        .min();
    let opens = |unit: &Unit| match top_level {
        None => true,
        Some(top) => blocks[unit.blocks.clone()]
            .iter()
            .take_while(|block| block.is_heading())
            .any(|block| matches!(block, Block::Heading { level, .. } if *level == top)),
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

/// Merges each tiny section into a neighbour: the first into the next, the
/// last into the previous, others into the shorter neighbour.
pub(crate) fn merge_tiny(mut sections: Vec<Range<usize>>, units: &[Unit]) -> Vec<Range<usize>> {
    let words = |section: &Range<usize>| -> usize {
        units[section.clone()].iter().map(|unit| unit.words).sum()
    };
    while sections.len() > 1 {
        let Some(tiny) = sections
            .iter()
            .position(|section| words(section) < TINY_WORDS)
        else {
            break;
        };
        let into_next = tiny == 0
            || (tiny + 1 < sections.len()
                && words(&sections[tiny + 1]) < words(&sections[tiny - 1]));
        let (first, second) = if into_next {
            (tiny, tiny + 1)
        } else {
            (tiny - 1, tiny)
        };
        sections[first].end = sections[second].end;
        sections.remove(second);
    }
    sections
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
    fn tiny_sections_join_a_neighbour() {
        let blocks = [words(10), words(100), words(30), words(200), words(5)];
        let units = units(&blocks, None);
        let sections = sections(&blocks, &units);
        // The intro joins the next; 30 joins the shorter neighbour; the coda the previous.
        assert_eq!(merge_tiny(sections, &units), [0..3, 3..5]);
    }

    #[test]
    fn a_lone_tiny_section_stays() {
        let blocks = [words(3)];
        let units = units(&blocks, None);
        assert_eq!(merge_tiny(sections(&blocks, &units), &units), vec![0..1]);
    }
}
