//! The list file: CSV rows in, [`Subscriber`]s and per-row problems out.
//!
//! A bad row (invalid address, unknown time zone, bad date, wrong column
//! count, not UTF-8) is skipped and reported with its line number and
//! reason; the good rows are still served. A duplicate address (letter case
//! aside) is reported and its first row wins. dripline never writes to
//! the list file; this module only reads from a reader it is handed.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use lettre::Address;

use crate::diagnostic::{Problem, Report};
use crate::zone::Zone;

/// One person on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// Their address as written in the list.
    pub email: Address,
    /// Display name.
    pub name: Option<String>,
    /// Given explicitly; otherwise derived from `name` by [`Subscriber::first_name`].
    pub first_name: Option<String>,
    /// When their clock starts; `None`: the first time dripline sees the row.
    pub subscribed_at: Option<Joined>,
    /// Their own time zone, overriding the sequence's and the config's.
    pub timezone: Option<Zone>,
    /// `status = unsubscribed` in the list.
    pub unsubscribed: bool,
    /// Every other column, for templates as `subscriber.fields.<column>`.
    pub fields: BTreeMap<String, String>,
}

/// A `subscribed_at` value: an exact time, or a date meaning local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    At(DateTime<Utc>),
    Date(NaiveDate),
}

impl Subscriber {
    /// A subscriber with only an address.
    pub fn new(email: Address) -> Subscriber {
        Subscriber {
            email,
            name: None,
            first_name: None,
            subscribed_at: None,
            timezone: None,
            unsubscribed: false,
            fields: BTreeMap::new(),
        }
    }

    /// Sets the display name; blank names count as none.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = non_blank(name.into());
        self
    }

    /// Sets the first name; blank names count as none.
    pub fn with_first_name(mut self, first_name: impl Into<String>) -> Self {
        self.first_name = non_blank(first_name.into());
        self
    }

    /// Adds a list column for `subscriber.fields.<name>`.
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// The key that identifies them: see [`key`].
    pub fn key(&self) -> String {
        key(self.email.as_ref())
    }

    /// The first name: given, or the first word of the name.
    pub fn first_name(&self) -> Option<&str> {
        self.first_name
            .as_deref()
            .or_else(|| self.name.as_deref()?.split_whitespace().next())
    }
}

/// The key that identifies an address everywhere (state, suppression,
/// tokens, Message-IDs): the address in lower case, as nearly every
/// mailbox provider treats addresses. One function, so they always agree.
pub fn key(address: &str) -> String {
    address.to_lowercase()
}

/// What a list file holds: the good rows, in order, and the problems.
#[derive(Debug, Default)]
pub struct List {
    pub subscribers: Vec<Subscriber>,
    pub report: Report,
}

/// The columns dripline gives a meaning to; every other one is a field.
const KNOWN: [&str; 6] = [
    "email",
    "name",
    "first_name",
    "subscribed_at",
    "timezone",
    "status",
];

/// Reads a list file from `reader`; `file` names it in problems.
pub fn parse(reader: impl Read, file: &Path) -> List {
    let mut list = List::default();
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut records = csv.byte_records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(err)) => {
            list.report
                .push(Problem::error(file, format!("cannot read the list: {err}")).at_line(1));
            return list;
        }
        None => {
            list.report.push(Problem::warning(
                file,
                "the list is empty: the first line must be a header such as `email,name`",
            ));
            return list;
        }
    };
    let columns: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let name = String::from_utf8_lossy(name);
            let name = if index == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                &name
            };
            name.trim().to_lowercase()
        })
        .collect();
    let Some(email_column) = columns.iter().position(|name| name == "email") else {
        list.report.push(
            Problem::error(
                file,
                format!(
                    "no `email` column in the header ({}); the first line must name the columns, e.g. `email,name`",
                    columns.join(",")
                ),
            )
            .at_line(1),
        );
        return list;
    };

    let mut seen: HashSet<String> = HashSet::new();
    let mut first_lines: BTreeMap<String, u64> = BTreeMap::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |position| position.line());
                list.report.push(
                    Problem::error(file, format!("skipped: cannot read this row ({err})"))
                        .at_line(line as usize),
                );
                continue;
            }
        };
        let line = record.position().map_or(0, |position| position.line()) as usize;
        if record
            .iter()
            .all(|value| value.iter().all(u8::is_ascii_whitespace))
        {
            continue;
        }
        let row = match parse_row(&record, &columns, email_column) {
            Ok(row) => row,
            Err(reason) => {
                list.report
                    .push(Problem::error(file, format!("skipped: {reason}")).at_line(line));
                continue;
            }
        };
        let key = row.key();
        if !seen.insert(key.clone()) {
            let first = first_lines.get(&key).copied().unwrap_or_default();
            list.report.push(
                Problem::warning(
                    file,
                    format!(
                        "skipped: {} is already on line {first}; the first row wins",
                        row.email
                    ),
                )
                .at_line(line),
            );
            continue;
        }
        first_lines.insert(key, line as u64);
        list.subscribers.push(row);
    }
    if list.subscribers.is_empty() && !list.report.has_errors() {
        list.report.push(Problem::warning(
            file,
            "the list has a header but no subscribers",
        ));
    }
    list
}

fn parse_row(
    record: &csv::ByteRecord,
    columns: &[String],
    email_column: usize,
) -> Result<Subscriber, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "it has {} values but the header names {} columns",
            record.len(),
            columns.len()
        ));
    }
    let mut values = Vec::with_capacity(record.len());
    for (column, value) in columns.iter().zip(record.iter()) {
        let value = std::str::from_utf8(value).map_err(|_| {
            format!("the `{column}` value is not UTF-8 text; save the list as UTF-8")
        })?;
        values.push(value.trim());
    }
    let raw_email = values[email_column];
    let email: Address = raw_email.parse().map_err(|_| {
        if raw_email.is_empty() {
            "the email is empty".to_owned()
        } else {
            format!("`{raw_email}` is not a valid email address")
        }
    })?;
    let mut subscriber = Subscriber::new(email);
    for (column, value) in columns.iter().zip(values) {
        let value = clean(value);
        match column.as_str() {
            "email" => {}
            "name" => subscriber = subscriber.with_name(value),
            "first_name" => subscriber = subscriber.with_first_name(value),
            "subscribed_at" if !value.is_empty() => {
                subscriber.subscribed_at = Some(parse_joined(&value)?);
            }
            "timezone" if !value.is_empty() => {
                subscriber.timezone = Some(value.parse().map_err(|err| format!("{err}"))?);
            }
            "status" => {
                subscriber.unsubscribed = match value.to_lowercase().as_str() {
                    "" | "active" => false,
                    "unsubscribed" => true,
                    other => {
                        return Err(format!(
                            "status `{other}` is not `active` or `unsubscribed`"
                        ));
                    }
                }
            }
            _ if KNOWN.contains(&column.as_str()) => {}
            _ => subscriber = subscriber.with_field(column.clone(), value),
        }
    }
    Ok(subscriber)
}

/// A value with control characters (line breaks above all) removed, so no
/// list value can ever reach a header or a template as more than one line.
fn clean(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

fn non_blank(text: String) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn parse_joined(value: &str) -> Result<Joined, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Joined::At(at.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Joined::Date)
        .map_err(|_| {
            format!(
                "subscribed_at `{value}` is not a date (2026-11-20) or an RFC 3339 time (2026-11-20T08:00:00-05:00)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> List {
        parse(text.as_bytes(), Path::new("list.csv"))
    }

    fn messages(list: &List) -> Vec<String> {
        list.report
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reads_known_columns_and_keeps_the_rest_as_fields() {
        let list = parse_text(
            "\u{feff}Email,Name,timezone,subscribed_at,City\r\nann@example.com,Ann Lee,Europe/Paris,2026-11-20,Paris\r\n",
        );
        assert_eq!(messages(&list), Vec::<String>::new());
        let ann = &list.subscribers[0];
        assert_eq!(ann.email.to_string(), "ann@example.com");
        assert_eq!(ann.first_name(), Some("Ann"));
        assert_eq!(ann.timezone.unwrap().to_string(), "Europe/Paris");
        assert_eq!(
            ann.subscribed_at,
            Some(Joined::Date(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()))
        );
        assert_eq!(ann.fields.get("city").map(String::as_str), Some("Paris"));
    }

    #[test]
    fn bad_rows_are_skipped_with_their_line_and_reason() {
        let list = parse_text(
            "email,name,timezone,subscribed_at\n\
             good@example.com,Good,,\n\
             not-an-address,Bad,,\n\
             tz@example.com,Tz,America/NewYork,\n\
             date@example.com,Date,,yesterday\n\
             ragged@example.com,Ragged\n\
             GOOD@example.com,Dup,,\n\
             last@example.com,Last,,2026-11-20T08:00:00Z\n",
        );
        let emails: Vec<String> = list
            .subscribers
            .iter()
            .map(|s| s.email.to_string())
            .collect();
        assert_eq!(emails, ["good@example.com", "last@example.com"]);
        assert_eq!(
            messages(&list),
            [
                "error: list.csv:3: skipped: `not-an-address` is not a valid email address",
                "error: list.csv:4: skipped: unknown time zone `America/NewYork`; did you mean `America/New_York`?",
                "error: list.csv:5: skipped: subscribed_at `yesterday` is not a date (2026-11-20) or an RFC 3339 time (2026-11-20T08:00:00-05:00)",
                "error: list.csv:6: skipped: it has 2 values but the header names 4 columns",
                "warning: list.csv:7: skipped: GOOD@example.com is already on line 2; the first row wins",
            ]
        );
    }

    #[test]
    fn rows_that_are_not_utf8_are_reported_not_fatal() {
        let mut bytes = b"email,name\nok@example.com,Ok\nbad@example.com,".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let list = parse(bytes.as_slice(), Path::new("l.csv"));
        assert_eq!(list.subscribers.len(), 1);
        assert_eq!(
            messages(&list),
            ["error: l.csv:3: skipped: the `name` value is not UTF-8 text; save the list as UTF-8"]
        );
    }

    #[test]
    fn empty_and_header_only_lists_are_reported() {
        assert_eq!(
            messages(&parse_text("")),
            [
                "warning: list.csv: the list is empty: the first line must be a header such as `email,name`"
            ]
        );
        assert_eq!(
            messages(&parse_text("email,name\n")),
            ["warning: list.csv: the list has a header but no subscribers"]
        );
        assert!(messages(&parse_text("name\nAnn\n"))[0].contains("no `email` column"));
    }

    #[test]
    fn line_breaks_in_values_never_survive() {
        let list = parse_text("email,name\neve@example.com,\"Eve\r\nBcc: x@evil.test\"\n");
        assert_eq!(
            list.subscribers[0].name.as_deref(),
            Some("EveBcc: x@evil.test")
        );
    }
}
