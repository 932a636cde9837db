//! The corpus of real articles in `tests/fixtures/articles/real/`: each is
//! split the way a coach would (no `--days`) and judged by the
//! expectations written beside it before the splitter ran on it
//! (`X.expect.toml`), and by the invariants every split keeps: every
//! word once and in order, no unit cut, no empty or tiny day, subjects and
//! preheaders a coach can keep, and `--days N` giving N days.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use super::*;

/// What a split of one article must show, written before it was run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectations {
    days: DayRange,
    title: Option<String>,
    #[serde(default)]
    day_starts: Vec<String>,
    #[serde(default)]
    together: Vec<[String; 2]>,
    #[serde(default)]
    never_subject: Vec<String>,
    #[serde(default)]
    never_in_body: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DayRange {
    min: usize,
    max: usize,
}

fn corpus() -> Vec<(PathBuf, String, Expectations)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/articles/real");
    let mut articles: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    articles.retain(|path| {
        matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "txt")
        ) && path.with_extension("expect.toml").exists()
    });
    articles.sort();
    articles
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let expect_path = path.with_extension("expect.toml");
            let expect = fs::read_to_string(&expect_path).unwrap_or_default();
            let expectations = toml::from_str(&expect)
                .unwrap_or_else(|err| panic!("{}: {err}", expect_path.display()));
            (path, text, expectations)
        })
        .collect()
}

/// Backslash escapes removed, so that a snippet of plain text matches the
/// Markdown it became.
fn unescaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
            continue;
        }
        out.push(c);
    }
    out
}

fn has(body: &str, snippet: &str) -> bool {
    body.contains(snippet) || unescaped(body).contains(snippet)
}

/// The words of Markdown a reader sees, read independently of the
/// splitter: HTML comments, footnote definitions and lists of nothing but
/// `#anchor` links (a table of contents) left out.
fn reader_words(markdown: &str) -> Vec<String> {
    let mut words = String::new();
    let mut block = String::new();
    let mut depth = 0usize;
    let (mut footnote, mut anchors, mut other) = (false, 0, false);
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES) {
        match &event {
            Event::Start(tag) => {
                if depth == 0 {
                    footnote = matches!(tag, Tag::FootnoteDefinition(_));
                    (anchors, other) = (0, false);
                }
                if let Tag::Link { dest_url, .. } = tag {
                    if dest_url.starts_with('#') {
                        anchors += 1;
                    } else {
                        other = true;
                    }
                }
                depth += 1;
            }
            Event::End(end) => {
                depth -= 1;
                block.push(' ');
                if depth == 0 {
                    let contents = matches!(end, TagEnd::List(_)) && anchors >= 2 && !other;
                    if !footnote && !contents {
                        words.push_str(&block);
                    }
                    block.clear();
                }
            }
            Event::Text(text) | Event::Code(text) => block.push_str(text),
            Event::SoftBreak | Event::HardBreak => block.push(' '),
            _ => {}
        }
    }
    words
        .replace("\\{{", "{{")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The words of plain text, list markers and escapes aside.
fn plain_words(text: &str) -> Vec<String> {
    unescaped(text)
        .split_whitespace()
        .filter(|word| !matches!(*word, "-" | "•" | "*" | "#" | "##"))
        .filter(|word| {
            let digits = word.trim_end_matches(['.', ')']);
            !(digits.len() < word.len()
                && !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && word.len() - digits.len() == 1)
        })
        .map(str::to_owned)
        .collect()
}

/// The top-level Markdown blocks that must never be cut, as written.
fn whole_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut depth = 0usize;
    let mut anchors_only: Option<bool> = None;
    for (event, range) in Parser::new_ext(markdown, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                let whole = matches!(
                    tag,
                    Tag::List(_) | Tag::Table(_) | Tag::CodeBlock(_) | Tag::BlockQuote(_)
                );
                if depth == 0 && whole {
                    blocks.push(markdown[range].trim().to_owned());
                    anchors_only = Some(matches!(tag, Tag::List(_)));
                }
                if let Tag::Link { dest_url, .. } = &tag {
                    anchors_only = anchors_only.map(|only| only && dest_url.starts_with('#'));
                }
                depth += 1;
            }
            Event::End(_) => {
                depth -= 1;
                // A table of contents is dropped, not cut.
                if depth == 0 && anchors_only.take() == Some(true) {
                    blocks.pop();
                }
            }
            _ => {}
        }
    }
    blocks
}

/// Lines trimmed and hard breaks and Handlebars escapes undone, so that
/// a source block and the same block in a day compare equal.
fn normalised(text: &str) -> String {
    text.replace("\\{{", "{{")
        .lines()
        .map(|line| line.trim().trim_end_matches('\\'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn judge(path: &Path, text: &str, expect: &Expectations) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = Format::from_path(path);
    let course = split(text, format, None).unwrap_or_else(|err| panic!("{name}: {err}"));
    let subjects: Vec<&str> = course.days.iter().map(|day| day.subject.as_str()).collect();
    let count = course.days.len();
    assert!(
        (expect.days.min..=expect.days.max).contains(&count),
        "{name}: {count} days, expected {}..={}: {subjects:#?}",
        expect.days.min,
        expect.days.max
    );
    if let Some(title) = &expect.title {
        assert_eq!(
            course.title.as_deref(),
            Some(title.as_str()),
            "{name}: title"
        );
    }
    for start in &expect.day_starts {
        let opens = course.days.iter().any(|day| {
            let mut parts = day.body.split("\n\n");
            let first = parts.next().unwrap_or("");
            let opening = match &course.title {
                Some(title) if first.trim_start_matches('#').trim() == title => {
                    parts.next().unwrap_or("")
                }
                _ => first,
            };
            has(opening, start)
        });
        assert!(opens, "{name}: no day opens with {start:?}: {subjects:#?}");
    }
    for [first, second] in &expect.together {
        let day = course.days.iter().position(|day| has(&day.body, first));
        let other = course.days.iter().position(|day| has(&day.body, second));
        assert!(
            day.is_some() && day == other,
            "{name}: {first:?} (day {day:?}) and {second:?} (day {other:?}) are not in one day"
        );
    }
    for text in &expect.never_subject {
        assert!(
            subjects
                .iter()
                .all(|subject| !subject.contains(text.as_str())),
            "{name}: a subject contains {text:?}: {subjects:#?}"
        );
    }
    for text in &expect.never_in_body {
        assert!(
            course
                .days
                .iter()
                .all(|day| !day.body.contains(text.as_str())),
            "{name}: a body contains {text:?}"
        );
    }
    check_invariants(&name, text, format, &course);
    let words: Vec<String> = course
        .days
        .iter()
        .map(|day| day.words.to_string())
        .collect();
    let total: usize = course.days.iter().map(|day| day.words).sum();
    let headings = course
        .days
        .iter()
        .flat_map(|day| day.body.lines())
        .filter(|line| line.starts_with('#') && line.trim_start_matches('#').starts_with(' '))
        .count();
    format!(
        "| {name} | {total} | {headings} | {count} | {} |",
        words.join(" / ")
    )
}

fn check_invariants(name: &str, text: &str, format: Format, course: &Course) {
    let body = front::strip(&text.replace("\r\n", "\n")).body.to_owned();
    let (source, days): (Vec<String>, Vec<String>) = match format {
        Format::Markdown => (
            reader_words(&body),
            course
                .days
                .iter()
                .flat_map(|day| reader_words(&day.body))
                .collect(),
        ),
        Format::PlainText => (
            plain_words(&body),
            course
                .days
                .iter()
                .flat_map(|day| plain_words(&day.body))
                .collect(),
        ),
    };
    let differ = source
        .iter()
        .zip(&days)
        .position(|(a, b)| a != b)
        .unwrap_or(source.len().min(days.len()));
    assert!(
        source == days,
        "{name}: the days' words differ from the article's at word {differ}: {:?} against {:?}",
        &source[differ.saturating_sub(3)..(differ + 6).min(source.len())],
        &days[differ.saturating_sub(3)..(differ + 6).min(days.len())]
    );
    if format == Format::Markdown {
        for block in whole_blocks(&body) {
            let block = normalised(&block);
            assert!(
                course
                    .days
                    .iter()
                    .any(|day| normalised(&day.body).contains(&block)),
                "{name}: a block was cut or changed: {block}"
            );
        }
    }
    let total: usize = course.days.iter().map(|day| day.words).sum();
    for day in &course.days {
        assert!(!day.body.trim().is_empty(), "{name}: an empty day");
        assert!(
            day.words >= 40 || total < 80,
            "{name}: {} has {} words",
            day.subject,
            day.words
        );
        assert!(
            day.subject.chars().count() <= 70,
            "{name}: a long subject {:?}",
            day.subject
        );
        let headline = day.subject.split_once(": ").map_or("", |(_, rest)| rest);
        assert!(
            !day.preheader.is_empty(),
            "{name}: {} has no preheader",
            day.subject
        );
        assert_ne!(
            day.preheader.trim_end_matches('.'),
            headline,
            "{name}: preheader copies the subject"
        );
        for syntax in ["](", "**", "![", "[^", "\\{{", "<!--"] {
            assert!(
                !day.preheader.contains(syntax),
                "{name}: preheader {:?}",
                day.preheader
            );
        }
    }
}

#[test]
fn every_real_article_splits_as_expected() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 12,
        "the corpus has {} articles",
        corpus.len()
    );
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for (path, text, expect) in &corpus {
        match std::panic::catch_unwind(|| judge(path, text, expect)) {
            Ok(line) => lines.push(line),
            Err(panic) => failures.push(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("{}: failed", path.display())),
            ),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} articles fail:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    // `cargo test corpus -- --nocapture` prints the table for the notes.
    eprintln!("{}", lines.join("\n"));
}

#[test]
fn fixed_day_counts_hold_on_real_articles() {
    for (path, text, _) in corpus() {
        let format = Format::from_path(&path);
        for days in [1, 3, 8] {
            let Some(count) = NonZeroUsize::new(days) else {
                continue;
            };
            match split(&text, format, Some(count)) {
                Ok(course) => assert_eq!(course.days.len(), days, "{}", path.display()),
                Err(SplitError::TooFewParts { available, .. }) => assert!(available < days),
                Err(err) => panic!("{}: {err}", path.display()),
            }
        }
    }
}
