//! Renders the fixture sequence end to end and checks the emails as a
//! mail client would see them.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, FixedOffset, NaiveDate};
use mail_parser::{MessageParser, MimeHeaders};

use super::*;
use crate::config::Sender;
use crate::sequence::Sequence;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(dir: &Path, templates_dir: &Path) -> Sequence {
    let mut report = Report::default();
    let sequence = Sequence::load(dir, templates_dir, &mut report);
    assert!(!report.has_errors(), "{report}");
    sequence.unwrap()
}

fn sender() -> Sender {
    Sender {
        from: "Terrain Wellness <hello@example.com>".parse().unwrap(),
        reply_to: Some("coach@example.com".parse().unwrap()),
        postal_address: Some("123 Main St, Springfield".to_owned()),
    }
}

fn links() -> UnsubscribeLinks {
    UnsubscribeLinks {
        base_url: Some("https://news.example.com/dripline".to_owned()),
        mailto: Some("unsubscribe@example.com".parse().unwrap()),
        key: Key::from_bytes([7; 32]),
    }
}

fn renderer() -> Renderer {
    let dir = fixture().join("sequences/gut-immune");
    let sequence = load(&dir, &fixture().join("templates"));
    Renderer::new(&sequence, &fixture().join("templates"), &sender(), links()).unwrap()
}

fn ada() -> Subscriber {
    Subscriber::new("ada@example.com".parse().unwrap()).with_name("Ada Lovelace")
}

fn date() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2026-11-25T08:00:00-05:00").unwrap()
}

fn tomorrow() -> Option<NaiveDate> {
    date().date_naive().checked_add_days(Days::new(1))
}

fn render(renderer: &Renderer, index: usize, subscriber: &Subscriber) -> Email {
    renderer
        .render(index, subscriber, tomorrow(), date(), false)
        .unwrap()
}

/// Compares `actual` with the committed snapshot; `UPDATE_SNAPSHOTS=1` rewrites it.
fn assert_snapshot(name: &str, actual: &str) {
    let path = fixture().join("snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        fs::write(&path, actual).unwrap();
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (rerun with UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn text_part_of_day_one_matches_the_snapshot() {
    let email = render(&renderer(), 0, &ada());
    assert_snapshot("gut-immune-day-1.txt", &email.text);
}

/// Spam filters score hidden text coloured like its background
/// (SpamAssassin's HTML_FONT_LOW_CONTRAST): the preheader is hidden by
/// display, size and opacity alone.
#[test]
fn the_preheader_is_hidden_without_a_text_colour() {
    let email = render(&renderer(), 0, &ada());
    let style = email
        .html
        .split("<div class=\"preheader\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("a preheader");
    for rule in [
        "display: none",
        "max-height: 0",
        "opacity: 0",
        "overflow: hidden",
        "mso-hide: all",
    ] {
        assert!(style.contains(rule), "{rule} in {style}");
    }
    assert!(!style.contains("color"), "{style}");
}

#[test]
fn html_part_has_the_layout_in_order() {
    let email = render(&renderer(), 0, &ada());
    let html = &email.html;
    let order = [
        "class=\"preheader\"",
        "About 70% of your immune system",
        "Day 1 of 5",
        "Hi Ada,",
        "The Gut–Immune Connection",
        "class=\"button-link\"",
        "Book a 1:1 coaching call",
        "Tomorrow:",
        "Day 2: Your gut is a barrier",
        "123 Main St, Springfield",
        "Unsubscribe",
    ];
    let mut from = 0;
    for needle in order {
        let at = html[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing after byte {from}:\n{html}"));
        from += at + needle.len();
    }
    assert!(
        !html.contains("<style") || html.contains("@media"),
        "only media queries stay in <style>"
    );
    assert!(html.contains("max-width: 600px"), "{html}");
    assert!(
        html.contains("<p style=\""),
        "content CSS is inlined: {html}"
    );
    assert!(!html.contains("{{"), "{html}");
}

#[test]
fn the_last_step_has_no_teaser() {
    let renderer = renderer();
    let email = renderer.render(4, &ada(), None, date(), false).unwrap();
    assert!(!email.html.contains("Tomorrow:"));
    assert!(!email.text.contains("Tomorrow:"));
    assert!(email.html.contains("Day 5 of 5"));
}

#[test]
fn a_later_next_step_is_not_announced_for_tomorrow() {
    let later = date().date_naive().checked_add_days(Days::new(3));
    let email = renderer().render(0, &ada(), later, date(), false).unwrap();
    assert!(
        email
            .text
            .contains("Coming next, Saturday, November 28: Day 2"),
        "{}",
        email.text
    );
    assert!(!email.html.contains("Tomorrow:"));
}

#[test]
fn every_message_parses_as_intended() {
    let renderer = renderer();
    let steps: Vec<String> = load(
        &fixture().join("sequences/gut-immune"),
        &fixture().join("templates"),
    )
    .steps
    .into_iter()
    .map(|step| step.id)
    .collect();
    for (index, step) in steps.iter().enumerate() {
        let email = render(&renderer, index, &ada());
        let bytes = email.message.bytes.clone();
        for line in bytes.split(|&byte| byte == b'\n') {
            assert!(line.len() <= 998, "a line of {} bytes", line.len());
        }
        let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
        assert_eq!(parsed.subject(), Some(email.subject.as_str()));
        assert_eq!(parsed.text_body.len(), 1);
        assert_eq!(parsed.html_body.len(), 1);
        let text_part = &parsed.parts[parsed.text_body[0] as usize];
        let html_part = &parsed.parts[parsed.html_body[0] as usize];
        assert!(
            parsed.text_body[0] < parsed.html_body[0],
            "text comes before HTML"
        );
        assert_eq!(text_part.content_type().unwrap().subtype(), Some("plain"));
        assert_eq!(html_part.content_type().unwrap().subtype(), Some("html"));
        let text = parsed.body_text(0).unwrap();
        let html = parsed.body_html(0).unwrap();
        assert_eq!(text.replace("\r\n", "\n").trim_end(), email.text.trim_end());

        let url = email.unsubscribe_url.clone().unwrap();
        assert!(url.starts_with("https://news.example.com/dripline/u/"));
        let token = url.rsplit('/').next().unwrap();
        let key = Key::from_bytes([7; 32]);
        assert_eq!(
            token::open(
                std::slice::from_ref(&key),
                token,
                token::Purpose::Unsubscribe
            ),
            Some(email.delivery_id)
        );
        assert_eq!(
            email.delivery_id,
            token::DeliveryId::of(&key, "gut-immune", "ada@example.com", step)
        );
        assert!(
            !url.contains("ada"),
            "the link does not show the address: {url}"
        );
        let list_unsubscribe = parsed.header_raw("List-Unsubscribe").unwrap();
        assert!(
            list_unsubscribe.contains(&format!("<{url}>")),
            "{list_unsubscribe}"
        );
        assert!(
            list_unsubscribe.contains(&format!(
                "<mailto:unsubscribe+{token}@example.com?subject=unsubscribe>"
            )),
            "{list_unsubscribe}"
        );
        assert_eq!(
            parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(text.contains(&url), "{text}");
        assert!(html.contains(&format!("href=\"{url}\"")), "{html}");

        assert_eq!(
            parsed
                .header_raw("List-Id")
                .map(|value| value.replace("\r\n", "").trim().to_owned())
                .as_deref(),
            Some("\"Your Gut, Your Immune System, and Inflammation\" <gut-immune.example.com>")
        );
        let message_id = parsed.message_id().unwrap();
        assert_eq!(format!("<{message_id}>"), email.message_id);
        assert!(message_id.starts_with("gut-immune.") && message_id.ends_with("@example.com"));
        let again = render(&renderer, index, &ada());
        assert_eq!(
            again.message_id, email.message_id,
            "the same on every attempt"
        );
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("hello@example.com")
        );
        assert_eq!(
            parsed.reply_to().unwrap().first().unwrap().address(),
            Some("coach@example.com")
        );
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(
            (to.name(), to.address()),
            (Some("Ada Lovelace"), Some("ada@example.com"))
        );
        assert_eq!(parsed.date().unwrap().to_timestamp(), date().timestamp());
    }
}

#[test]
fn subjects_decode_exactly_with_emoji_and_en_dash() {
    let email = renderer()
        .render(0, &ada(), tomorrow(), date(), true)
        .unwrap();
    let bytes = email.message.bytes.clone();
    assert!(
        bytes.is_ascii()
            || !String::from_utf8_lossy(&bytes)
                .lines()
                .any(|l| l.starts_with("Subject:") && !l.is_ascii())
    );
    let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("[TEST] Day 1: The Gut–Immune Connection 🌿")
    );
}

#[test]
fn subscriber_values_are_escaped_in_html_only() {
    let mallory =
        Subscriber::new("m@example.com".parse().unwrap()).with_name("<script>alert(1)</script>");
    let email = render(&renderer(), 0, &mallory);
    assert!(!email.html.contains("<script>"), "{}", email.html);
    assert!(
        email
            .html
            .contains("Hi &lt;script&gt;alert(1)&lt;/script&gt;,")
    );
    assert!(email.text.contains("Hi <script>alert(1)</script>,"));
}

#[test]
fn a_name_cannot_add_a_header() {
    let eve =
        Subscriber::new("eve@example.com".parse().unwrap()).with_name("Eve\r\nBcc: x@evil.test");
    let email = render(&renderer(), 0, &eve);
    let bytes = email.message.bytes.clone();
    let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
    assert!(parsed.bcc().is_none());
    assert!(parsed.header_raw("Bcc").is_none());
    let to = parsed.to().unwrap();
    assert_eq!(to.iter().count(), 1);
    assert_eq!(to.first().unwrap().address(), Some("eve@example.com"));
    let head = String::from_utf8_lossy(&bytes);
    let head = head.split("\r\n\r\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("bcc")),
        "{head}"
    );
}

#[test]
fn text_lines_fit_78_columns_and_urls_stay_whole() {
    let renderer = renderer();
    for index in 0..renderer.len() {
        let email = render(&renderer, index, &ada());
        for line in email.text.lines() {
            let single_word = !line.trim().contains(' ');
            assert!(
                line.chars().count() <= 78 || single_word,
                "too long: {line}"
            );
        }
        assert!(
            email
                .text
                .contains(email.unsubscribe_url.as_deref().unwrap())
        );
    }
    let day_one = render(&renderer, 0, &ada());
    let research = "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7242355/?report=reader&utm_term=gut-associated-lymphoid-tissue-overview&utm_source=dripline&utm_medium=email&utm_campaign=gut-immune&utm_content=gut-immune-connection#sec1-2";
    assert!(
        day_one.text.lines().any(|line| line == research),
        "{}",
        day_one.text
    );
    assert!(
        day_one
            .html
            .contains(&format!("href=\"{}\"", research.replace('&', "&amp;"))),
        "{}",
        day_one.html
    );
}

#[test]
fn links_are_utm_tagged_but_not_the_unsubscribe_link() {
    let renderer = renderer();
    let email = render(&renderer, 1, &ada());
    let tagged = "https://www.terrainwellnesscoach.com/blog/gut-lining?ref=email&amp;utm_source=dripline&amp;utm_medium=email&amp;utm_campaign=gut-immune&amp;utm_content=gut-barrier#start";
    assert!(email.html.contains(tagged), "{}", email.html);
    assert!(
        email.text.contains(&tagged.replace("&amp;", "&")),
        "{}",
        email.text
    );
    let cta = "https://www.terrainwellnesscoach.com/1-1-coaching-offers?utm_source=dripline&utm_medium=email&utm_campaign=gut-immune&utm_content=gut-barrier";
    assert!(email.text.contains(cta), "{}", email.text);
    let url = email.unsubscribe_url.unwrap();
    assert!(!url.contains("utm_"));
}

/// A project folder with a sequence and a custom template, for error tests.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(body: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let sequence = dir.path().join("sequences/course");
        fs::create_dir_all(&sequence).unwrap();
        fs::create_dir_all(dir.path().join("templates/custom/partials")).unwrap();
        fs::write(
            sequence.join("sequence.toml"),
            "name = \"Course\"\ntemplate = \"custom\"\n",
        )
        .unwrap();
        fs::write(
            sequence.join("01-hello.md"),
            format!("+++\nsubject = \"Hello\"\n+++\n{body}"),
        )
        .unwrap();
        Project { dir }
    }

    fn template(self, file: &str, text: &str) -> Project {
        fs::write(self.dir.path().join("templates/custom").join(file), text).unwrap();
        self
    }

    fn check(&self) -> Report {
        let templates = self.dir.path().join("templates");
        let sequence = load(&self.dir.path().join("sequences/course"), &templates);
        check(
            &sequence,
            &templates,
            &sender(),
            links(),
            &sample_subscriber(["favourite_food"]),
        )
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn renderer(&self) -> Renderer {
        let templates = self.dir.path().join("templates");
        let sequence = load(&self.dir.path().join("sequences/course"), &templates);
        Renderer::new(&sequence, &templates, &sender(), links()).unwrap()
    }
}

fn only_error(report: &Report) -> &Problem {
    let errors: Vec<_> = report
        .problems()
        .iter()
        .filter(|problem| problem.severity == crate::diagnostic::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{report}");
    errors[0]
}

#[test]
fn a_misspelled_variable_in_a_layout_names_its_file_and_line() {
    let project = Project::new("Hi.").template(
        "email.html.hbs",
        "<html><body>\n<p>{{{content}}}</p>\n<p>{{subscriber.frist_name}}</p>\n</body></html>",
    );
    let report = project.check();
    let problem = only_error(&report);
    assert_eq!(
        problem.file,
        project.path("templates/custom/email.html.hbs")
    );
    assert_eq!(problem.line, Some(3));
    assert!(
        problem
            .message
            .contains("did you mean `{{subscriber.first_name}}`"),
        "{problem}"
    );
}

#[test]
fn a_misspelled_variable_in_a_step_body_points_into_the_step_file() {
    let project = Project::new(
        "Hi {{subscriber.first_name}},\n\nYour {{subscriber.fields.favourite_food}}.\n\nBye {{sequence.nmae}}.\n",
    );
    let report = project.check();
    let problem = only_error(&report);
    assert_eq!(problem.file, project.path("sequences/course/01-hello.md"));
    // The front matter takes lines 1 to 3; the body starts on line 4.
    assert_eq!(problem.line, Some(8), "{problem}");
    assert!(problem.message.contains("sequence.nmae"), "{problem}");
}

#[test]
fn a_missing_partial_names_the_file_that_includes_it() {
    let project = Project::new("Hi.").template(
        "partials/footer.hbs",
        "<p>{{sender.postal_address}}</p>\n{{> legal}}\n",
    );
    let report = project.check();
    let problem = only_error(&report);
    assert_eq!(
        problem.file,
        project.path("templates/custom/partials/footer.hbs")
    );
    assert_eq!(problem.line, Some(2), "{problem}");
    assert!(problem.message.contains("partials/legal.hbs"), "{problem}");
}

#[test]
fn an_unclosed_block_is_a_syntax_error_with_a_line() {
    let project =
        Project::new("Hi.").template("email.txt.hbs", "{{content}}\n{{#if cta}}\n{{cta.url}}\n");
    let problem = only_error(&project.check()).clone();
    assert_eq!(problem.file, project.path("templates/custom/email.txt.hbs"));
    assert!(problem.line.is_some(), "{problem}");

    let project = Project::new("Hi.\n\n{{#each subscriber.fields}}\nx\n");
    let problem = only_error(&project.check()).clone();
    assert_eq!(problem.file, project.path("sequences/course/01-hello.md"));
    assert!(problem.line.is_some_and(|line| line >= 4), "{problem}");
}

#[test]
fn a_custom_layout_without_unsubscribe_link_or_address_is_warned_about() {
    let project = Project::new("Hi.").template("email.txt.hbs", "{{content}}\n");
    let report = project.check();
    assert_eq!(report.error_count(), 0, "{report}");
    assert_eq!(report.warning_count(), 2, "{report}");
    assert!(report.to_string().contains("unsubscribe_url"));
    assert!(report.to_string().contains("sender.postal_address"));
}

#[test]
fn the_built_in_template_checks_clean() {
    let dir = fixture().join("sequences/gut-immune");
    let sequence = load(&dir, &fixture().join("templates"));
    let report = check(
        &sequence,
        &fixture().join("templates"),
        &sender(),
        links(),
        &sample_subscriber([]),
    );
    assert!(report.problems().is_empty(), "{report}");
}

#[test]
fn a_renderer_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Renderer>();
    shareable::<Email>();
}

#[test]
fn a_test_email_never_shares_the_real_emails_message_id() {
    let renderer = renderer();
    let real = render(&renderer, 0, &ada());
    let test = renderer
        .render(0, &ada(), tomorrow(), date(), true)
        .unwrap();
    assert_ne!(test.message_id, real.message_id);
    assert!(test.message_id.contains("-test-"), "{}", test.message_id);
}

/// Subscribers whose values take every path through a stencil: set,
/// empty and missing names and columns, values to escape, and one that
/// looks like a stencil's mark.
fn varied_subscribers() -> Vec<Subscriber> {
    let address = |text: &str| text.parse().unwrap();
    vec![
        ada(),
        Subscriber::new(address("anon@example.com")),
        Subscriber::new(address("m@example.com"))
            .with_name("<b>Mallory</b> & \"Co\" 'x'")
            .with_field("city", "<Zürich> & co"),
        Subscriber::new(address("kim@example.com"))
            .with_name("Kim \u{1}0<\u{2} Park")
            .with_field("city", ""),
        Subscriber::new(address("lee@example.com"))
            .with_name("Lee")
            .with_field("city", "Busan"),
    ]
}

/// Renders step `index` for `subscriber` both ways, through the step's
/// stencil and through Handlebars alone, and says whether they agree.
fn both_ways(renderer: &Renderer, index: usize, subscriber: &Subscriber, next: Option<NaiveDate>) {
    let stenciled = renderer.render(index, subscriber, next, date(), false);
    let full = renderer.render_filled(index, subscriber, next, date(), &[]);
    match (stenciled, full) {
        (Ok(stenciled), Ok(full)) => {
            assert_eq!(stenciled.html, full.html, "{}", subscriber.email);
            assert_eq!(stenciled.text, full.text, "{}", subscriber.email);
            assert_eq!(stenciled.message.bytes, full.message.bytes);
        }
        (Err(stenciled), Err(full)) => assert_eq!(stenciled.0, *full.problem),
        (stenciled, full) => panic!(
            "{}: stenciled {:?}, full {:?}",
            subscriber.email,
            stenciled.map(|email| email.text),
            full.map(|email| email.text)
                .map_err(|failure| failure.problem)
        ),
    }
}

#[test]
fn stencils_render_exactly_what_handlebars_renders() {
    let renderer = renderer();
    let later = date().date_naive().checked_add_days(Days::new(3));
    for index in 0..renderer.len() {
        for subscriber in &varied_subscribers() {
            for next in [tomorrow(), later, None] {
                both_ways(&renderer, index, subscriber, next);
            }
        }
    }
    assert!(
        renderer
            .stencils
            .as_ref()
            .is_some_and(|s| s.ready() > renderer.len()),
        "the example's emails came from stencils"
    );
}

#[test]
fn columns_set_empty_or_missing_render_as_handlebars_renders_them() {
    let project = Project::new(
        "Hi {{subscriber.first_name}}{{#if subscriber.fields.city}} from {{subscriber.fields.city}}{{/if}}.\n\n\
         {{#unless subscriber.name}}Welcome, stranger.{{/unless}} Your city: {{{subscriber.fields.city}}}.",
    );
    let renderer = project.renderer();
    for subscriber in &varied_subscribers() {
        both_ways(&renderer, 0, subscriber, tomorrow());
    }
    let missing = renderer
        .render(0, &ada(), tomorrow(), date(), false)
        .unwrap_err();
    assert!(
        missing.0.message.contains("subscriber.fields.city"),
        "{}",
        missing.0
    );
}

#[test]
fn a_value_handed_to_a_helper_is_rendered_in_full_every_time() {
    let project = Project::new(
        "{{#each subscriber.fields}}{{@key}}: {{this}}. {{/each}}Bye {{lookup subscriber \"name\"}}.",
    );
    let renderer = project.renderer();
    assert!(renderer.stencils.is_none());
    let lee = &varied_subscribers()[4];
    let email = renderer.render(0, lee, tomorrow(), date(), false).unwrap();
    assert!(
        email.text.contains("city: Busan. Bye Lee."),
        "{}",
        email.text
    );
}

/// A project of two steps, so that the first has a `next`.
fn two_steps(body: &str) -> Project {
    let project = Project::new(body);
    fs::write(
        project.path("sequences/course/02-second.md"),
        "+++\nsubject = \"Second\"\n+++\nSecond step.\n",
    )
    .unwrap();
    project
}

#[test]
fn templates_that_reach_per_email_values_another_way_render_as_handlebars_does() {
    let text_layout =
        |layout: &str| format!("{{{{content}}}}\n{layout}\n{{{{unsubscribe_url}}}}\n");
    let projects = [
        two_steps("Hi {{subscriber.first_name}}.")
            .template("partials/teaser.hbs", "{{#if next.date}}On {{next.date}}{{/if}}")
            .template(
                "email.txt.hbs",
                &text_layout("{{#if next}}{{#with next}}{{#if tomorrow}}Tomorrow{{else}}Coming {{date}}{{/if}}{{/with}}{{/if}}"),
            ),
        two_steps("Hi.")
            .template("partials/teaser.hbs", "{{#if next.tomorrow}}Tomorrow!{{/if}}")
            .template("email.txt.hbs", &text_layout("{{#if next}}Next: {{lookup next \"date\"}}{{/if}}")),
        two_steps("Date is {{len (lookup next \"date\")}} characters."),
        two_steps("Keys:{{#each next}} {{@key}}{{/each}}.")
            .template("partials/teaser.hbs", "x")
            .template("email.txt.hbs", &text_layout("")),
        two_steps("{{#with next as |n|}}{{#if n.tomorrow}}Tomorrow{{else}}On {{n.date}}{{/if}}{{/with}}")
            .template("partials/teaser.hbs", "{{#if next.date}}{{next.date}}{{/if}}")
            .template("email.txt.hbs", &text_layout("")),
        Project::new("Hi {{subscriber.name}}.")
            .template("email.txt.hbs", &text_layout("({{len content}} characters)")),
        Project::new("A mark written in the step: \u{1}0<\u{2}."),
    ];
    let later = date().date_naive().checked_add_days(Days::new(3));
    for project in &projects {
        let renderer = project.renderer();
        for next in [tomorrow(), later, None] {
            both_ways(&renderer, 0, &ada(), next);
        }
    }
}

#[test]
fn a_value_of_several_lines_renders_as_handlebars_indents_it() {
    let project = Project::new("Hi.")
        .template("partials/signature.hbs", "{{subscriber.name}}\n")
        .template(
            "email.txt.hbs",
            "{{content}}\n    {{> signature}}\nend {{unsubscribe_url}}\n",
        );
    let renderer = project.renderer();
    let subscriber =
        Subscriber::new("x@example.com".parse().unwrap()).with_name("Line one\nLine two");
    both_ways(&renderer, 0, &subscriber, None);
    let email = renderer
        .render(0, &subscriber, None, date(), false)
        .unwrap();
    assert!(
        email.text.contains("    Line one\n    Line two"),
        "{}",
        email.text
    );
}

#[test]
fn a_value_holding_the_content_mark_is_printed_as_it_is() {
    let project = Project::new("Body.").template(
        "email.txt.hbs",
        "For {{subscriber.name}}:\n{{content}}\n{{unsubscribe_url}}\n",
    );
    let renderer = project.renderer();
    let subscriber = Subscriber::new("x@example.com".parse().unwrap()).with_name(CONTENT_MARK);
    both_ways(&renderer, 0, &subscriber, None);
    let email = renderer
        .render(0, &subscriber, None, date(), false)
        .unwrap();
    assert!(
        email
            .text
            .starts_with(&format!("For {CONTENT_MARK}:\nBody.")),
        "{:?}",
        email.text
    );
}

#[test]
fn lines_wrapped_around_a_value_break_where_the_filled_in_line_breaks() {
    let long = "Each morning you read a few minutes about your gut, and each line of this paragraph is far longer than the text part's width";
    let project = Project::new(&format!(
        "{long}, {{{{subscriber.name}}}}, {long}.\n\n> - {long} {{{{subscriber.first_name}}}}\n\n{long}."
    ));
    let renderer = project.renderer();
    let address = |text: &str| text.parse().unwrap();
    let names = [
        "Ada",
        "Bartholomew-Maximilian Featherstonehaugh-Cholmondeley of Upper Wallop",
        "名前が長い人名前が長い人名前が長い人名前が長い人",
    ];
    for name in names {
        let subscriber = Subscriber::new(address("x@example.com")).with_name(name);
        both_ways(&renderer, 0, &subscriber, None);
    }
    let email = renderer
        .render(
            0,
            &Subscriber::new(address("x@example.com")).with_name(names[1]),
            None,
            date(),
            false,
        )
        .unwrap();
    assert!(
        email
            .text
            .lines()
            .all(|line| line.chars().count() <= text::WIDTH || !line.trim().contains(' ')),
        "{}",
        email.text
    );
    assert!(email.text.contains("> - "), "{}", email.text);
}
