//! A step body's Markdown, turned into an HTML fragment and plain text once
//! per step, with its Handlebars expressions left intact for rendering
//! per subscriber.
//!
//! The expressions are swapped for inert placeholders while pulldown-cmark
//! runs (so `{{subscriber.fields.favourite_food}}` is not read as emphasis)
//! and put back afterwards. Links are UTM-tagged here, on the parsed
//! link targets, so text and HTML carry the same URLs. This module does no
//! I/O and knows nothing about layouts.

use std::fmt::Write as _;

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, TextMergeStream};

use super::templates::expression_len;

/// Marks a protected expression; ASCII letters and digits only, so that
/// Markdown neither escapes nor interprets it, even inside a link target.
const PLACEHOLDER: &str = "DRIPLINEEXPR";
const PLACEHOLDER_END: char = 'X';

/// The Handlebars expressions of a text, cut out for safe keeping.
#[derive(Debug, Default)]
pub struct Expressions(Vec<String>);

impl Expressions {
    /// Replaces every `{{...}}` (also `{{{...}}}`, `{{!-- --}}` and the
    /// escaped `\{{...}}`) in `source` with a placeholder, returning the text and what was cut.
    /// An unclosed `{{` is left alone: compiling the original reports it.
    pub fn protect(source: &str) -> (String, Expressions) {
        let mut text = String::with_capacity(source.len());
        let mut expressions = Vec::new();
        let mut rest = source;
        while let Some(found) = rest.find("{{") {
            let Some(end) = expression_len(&rest[found..]) else {
                break;
            };
            // An escaped `\{{…}}` is kept whole, or Markdown would read the
            // backslash as its own escape (in a link target, say).
            let start = if rest[..found].ends_with('\\') {
                found - 1
            } else {
                found
            };
            let end = found + end - start;
            let tail = &rest[start..];
            text.push_str(&rest[..start]);
            let _ = write!(text, "{PLACEHOLDER}{}{PLACEHOLDER_END}", expressions.len());
            expressions.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        text.push_str(rest);
        (text, Expressions(expressions))
    }

    /// Puts the expressions back where their placeholders are.
    pub fn restore(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16 * self.0.len());
        let mut rest = text;
        while let Some(start) = rest.find(PLACEHOLDER) {
            let after = &rest[start + PLACEHOLDER.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let expression = after[..digits]
                .parse::<usize>()
                .ok()
                .filter(|_| after[digits..].starts_with(PLACEHOLDER_END))
                .and_then(|index| self.0.get(index));
            out.push_str(&rest[..start]);
            match expression {
                Some(expression) => {
                    out.push_str(expression);
                    rest = &after[digits + 1..];
                }
                None => {
                    out.push_str(PLACEHOLDER);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// UTM parameters for the links of one step.
#[derive(Debug, Clone)]
pub struct Utm {
    /// `utm_campaign`: the sequence id.
    pub campaign: String,
    /// `utm_content`: the step id.
    pub content: String,
}

impl Utm {
    /// `url` with the UTM parameters added, keeping its query and fragment;
    /// unchanged unless it is an http(s) link not yet tagged.
    pub fn tag(&self, url: &str) -> String {
        let scheme = url
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) || url.contains("utm_source=") {
            return url.to_owned();
        }
        let (base, fragment) = match url.find('#') {
            Some(at) => url.split_at(at),
            None => (url, ""),
        };
        let separator = match base.find('?') {
            None => "?",
            Some(_) if base.ends_with('?') || base.ends_with('&') => "",
            Some(_) => "&",
        };
        format!(
            "{base}{separator}utm_source=dripline&utm_medium=email&utm_campaign={}&utm_content={}{fragment}",
            percent_encode(&self.campaign),
            percent_encode(&self.content)
        )
    }
}

/// Encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A step body in both forms, expressions still in place.
#[derive(Debug)]
pub struct Converted {
    /// The HTML fragment.
    pub html: String,
    /// The plain text, not yet wrapped.
    pub text: String,
}

/// Converts a step body (Markdown holding Handlebars expressions).
pub fn convert(body: &str, utm: Option<&Utm>) -> Converted {
    let (protected, expressions) = Expressions::protect(body);
    let parser = Parser::new_ext(
        &protected,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES,
    );
    let mut events = Vec::new();
    let mut inside_link_or_code = 0_usize;
    for event in TextMergeStream::new(parser) {
        match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                inside_link_or_code += 1;
                let dest_url = match utm {
                    Some(utm) => CowStr::from(utm.tag(&dest_url)),
                    None => dest_url,
                };
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }));
            }
            Event::Start(tag @ (Tag::CodeBlock(_) | Tag::Image { .. })) => {
                inside_link_or_code += 1;
                events.push(Event::Start(tag));
            }
            Event::End(tag @ (TagEnd::Link | TagEnd::CodeBlock | TagEnd::Image)) => {
                inside_link_or_code = inside_link_or_code.saturating_sub(1);
                events.push(Event::End(tag));
            }
            Event::Text(text) if inside_link_or_code == 0 => link_bare_urls(text, utm, &mut events),
            event => events.push(event),
        }
    }
    let mut html = String::with_capacity(body.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.iter().cloned());
    Converted {
        html: expressions.restore(&html),
        text: expressions.restore(&plain_text(&events)),
    }
}

/// Pushes `text` as events, with every bare http(s) URL in it made a
/// link (authors paste URLs; HTML readers should be able to click them).
fn link_bare_urls<'a>(text: CowStr<'a>, utm: Option<&Utm>, events: &mut Vec<Event<'a>>) {
    let mut rest: &str = &text;
    let mut pushed_any = false;
    while let Some(start) = find_url(rest) {
        let tail = &rest[start..];
        let mut end = tail
            .find(|c: char| c.is_whitespace() || c == '<')
            .unwrap_or(tail.len());
        // Sentence punctuation after a URL is not part of it; a closing
        // parenthesis is, when the URL opened one.
        while let Some(last) = tail[..end].chars().next_back() {
            let unbalanced_paren =
                last == ')' && tail[..end].matches('(').count() < tail[..end].matches(')').count();
            if ".,;:!?'\"’”".contains(last) || unbalanced_paren {
                end -= last.len_utf8();
            } else {
                break;
            }
        }
        let url = &tail[..end];
        if url.len() <= "https://".len() {
            events.push(Event::Text(CowStr::from(rest[..start + end].to_owned())));
        } else {
            if start > 0 {
                events.push(Event::Text(CowStr::from(rest[..start].to_owned())));
            }
            let dest_url = utm.map_or_else(|| url.to_owned(), |utm| utm.tag(url));
            events.push(Event::Start(Tag::Link {
                link_type: LinkType::Autolink,
                dest_url: CowStr::from(dest_url),
                title: CowStr::Borrowed(""),
                id: CowStr::Borrowed(""),
            }));
            events.push(Event::Text(CowStr::from(url.to_owned())));
            events.push(Event::End(TagEnd::Link));
        }
        pushed_any = true;
        rest = &tail[end.max(1).min(tail.len())..];
    }
    if !pushed_any {
        events.push(Event::Text(text));
    } else if !rest.is_empty() {
        events.push(Event::Text(CowStr::from(rest.to_owned())));
    }
}

/// Where the next http:// or https:// URL in `text` starts.
fn find_url(text: &str) -> Option<usize> {
    [text.find("https://"), text.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

/// Plain text from Markdown events: paragraphs apart, lists marked, quotes
/// prefixed, and every link target written out after its label.
fn plain_text(events: &[Event]) -> String {
    let mut writer = TextWriter::default();
    for event in events {
        writer.event(event);
    }
    writer.finish()
}

/// A block being written; nested blocks get their own and are indented
/// into their parent when they end.
#[derive(Default)]
struct Block {
    text: String,
    /// The first line's prefix and the prefix of the lines after it.
    prefix: Option<(String, String)>,
}

#[derive(Default)]
struct TextWriter {
    blocks: Vec<Block>,
    /// Open lists: the next number, or `None` for bullets.
    lists: Vec<Option<u64>>,
    /// Open links: their kind, target and where their label starts.
    links: Vec<(LinkType, String, usize)>,
}

impl TextWriter {
    fn out(&mut self) -> &mut String {
        if self.blocks.is_empty() {
            self.blocks.push(Block::default());
        }
        let last = self.blocks.len() - 1;
        &mut self.blocks[last].text
    }

    fn end_block(&mut self) {
        let out = self.out();
        let trimmed = out.trim_end_matches([' ', '\n']).len();
        out.truncate(trimmed);
        out.push_str("\n\n");
    }

    fn open(&mut self, first: String, rest: String) {
        self.blocks.push(Block {
            text: String::new(),
            prefix: Some((first, rest)),
        });
    }

    fn close(&mut self) {
        let Some(block) = self.blocks.pop() else {
            return;
        };
        let (first, rest) = block.prefix.unwrap_or_default();
        let body = block.text.trim_end_matches([' ', '\n']);
        let mut indented = String::with_capacity(body.len() + 16);
        for (index, line) in body.split('\n').enumerate() {
            let prefix = if index == 0 { &first } else { &rest };
            if line.is_empty() {
                indented.push_str(prefix.trim_end());
            } else {
                indented.push_str(prefix);
                indented.push_str(line);
            }
            indented.push('\n');
        }
        self.out().push_str(&indented);
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(*tag),
            Event::Text(text) | Event::Code(text) => self.out().push_str(text),
            Event::SoftBreak => self.out().push(' '),
            Event::HardBreak => self.out().push('\n'),
            Event::FootnoteReference(label) => {
                let mark = format!("[{label}]");
                self.out().push_str(&mark);
            }
            Event::Rule => {
                self.out().push_str("----");
                self.end_block();
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: &Tag) {
        match tag {
            Tag::BlockQuote(_) => self.open("> ".to_owned(), "> ".to_owned()),
            Tag::List(start) => self.lists.push(*start),
            Tag::Item => {
                let marker = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        *number += 1;
                        format!("{}. ", *number - 1)
                    }
                    _ => "- ".to_owned(),
                };
                let indent = " ".repeat(marker.chars().count());
                self.open(marker, indent);
            }
            Tag::Link {
                link_type,
                dest_url,
                ..
            } => {
                let at = self.out().len();
                self.links.push((*link_type, dest_url.to_string(), at));
            }
            // An image shows as its alt text in brackets.
            Tag::Image { .. } => self.out().push('['),
            Tag::FootnoteDefinition(label) => {
                let mark = format!("[{label}] ");
                self.out().push_str(&mark);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph
            | TagEnd::CodeBlock
            | TagEnd::HtmlBlock
            | TagEnd::Table
            | TagEnd::FootnoteDefinition => self.end_block(),
            TagEnd::Heading(level) => {
                let out = self.out();
                let line_start = out.rfind('\n').map_or(0, |at| at + 1);
                let width = out[line_start..].chars().count();
                let underline = if level == pulldown_cmark::HeadingLevel::H1 {
                    "="
                } else {
                    "-"
                };
                out.push('\n');
                out.push_str(&underline.repeat(width));
                self.end_block();
            }
            TagEnd::BlockQuote(_) => {
                self.close();
                self.out().push('\n');
            }
            TagEnd::Item => self.close(),
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.out().push('\n');
                }
            }
            TagEnd::TableCell => self.out().push_str(" | "),
            TagEnd::TableHead | TagEnd::TableRow => {
                let out = self.out();
                let trimmed = out.trim_end_matches([' ', '|']).len();
                out.truncate(trimmed);
                out.push('\n');
            }
            TagEnd::Link => {
                let Some((link_type, url, at)) = self.links.pop() else {
                    return;
                };
                let out = self.out();
                let bare = url.strip_prefix("mailto:").unwrap_or(&url);
                if matches!(link_type, LinkType::Autolink | LinkType::Email) {
                    // The target, UTM tags and all, stands in for the label.
                    out.truncate(at);
                    out.push_str(bare);
                } else if out
                    .get(at..)
                    .is_none_or(|label| label != url && label != bare)
                {
                    out.push_str(" (");
                    out.push_str(&url);
                    out.push(')');
                }
            }
            TagEnd::Image => self.out().push(']'),
            _ => {}
        }
    }

    fn finish(mut self) -> String {
        while self.blocks.len() > 1 {
            self.close();
        }
        let text = self
            .blocks
            .pop()
            .map(|block| block.text)
            .unwrap_or_default();
        text.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utm() -> Utm {
        Utm {
            campaign: "gut-immune".to_owned(),
            content: "gut-barrier".to_owned(),
        }
    }

    #[test]
    fn expressions_survive_markdown() {
        let converted = convert(
            "Hi {{subscriber.first_name}}, your *{{subscriber.fields.favourite_food}}* and {{{content}}}",
            None,
        );
        assert_eq!(
            converted.html,
            "<p>Hi {{subscriber.first_name}}, your <em>{{subscriber.fields.favourite_food}}</em> and {{{content}}}</p>\n"
        );
        assert_eq!(
            converted.text,
            "Hi {{subscriber.first_name}}, your {{subscriber.fields.favourite_food}} and {{{content}}}"
        );
    }

    #[test]
    fn an_escaped_expression_in_a_link_target_stays_escaped() {
        let converted = convert("Read [this](\\{{< ref >}}) now.\n", None);
        assert!(
            converted.html.contains("href=\"\\{{< ref >}}\""),
            "{}",
            converted.html
        );
        assert!(
            converted.text.contains("(\\{{< ref >}})"),
            "{}",
            converted.text
        );
    }

    #[test]
    fn unclosed_expressions_and_lookalikes_are_left_alone() {
        let (text, expressions) = Expressions::protect("a {{b}} c {{d");
        assert_eq!(expressions.restore(&text), "a {{b}} c {{d");
        assert_eq!(
            expressions.restore("DRIPLINEEXPR7X DRIPLINEEXPR"),
            "DRIPLINEEXPR7X DRIPLINEEXPR"
        );
    }

    #[test]
    fn utm_tags_keep_the_query_and_fragment() {
        let utm = utm();
        let tail =
            "utm_source=dripline&utm_medium=email&utm_campaign=gut-immune&utm_content=gut-barrier";
        assert_eq!(
            utm.tag("https://example.com/a"),
            format!("https://example.com/a?{tail}")
        );
        assert_eq!(
            utm.tag("https://example.com/a?x=1&y=2"),
            format!("https://example.com/a?x=1&y=2&{tail}")
        );
        assert_eq!(
            utm.tag("HTTP://example.com/a?x=1#top"),
            format!("HTTP://example.com/a?x=1&{tail}#top")
        );
        assert_eq!(
            utm.tag("https://example.com/#/route?q"),
            format!("https://example.com/?{tail}#/route?q")
        );
        for untouched in [
            "mailto:a@example.com",
            "#top",
            "/relative",
            "https://x.test/?utm_source=news",
        ] {
            assert_eq!(utm.tag(untouched), untouched);
        }
        let odd = Utm {
            campaign: "c".to_owned(),
            content: "día 1".to_owned(),
        };
        assert!(
            odd.tag("https://x.test")
                .ends_with("utm_content=d%C3%ADa%201")
        );
    }

    #[test]
    fn links_are_tagged_in_both_forms() {
        let converted = convert("Read [this](https://example.com/a?x=1#s).", Some(&utm()));
        let tagged = "https://example.com/a?x=1&amp;utm_source=dripline";
        assert!(converted.html.contains(tagged), "{}", converted.html);
        assert!(
            converted
                .text
                .starts_with("Read this (https://example.com/a?x=1&utm_source=dripline")
        );
        assert!(
            converted.text.ends_with("utm_content=gut-barrier#s)."),
            "{}",
            converted.text
        );
    }

    #[test]
    fn bare_urls_become_tagged_links() {
        let converted = convert(
            "See https://example.com/a_b?x=1. Or (https://example.com/w(1)) and `https://code.test`.",
            Some(&utm()),
        );
        assert!(
            converted.html.starts_with(
                "<p>See <a href=\"https://example.com/a_b?x=1&amp;utm_source=dripline"
            ),
            "{}",
            converted.html
        );
        assert!(
            converted.html.contains(
                ">https://example.com/a_b?x=1</a>. Or (<a href=\"https://example.com/w(1)?utm"
            ),
            "{}",
            converted.html
        );
        assert!(
            converted
                .html
                .contains(">https://example.com/w(1)</a>) and <code>https://code.test</code>"),
            "{}",
            converted.html
        );
        assert!(
            converted
                .text
                .starts_with("See https://example.com/a_b?x=1&utm_source=dripline&"),
            "{}",
            converted.text
        );
        assert!(
            !converted.text.contains(" (https://example.com/a_b"),
            "{}",
            converted.text
        );
    }

    #[test]
    fn footnotes_work_in_both_forms() {
        let converted = convert("A note.[^1]\n\n[^1]: The footnote.\n", None);
        assert!(converted.text.contains("A note.[1]"), "{}", converted.text);
        assert!(
            converted.text.contains("[1] The footnote."),
            "{}",
            converted.text
        );
        assert!(
            converted.html.contains("The footnote."),
            "{}",
            converted.html
        );
        assert!(!converted.html.contains("[^1]"), "{}", converted.html);
    }

    #[test]
    fn text_keeps_the_structure_of_the_markdown() {
        let source = "# Title\n\nOne\ntwo.\n\n- a\n- b with <https://example.com>\n\n1. first\n2. second\n\n> quoted\n> text\n\n---\n\n![a plate](x.png)";
        assert_eq!(
            convert(source, None).text,
            "Title\n=====\n\nOne two.\n\n- a\n- b with https://example.com\n\n1. first\n2. second\n\n> quoted text\n\n----\n\n[a plate]"
        );
    }
}
