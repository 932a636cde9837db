//! Whole-article tests of the splitter: the fixtures under
//! `tests/fixtures/articles/` (shared with the CLI's integration tests), a
//! generated 20,000-word article, and properties over generated articles.

use std::num::NonZeroUsize;

use proptest::prelude::*;

use super::block::Block;
use super::*;

const GUT: &str = include_str!("../../tests/fixtures/articles/gut-immune-inflammation.txt");
const BARE_HEADINGS: &str = include_str!("../../tests/fixtures/articles/bare-headings.txt");
const MARKDOWN: &str = include_str!("../../tests/fixtures/articles/markdown-headings.md");
const NO_HEADINGS: &str = include_str!("../../tests/fixtures/articles/no-headings.txt");
const LISTS: &str = include_str!("../../tests/fixtures/articles/lists.txt");
const EMOJI: &str = include_str!("../../tests/fixtures/articles/emoji-quotes.txt");
const CRLF_BOM: &[u8] = include_bytes!("../../tests/fixtures/articles/crlf-bom.txt");
const THIRTY_WORDS: &str = include_str!("../../tests/fixtures/articles/thirty-words.txt");

const GUT_CTA: &str = "https://www.terrainwellnesscoach.com/1-1-coaching-offers";

fn days(count: usize) -> Option<NonZeroUsize> {
    NonZeroUsize::new(count)
}

fn split_ok(text: &str, format: Format, count: Option<NonZeroUsize>) -> Course {
    match split(text, format, count) {
        Ok(course) => course,
        Err(error) => panic!("split failed: {error}"),
    }
}

/// The words of Markdown or plain text, without the syntax the splitter
/// adds or drops: heading and list markers, setext underlines and
/// backslash escapes.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let underline = line.chars().count() >= 3 && line.chars().all(|c| c == '=' || c == '-');
        if underline {
            continue;
        }
        let line = strip_marker(line);
        let mut unescaped = String::with_capacity(line.len());
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
                continue;
            }
            unescaped.push(c);
        }
        words.extend(unescaped.split_whitespace().map(str::to_owned));
    }
    words
}

fn strip_marker(line: &str) -> &str {
    let hashes = line.len() - line.trim_start_matches('#').len();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        return &line[hashes..];
    }
    if let Some(rest) = line.strip_prefix('•') {
        return rest;
    }
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(bullet) {
            return rest;
        }
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = &line[digits..];
    if digits > 0 && (rest.starts_with(". ") || rest.starts_with(") ")) {
        return &rest[2..];
    }
    line
}

fn course_words(course: &Course) -> Vec<String> {
    course
        .days
        .iter()
        .flat_map(|day| words(&day.body))
        .collect()
}

/// Every body is tidy Markdown: blocks one blank line apart, no trailing
/// spaces, one final newline; every day has a subject, slug and preheader.
fn assert_well_formed(course: &Course) {
    assert!(!course.days.is_empty());
    let mut slugs = std::collections::HashSet::new();
    for day in &course.days {
        assert!(
            day.body.ends_with('\n') && !day.body.ends_with("\n\n"),
            "{:?}",
            day.body
        );
        assert!(!day.body.contains("\n\n\n"), "{:?}", day.body);
        assert!(
            day.body.lines().all(|line| line == line.trim_end()),
            "{:?}",
            day.body
        );
        assert!(!day.body.trim().is_empty());
        assert!(day.subject.starts_with("Day "), "{}", day.subject);
        assert!(!day.preheader.is_empty());
        assert!(day.preheader.chars().count() <= 100, "{}", day.preheader);
        assert!(!day.slug.is_empty());
        assert!(
            day.slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{}",
            day.slug
        );
        assert!(
            slugs.insert(day.slug.clone()),
            "duplicate slug {}",
            day.slug
        );
    }
}

fn subjects(course: &Course) -> Vec<&str> {
    course.days.iter().map(|day| day.subject.as_str()).collect()
}

// The example article.

const GUT_HEADINGS: [&str; 7] = [
    "The Gut–Immune Connection",
    "The Gut Barrier: A Key Piece of the Puzzle",
    "When the Microbiome Becomes Imbalanced",
    "Understanding Inflammation as Part of Your Terrain",
    "This Is Bigger Than One System",
    "A More Complete Perspective",
    "Moving Forward",
];

#[test]
fn the_example_article_has_its_title_and_seven_sections() {
    let document = plain::parse(GUT, true);
    assert_eq!(
        document.title.as_deref(),
        Some("What does it actually do inside the body?")
    );
    let headings: Vec<&str> = document
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::Heading { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(headings, GUT_HEADINGS, "body lines were taken for headings");
    let units = section::units(&document.blocks, None, Format::PlainText);
    assert_eq!(section::sections(&units), 7);
}

#[test]
fn by_default_the_example_article_is_one_section_a_day() {
    let course = split_ok(GUT, Format::PlainText, None);
    assert_well_formed(&course);
    assert_eq!(words(GUT), course_words(&course));
    assert_eq!(
        subjects(&course),
        [
            "Day 1: What does it actually do inside the body?",
            "Day 2: The Gut Barrier: A Key Piece of the Puzzle",
            "Day 3: When the Microbiome Becomes Imbalanced",
            "Day 4: Understanding Inflammation as Part of Your Terrain",
            "Day 5: This Is Bigger Than One System",
            "Day 6: A More Complete Perspective",
            "Day 7: Moving Forward",
        ]
    );
    // Day 1 is the intro with the first section; every later day opens
    // with its section's heading.
    assert!(course.days[0].body.starts_with(
        "# What does it actually do inside the body?\n\nOne of the most important roles"
    ));
    assert!(
        course.days[0]
            .body
            .contains("\n\n## The Gut–Immune Connection\n\n")
    );
    for (day, heading) in course.days[1..].iter().zip(&GUT_HEADINGS[1..]) {
        assert!(
            day.body.starts_with(&format!("## {heading}\n\n")),
            "{}",
            day.body
        );
    }
    assert_eq!(
        course.days[1].preheader,
        "Another important role of the gut is acting as a barrier."
    );
    assert!(
        course.days[0].body.contains(
            "In simple terms, beneficial microbes can:\n\n- help “train” the immune system"
        )
    );
    assert!(
        course.days[5]
            .body
            .contains("Instead of thinking:\n\n“I need to fix my gut”\n\n")
    );
    assert!(
        course.days[6]
            .body
            .ends_with(&format!("\n\n🌿 {GUT_CTA}\n"))
    );
    assert!(course.warnings.is_empty(), "{:?}", course.warnings);
}

#[test]
fn eight_days_of_the_example_cut_one_section_between_paragraphs() {
    let course = split_ok(GUT, Format::PlainText, days(8));
    assert_well_formed(&course);
    assert_eq!(words(GUT), course_words(&course));
    assert_eq!(course.days.len(), 8);
    let opening_at_heading = course.days[1..]
        .iter()
        .filter(|day| day.body.starts_with("## "))
        .count();
    assert_eq!(opening_at_heading, 6, "{:?}", subjects(&course));
}

#[test]
fn the_example_article_closes_with_its_coaching_link() {
    let course = split_ok(GUT, Format::PlainText, None);
    assert_eq!(
        course.cta,
        Some(CallToAction {
            text: "Learn more".to_owned(),
            url: GUT_CTA.to_owned(),
        })
    );
    let last = course
        .days
        .last()
        .map(|day| day.body.as_str())
        .unwrap_or("");
    assert!(last.ends_with(&format!("I’d love to support you through 1:1 coaching as you create a plan that fits your life and your healing journey.\n\n🌿 {GUT_CTA}\n")));
}

#[test]
fn the_example_article_cut_between_blocks_for_many_days() {
    for count in [9, 12, 20] {
        let course = split_ok(GUT, Format::PlainText, days(count));
        assert_eq!(course.days.len(), count);
        assert_well_formed(&course);
        assert_eq!(words(GUT), course_words(&course));
        // Lists stay whole.
        for list in source_lists(GUT) {
            assert!(
                course.days.iter().any(|day| day.body.contains(&list)),
                "{list}"
            );
        }
    }
}

/// Each run of `- ` lines in `text`, joined by newlines.
fn source_lists(text: &str) -> Vec<String> {
    let mut lists: Vec<Vec<&str>> = Vec::new();
    let mut in_list = false;
    for line in text.lines() {
        let item = line.starts_with("- ");
        match lists.last_mut() {
            Some(list) if item && in_list => list.push(line),
            _ if item => lists.push(vec![line]),
            _ => {}
        }
        in_list = item;
    }
    lists.into_iter().map(|list| list.join("\n")).collect()
}

// The other fixtures.

#[test]
fn plain_text_with_bare_headings_and_wrapped_paragraphs() {
    // The short intro goes with the first section: three days.
    let course = split_ok(BARE_HEADINGS, Format::PlainText, None);
    assert_well_formed(&course);
    assert_eq!(
        course.title.as_deref(),
        Some("Why Sleep Matters More Than You Think")
    );
    assert_eq!(
        subjects(&course),
        [
            "Day 1: Why Sleep Matters More Than You Think",
            "Day 2: Why Energy and Mood Depend on It",
            "Day 3: Gentle Ways to Protect Your Sleep",
        ]
    );
    assert!(
        course.days[0]
            .body
            .contains("\n\n## What Happens While You Sleep\n\n")
    );
    // Hard-wrapped lines are joined into one paragraph.
    assert!(course.days[0].body.contains(
        "through lighter and deeper stages, roughly every ninety minutes. Deep sleep comes"
    ));
    // The closing "Thank you" joins the last day instead of being a heading.
    assert!(
        course.days[2]
            .body
            .ends_with("wind down.\n\nThank you for reading!\n")
    );
    assert_eq!(words(BARE_HEADINGS), course_words(&course));
    assert_eq!(course.cta, None);
}

#[test]
fn markdown_with_atx_and_setext_headings() {
    let course = split_ok(MARKDOWN, Format::Markdown, days(3));
    assert_well_formed(&course);
    assert_eq!(course.title.as_deref(), Some("Eating for Steady Energy"));
    // The short last section joins the one before it.
    assert_eq!(
        subjects(&course),
        [
            "Day 1: Eating for Steady Energy",
            "Day 2: Timing Matters Too",
            "Day 3: Hydration and Caffeine",
        ]
    );
    let body = |index: usize| course.days[index].body.as_str();
    assert!(body(0).starts_with("# Eating for Steady Energy\n\n"));
    assert!(body(0).contains("## Build Your Plate\n\n"));
    // Inline syntax is kept as written.
    assert!(body(0).contains("[the plate guide](https://example.com/plate)"));
    assert!(body(0).contains("a sign of *how* we eat"));
    // Setext headings become ATX; the subsection stays inside its section.
    assert!(body(1).starts_with("## Timing Matters Too\n\n"));
    assert!(
        body(1).contains("\n\n1. Eat breakfast within a couple of hours of waking.\n2. Have lunch")
    );
    assert!(body(1).contains("### When Life Gets Busy"));
    assert!(body(2).starts_with("# Hydration and Caffeine\n\n"));
    assert!(body(2).contains("\n\n## Your Next Step\n\n"));
    assert_eq!(
        course.cta,
        Some(CallToAction {
            text: "Book a free call".to_owned(),
            url: "https://example.com/book".to_owned(),
        })
    );
    assert!(body(2).ends_with("[Book a free call](https://example.com/book).\n"));
    assert_eq!(words(MARKDOWN), course_words(&course));
    // Its sections are `#` (the title's level), so `##` headings are
    // subsections and `###` deeper; by default the five headings would
    // make five days, but three open every day at a `#` or `##` heading.
    let free = split_ok(MARKDOWN, Format::Markdown, None);
    assert_eq!(free, course);
    assert!(free.days.iter().all(|day| day.body.starts_with('#')));
}

#[test]
fn an_article_without_headings_is_split_between_paragraphs() {
    let course = split_ok(NO_HEADINGS, Format::PlainText, days(3));
    assert_well_formed(&course);
    assert_eq!(course.title, None);
    assert_eq!(words(NO_HEADINGS), course_words(&course));
    let paragraphs: Vec<&str> = NO_HEADINGS.split("\n\n").map(str::trim).collect();
    for day in &course.days {
        for paragraph in day.body.split("\n\n") {
            assert!(paragraphs.contains(&paragraph.trim()), "{paragraph}");
        }
    }
    assert_eq!(course.days[0].subject, "Day 1: I used to think that being…");
    // 301 words are less than one email's two-minute read.
    let free = split_ok(NO_HEADINGS, Format::PlainText, None);
    assert_eq!(free.days.len(), 1);
}

#[test]
fn lists_in_every_style_become_markdown_lists() {
    let course = split_ok(LISTS, Format::PlainText, None);
    assert_well_formed(&course);
    let all: String = course.days.iter().map(|day| day.body.as_str()).collect();
    assert!(all.contains(
        "include:\n\n- a glass of water before coffee\n- five minutes of daylight\n- a short stretch\n\n"
    ));
    assert!(all.contains("- a walk around the block\n- journaling"));
    assert!(all.contains("- checking email in bed\n- skipping breakfast"));
    assert!(all.contains("1. Set one alarm and get up with it.\n2. Drink water"));
    assert!(!all.contains('•') && !all.contains("* "));
    assert_eq!(words(LISTS), course_words(&course));
    let three = split_ok(LISTS, Format::PlainText, days(3));
    let starts: Vec<&str> = three
        .days
        .iter()
        .filter_map(|day| day.body.lines().next())
        .collect();
    assert_eq!(
        starts,
        [
            "# A Simple Morning Routine",
            "## What to Avoid",
            "## A Three-Step Plan",
        ]
    );
}

#[test]
fn emoji_and_curly_quotes_survive() {
    let course = split_ok(EMOJI, Format::PlainText, days(3));
    assert_well_formed(&course);
    assert_eq!(
        subjects(&course),
        [
            "Day 1: Finding Joy in Small Things ✨",
            "Day 2: Little Wins 🏆",
            "Day 3: A Question for You 🤔",
        ]
    );
    assert_eq!(course.days[1].slug, "little-wins");
    assert!(course.days[0].body.contains("## The Morning Cup ☕"));
    assert!(course.days[0].body.contains(
        "There’s something about the first sip of tea or coffee that says “the day can begin.”"
    ));
    assert!(
        course.days[1]
            .body
            .contains("‘Celebrate the small stuff’ isn’t")
    );
    assert_eq!(words(EMOJI), course_words(&course));
}

#[test]
fn crlf_line_endings_and_a_byte_order_mark() {
    let text = decode(CRLF_BOM).unwrap_or_default();
    assert!(text.starts_with("Rest and Recovery\nRecovery is where"));
    assert!(!text.contains('\r') && !text.contains('\u{feff}'));
    let course = split_ok(&text, Format::PlainText, days(2));
    assert_well_formed(&course);
    assert_eq!(course.title.as_deref(), Some("Rest and Recovery"));
    assert_eq!(course.days[1].subject, "Day 2: Active Rest Days");
    // `split` normalises on its own too.
    let raw = String::from_utf8_lossy(CRLF_BOM);
    assert_eq!(split_ok(&raw, Format::PlainText, days(2)), course);
}

#[test]
fn a_thirty_word_article_is_one_day() {
    let course = split_ok(THIRTY_WORDS, Format::PlainText, None);
    assert_well_formed(&course);
    assert_eq!(course.days.len(), 1);
    assert_eq!(course.days[0].subject, "Day 1: A Quick Note");
    assert_eq!(course.days[0].slug, "a-quick-note");
    assert_eq!(words(THIRTY_WORDS), course_words(&course));
    assert_eq!(
        split(THIRTY_WORDS, Format::PlainText, days(2)),
        Err(SplitError::TooFewParts {
            requested: 2,
            available: 1
        })
    );
}

/// A long article from a seeded pattern: sections of paragraphs and
/// lists, about `target` words.
fn long_article(target: usize) -> String {
    const WORDS: &[&str] = &[
        "the", "body", "adapts", "slowly", "and", "gut", "balance", "matters", "for", "energy",
        "sleep", "calm", "rhythm", "steady", "habits", "support", "healing", "over", "time",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = |bound: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % bound
    };
    let mut text = String::from("A Very Long Guide\n");
    let mut count = 0;
    let mut section = 0;
    while count < target {
        section += 1;
        text.push_str(&format!("Part {section} of the Guide\n"));
        for _ in 0..2 + next(5) {
            let length = 20 + next(60);
            let sentence: Vec<&str> = (0..length).map(|_| WORDS[next(WORDS.len())]).collect();
            text.push_str(&format!("Then {}.\n", sentence.join(" ")));
            count += length + 1;
            if next(4) == 0 {
                text.push_str("It helps:\n");
                for _ in 0..3 {
                    text.push_str(&format!(
                        "- {} {}\n",
                        WORDS[next(WORDS.len())],
                        WORDS[next(WORDS.len())]
                    ));
                }
                count += 8;
            }
        }
    }
    text
}

#[test]
fn a_twenty_thousand_word_article() {
    let text = long_article(20_000);
    let course = split_ok(&text, Format::PlainText, None);
    assert_well_formed(&course);
    assert_eq!(words(&text), course_words(&course));
    // Twelve emails at most by default, each opening at a section, and a
    // warning that says how to get two-minute days.
    assert_eq!(course.days.len(), 12);
    assert!(course.days.iter().all(|day| day.body.starts_with('#')));
    assert!(!course.warnings.is_empty());
    let total: usize = course.days.iter().map(|day| day.words).sum();
    let two_minute_days = format!("pass --days {} to cut it", total.div_ceil(400));
    assert!(
        course
            .warnings
            .iter()
            .all(|warning| warning.contains(&two_minute_days)),
        "{:?}",
        course.warnings
    );
    let fixed = split_ok(&text, Format::PlainText, days(150));
    assert_eq!(fixed.days.len(), 150);
    assert_eq!(words(&text), course_words(&fixed));
}

// Errors and input handling.

#[test]
fn decode_rejects_binary_and_empty_input() {
    assert_eq!(decode(b"text\0more"), Err(SplitError::Binary));
    assert_eq!(decode(&[0xff, 0xfe, b'a', 0]), Err(SplitError::Binary));
    assert_eq!(decode(b"caf\xe9"), Err(SplitError::Binary));
    assert_eq!(decode(b"bell \x07 here"), Err(SplitError::Binary));
    assert_eq!(decode(b""), Err(SplitError::Empty));
    assert_eq!(decode(b" \r\n\t\n"), Err(SplitError::Empty));
    assert_eq!(decode(b"\xef\xbb\xbf\n"), Err(SplitError::Empty));
    assert_eq!(decode(b"a\rb\r\nc\x0bd\n").as_deref(), Ok("a\nb\nc\nd\n"));
}

#[test]
fn split_rejects_empty_and_binary_text() {
    assert_eq!(split("", Format::PlainText, None), Err(SplitError::Empty));
    assert_eq!(
        split("  \n\n ", Format::Markdown, None),
        Err(SplitError::Empty)
    );
    assert_eq!(
        split("---\n\n***\n", Format::Markdown, None),
        Err(SplitError::Empty)
    );
    assert_eq!(
        split("a\0b", Format::PlainText, None),
        Err(SplitError::Binary)
    );
}

#[test]
fn too_many_days_for_the_article() {
    let error = split(GUT, Format::PlainText, days(1000));
    let Err(error) = error else {
        panic!("expected an error");
    };
    assert!(
        matches!(error, SplitError::TooFewParts { requested: 1000, available } if available < 1000)
    );
    assert!(error.to_string().contains("--days"));
}

#[test]
fn formats_follow_the_file_name() {
    use std::path::Path;
    assert_eq!(Format::from_path(Path::new("a/post.md")), Format::Markdown);
    assert_eq!(
        Format::from_path(Path::new("post.MARKDOWN")),
        Format::Markdown
    );
    assert_eq!(Format::from_path(Path::new("post.txt")), Format::PlainText);
    assert_eq!(Format::from_path(Path::new("post")), Format::PlainText);
}

#[test]
fn article_text_never_becomes_template_or_markdown_syntax() {
    let text = "Title Here\nHello {{name}}, welcome.\n# not a heading.\n1. was not a list in 2020. Honest.\n";
    let course = split_ok(text, Format::PlainText, None);
    let body = &course.days[0].body;
    assert!(body.contains("Hello \\{{name}}, welcome."), "{body}");
    assert!(body.contains("\\# not a heading."), "{body}");
    let markdown = split_ok("Hello {{name}}, *welcome*.\n", Format::Markdown, None);
    assert_eq!(markdown.days[0].body, "Hello \\{{name}}, *welcome*.\n");
}

// Properties over generated articles.

/// A generated article: what was written, before it is put into text.
#[derive(Debug, Clone)]
struct Model {
    title: Option<Vec<String>>,
    sections: Vec<ModelSection>,
}

#[derive(Debug, Clone)]
struct ModelSection {
    heading: Option<Vec<String>>,
    /// Paragraphs, each maybe followed by a list (so lists never touch).
    content: Vec<(Vec<String>, Option<ModelList>)>,
}

#[derive(Debug, Clone)]
struct ModelList {
    ordered: bool,
    /// Index into the bullet styles for the plain-text form.
    style: usize,
    items: Vec<Vec<String>>,
}

const BODY_WORDS: &[&str] = &[
    "gut",
    "immune",
    "Balance",
    "system,",
    "calm",
    "“quoted”",
    "🌿",
    "don’t",
    "{{name}}",
    "#tag",
    "50%",
    "→",
    "…really",
    "vs.",
    "(GALT)",
    "why?",
    "a+b",
    "Stress",
    "sleep",
    "the",
];
const HEADING_WORDS: &[&str] = &[
    "Gut", "Immune", "Sleep", "Moving", "Forward", "Terrain", "The", "Big",
];
const ITEM_WORDS: &[&str] = &[
    "food",
    "microbes",
    "rest",
    "🌿",
    "light",
    "“water”",
    "movement",
];

fn pick(
    vocabulary: &'static [&'static str],
    range: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(vocabulary), range)
        .prop_map(|words| words.into_iter().map(str::to_owned).collect())
}

/// A paragraph always ends a sentence, so it is never a heading.
fn paragraph() -> impl Strategy<Value = Vec<String>> {
    pick(BODY_WORDS, 1..40).prop_map(|mut words| {
        if let Some(last) = words.last_mut() {
            last.push('.');
        }
        words
    })
}

fn list() -> impl Strategy<Value = ModelList> {
    (
        any::<bool>(),
        0usize..3,
        prop::collection::vec(pick(ITEM_WORDS, 1..8), 1..5),
    )
        .prop_map(|(ordered, style, items)| ModelList {
            ordered,
            style,
            items,
        })
}

fn model() -> impl Strategy<Value = Model> {
    let content = prop::collection::vec((paragraph(), prop::option::of(list())), 1..4);
    let section = (prop::option::of(pick(HEADING_WORDS, 1..6)), content)
        .prop_map(|(heading, content)| ModelSection { heading, content });
    (
        prop::option::of(pick(HEADING_WORDS, 1..6)),
        prop::collection::vec(section, 1..8),
    )
        .prop_map(|(title, mut sections)| {
            // Every section after the first opens with a heading.
            for section in sections.iter_mut().skip(1) {
                section
                    .heading
                    .get_or_insert_with(|| vec!["Next".to_owned()]);
            }
            Model { title, sections }
        })
}

/// The ways a model is written out.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// One paragraph per line, no blank lines: pasted from a web page.
    Pasted,
    /// Blank lines between blocks.
    Spaced,
    /// Markdown, with ATX or setext headings.
    Markdown { setext: bool },
}

fn write(model: &Model, style: Style) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let markdown = matches!(style, Style::Markdown { .. });
    if let Some(title) = &model.title {
        let title = title.join(" ");
        blocks.push(if markdown {
            format!("# {title}")
        } else {
            title
        });
    }
    for section in &model.sections {
        if let Some(heading) = &section.heading {
            let heading = heading.join(" ");
            blocks.push(match style {
                Style::Markdown { setext: true } => {
                    format!("{heading}\n{}", "-".repeat(heading.len()))
                }
                Style::Markdown { setext: false } => format!("## {heading}"),
                _ => heading,
            });
        }
        for (paragraph, list) in &section.content {
            blocks.push(paragraph.join(" "));
            if let Some(list) = list {
                let items: Vec<String> = list
                    .items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let marker = match (list.ordered, markdown, list.style) {
                            (true, _, 0) => format!("{}.", index + 1),
                            (true, _, _) => format!("{})", index + 1),
                            (false, true, _) => "-".to_owned(),
                            (false, false, style) => ["-", "*", "•"][style].to_owned(),
                        };
                        format!("{marker} {}", item.join(" "))
                    })
                    .collect();
                blocks.push(items.join("\n"));
            }
        }
    }
    let separator = if matches!(style, Style::Pasted) {
        "\n"
    } else {
        "\n\n"
    };
    format!("{}\n", blocks.join(separator))
}

/// The model's words in order, and the word ranges of its paragraphs and lists.
fn expected(model: &Model) -> (Vec<String>, Vec<std::ops::Range<usize>>) {
    let mut words: Vec<String> = model.title.clone().unwrap_or_default();
    let mut blocks = Vec::new();
    for section in &model.sections {
        words.extend(section.heading.clone().unwrap_or_default());
        for (paragraph, list) in &section.content {
            let start = words.len();
            words.extend(paragraph.iter().cloned());
            blocks.push(start..words.len());
            if let Some(list) = list {
                let start = words.len();
                words.extend(list.items.iter().flatten().cloned());
                blocks.push(start..words.len());
            }
        }
    }
    (words, blocks)
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Pasted),
        Just(Style::Spaced),
        Just(Style::Markdown { setext: false }),
        Just(Style::Markdown { setext: true }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_word_once_in_order_and_blocks_whole(model in model(), style in style(), count in 1usize..16) {
        let text = write(&model, style);
        let format = match style {
            Style::Markdown { .. } => Format::Markdown,
            _ => Format::PlainText,
        };
        let (expected_words, blocks) = expected(&model);
        for request in [None, days(count)] {
            let course = match split(&text, format, request) {
                Ok(course) => course,
                Err(SplitError::TooFewParts { requested, available }) => {
                    prop_assert_eq!(available, blocks.len());
                    prop_assert!(requested > available);
                    continue;
                }
                Err(error) => return Err(TestCaseError::fail(format!("{error}"))),
            };
            if let Some(requested) = request {
                prop_assert!(requested.get() <= blocks.len());
                prop_assert_eq!(course.days.len(), requested.get());
            }
            prop_assert_eq!(&course_words(&course), &expected_words, "{}", text);
            // Where each day starts, in words; no block may straddle a start.
            let mut starts = Vec::new();
            let mut total = 0;
            for day in &course.days {
                let length = words(&day.body).len();
                prop_assert!(length > 0);
                starts.push(total);
                total += length;
            }
            for block in &blocks {
                prop_assert!(
                    starts.iter().all(|&start| start <= block.start || start >= block.end),
                    "block {:?} cut at {:?}\n{}", block, starts, text
                );
            }
            // No day is only headings.
            for day in &course.days {
                let heading = |block: &str| block.trim_start_matches('#').starts_with(' ');
                prop_assert!(day.body.split("\n\n").any(|block| !heading(block)), "{}", day.body);
            }
            if request.is_none() {
                assert_free_days_are_fair(&model, &course, expected_words.len())?;
            }
        }
    }
}

/// The pieces free splitting may not cut, in words: each paragraph or list
/// with the headings above it (the title goes with the first); a short
/// intro with the first section's opening piece; a one-paragraph last
/// section under 60 words with the piece before it.
fn free_pieces(model: &Model) -> Vec<usize> {
    let mut pieces: Vec<(usize, bool)> = Vec::new();
    let mut pending = model.title.as_ref().map_or(0, Vec::len);
    for section in &model.sections {
        pending += section.heading.as_ref().map_or(0, Vec::len);
        let mut opens = section.heading.is_some();
        for (paragraph, list) in &section.content {
            pieces.push((pending + paragraph.len(), opens));
            pending = 0;
            opens = false;
            if let Some(list) = list {
                pieces.push((list.items.iter().map(Vec::len).sum(), false));
            }
        }
    }
    let first_heading = pieces.iter().position(|&(_, opens)| opens);
    if let Some(first) = first_heading.filter(|&first| first > 0) {
        let intro: usize = pieces[..first].iter().map(|&(words, _)| words).sum();
        let joined = if intro < 200 { first + 1 } else { first };
        let words = pieces[..joined].iter().map(|&(words, _)| words).sum();
        pieces.splice(..joined, [(words, false)]);
    }
    let last = model.sections.last();
    let coda = last.is_some_and(|section| {
        section.heading.is_some()
            && section.content.len() == 1
            && section.content[0].1.is_none()
            && pieces
                .last()
                .is_some_and(|&(words, opens)| opens && words < 60)
    });
    if coda && pieces.len() > 1 {
        let (words, _) = pieces.pop().unwrap_or_default();
        if let Some(before) = pieces.last_mut() {
            before.0 += words;
        }
    }
    pieces.into_iter().map(|(words, _)| words).collect()
}

/// The shortest possible longest day over every way to cut `pieces` into
/// `days` days of at least `min` words, by brute force.
fn shortest_longest_day(pieces: &[usize], days: usize, min: usize) -> Option<usize> {
    let n = pieces.len();
    let mut best = vec![vec![None::<usize>; n + 1]; days + 1];
    best[0][0] = Some(0);
    for day in 1..=days {
        for end in 1..=n {
            for start in 0..end {
                let load: usize = pieces[start..end].iter().sum();
                if let Some(before) = best[day - 1][start].filter(|_| load >= min) {
                    let worst = before.max(load);
                    if best[day][end].is_none_or(|current| worst < current) {
                        best[day][end] = Some(worst);
                    }
                }
            }
        }
    }
    best[days][n]
}

/// A free split leaves no day under 40 words (unless the article is that
/// short) and its longest day within half again, or 100 words, of the
/// shortest longest day the pieces allow for that many days.
fn assert_free_days_are_fair(
    model: &Model,
    course: &Course,
    total: usize,
) -> Result<(), TestCaseError> {
    let lengths: Vec<usize> = course
        .days
        .iter()
        .map(|day| words(&day.body).len())
        .collect();
    if total >= 80 {
        prop_assert!(lengths.iter().all(|&length| length >= 40), "{:?}", lengths);
    }
    let pieces = free_pieces(model);
    let min = if total >= 80 { 40 } else { 0 };
    if let Some(best) = shortest_longest_day(&pieces, course.days.len(), min) {
        let longest = lengths.iter().copied().max().unwrap_or(0);
        prop_assert!(
            longest <= (best * 3 / 2).max(best + 100),
            "longest {} against {} for {:?} in {:?}",
            longest,
            best,
            lengths,
            pieces
        );
    }
    Ok(())
}
