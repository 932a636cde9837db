//! What names a day: its subject, preheader and slug, drawn from its first
//! heading and first sentence. Plain text for an inbox, so Markdown's
//! inline syntax is stripped here; the body keeps it.

use std::collections::HashSet;

use super::Format;
use super::block::Block;
use super::markdown::visible;

/// Preheaders longer than this are cut at a word boundary.
const PREHEADER_MAX_CHARS: usize = 100;
/// A heading longer than this is shortened at a word boundary for a subject.
const HEADLINE_MAX_CHARS: usize = 60;
/// A subject drawn from body text takes at most this many words.
const SUBJECT_MAX_WORDS: usize = 6;
/// A slug takes at most this many words of the subject.
const SLUG_MAX_WORDS: usize = 5;

/// The subject without its `Day N: ` prefix: the day's first heading; for
/// day 1 opening without one, the title it opens with; else the article's
/// title and the day's number ("The Sleep Guide, part 3"); else the first
/// words of its first sentence. Long headings are shortened.
pub(crate) fn headline(
    blocks: &[Block],
    opening_title: Option<&str>,
    article_title: Option<&str>,
    number: usize,
    format: Format,
) -> String {
    // A numbered heading's number ("1. Single-task") is not part of its name.
    let heading = |block: &Block| match block {
        Block::Heading { text, .. } => Some(plain(without_number(text), format)),
        _ => None,
    };
    let opening = blocks.first().and_then(heading);
    let named = opening
        .or_else(|| opening_title.map(|title| plain(title, format)))
        .or_else(|| blocks.iter().find_map(heading))
        .filter(|name| !name.is_empty());
    if let Some(name) = named {
        return shorten(&name, HEADLINE_MAX_CHARS);
    }
    if let Some(title) = article_title {
        return format!(
            "{}, part {number}",
            shorten(&plain(title, format), HEADLINE_MAX_CHARS)
        );
    }
    let sentence = first_sentence(&first_text(blocks, format));
    let words: Vec<&str> = sentence.split_whitespace().collect();
    if words.len() > SUBJECT_MAX_WORDS {
        format!("{}…", words[..SUBJECT_MAX_WORDS].join(" "))
    } else {
        words
            .join(" ")
            .trim_end_matches(['.', ',', ';', ':', '。'])
            .to_owned()
    }
}

/// `text` without a leading `1.` or `1)`.
fn without_number(text: &str) -> &str {
    let rest = text.trim_start_matches(|c: char| c.is_ascii_digit());
    match rest.strip_prefix(['.', ')']) {
        Some(name) if rest.len() < text.len() && name.starts_with(' ') => name.trim_start(),
        _ => text,
    }
}

/// `Day N: <headline>`.
pub(crate) fn subject(number: usize, headline: &str) -> String {
    if headline.is_empty() {
        format!("Day {number}")
    } else {
        format!("Day {number}: {headline}")
    }
}

/// The day's first real sentence, cut to about 100 characters: plain
/// text, and not a copy of the subject (then the next sentence).
pub(crate) fn preheader(blocks: &[Block], headline: &str, format: Format) -> String {
    let text = first_text(blocks, format);
    let first = first_sentence(&text);
    let same = |sentence: &str| {
        sentence
            .trim_end_matches(['.', '!', '?', '…', '。', '！', '？'])
            .eq_ignore_ascii_case(headline.trim_end_matches('…'))
    };
    let sentence = if same(&first) && first.len() < text.len() {
        first_sentence(text[first.len()..].trim_start())
    } else {
        first
    };
    shorten(&sentence, PREHEADER_MAX_CHARS)
}

/// Lowercase ASCII words of `headline` joined with `-`, at most five; other
/// letters are transliterated when they can be and dropped otherwise.
/// Empty when the headline has no usable letters.
pub(crate) fn slug(headline: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in headline.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else if let Some(ascii) = transliterate(c) {
            word.push_str(ascii);
        } else if matches!(c, '\'' | '’') {
            // "don’t" is one word: `dont`.
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.truncate(SLUG_MAX_WORDS);
    words.join("-")
}

/// Makes slugs unique within a course and never empty: `day-N` stands in
/// for an empty one, and a repeat gets `-2`, `-3`, ...
pub(crate) fn unique_slugs(slugs: Vec<String>) -> Vec<String> {
    let mut taken = HashSet::new();
    slugs
        .into_iter()
        .enumerate()
        .map(|(index, slug)| {
            let base = if slug.is_empty() {
                format!("day-{}", index + 1)
            } else {
                slug
            };
            let mut candidate = base.clone();
            let mut suffix = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{base}-{suffix}");
                suffix += 1;
            }
            candidate
        })
        .collect()
}

/// Text for an inbox: Markdown's syntax, URLs, image text and reference
/// labels removed; whitespace collapsed.
pub(crate) fn plain(text: &str, format: Format) -> String {
    match format {
        Format::PlainText => text.split_whitespace().collect::<Vec<_>>().join(" "),
        Format::Markdown => visible(text),
    }
}

/// The first paragraph, list item or quote of the day, as plain text.
fn first_text(blocks: &[Block], format: Format) -> String {
    blocks
        .iter()
        .find_map(|block| {
            match block {
                Block::Paragraph(text) => Some(plain(text, format)),
                // Only an item's own line: nested lines would run into it.
                Block::List(items) => items
                    .first()
                    .and_then(|item| item.text.lines().next())
                    .map(|line| plain(line, format)),
                Block::Verbatim(text) if !text.starts_with(['`', '~', '<', '|', ' ', '\t']) => {
                    Some(plain(text.lines().next().unwrap_or(""), format))
                }
                Block::Heading { .. } | Block::Verbatim(_) => None,
            }
            .filter(|text| !text.is_empty())
        })
        .unwrap_or_default()
}

/// Up to and including the first sentence's closing punctuation (and any
/// closing quote after it); abbreviations such as "e.g." do not end it.
fn first_sentence(text: &str) -> String {
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if matches!(c, '。' | '！' | '？') {
            // Chinese and Japanese sentences end without a space after.
            return text[..index + c.len_utf8()].to_owned();
        }
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        let mut end = index + c.len_utf8();
        while let Some(&(next_index, next)) = chars.peek() {
            if matches!(next, '"' | '”' | '’' | '\'' | ')') {
                end = next_index + next.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let at_break = chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        let word = text[..index]
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or("");
        if at_break && !(c == '.' && is_abbreviation(word)) && end < text.len() {
            return text[..end].to_owned();
        }
    }
    text.to_owned()
}

fn is_abbreviation(word: &str) -> bool {
    let word = word.to_lowercase();
    word.chars().count() == 1
        || matches!(
            word.as_str(),
            "e.g"
                | "i.e"
                | "vs"
                | "etc"
                | "dr"
                | "mr"
                | "mrs"
                | "ms"
                | "st"
                | "approx"
                | "no"
                | "fig"
        )
}

/// Cuts `text` to at most `max_chars` characters at a word boundary, with `…`.
fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let budget = max_chars - 1;
    let mut out = String::new();
    for word in text.split_whitespace() {
        let needed = out.chars().count() + usize::from(!out.is_empty()) + word.chars().count();
        if needed > budget {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = text.chars().take(budget).collect();
    }
    let out = out.trim_end_matches([',', ';', ':', '.', '-', '–', '—']);
    format!("{out}…")
}

/// An ASCII spelling for common accented Latin letters.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' | 'ă' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paragraph(text: &str) -> Block {
        Block::Paragraph(text.to_owned())
    }

    fn heading(text: &str) -> Block {
        Block::Heading {
            level: 2,
            text: text.to_owned(),
        }
    }

    fn name(blocks: &[Block], opening_title: Option<&str>, article_title: Option<&str>) -> String {
        headline(blocks, opening_title, article_title, 3, Format::PlainText)
    }

    #[test]
    fn headline_prefers_the_opening_heading_then_the_title() {
        let blocks = [heading("The Gut Barrier"), paragraph("Text.")];
        assert_eq!(name(&blocks, Some("Title"), None), "The Gut Barrier");
        let blocks = [paragraph("Intro."), heading("Later")];
        assert_eq!(name(&blocks, Some("Title"), None), "Title");
        assert_eq!(name(&blocks, None, Some("Title")), "Later");
        let blocks = [heading("2. Batch the small stuff"), paragraph("Text.")];
        assert_eq!(name(&blocks, None, None), "Batch the small stuff");
        let blocks = [heading("2020 in review"), paragraph("Text.")];
        assert_eq!(name(&blocks, None, None), "2020 in review");
    }

    #[test]
    fn a_long_heading_is_shortened_at_a_word() {
        let blocks = [heading(
            "The Gut Barrier and Why It Matters More Than You Might Think for Immunity",
        )];
        assert_eq!(
            name(&blocks, None, None),
            "The Gut Barrier and Why It Matters More Than You Might…"
        );
    }

    #[test]
    fn headline_falls_back_to_the_title_and_part_then_the_first_words() {
        let blocks = [paragraph("Rest is a skill. It can be learned.")];
        assert_eq!(name(&blocks, None, Some("Sleep")), "Sleep, part 3");
        assert_eq!(name(&blocks, None, None), "Rest is a skill");
        let blocks = [paragraph("One two three four five six seven eight.")];
        assert_eq!(name(&blocks, None, None), "One two three four five six…");
    }

    #[test]
    fn subjects_number_the_day() {
        assert_eq!(subject(2, "The Gut Barrier"), "Day 2: The Gut Barrier");
        assert_eq!(subject(3, ""), "Day 3");
    }

    #[test]
    fn preheaders_are_the_first_sentence_cut_at_a_word() {
        let blocks = [heading("H"), paragraph("Short one, e.g. this. Then more.")];
        assert_eq!(
            preheader(&blocks, "H", Format::PlainText),
            "Short one, e.g. this."
        );
        let long = "One of the most important roles your microbiome plays is in how your body responds, protects, and adapts.";
        let cut = preheader(&[paragraph(long)], "H", Format::PlainText);
        assert_eq!(
            cut,
            "One of the most important roles your microbiome plays is in how your body responds, protects, and…"
        );
        assert!(cut.chars().count() <= 100);
        let list = Block::List(vec![super::super::block::ListItem {
            number: None,
            text: "first item".to_owned(),
        }]);
        assert_eq!(preheader(&[list], "H", Format::PlainText), "first item");
    }

    #[test]
    fn a_preheader_is_not_a_copy_of_the_subject() {
        let blocks = [paragraph("Sleep matters. Here is why it does.")];
        assert_eq!(
            preheader(&blocks, "Sleep matters", Format::PlainText),
            "Here is why it does."
        );
        let markdown = [paragraph(
            "![A chart](c.png) See [the study][s] first. Then.",
        )];
        assert_eq!(
            preheader(&markdown, "H", Format::Markdown),
            "See the study first."
        );
        let cjk = [paragraph("肠道是免疫的中心。我们每天都要照顾它。")];
        assert_eq!(
            preheader(&cjk, "H", Format::PlainText),
            "肠道是免疫的中心。"
        );
    }

    #[test]
    fn markdown_inline_syntax_is_stripped_for_the_inbox() {
        assert_eq!(
            plain(
                "A **bold** [link](https://x.y) and `code` \\# and snake_case",
                Format::Markdown
            ),
            "A bold link and code # and snake_case"
        );
        assert_eq!(plain("5 * 3", Format::PlainText), "5 * 3");
    }

    #[test]
    fn slugs_are_short_lowercase_ascii() {
        assert_eq!(
            slug("The Gut–Immune Connection"),
            "the-gut-immune-connection"
        );
        assert_eq!(
            slug("What does it actually do inside the body?"),
            "what-does-it-actually-do"
        );
        assert_eq!(slug("Crème brûlée, señor!"), "creme-brulee-senor");
        assert_eq!(slug("Don’t Panic"), "dont-panic");
        assert_eq!(slug("🌿 → ✨"), "");
    }

    #[test]
    fn slugs_are_unique_and_never_empty() {
        let slugs = vec![
            "a".to_owned(),
            String::new(),
            "a".to_owned(),
            "a".to_owned(),
        ];
        assert_eq!(unique_slugs(slugs), ["a", "day-2", "a-2", "a-3"]);
    }
}
