//! The template files of a sequence's layout, and turning them into
//! compiled Handlebars templates once per sequence.
//!
//! The `default` template ships inside the binary; a project overrides it
//! file by file from `templates/<name>/` (a file of the same name wins,
//! partials too). Layouts and partials are CSS-inlined here, before they
//! are compiled, because email clients drop `<style>`: Handlebars tags
//! outside HTML tags become HTML comments while css-inline parses the
//! document (comments survive anywhere, even between table rows, where
//! text would be moved), and are put back afterwards. This module reads
//! the template files but renders nothing.

use std::fs;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, Template, TemplateError};

use crate::diagnostic::{Problem, Report};

/// The name the HTML layout is registered under.
pub const HTML_LAYOUT: &str = "email.html";
/// The name the text layout is registered under.
pub const TEXT_LAYOUT: &str = "email.txt";

const HTML_FILE: &str = "email.html.hbs";
const TEXT_FILE: &str = "email.txt.hbs";
const PARTIALS_DIR: &str = "partials";

/// The built-in `default` template, as (path under `templates/default/`, text).
const BUILT_IN: &[(&str, &str)] = &[
    (
        HTML_FILE,
        include_str!("../../templates/default/email.html.hbs"),
    ),
    (
        TEXT_FILE,
        include_str!("../../templates/default/email.txt.hbs"),
    ),
    (
        "partials/button.hbs",
        include_str!("../../templates/default/partials/button.hbs"),
    ),
    (
        "partials/footer.hbs",
        include_str!("../../templates/default/partials/footer.hbs"),
    ),
    (
        "partials/preheader.hbs",
        include_str!("../../templates/default/partials/preheader.hbs"),
    ),
    (
        "partials/teaser.hbs",
        include_str!("../../templates/default/partials/teaser.hbs"),
    ),
];

/// The built-in default HTML layout, whose look other emails (the signup
/// confirmation) share.
pub fn built_in_layout() -> &'static str {
    BUILT_IN[0].1
}

/// One template file as written, with where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The project file, or a `(built in)` name for the default's files.
    pub file: PathBuf,
    pub text: String,
    /// True when the project supplied the file.
    pub custom: bool,
}

/// Every file a layout is made of, each either the project's or built in.
#[derive(Debug, Clone)]
pub struct TemplateFiles {
    pub html: Source,
    pub text: Source,
    /// Partials by name (the file name without `.hbs`), in name order.
    pub partials: Vec<(String, Source)>,
}

impl TemplateFiles {
    /// Reads template `name` from `templates_dir`, falling back to the
    /// built-in file for each file the project does not have.
    pub fn load(templates_dir: &Path, name: &str) -> Result<TemplateFiles, Report> {
        let dir = templates_dir.join(name);
        let mut report = Report::default();
        let mut read = |relative: &str, built_in: &str| {
            let path = dir.join(relative);
            match fs::read_to_string(&path) {
                Ok(text) => Source {
                    file: path,
                    text: text.replace("\r\n", "\n"),
                    custom: true,
                },
                Err(err) => {
                    if err.kind() != std::io::ErrorKind::NotFound {
                        report.push(Problem::error(
                            &path,
                            format!("cannot read the template: {err}"),
                        ));
                    }
                    Source {
                        file: PathBuf::from(format!("templates/default/{relative} (built in)")),
                        text: built_in.to_owned(),
                        custom: false,
                    }
                }
            }
        };
        let mut partials = Vec::new();
        let mut html = None;
        let mut text = None;
        for (relative, built_in) in BUILT_IN {
            let source = read(relative, built_in);
            match partial_name(relative) {
                Some(partial) => partials.push((partial.to_owned(), source)),
                None if *relative == HTML_FILE => html = Some(source),
                None => text = Some(source),
            }
        }
        let partials_dir = dir.join(PARTIALS_DIR);
        if let Ok(entries) = fs::read_dir(&partials_dir) {
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                let Some(partial) = file_name.strip_suffix(".hbs") else {
                    continue;
                };
                if partials.iter().any(|(name, _)| name == partial) {
                    continue;
                }
                let relative = format!("{PARTIALS_DIR}/{file_name}");
                partials.push((partial.to_owned(), read(&relative, "")));
            }
        }
        partials.sort_by(|a, b| a.0.cmp(&b.0));
        match (html, text) {
            (Some(html), Some(text)) if !report.has_errors() => Ok(TemplateFiles {
                html,
                text,
                partials,
            }),
            _ => Err(report),
        }
    }

    /// Whether the layouts and partials only ever place `content` as it
    /// is: `{{{content}}}` (or, in the text layout, `{{content}}`), never
    /// in a helper, a condition or a path. Then the rendered content can be
    /// put in after the layout instead of going through it.
    pub fn place_content_as_is(&self) -> bool {
        self.all().all(|(name, source)| {
            let allowed: &[&str] = if name == TEXT_LAYOUT {
                &["{content", "content"]
            } else {
                &["{content"]
            };
            mustaches(&source.text).all(|inner| {
                allowed.contains(&inner)
                    || !inner
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|word| word == "content")
            })
        })
    }

    /// Every file with its registered name, layouts first.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Source)> {
        [(HTML_LAYOUT, &self.html), (TEXT_LAYOUT, &self.text)]
            .into_iter()
            .chain(
                self.partials
                    .iter()
                    .map(|(name, source)| (name.as_str(), source)),
            )
    }

    /// The file a registered template name came from.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.all()
            .find(|(registered, _)| *registered == name)
            .map(|(_, source)| source)
    }

    /// Syntax errors in any file, with the file and line.
    pub fn syntax_problems(&self) -> Report {
        let mut report = Report::default();
        for (_, source) in self.all() {
            if let Some(problem) = compile_problem(&source.file, 1, &source.text) {
                report.push(problem);
            }
        }
        report
    }

    /// Warnings for a project's own layout that leaves out what every
    /// bulk email must show: the unsubscribe link and the postal address.
    pub fn compliance_warnings(&self) -> Report {
        let mut report = Report::default();
        let custom_partials = self.partials.iter().any(|(_, source)| source.custom);
        for layout in [&self.html, &self.text] {
            if !layout.custom && !custom_partials {
                continue;
            }
            for (variable, why) in [
                (
                    "unsubscribe_url",
                    "bulk email must offer a one-click unsubscribe link",
                ),
                (
                    "sender.postal_address",
                    "bulk email must show the sender's postal address (CAN-SPAM)",
                ),
            ] {
                if !self.mentions(&layout.text, variable, 0) {
                    report.push(Problem::warning(
                        &layout.file,
                        format!("the template never shows `{{{{{variable}}}}}`: {why}; add it, e.g. in the footer"),
                    ));
                }
            }
        }
        report
    }

    /// Whether `text`, or a partial it includes, mentions `variable`.
    fn mentions(&self, text: &str, variable: &str, depth: usize) -> bool {
        // Partials may include each other; a few levels is plenty.
        const MAX_DEPTH: usize = 8;
        text.contains(variable)
            || depth < MAX_DEPTH
                && self.partials.iter().any(|(name, source)| {
                    (text.contains(&format!("{{{{> {name}"))
                        || text.contains(&format!("{{{{#> {name}")))
                        && self.mentions(&source.text, variable, depth + 1)
                })
    }
}

fn partial_name(relative: &str) -> Option<&str> {
    relative.strip_prefix("partials/")?.strip_suffix(".hbs")
}

/// A Handlebars registry in strict mode; `escape` for HTML, off for text.
pub fn registry(escape: bool) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    if escape {
        registry.register_escape_fn(escape_html);
    } else {
        registry.register_escape_fn(handlebars::no_escape);
    }
    registry
}

/// What is between each `{{` and the `}}` after it (`{content` for
/// `{{{content}}}`).
fn mustaches(text: &str) -> impl Iterator<Item = &str> {
    text.split("{{")
        .skip(1)
        .map(|rest| rest.split_once("}}").map_or(rest, |(inner, _)| inner))
}

/// Escapes what can end text or a quoted attribute value. Handlebars'
/// own escaper also encodes `=`, which turns every query string in an
/// `href` into `&#x3D;` soup.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_html_into(&mut out, text);
    out
}

/// [`escape_html`], written onto the end of `out`.
pub fn escape_html_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Compiles `source` (which starts at line `first_line` of `file`) only to
/// find syntax errors. An unclosed or mismatched block is pointed at where
/// it opens: the parser itself only notices at the end of the file.
pub fn compile_problem(file: &Path, first_line: usize, source: &str) -> Option<Problem> {
    let err = Template::compile(source).err()?;
    let problem = match unbalanced_block(source) {
        Some((line, message)) => Problem::error(file, message).at_line(first_line + line - 1),
        None => template_problem(file, first_line, &err),
    };
    Some(problem)
}

/// The first block tag without its partner, with its 1-based line.
fn unbalanced_block(source: &str) -> Option<(usize, String)> {
    let mut open: Vec<(&str, &str, usize)> = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let tail = &rest[start..];
        let line = source.len() - rest.len() + start;
        let line = source[..line].matches('\n').count() + 1;
        let Some(len) = expression_len(tail) else {
            break;
        };
        let inner = tail[2..len - 2].trim_matches(|c| c == '{' || c == '}' || c == '~');
        if let Some(block) = inner.strip_prefix('#') {
            let name = block.split_whitespace().next().unwrap_or_default();
            open.push((name, &tail[..len], line));
        } else if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim();
            match open.pop() {
                Some((opened, _, _)) if opened == name => {}
                Some((opened, tag, at)) => {
                    return Some((
                        line,
                        format!(
                            "`{{{{/{name}}}}}` closes `{tag}` from line {at}; close it with `{{{{/{opened}}}}}` first"
                        ),
                    ));
                }
                None => {
                    return Some((
                        line,
                        format!("`{{{{/{name}}}}}` closes a block that was never opened"),
                    ));
                }
            }
        }
        rest = &tail[len..];
    }
    open.pop().map(|(name, tag, line)| {
        (
            line,
            format!("`{tag}` is never closed: add `{{{{/{name}}}}}` where the block ends"),
        )
    })
}

/// A template syntax error as a problem at `first_line + line - 1` of `file`.
pub fn template_problem(file: &Path, first_line: usize, err: &TemplateError) -> Problem {
    let problem = Problem::error(file, format!("template error: {}", err.reason()));
    match err.pos() {
        Some((line, _)) => problem.at_line(first_line + line.saturating_sub(1)),
        None => problem,
    }
}

/// The byte length of the Handlebars expression `tail` starts with
/// (`{{...}}`, `{{{...}}}` or `{{!-- ... --}}`), or `None` if unclosed.
pub fn expression_len(tail: &str) -> Option<usize> {
    let close = if tail.starts_with("{{!--") {
        "--}}"
    } else if tail.starts_with("{{{") {
        "}}}"
    } else {
        "}}"
    };
    tail.get(2..)?.find(close).map(|at| at + 2 + close.len())
}

/// Handlebars tags hidden from an HTML parser as comments.
struct HiddenTags(Vec<String>);

const HIDDEN_OPEN: &str = "<!--dripline:";
const HIDDEN_CLOSE: &str = "-->";
/// What an HTML serializer makes of a hidden tag inside `<title>`.
const ESCAPED_OPEN: &str = "&lt;!--dripline:";
const ESCAPED_CLOSE: &str = "--&gt;";

impl HiddenTags {
    /// Turns every Handlebars tag outside an HTML tag into a comment;
    /// tags inside HTML tags (attribute values) parse as text already.
    fn hide(html: &str) -> (String, HiddenTags) {
        let mut out = String::with_capacity(html.len() + 64);
        let mut tags = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find(['<', '{']) {
            let (before, tail) = rest.split_at(at);
            out.push_str(before);
            let taken = if tail.starts_with("<!--") {
                tail.find("-->").map_or(tail.len(), |end| end + 3)
            } else if tail.starts_with("{{") {
                match expression_len(tail) {
                    Some(len) => {
                        out.push_str(&format!("{HIDDEN_OPEN}{}{HIDDEN_CLOSE}", tags.len()));
                        tags.push(tail[..len].to_owned());
                        rest = &tail[len..];
                        continue;
                    }
                    None => tail.len(),
                }
            } else if tail.starts_with('<')
                && tail[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!')
            {
                html_tag_len(tail)
            } else {
                1
            };
            out.push_str(&tail[..taken]);
            rest = &tail[taken..];
        }
        out.push_str(rest);
        (out, HiddenTags(tags))
    }

    fn restore(&self, html: &str) -> String {
        let mut out = String::with_capacity(html.len() + 64);
        let mut rest = html;
        loop {
            let next = [(HIDDEN_OPEN, HIDDEN_CLOSE), (ESCAPED_OPEN, ESCAPED_CLOSE)]
                .into_iter()
                .filter_map(|(open, close)| rest.find(open).map(|at| (at, open, close)))
                .min_by_key(|(at, ..)| *at);
            let Some((at, open, close)) = next else { break };
            let after = &rest[at + open.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let tag = after[..digits]
                .parse::<usize>()
                .ok()
                .filter(|_| after[digits..].starts_with(close))
                .and_then(|index| self.0.get(index));
            out.push_str(&rest[..at]);
            match tag {
                Some(tag) => {
                    out.push_str(tag);
                    rest = &after[digits + close.len()..];
                }
                None => {
                    out.push_str(open);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The length of the HTML tag `tail` starts with, skipping quoted
/// attribute values and Handlebars expressions inside it.
fn html_tag_len(tail: &str) -> usize {
    let mut quote = None;
    let mut index = 1;
    let bytes = tail.as_bytes();
    while index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'>' => return index + 1,
            None if tail[index..].starts_with("{{") => {
                if let Some(len) = expression_len(&tail[index..]) {
                    index += len;
                    continue;
                }
            }
            None => {}
        }
        index += 1;
    }
    tail.len()
}

/// The CSS of every `<style>` element of a layout, for inlining the
/// fragments (step content, partials) that end up inside it.
pub fn layout_css(html: &str) -> String {
    let mut css = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<style") {
        let Some(open_end) = rest[start..].find('>') else {
            break;
        };
        let body = &rest[start + open_end + 1..];
        let end = body.find("</style>").unwrap_or(body.len());
        css.push_str(&body[..end]);
        css.push('\n');
        rest = &body[end..];
    }
    css
}

/// A whole layout with its `<style>` rules moved onto the elements
/// (media queries stay in a `<style>`), Handlebars tags intact.
pub fn inline_layout(html: &str) -> Result<String, String> {
    let (hidden, tags) = HiddenTags::hide(html);
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build();
    let inlined = inliner
        .inline(&hidden)
        .map_err(|err| format!("cannot inline the CSS: {err}"))?;
    Ok(tags.restore(&inlined))
}

/// An HTML fragment with `css` moved onto its elements, Handlebars tags intact.
pub fn inline_fragment(html: &str, css: &str) -> Result<String, String> {
    let (hidden, tags) = HiddenTags::hide(html);
    let inliner = css_inline::CSSInliner::options()
        .load_remote_stylesheets(false)
        .build();
    let inlined = inliner
        .inline_fragment(&hidden, css)
        .map_err(|err| format!("cannot inline the CSS: {err}"))?;
    Ok(tags.restore(&inlined))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_placed_as_is_only_when_every_mention_is_plain() {
        let source = |text: &str| Source {
            file: PathBuf::from("t.hbs"),
            text: text.to_owned(),
            custom: true,
        };
        let files = |html: &str, text: &str, partial: &str| TemplateFiles {
            html: source(html),
            text: source(text),
            partials: vec![("footer".to_owned(), source(partial))],
        };
        let plain = "<td content=\"x\">{{{content}}}</td>{{> footer}}{{content_type}}";
        assert!(files(plain, "{{content}}", "{{sender.name}}").place_content_as_is());
        assert!(!files("{{content}}", "{{content}}", "").place_content_as_is());
        assert!(!files(plain, "{{#if content}}{{content}}{{/if}}", "").place_content_as_is());
        assert!(!files(plain, "{{content}}", "{{{ content }}}").place_content_as_is());
        assert!(!files(plain, "{{content}}", "{{@root.content}}").place_content_as_is());
        // The built-in layout takes the short way.
        let built_in = TemplateFiles::load(Path::new("templates"), "default").expect("default");
        assert!(built_in.place_content_as_is());
    }

    #[test]
    fn unbalanced_blocks_are_found_where_they_open() {
        assert_eq!(
            unbalanced_block("a\n{{#if x}}\n{{#each y}}\n{{/if}}\n"),
            Some((
                4,
                "`{{/if}}` closes `{{#each y}}` from line 3; close it with `{{/each}}` first"
                    .to_owned()
            ))
        );
        assert_eq!(
            unbalanced_block("{{/if}}"),
            Some((
                1,
                "`{{/if}}` closes a block that was never opened".to_owned()
            ))
        );
        assert_eq!(
            unbalanced_block("{{#if x}}{{else}}{{/if}} {{!-- {{#if --}}"),
            None
        );
    }

    #[test]
    fn tags_outside_html_tags_are_hidden_and_restored() {
        let html = "<table>{{#each x}}<tr><td class=\"{{c}}\" title='a>b'>{{{y}}}</td></tr>{{/each}}</table><!-- {{keep}} -->";
        let (hidden, tags) = HiddenTags::hide(html);
        assert_eq!(
            hidden,
            "<table><!--dripline:0--><tr><td class=\"{{c}}\" title='a>b'><!--dripline:1--></td></tr><!--dripline:2--></table><!-- {{keep}} -->"
        );
        assert_eq!(tags.restore(&hidden), html);
        assert_eq!(
            tags.restore("&lt;!--dripline:1--&gt; <!--dripline:9-->"),
            "{{{y}}} <!--dripline:9-->"
        );
    }

    #[test]
    fn inlining_keeps_handlebars_tags_in_tables() {
        let html = "<html><head><title>{{step.subject}}</title><style>td { color: red; } @media (max-width: 400px) { td { color: blue !important; } }</style></head>\
                    <body><table><tbody>{{#if cta}}<tr><td><a href=\"{{cta.url}}\">{{cta.text}}</a></td></tr>{{/if}}</tbody></table></body></html>";
        let inlined = inline_layout(html).unwrap();
        assert!(
            inlined.contains("<title>{{step.subject}}</title>"),
            "{inlined}"
        );
        assert!(inlined.contains("{{#if cta}}<tr><td style=\"color: red;\"><a href=\"{{cta.url}}\">{{cta.text}}</a></td></tr>{{/if}}"), "{inlined}");
        assert!(inlined.contains("@media"), "{inlined}");
    }

    #[test]
    fn fragments_take_the_layout_css() {
        let css = layout_css("<style>p { margin: 0; }</style><style>a { color: red; }</style>");
        let inlined =
            inline_fragment("<p>Hi {{name}}, <a href=\"{{url}}\">go</a></p>", &css).unwrap();
        assert_eq!(
            inlined,
            "<p style=\"margin: 0;\">Hi {{name}}, <a href=\"{{url}}\" style=\"color: red;\">go</a></p>"
        );
    }

    #[test]
    fn html_escaping_covers_text_and_attributes() {
        assert_eq!(
            escape_html("<a href=\"x?a=1&b='2'\">"),
            "&lt;a href=&quot;x?a=1&amp;b=&#39;2&#39;&quot;&gt;"
        );
    }

    #[test]
    fn project_files_override_the_built_in_ones_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let custom = dir.path().join("custom");
        fs::create_dir_all(custom.join("partials")).unwrap();
        fs::write(custom.join("email.txt.hbs"), "{{content}}\n").unwrap();
        fs::write(custom.join("partials/footer.hbs"), "<p>bye</p>").unwrap();
        fs::write(custom.join("partials/extra.hbs"), "<p>extra</p>").unwrap();
        let files = TemplateFiles::load(dir.path(), "custom").unwrap();
        assert!(!files.html.custom);
        assert!(files.text.custom);
        let names: Vec<_> = files
            .partials
            .iter()
            .map(|(name, source)| (name.as_str(), source.custom))
            .collect();
        assert_eq!(
            names,
            [
                ("button", false),
                ("extra", true),
                ("footer", true),
                ("preheader", false),
                ("teaser", false)
            ]
        );
        let warnings = files.compliance_warnings();
        assert_eq!(warnings.warning_count(), 4, "{warnings}");
        assert!(
            TemplateFiles::load(dir.path(), "default")
                .unwrap()
                .compliance_warnings()
                .problems()
                .is_empty()
        );
    }
}
