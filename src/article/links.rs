//! Links and images that cannot work in an email: a relative URL or a
//! `#anchor` points into the website the article came from, a site
//! shortcode (`{{< ref … >}}`) is never expanded, and a reference link
//! without its definition is printed as brackets. Pure: it reads one
//! email's Markdown and says where each problem is.

use pulldown_cmark::{BrokenLink, CowStr, Event, LinkType, Options, Parser, Tag};

/// One link that will not work, at a 1-based line of the Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProblem {
    pub line: usize,
    pub message: String,
}

/// URL schemes that work from an inbox.
const SCHEMES: &[&str] = &["http://", "https://", "mailto:", "tel:"];

/// Every link, image and shortcode in `markdown` that will not work in an
/// email, in order.
pub fn unusable_links(markdown: &str) -> Vec<LinkProblem> {
    let line_of = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    let mut problems: Vec<(usize, String)> = Vec::new();
    let mut broken: Vec<(usize, String)> = Vec::new();
    // `[text]` alone is often just brackets ("[sic]", "[1]"); `[text][label]`
    // and `[text][]` are meant as links.
    let callback = |link: BrokenLink<'_>| {
        if link.link_type != LinkType::Shortcut {
            broken.push((link.span.start, link.reference.to_string()));
        }
        None::<(CowStr<'_>, CowStr<'_>)>
    };
    let parser =
        Parser::new_with_broken_link_callback(markdown, Options::ENABLE_TABLES, Some(callback));
    for (event, range) in parser.into_offset_iter() {
        let (kind, url) = match &event {
            Event::Start(Tag::Link { dest_url, .. }) => ("link", dest_url),
            Event::Start(Tag::Image { dest_url, .. }) => ("image", dest_url),
            _ => continue,
        };
        if let Some(reason) = unusable(url) {
            problems.push((range.start, format!("the {kind} to `{url}` {reason}")));
        }
    }
    let broken = broken
        .into_iter()
        .filter(|(_, label)| !label.starts_with('^'));
    problems.extend(broken.map(
        |(at, label)| {
            (
                at,
                format!("the reference link `[{label}]` has no definition (`[{label}]: https://…`) in this email, so it shows as brackets"),
            )
        },
    ));
    problems.extend(shortcodes(markdown));
    problems.sort_by_key(|(at, _)| *at);
    problems
        .into_iter()
        .map(|(at, message)| LinkProblem {
            line: line_of(at),
            message,
        })
        .collect()
}

/// Why a link's URL will not work from an inbox, if it will not. A
/// shortcode in it is reported as a shortcode.
fn unusable(url: &str) -> Option<&'static str> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with('#') {
        Some(
            "points to a place in the web page, which an email does not have; link to the full https:// address or remove the link",
        )
    } else if url.starts_with("{{")
        || url.starts_with("\\{{")
        || url.is_empty()
        || SCHEMES.iter().any(|scheme| lower.starts_with(scheme))
    {
        None
    } else {
        Some(
            "is relative to the website it came from and goes nowhere from an inbox; write the full https:// address",
        )
    }
}

/// Site shortcodes and template tags: Hugo's `{{< … >}}` and `{{% … %}}`,
/// Liquid's and Nunjucks' `{% … %}`, escaped or not.
fn shortcodes(markdown: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (opener, closer) in [("{{<", ">}}"), ("{{%", "%}}"), ("{%", "%}")] {
        for (at, _) in markdown.match_indices(opener) {
            // `{{%` is Hugo's, already found as such.
            if opener == "{%" && markdown[..at].ends_with('{') {
                continue;
            }
            let end = markdown[at..]
                .find(closer)
                .map_or(markdown.len(), |end| at + end + closer.len());
            let code: String = markdown[at..end].chars().take(60).collect();
            found.push((
                at,
                format!("the site shortcode `{code}` is never expanded in an email; replace it with its text or a full https:// link"),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_and_starts(markdown: &str) -> Vec<(usize, String)> {
        unusable_links(markdown)
            .into_iter()
            .map(|problem| {
                let start: String = problem.message.chars().take(24).collect();
                (problem.line, start)
            })
            .collect()
    }

    #[test]
    fn relative_urls_anchors_shortcodes_and_missing_definitions() {
        let markdown = "Intro [ok](https://example.com) and [mail](mailto:a@example.com).\n\nSee [below](#below) and ![chart](/img/chart.png).\n\nRead [this]({{< ref \"post.md\" >}}) and [that][missing].\n\nHi {{subscriber.first_name}}, [cta]({{cta.url}}).\n\n{% include toc.html %}\n";
        assert_eq!(
            lines_and_starts(markdown),
            [
                (3, "the link to `#below` poi".to_owned()),
                (3, "the image to `/img/chart".to_owned()),
                (5, "the site shortcode `{{< ".to_owned()),
                (5, "the reference link `[mis".to_owned()),
                (9, "the site shortcode `{% i".to_owned()),
            ]
        );
    }

    #[test]
    fn a_defined_reference_link_works() {
        assert!(unusable_links("A [Fitbit][f].\n\n[f]: https://fitbit.example/\n").is_empty());
    }
}
