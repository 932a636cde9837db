//! `dripline preview`: the files it writes, the messages inside them as a
//! mail client parses them, and what subscriber data can and cannot do.

use std::fs;
use std::path::Path;

use mail_parser::{Message, MessageParser, MimeHeaders};

use crate::support::{Project, assert_snapshot};

/// A fixed unsubscribe key, so links (and snapshots) do not change.
const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

const CONFIG: &str = r#"timezone = "America/New_York"

[sender]
from = "Terrain Wellness <hello@example.com>"
postal_address = "123 Main St, Springfield"

[[drip]]
sequence = "herbs"
list = "list.csv"

[unsubscribe]
base_url = "https://news.example.com/dripline"
mailto = "unsubscribe@example.com"
"#;

const LONG_URL: &str = "https://example.org/research/2026/gut-brain-axis/a-very-long-path-segment-that-keeps-going-well-past-the-seventy-eight-column-limit?source=newsletter&id=12345";
const LONG_LINK: &str = "https://example.org/another/very/long/link/that/is/also/longer/than/seventy-eight/characters/index.html";

/// A two-step sequence with an emoji subject, a greeting with the
/// subscriber's name and two long links, plus a list with hostile names.
fn project() -> Project {
    let project = Project::empty();
    project
        .write("dripline.toml", CONFIG)
        .write(".dripline-secret", SECRET)
        .write(
            "list.csv",
            "email,name,timezone\n\
             ada@example.com,Ada Lovelace,Europe/London\n\
             evil@example.com,<script>alert(1)</script>,\n\
             mallory@example.com,\"Mallory\r\nBcc: x@evil.test\",\n",
        )
        .write(
            "sequences/herbs/sequence.toml",
            "name = \"Gut and brain\"\nsend_at = \"0 8 * * *\"\n",
        )
        .write(
            "sequences/herbs/01-gut-brain.md",
            format!(
                "+++\nsubject = \"Day 1: Gut–brain 🌿\"\npreheader = \"How your gut talks to your brain.\"\n+++\n\
                 Hi {{{{subscriber.first_name}}}} ({{{{subscriber.name}}}}),\n\n\
                 Read the study at {LONG_URL} before tomorrow.\n\n\
                 Or follow [this link]({LONG_LINK}) when you have a minute to spare today.\n"
            ),
        )
        .write(
            "sequences/herbs/02-next.md",
            "+++\nsubject = \"Day 2: Next\"\nwait_days = 1\n+++\nMore.\n",
        );
    project
}

/// Runs `dripline preview ARGS --to DIR` and insists that it worked.
fn preview(project: &Project, dir: &str, args: &[&str]) {
    let mut all = vec!["preview", "--to", dir];
    all.extend_from_slice(args);
    let run = project.dripline(&all);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("the .eml parses")
}

/// The `.eml` files below `dir`, sorted.
fn emls(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
}

/// Every `href="..."` value in `html`.
fn hrefs(html: &str) -> Vec<&str> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect()
}

#[test]
fn preview_writes_every_step_and_a_timeline_with_relative_links() {
    let project = Project::example();
    preview(&project, "out", &[]);
    let steps: Vec<String> = fs::read_dir(project.path("sequences/gut-immune"))
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            Some(name.strip_suffix(".md")?.to_owned())
        })
        .collect();
    assert_eq!(steps.len(), 7);
    for step in &steps {
        for extension in ["html", "txt", "eml"] {
            let file = project.path(&format!("out/gut-immune/{step}.{extension}"));
            assert!(file.is_file(), "{} is missing", file.display());
        }
    }

    let index = project.read("out/index.html");
    let links = hrefs(&index);
    assert_eq!(links.len(), 3 * steps.len(), "{index}");
    for link in links {
        assert!(
            !link.starts_with('/') && !link.contains(':'),
            "`{link}` is not relative, so the folder breaks when moved"
        );
        assert!(
            project.path("out").join(link).is_file(),
            "`{link}` in index.html points at no file"
        );
    }
    // One row per step: day, date, subject, preheader and reading time.
    let first_row = index
        .lines()
        .find(|line| line.starts_with("<tr><td>1</td>"))
        .expect("a row for day 1");
    for expected in [
        "Day 1: What your gut actually does for your immune system",
        "About 70% of your immune system lives along your gut.",
        " min</td>",
    ] {
        assert!(first_row.contains(expected), "{first_row}");
    }
    let date = first_row.split("<td>").nth(2).unwrap();
    assert!(
        date.len() > "</td>".len() && !date.starts_with("never"),
        "{first_row}"
    );
}

/// Seconds since 1970, now.
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// A spam filter fed a preview must not see mail from the future (rspamd's
/// DATE_IN_FUTURE): the .eml files carry the time they were made, while
/// index.html shows the day each step would go out.
#[test]
fn preview_emails_are_dated_when_made_and_the_timeline_keeps_the_projected_days() {
    let project = Project::example();
    let before = unix_now();
    preview(&project, "out", &[]);
    let after = unix_now();
    let files = emls(&project.path("out/gut-immune"));
    assert_eq!(files.len(), 7);
    for file in &files {
        let bytes = fs::read(file).unwrap();
        let date = parse(&bytes).date().expect("a Date header").to_timestamp();
        assert!(
            (before - 1..=after + 1).contains(&date),
            "{}: Date {date} is not between {before} and {after}",
            file.display()
        );
    }
    let index = project.read("out/index.html");
    let mut days: Vec<&str> = index
        .lines()
        .filter(|line| line.starts_with("<tr><td>"))
        .filter_map(|row| row.split("<td>").nth(2))
        .collect();
    assert_eq!(days.len(), 7, "{index}");
    days.dedup();
    assert_eq!(days.len(), 7, "a projected day per step: {days:?}");
}

#[test]
fn every_message_parses_with_both_parts_and_one_click_unsubscribe() {
    let project = project();
    preview(&project, "out", &["--subscriber", "ada@example.com"]);
    let files = emls(&project.path("out/herbs"));
    assert_eq!(files.len(), 2);
    for file in files {
        let bytes = fs::read(&file).unwrap();
        for line in bytes.split(|&byte| byte == b'\n') {
            assert!(line.len() <= 998, "a line of {} bytes", line.len());
        }
        let message = parse(&bytes);
        let root = message.root_part().content_type().unwrap();
        assert_eq!(
            (root.ctype(), root.subtype()),
            ("multipart", Some("alternative"))
        );
        assert_eq!((message.text_body.len(), message.html_body.len()), (1, 1));
        let text_part = &message.parts[message.text_body[0] as usize];
        let html_part = &message.parts[message.html_body[0] as usize];
        assert!(message.text_body[0] < message.html_body[0], "text first");
        assert_eq!(text_part.content_type().unwrap().subtype(), Some("plain"));
        assert_eq!(html_part.content_type().unwrap().subtype(), Some("html"));

        let text = message.body_text(0).unwrap();
        let html = message.body_html(0).unwrap();
        let unsubscribe = message
            .header_raw("List-Unsubscribe")
            .unwrap()
            .replace("\r\n", "");
        let url = unsubscribe
            .split(['<', '>'])
            .find(|part| part.starts_with("https://news.example.com/dripline/u/"))
            .unwrap_or_else(|| panic!("no https link in `{unsubscribe}`"));
        let token = url.rsplit('/').next().unwrap();
        assert!(
            unsubscribe.contains(&format!(
                "<mailto:unsubscribe+{token}@example.com?subject=unsubscribe>"
            )),
            "{unsubscribe}"
        );
        assert!(text.contains(url), "{text}");
        assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
        assert_eq!(
            message.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        // What preview wrote beside the .eml is what the message carries.
        let txt = fs::read_to_string(file.with_extension("txt")).unwrap();
        assert_eq!(text.replace("\r\n", "\n").trim_end(), txt.trim_end());
    }
    let day_one = fs::read(project.path("out/herbs/01-gut-brain.eml")).unwrap();
    assert_eq!(parse(&day_one).subject(), Some("Day 1: Gut–brain 🌿"));
    let head = String::from_utf8_lossy(&day_one);
    let subject = head
        .lines()
        .find(|line| line.starts_with("Subject:"))
        .unwrap();
    assert!(subject.is_ascii(), "RFC 2047 encoded: {subject}");
}

#[test]
fn message_ids_and_unsubscribe_links_are_the_same_on_every_preview() {
    let project = project();
    preview(&project, "first", &["--subscriber", "ada@example.com"]);
    preview(&project, "second", &["--subscriber", "ada@example.com"]);
    for (first, second) in emls(&project.path("first/herbs"))
        .into_iter()
        .zip(emls(&project.path("second/herbs")))
    {
        let (first, second) = (fs::read(first).unwrap(), fs::read(second).unwrap());
        let (first, second) = (parse(&first), parse(&second));
        let id = first.message_id().unwrap();
        assert!(
            id.starts_with("herbs.") && id.ends_with("@example.com"),
            "{id}"
        );
        assert_eq!(Some(id), second.message_id());
        assert_eq!(
            first.header_raw("List-Unsubscribe"),
            second.header_raw("List-Unsubscribe")
        );
    }
}

#[test]
fn a_script_in_a_subscriber_name_is_escaped_in_the_html() {
    let project = project();
    preview(&project, "out", &["--subscriber", "evil@example.com"]);
    let html = project.read("out/herbs/01-gut-brain.html");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains(
            "Hi &lt;script&gt;alert(1)&lt;/script&gt; (&lt;script&gt;alert(1)&lt;/script&gt;),"
        ),
        "{html}"
    );
    let eml = fs::read(project.path("out/herbs/01-gut-brain.eml")).unwrap();
    let parsed = parse(&eml);
    assert!(!parsed.body_html(0).unwrap().contains("<script"));
    // The index names the subscriber too.
    assert!(!project.read("out/index.html").contains("<script"));
}

#[test]
fn a_line_break_in_a_subscriber_name_cannot_add_a_header() {
    let project = project();
    preview(&project, "out", &["--subscriber", "mallory@example.com"]);
    for file in emls(&project.path("out/herbs")) {
        let bytes = fs::read(&file).unwrap();
        let message = parse(&bytes);
        assert!(message.bcc().is_none());
        assert!(message.header_raw("Bcc").is_none());
        let to: Vec<_> = message.to().unwrap().iter().collect();
        assert_eq!(to.len(), 1);
        assert_eq!(to[0].address(), Some("mallory@example.com"));
        let raw = String::from_utf8_lossy(&bytes);
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head.to_ascii_lowercase().contains("\nbcc"),
            "a Bcc line in:\n{head}"
        );
    }
}

#[test]
fn a_long_url_is_never_broken_in_the_text_part() {
    let project = project();
    preview(&project, "out", &["--subscriber", "ada@example.com"]);
    let txt = project.read("out/herbs/01-gut-brain.txt");
    let eml = fs::read(project.path("out/herbs/01-gut-brain.eml")).unwrap();
    let decoded = parse(&eml).body_text(0).unwrap().replace("\r\n", "\n");
    for text in [&txt, &decoded] {
        for url in [LONG_URL, LONG_LINK] {
            let line = text
                .lines()
                .find(|line| line.contains(url))
                .unwrap_or_else(|| panic!("`{url}` is not whole on any line of:\n{text}"));
            // On a line of its own, perhaps in the parentheses of a link.
            assert!(
                line.trim_start_matches([' ', '(', '<']).starts_with(url),
                "`{url}` is glued to other text:\n{text}"
            );
        }
        for line in text.lines().filter(|line| !line.contains("https://")) {
            assert!(line.chars().count() <= 78, "too long: `{line}`");
        }
    }
}

/// The example project, its secret fixed, previewed for Ada.
fn example_day_one() -> (String, String) {
    let project = Project::example();
    project.write(".dripline-secret", SECRET);
    preview(&project, "out", &["--subscriber", "ada@example.com"]);
    (
        project.read("out/gut-immune/01-gut-immune-connection.txt"),
        project.read("out/gut-immune/01-gut-immune-connection.html"),
    )
}

#[test]
fn the_example_day_one_text_part_matches_the_snapshot() {
    let (text, _) = example_day_one();
    assert_snapshot("example-gut-immune-day-1.txt", &text);
}

#[test]
fn the_example_day_one_html_structure_matches_the_snapshot() {
    let (_, html) = example_day_one();
    assert_snapshot("example-gut-immune-day-1.html.outline", &outline(&html));
}

/// The element tree of `html`, one element a line, indented by depth,
/// with its class: the layout without the words.
fn outline(html: &str) -> String {
    const VOID: &[&str] = &["meta", "br", "img", "hr", "input", "link", "col"];
    let mut out = String::new();
    let mut depth = 0usize;
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(rest.len(), |end| end + 3);
            rest = &rest[end..];
            continue;
        }
        let end = rest.find('>').map_or(rest.len(), |end| end + 1);
        let tag = &rest[1..end - 1];
        rest = &rest[end..];
        if tag.starts_with('!') {
            continue;
        }
        if tag.starts_with('/') {
            depth = depth.saturating_sub(1);
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        let class = tag
            .split("class=\"")
            .nth(1)
            .and_then(|value| value.split('"').next())
            .map(|class| format!(" .{}", class.replace(' ', ".")))
            .unwrap_or_default();
        out.push_str(&"  ".repeat(depth));
        out.push_str(name);
        out.push_str(&class);
        out.push('\n');
        if !VOID.contains(&name) && !tag.ends_with('/') {
            depth += 1;
        }
        if name == "style" || name == "title" {
            // Skip the element's text, which may contain `<`.
            if let Some(close) = rest.find(&format!("</{name}>")) {
                rest = &rest[close..];
            }
        }
    }
    out
}

#[test]
fn a_plain_http_unsubscribe_link_is_never_offered_as_one_click() {
    // RFC 8058: one-click needs https. The example serves on http://127.0.0.1.
    let project = Project::example();
    project.write(".dripline-secret", SECRET);
    preview(&project, "out", &[]);
    for file in emls(&project.path("out/gut-immune")) {
        let bytes = fs::read(&file).unwrap();
        let message = parse(&bytes);
        let methods = message.header_raw("List-Unsubscribe").unwrap();
        assert!(methods.contains("<http://127.0.0.1:8025/u/"), "{methods}");
        assert_eq!(
            message.header_raw("List-Unsubscribe-Post"),
            None,
            "{file:?}"
        );
    }
}
