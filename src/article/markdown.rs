//! Markdown to blocks, read with pulldown-cmark's offset iterator: every
//! top-level block (heading, paragraph, list, table, code, quote, HTML) is
//! kept as the source text it came from, so nothing inside a block is
//! rewritten. Dropped on the way: thematic breaks, HTML comments and a
//! table of contents of `#anchor` links. Reference definitions and
//! footnotes are kept aside so that every day that uses one can carry it.

use std::ops::Range;

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

use super::block::Block;
use super::plain::looks_like_title;
use super::{Definition, Document};

/// Headings that name a table of contents.
const CONTENTS: &[&str] = &[
    "contents",
    "table of contents",
    "in this article",
    "on this page",
    "índice",
    "inhalt",
    "inhaltsverzeichnis",
    "목차",
    "目次",
    "目录",
];

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
}

/// A reference link may be read out of context (one block, one day):
/// resolve every label so its text is read as a link's, not as brackets.
fn parser<'a>(text: &'a str) -> Parser<'a, impl pulldown_cmark::BrokenLinkCallback<'a>> {
    Parser::new_with_broken_link_callback(text, options(), Some(resolve_every_label))
}

fn resolve_every_label<'a>(_: pulldown_cmark::BrokenLink<'a>) -> Option<(CowStr<'a>, CowStr<'a>)> {
    Some((CowStr::from(""), CowStr::from("")))
}

/// What one top-level block is, while its events are read.
struct Top {
    tag: Tag<'static>,
    range: Range<usize>,
    /// The heading's inline source.
    inline: Option<Range<usize>>,
    /// Labels of the reference links, images and footnotes it uses.
    uses: Vec<String>,
    /// Inline HTML comments to cut out.
    comments: Vec<Range<usize>>,
    /// For telling a table of contents: links to `#anchors`, other links,
    /// and text outside links.
    anchors: usize,
    other_links: usize,
    loose_text: bool,
    link_depth: usize,
}

/// Parses Markdown (LF line endings) into a document; its first heading
/// or line may be the title when `find_title` (the front matter has none).
pub(crate) fn parse(text: &str, find_title: bool) -> Document {
    let mut iter = parser(text).into_offset_iter();
    let mut tops: Vec<Top> = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<Top> = None;
    for (event, range) in iter.by_ref() {
        match event {
            Event::Start(tag) => {
                match current.as_mut() {
                    Some(top) if depth > 0 => {
                        top.extend_inline(&range);
                        top.start(&tag);
                    }
                    _ => current = Some(Top::new(tag.into_static(), range.clone())),
                }
                depth += 1;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                if let Some(top) = current.as_mut() {
                    if depth > 0 {
                        top.extend_inline(&range);
                    }
                    top.end(end);
                }
                if depth == 0 {
                    tops.extend(current.take());
                }
            }
            other => {
                if let Some(top) = current.as_mut().filter(|_| depth > 0) {
                    top.inner(&other, range);
                }
            }
        }
    }
    let definitions = definitions(text, &iter);
    into_document(text, tops, definitions, find_title)
}

impl Top {
    fn new(tag: Tag<'static>, range: Range<usize>) -> Top {
        Top {
            tag,
            range,
            inline: None,
            uses: Vec::new(),
            comments: Vec::new(),
            anchors: 0,
            other_links: 0,
            loose_text: false,
            link_depth: 0,
        }
    }

    fn start(&mut self, tag: &Tag<'_>) {
        let (Tag::Link {
            link_type,
            dest_url,
            id,
            ..
        }
        | Tag::Image {
            link_type,
            dest_url,
            id,
            ..
        }) = tag
        else {
            return;
        };
        if matches!(
            link_type,
            LinkType::Reference | LinkType::Collapsed | LinkType::Shortcut
        ) {
            self.uses.push(id.to_lowercase());
        }
        if matches!(tag, Tag::Link { .. }) {
            self.link_depth += 1;
            if dest_url.starts_with('#') {
                self.anchors += 1;
            } else {
                self.other_links += 1;
            }
        }
    }

    fn end(&mut self, end: TagEnd) {
        if end == TagEnd::Link {
            self.link_depth = self.link_depth.saturating_sub(1);
        }
    }

    /// A heading's inline source spans every event inside it.
    fn extend_inline(&mut self, range: &Range<usize>) {
        if matches!(self.tag, Tag::Heading { .. }) {
            self.inline = Some(match self.inline.take() {
                Some(inline) => inline.start.min(range.start)..inline.end.max(range.end),
                None => range.clone(),
            });
        }
    }

    fn inner(&mut self, event: &Event<'_>, range: Range<usize>) {
        self.extend_inline(&range);
        match event {
            Event::InlineHtml(html) if html.starts_with("<!--") => self.comments.push(range),
            Event::FootnoteReference(label) => self.uses.push(format!("^{}", label.to_lowercase())),
            Event::Text(text) if self.link_depth == 0 && !text.trim().is_empty() => {
                self.loose_text = true
            }
            _ => {}
        }
    }

    /// A list of nothing but links to `#anchors`.
    fn is_contents(&self) -> bool {
        matches!(self.tag, Tag::List(_))
            && self.anchors >= 2
            && self.other_links == 0
            && !self.loose_text
    }
}

/// Every reference definition, as written, keyed by its folded label.
fn definitions<'a, F>(text: &str, iter: &pulldown_cmark::OffsetIter<'a, F>) -> Vec<Definition>
where
    F: pulldown_cmark::BrokenLinkCallback<'a>,
{
    let mut definitions: Vec<Definition> = iter
        .reference_definitions()
        .iter()
        .map(|(label, definition)| Definition {
            label: label.to_lowercase(),
            markdown: text[definition.span.clone()].trim().to_owned(),
            at: definition.span.start,
        })
        .collect();
    definitions.sort_by_key(|definition| definition.at);
    definitions
}

/// Turns the top-level blocks into the document's blocks, title and
/// footnotes.
fn into_document(
    text: &str,
    tops: Vec<Top>,
    mut definitions: Vec<Definition>,
    find_title: bool,
) -> Document {
    let mut blocks: Vec<Block> = Vec::with_capacity(tops.len());
    let mut uses: Vec<Vec<String>> = Vec::with_capacity(tops.len());
    for top in tops {
        let source = source(text, &top);
        let block = match &top.tag {
            Tag::Heading { level, .. } => Block::Heading {
                level: *level as u8,
                text: top
                    .inline
                    .clone()
                    .map(|inline| text[inline].trim().to_owned())
                    .unwrap_or_default(),
            },
            Tag::Paragraph => Block::Paragraph(source),
            Tag::HtmlBlock if is_comment(&source) => continue,
            Tag::FootnoteDefinition(label) => {
                definitions.push(Definition {
                    label: format!("^{}", label.to_lowercase()),
                    markdown: source,
                    at: top.range.start,
                });
                continue;
            }
            _ if top.is_contents() => {
                drop_contents_heading(&mut blocks, &mut uses);
                continue;
            }
            _ => Block::Verbatim(source),
        };
        blocks.push(block);
        uses.push(top.uses);
    }
    let title = title(&blocks).filter(|_| find_title);
    if title.is_some() {
        blocks.remove(0);
        uses.remove(0);
    }
    Document {
        title,
        blocks,
        uses,
        definitions,
    }
}

/// A block's source from the start of its first line, with inline
/// comments cut out and trailing blank space trimmed.
fn source(text: &str, top: &Top) -> String {
    let start = text[..top.range.start]
        .rfind('\n')
        .map_or(0, |newline| newline + 1);
    let start = if text[start..top.range.start].trim().is_empty() {
        start
    } else {
        top.range.start
    };
    let mut out = String::with_capacity(top.range.end - start);
    let mut from = start;
    for comment in &top.comments {
        out.push_str(&text[from..comment.start]);
        from = comment.end;
    }
    out.push_str(&text[from..top.range.end]);
    out.trim_end().to_owned()
}

fn is_comment(source: &str) -> bool {
    let source = source.trim();
    source.starts_with("<!--")
        && source.ends_with("-->")
        && source[4..].find("-->") == Some(source.len() - 7)
}

/// A "Contents" heading left with nothing under it goes with its table.
fn drop_contents_heading(blocks: &mut Vec<Block>, uses: &mut Vec<Vec<String>>) {
    let named_contents = matches!(blocks.last(), Some(Block::Heading { text, .. })
        if CONTENTS.contains(&visible(text).trim().trim_end_matches(':').to_lowercase().as_str()));
    if named_contents {
        blocks.pop();
        uses.pop();
    }
}

/// A level-1 heading or a short stand-alone first line is the title.
fn title(blocks: &[Block]) -> Option<String> {
    match blocks.first() {
        _ if blocks.len() < 2 => None,
        Some(Block::Heading { level: 1, text }) => Some(text.clone()),
        Some(Block::Paragraph(text)) if !text.contains('\n') && looks_like_title(text) => {
            Some(text.trim().to_owned())
        }
        _ => None,
    }
}

/// The words a reader sees in a piece of Markdown: link and emphasis
/// syntax, URLs, image text and reference labels are gone; blocks and
/// line breaks become spaces.
pub(crate) fn visible(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut images = 0usize;
    for event in parser(markdown) {
        match event {
            Event::Start(Tag::Image { .. }) => images += 1,
            Event::End(TagEnd::Image) => images = images.saturating_sub(1),
            Event::Text(text) | Event::Code(text) if images == 0 => out.push_str(&text),
            Event::SoftBreak
            | Event::HardBreak
            | Event::Start(Tag::Item)
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableCell
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_),
            ) => out.push(' '),
            _ => {}
        }
    }
    without_footnote_marks(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A footnote reference read without its definition shows as `[^1]`.
fn without_footnote_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[^") {
        let Some(end) = rest[start..].find(']') else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heading(level: u8, text: &str) -> Block {
        Block::Heading {
            level,
            text: text.to_owned(),
        }
    }

    fn paragraph(text: &str) -> Block {
        Block::Paragraph(text.to_owned())
    }

    fn verbatim(text: &str) -> Block {
        Block::Verbatim(text.to_owned())
    }

    #[test]
    fn atx_and_setext_headings() {
        let document = parse(
            "# Title\n\nIntro.\n\n## First ##\n\nText one.\n\nSecond\n------\n\nText two.\n\nThird\n=====\nText three.\n",
            true,
        );
        assert_eq!(document.title.as_deref(), Some("Title"));
        assert_eq!(
            document.blocks,
            [
                paragraph("Intro."),
                heading(2, "First"),
                paragraph("Text one."),
                heading(2, "Second"),
                paragraph("Text two."),
                heading(1, "Third"),
                paragraph("Text three."),
            ]
        );
    }

    #[test]
    fn setext_title() {
        let document = parse("My Title\n========\n\nBody text.\n", true);
        assert_eq!(document.title.as_deref(), Some("My Title"));
        assert_eq!(document.blocks, [paragraph("Body text.")]);
    }

    #[test]
    fn paragraphs_keep_their_lines_and_inline_syntax() {
        let document = parse(
            "Intro paragraph here.\n\nA [link](https://x.y) and *emphasis*\nover two lines.\n",
            true,
        );
        assert_eq!(document.title, None);
        assert_eq!(
            document.blocks[1],
            paragraph("A [link](https://x.y) and *emphasis*\nover two lines.")
        );
    }

    #[test]
    fn lists_tables_quotes_and_code_stay_whole_as_written() {
        let list = "- one\n  still one\n- two\n  - nested\n\n- three";
        let table = "| a | b |\n|---|---|\n| 1 | 2 |";
        let quote = "> It'd be great if you\n> could help.";
        let code = "```\n# not a heading\n\n- not a list\n```";
        let document = parse(
            &format!("Text first.\n\n{list}\n\n{table}\n\n{quote}\n\n{code}\n\nAfter.\n"),
            true,
        );
        assert_eq!(
            document.blocks,
            [
                paragraph("Text first."),
                verbatim(list),
                verbatim(table),
                verbatim(quote),
                verbatim(code),
                paragraph("After."),
            ]
        );
    }

    #[test]
    fn rules_comments_and_a_table_of_contents_are_dropped() {
        let document = parse(
            "Intro.\n\n## Contents\n\n- [One](#one)\n- [Two](#two)\n  - [Two a](#two-a)\n\n<!-- draft note -->\n\n## One\n\nText <!-- aside --> here.\n\n---\n\n* * *\n\nEnd.\n",
            true,
        );
        assert_eq!(
            document.blocks,
            [
                paragraph("Intro."),
                heading(2, "One"),
                paragraph("Text  here."),
                paragraph("End."),
            ]
        );
    }

    #[test]
    fn reference_definitions_and_footnotes_are_kept_aside_with_their_users() {
        let document = parse(
            "Intro text.\n\nA [Fitbit][fitbit] and [Oura].\n\nA note.[^1]\n\n[fitbit]: https://fitbit.example/\n[Oura]: https://oura.example/ \"Ring\"\n\n[^1]: The footnote.\n",
            true,
        );
        assert_eq!(document.blocks.len(), 3);
        assert_eq!(document.uses[1], ["fitbit", "oura"]);
        assert_eq!(document.uses[2], ["^1"]);
        let labels: Vec<(&str, &str)> = document
            .definitions
            .iter()
            .map(|definition| (definition.label.as_str(), definition.markdown.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("fitbit", "[fitbit]: https://fitbit.example/"),
                ("oura", "[Oura]: https://oura.example/ \"Ring\""),
                ("^1", "[^1]: The footnote."),
            ]
        );
    }

    #[test]
    fn visible_text_has_no_syntax_urls_image_text_or_labels() {
        assert_eq!(
            visible("A [link](https://x.y) to *this*, ![alt text](i.png) and [ref][r].[^1]"),
            "A link to this, and ref."
        );
        assert_eq!(
            visible("- one\n- two\n\n| a | b |\n|--|--|\n| c | d |"),
            "one two a b c d"
        );
    }
}
