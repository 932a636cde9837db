//! Front matter: YAML between `---` lines or TOML between `+++` lines at
//! the very top of an article. Only its title is read; nothing of it is
//! ever sent, so it is cut off before the article is parsed.

/// An article's text with its front matter cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stripped<'a> {
    /// The front matter's `title`, when it has one.
    pub title: Option<String>,
    /// Everything after the closing delimiter line.
    pub body: &'a str,
    /// How many lines the front matter took, delimiters included.
    pub lines: usize,
}

/// Cuts the front matter off `text` (LF line endings). Text without a
/// closed front matter block is returned whole.
pub(crate) fn strip(text: &str) -> Stripped<'_> {
    let whole = Stripped {
        title: None,
        body: text,
        lines: 0,
    };
    let Some(delimiter) = ["---", "+++"]
        .into_iter()
        .find(|delimiter| text.lines().next().map(str::trim_end) == Some(*delimiter))
    else {
        return whole;
    };
    let mut offset = text.find('\n').map_or(text.len(), |end| end + 1);
    let mut title = None;
    for line in text[offset..].split_inclusive('\n') {
        offset += line.len();
        if line.trim_end() == delimiter {
            return Stripped {
                title,
                body: &text[offset..],
                lines: text[..offset].matches('\n').count(),
            };
        }
        if title.is_none() {
            title = title_of(line, delimiter);
        }
        if title
            .as_deref()
            .is_some_and(|value| value.starts_with(['>', '|']))
        {
            title = folded(&text[offset..]);
        }
    }
    whole
}

/// A YAML block scalar (`title: >` or `title: |`): its indented lines
/// that follow, joined with spaces.
fn folded(rest: &str) -> Option<String> {
    let lines: Vec<&str> = rest
        .lines()
        .take_while(|line| line.starts_with([' ', '\t']))
        .map(str::trim)
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// The value of a top-level `title: …` (YAML) or `title = …` (TOML) line.
fn title_of(line: &str, delimiter: &str) -> Option<String> {
    let separator = if delimiter == "---" { ':' } else { '=' };
    let rest = line.strip_prefix("title")?.trim_start();
    let value = rest.strip_prefix(separator)?.trim();
    let unquoted = ['"', '\'']
        .into_iter()
        .find_map(|quote| {
            value
                .strip_prefix(quote)
                .and_then(|inner| inner.strip_suffix(quote))
        })
        .unwrap_or(value);
    let title = unquoted.replace("\\\"", "\"");
    (!title.trim().is_empty()).then(|| title.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_front_matter_gives_its_title_and_is_cut_off() {
        let text =
            "---\nlayout: post\ntitle: \"The Sleep Guide\"\nsubtitle: Rest well\n---\n\n# Intro\n";
        let stripped = strip(text);
        assert_eq!(stripped.title.as_deref(), Some("The Sleep Guide"));
        assert_eq!(stripped.body, "\n# Intro\n");
        assert_eq!(stripped.lines, 5);
    }

    #[test]
    fn a_folded_yaml_title() {
        let stripped =
            strip("---\ntitle: >\n  Seven tips on\n  meetings\nlayout: post\n---\nText.\n");
        assert_eq!(stripped.title.as_deref(), Some("Seven tips on meetings"));
    }

    #[test]
    fn toml_front_matter_too() {
        let stripped = strip("+++\ndate = 2024-01-01\ntitle = 'Hugo Post'\n+++\nText.\n");
        assert_eq!(stripped.title.as_deref(), Some("Hugo Post"));
        assert_eq!(stripped.body, "Text.\n");
    }

    #[test]
    fn no_or_unclosed_front_matter_leaves_the_text_alone() {
        assert_eq!(strip("Title\n\nText.\n").body, "Title\n\nText.\n");
        let unclosed = "---\ntitle: x\nno end\n";
        assert_eq!(strip(unclosed).body, unclosed);
        assert_eq!(strip(unclosed).title, None);
        // A nested `title:` is not the article's.
        assert_eq!(strip("---\nseo:\n  title: x\n---\nT\n").title, None);
    }
}
