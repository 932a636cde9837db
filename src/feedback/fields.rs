//! Header-style field blocks, as in a message's head, an RFC 3464
//! `message/delivery-status` body or an RFC 5965 `message/feedback-report`
//! body: `Name: value` lines, folded with leading white space, in groups
//! separated by blank lines. Pure.

/// One field: its name in lower case and its unfolded value, trimmed.
pub type Field = (String, String);

/// The groups of `text`, each a list of fields in order. Lines that are
/// neither a field nor a continuation are skipped.
pub fn groups(text: &str) -> Vec<Vec<Field>> {
    let mut groups = Vec::new();
    let mut group: Vec<Field> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// The fields of a single block (a message head): every group, joined.
pub fn block(text: &str) -> Vec<Field> {
    groups(text).into_iter().flatten().collect()
}

/// The first value of field `name` (lower case) in `fields`.
pub fn get<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

/// A typed value (`rfc822; alice@example.net`, `smtp; 550 …`) without
/// its type.
pub fn untyped(value: &str) -> &str {
    value.split_once(';').map_or(value, |(_, rest)| rest).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_at_blank_lines_and_unfold() {
        let text = "Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; a@example.net\r\nDiagnostic-Code: smtp; 550-5.1.1 one\r\n    550 5.1.1 two\r\n\r\n\r\nACTION: failed\n";
        let groups = groups(text);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            get(&groups[0], "reporting-mta"),
            Some("dns; mx.example.net")
        );
        assert_eq!(
            get(&groups[1], "diagnostic-code"),
            Some("smtp; 550-5.1.1 one 550 5.1.1 two")
        );
        assert_eq!(get(&groups[2], "action"), Some("failed"));
        assert_eq!(untyped("rfc822; a@example.net"), "a@example.net");
        assert_eq!(untyped("failed"), "failed");
    }
}
