//! The closing call to action: a last paragraph that invites the reader
//! somewhere with an http(s) link, or a link standing on the last line
//! after the inviting paragraph. It only finds the call; the blocks stay
//! in the article, at the end of the last day.

use super::CallToAction;
use super::block::Block;

/// The link text when the article gives none; the coach edits it.
const GENERIC_TEXT: &str = "Learn more";

/// Words that invite the reader to act.
const INVITATIONS: &[&str] = &[
    "book",
    "join",
    "sign up",
    "subscribe",
    "register",
    "schedule",
    "learn more",
    "read more",
    "find out",
    "visit",
    "click",
    "check out",
    "contact",
    "reach out",
    "download",
    "get started",
    "apply",
    "enrol",
    "love to",
    "work with",
    "support you",
    "coaching",
];

/// Words that open a citation.
const CITATIONS: &[&str] = &["source", "reference", "credit", "photo", "image", "via"];

/// A link-only paragraph has at most this many words besides the link
/// (an emoji, an arrow, "Link:").
const LINK_ONLY_WORDS: usize = 3;

/// A call to action and the index of its first block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closing {
    pub first_block: usize,
    pub cta: CallToAction,
}

/// Finds the closing call to action at the end of `blocks`.
pub(crate) fn find(blocks: &[Block]) -> Option<Closing> {
    let last = blocks.len().checked_sub(1)?;
    let Block::Paragraph(text) = &blocks[last] else {
        return None;
    };
    let link = last_link(text)?;
    let lower = text.to_lowercase();
    // A reference definition (`[1]: https://...`) or a citation links
    // somewhere without inviting the reader.
    let reference_definition = text.starts_with('[') && text.contains("]:");
    if reference_definition
        || CITATIONS
            .iter()
            .any(|word| lower.trim_start().starts_with(word))
    {
        return None;
    }
    let other_words = text
        .split_whitespace()
        .filter(|word| !word.contains("://"))
        .count();
    let first_block = if link.text.is_none() && other_words <= LINK_ONLY_WORDS {
        // A bare link closes the inviting paragraph above it.
        match last.checked_sub(1) {
            Some(before) if matches!(blocks[before], Block::Paragraph(_)) => before,
            _ => last,
        }
    } else if link.text.is_some() || INVITATIONS.iter().any(|word| lower.contains(word)) {
        last
    } else {
        return None;
    };
    Some(Closing {
        first_block,
        cta: CallToAction {
            text: link.text.unwrap_or_else(|| GENERIC_TEXT.to_owned()),
            url: link.url,
        },
    })
}

struct Link {
    /// The text of a Markdown link `[text](url)`.
    text: Option<String>,
    url: String,
}

/// The last http(s) link in `text`, as a Markdown link or a bare URL.
fn last_link(text: &str) -> Option<Link> {
    let start = text.rfind("https://").max(text.rfind("http://"))?;
    let url: String = text[start..]
        .chars()
        .take_while(|&c| !c.is_whitespace() && !matches!(c, ')' | '>' | ']' | '"' | '”'))
        .collect();
    let url = url
        .trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '’'])
        .to_owned();
    let label = text[..start]
        .strip_suffix("](")
        .and_then(|before| before.rfind('[').map(|open| &before[open + 1..]))
        .filter(|label| !label.trim().is_empty())
        .map(|label| label.trim().to_owned());
    Some(Link { text: label, url })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paragraphs(texts: &[&str]) -> Vec<Block> {
        texts
            .iter()
            .map(|text| Block::Paragraph((*text).to_owned()))
            .collect()
    }

    #[test]
    fn a_bare_link_after_an_inviting_paragraph() {
        let blocks = paragraphs(&[
            "Earlier text.",
            "I’d love to support you through 1:1 coaching.",
            "🌿 https://www.terrainwellnesscoach.com/1-1-coaching-offers",
        ]);
        assert_eq!(
            find(&blocks),
            Some(Closing {
                first_block: 1,
                cta: CallToAction {
                    text: "Learn more".to_owned(),
                    url: "https://www.terrainwellnesscoach.com/1-1-coaching-offers".to_owned(),
                },
            })
        );
    }

    #[test]
    fn a_markdown_link_gives_its_text() {
        let blocks = paragraphs(&["Text.", "Ready? [Book a call](https://example.com/book)."]);
        let closing = find(&blocks).map(|closing| (closing.first_block, closing.cta));
        assert_eq!(
            closing,
            Some((
                1,
                CallToAction {
                    text: "Book a call".to_owned(),
                    url: "https://example.com/book".to_owned(),
                }
            ))
        );
    }

    #[test]
    fn an_inviting_paragraph_with_a_link() {
        let blocks = paragraphs(&["Join the course at https://example.com/join, today."]);
        let closing = find(&blocks).map(|closing| closing.cta.url);
        assert_eq!(closing.as_deref(), Some("https://example.com/join"));
    }

    #[test]
    fn citations_and_plain_endings_are_not_calls_to_action() {
        assert_eq!(
            find(&paragraphs(&["Source: https://example.com/study"])),
            None
        );
        assert_eq!(
            find(&paragraphs(&[
                "The study ran at https://example.com for a year."
            ])),
            None
        );
        assert_eq!(find(&paragraphs(&["No link here, join us."])), None);
        assert_eq!(
            find(&paragraphs(&["See [docs][1].", "[1]: https://example.com"])),
            None
        );
        assert_eq!(find(&[]), None);
    }
}
