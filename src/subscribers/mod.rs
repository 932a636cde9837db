//! The list file: CSV rows in, [`Subscriber`]s and per-row problems out.
//!
//! A bad row (invalid address, bad date, unknown status, wrong column
//! count, not UTF-8) is skipped and reported with its physical line
//! number ([`lines`]) and reason; the good rows are still served. An
//! unknown time zone is a warning: the row is served in the sequence's or
//! the config's zone. A list with no usable header is unusable as a whole.
//! Which column means what, exports of other tools included, is
//! [`columns`]' business. A duplicate address (letter case
//! aside) is reported and its first row wins. dripline never writes to
//! the list file; this module only reads from a reader it is handed.

mod columns;
mod lines;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use lettre::Address;

use crate::diagnostic::{Problem, Report};
use crate::zone::Zone;

pub use self::columns::Columns;
use self::columns::Role;
use self::lines::LineCounting;

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
    /// The whole list is unusable (empty, no email column, not text): its
    /// error is in `report`, and commands stop with exit code 3.
    pub unusable: bool,
}

impl List {
    fn unusable(file: &Path, message: String) -> List {
        List {
            subscribers: Vec::new(),
            report: Problem::error(file, message).into(),
            unusable: true,
        }
    }
}

/// Reads a list file from `reader`; `file` names it in problems and
/// `mapping` is its `[[drip]] columns`.
pub fn parse(reader: impl Read, file: &Path, mapping: &Columns) -> List {
    let mut rows = match Reader::open(reader, file, mapping) {
        Ok(rows) => rows,
        Err(list) => return list,
    };
    let mut list = List {
        report: std::mem::take(&mut rows.report),
        ..List::default()
    };
    let mut first_lines: HashMap<String, usize> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    while let Some(line) = rows.next_record(&mut record) {
        let line = match line {
            Ok(line) => line,
            Err(problem) => {
                list.report.push(problem);
                continue;
            }
        };
        let row = match rows.subscriber(&record, line) {
            Ok((row, warning)) => {
                if let Some(warning) = warning {
                    list.report.push(warning);
                }
                row
            }
            Err(problem) => {
                list.report.push(problem);
                continue;
            }
        };
        let key = row.key();
        if let Some(&first) = first_lines.get(&key) {
            list.report.push(rows.duplicate(&row, line, first));
            continue;
        }
        first_lines.insert(key, line);
        list.subscribers.push(row);
    }
    if list.subscribers.is_empty() && !list.report.has_errors() {
        list.report.push(rows.empty());
    }
    list
}

/// A list file read a record at a time, for callers that must not hold
/// the whole list ([`parse`] is one of them that does).
pub struct Reader<R: Read> {
    csv: csv::Reader<LineCounting<R>>,
    file: std::path::PathBuf,
    layout: Layout,
    /// Problems with the header and the column mapping.
    pub report: Report,
}

impl<R: Read> Reader<R> {
    /// Reads the header; a list with no usable header is returned as the
    /// unusable [`List`] it is.
    pub fn open(reader: R, file: &Path, mapping: &Columns) -> Result<Reader<R>, List> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(LineCounting::new(reader));
        let mut record = csv::ByteRecord::new();
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => {
                return Err(List::unusable(
                    file,
                    "the list is empty: the first line must be a header such as `email,name`"
                        .to_owned(),
                ));
            }
            Err(err) => return Err(List::unusable(file, format!("cannot read the list: {err}"))),
        }
        let header = header_names(&record).map_err(|message| List::unusable(file, message))?;
        let roles = columns::roles(&header, mapping);
        if !roles.contains(&Role::Email) {
            return Err(List::unusable(file, no_email_column(&header)));
        }
        let mut report = Report::default();
        for (role, name) in mapped_but_missing(&header, mapping) {
            report.push(Problem::warning(
                file,
                format!(
                    "[[drip]] columns maps {role} to `{name}`, but the header has no such column"
                ),
            ));
        }
        let layout = Layout {
            signup: columns::signup_columns(&header, &roles),
            fields: header
                .iter()
                .zip(&roles)
                .map(|(name, role)| (*role == Role::Field).then(|| name.to_lowercase()))
                .collect(),
            header,
            roles,
        };
        Ok(Reader {
            csv,
            file: file.to_owned(),
            layout,
            report,
        })
    }

    /// What each column means, as text: rows read under another layout
    /// mean something else, even when their bytes are the same.
    pub fn layout(&self) -> String {
        self.layout
            .header
            .iter()
            .zip(&self.layout.roles)
            .map(|(name, role)| format!("{name}={role:?}\n"))
            .collect()
    }

    /// Reads the next record that is not blank into `record`: its line,
    /// or the problem that made it unreadable; `None` at the end.
    pub fn next_record(&mut self, record: &mut csv::ByteRecord) -> Option<Result<usize, Problem>> {
        loop {
            let line = match self.csv.read_byte_record(record) {
                Ok(false) => return None,
                Ok(true) => line_of(&mut self.csv, record.position()),
                Err(err) => {
                    let line = line_of(&mut self.csv, err.position());
                    return Some(Err(Problem::error(
                        &self.file,
                        format!("skipped: cannot read this row ({err})"),
                    )
                    .at_line(line)));
                }
            };
            let blank = record
                .iter()
                .all(|value| value.iter().all(u8::is_ascii_whitespace));
            if !blank {
                return Some(Ok(line));
            }
        }
    }

    /// The subscriber a record on `line` describes, with a warning about a
    /// value set aside; or the problem that makes it skipped.
    pub fn subscriber(
        &self,
        record: &csv::ByteRecord,
        line: usize,
    ) -> Result<(Subscriber, Option<Problem>), Problem> {
        let (row, warning) = parse_row(record, &self.layout).map_err(|reason| {
            Problem::error(&self.file, format!("skipped: {reason}")).at_line(line)
        })?;
        let warning = warning.map(|warning| Problem::warning(&self.file, warning).at_line(line));
        Ok((row, warning))
    }

    /// The warning for a second row of an address, on `line`, whose
    /// first row is on `first`.
    pub fn duplicate(&self, row: &Subscriber, line: usize, first: usize) -> Problem {
        duplicate(&self.file, row.email.as_ref(), line, first)
    }

    /// The warning for a list with a header and no subscribers.
    pub fn empty(&self) -> Problem {
        Problem::warning(&self.file, "the list has a header but no subscribers")
    }
}

/// The warning for a second row of `address` in `file`, on `line`, whose
/// first row is on `first`.
pub fn duplicate(file: &Path, address: &str, line: usize, first: usize) -> Problem {
    Problem::warning(
        file,
        format!("skipped: {address} is already on line {first}; the first row wins"),
    )
    .at_line(line)
}

/// The warning for a new row, on `line`, of an address whose row dripline
/// already has, on `kept`.
pub fn second_row(file: &Path, address: &str, line: usize, kept: usize) -> Problem {
    Problem::warning(
        file,
        format!(
            "skipped: {address} is already on line {kept}, the row dripline has; change that row instead of adding another"
        ),
    )
    .at_line(line)
}

/// Why a header without an address column is unusable, and what to do.
fn no_email_column(header: &[String]) -> String {
    format!(
        "no email column: the header has {}; name the address column `email` (exports' `Email Address` and `email_address` work too), or map yours in dripline.toml, e.g. [[drip]] columns = {{ email = \"E-mail\" }}",
        header
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The physical line a record (or an error) starts on.
fn line_of<R: Read>(csv: &mut csv::Reader<LineCounting<R>>, at: Option<&csv::Position>) -> usize {
    let byte = at.map_or(0, csv::Position::byte);
    csv.get_mut().line_of(byte)
}

/// The header's column names, trimmed, without a byte-order mark; an
/// error when it is not UTF-8 text.
fn header_names(record: &csv::ByteRecord) -> Result<Vec<String>, String> {
    let bytes = record.as_slice();
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) || bytes.contains(&0) {
        return Err(
            "the list is UTF-16 text (Excel's \"Unicode Text\"): save it as \"CSV UTF-8\""
                .to_owned(),
        );
    }
    record
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let name = std::str::from_utf8(name).map_err(|_| {
                "the header is not UTF-8 text: save the list as \"CSV UTF-8\"".to_owned()
            })?;
            let name = if index == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            Ok(name.trim().to_owned())
        })
        .collect()
}

/// Mapped columns the header does not have, as (role, name).
fn mapped_but_missing<'a>(header: &[String], mapping: &'a Columns) -> Vec<(&'static str, &'a str)> {
    [
        ("email", &mapping.email),
        ("name", &mapping.name),
        ("first_name", &mapping.first_name),
        ("last_name", &mapping.last_name),
        ("subscribed_at", &mapping.subscribed_at),
        ("timezone", &mapping.timezone),
        ("status", &mapping.status),
    ]
    .into_iter()
    .filter_map(|(role, name)| {
        let name = name.as_deref()?;
        let present = header
            .iter()
            .any(|column| column.trim().eq_ignore_ascii_case(name.trim()));
        (!present).then_some((role, name))
    })
    .collect()
}

/// What each column of a list means.
struct Layout {
    header: Vec<String>,
    roles: Vec<Role>,
    /// The signup-time columns, best first.
    signup: Vec<usize>,
    /// For each column that is a template field, its name as templates
    /// see it (lower case).
    fields: Vec<Option<String>>,
}

/// One row: the subscriber, and a warning about a value that was set
/// aside (an unknown time zone); or why the row is skipped.
fn parse_row(
    record: &csv::ByteRecord,
    layout: &Layout,
) -> Result<(Subscriber, Option<String>), String> {
    if record.len() != layout.header.len() {
        return Err(format!(
            "it has {} values but the header names {} columns",
            record.len(),
            layout.header.len()
        ));
    }
    let mut values = Vec::with_capacity(record.len());
    for (column, value) in layout.header.iter().zip(record.iter()) {
        let value = std::str::from_utf8(value).map_err(|_| {
            format!("the `{column}` value is not UTF-8 text; save the list as UTF-8")
        })?;
        values.push(clean(value.trim()));
    }
    let value_of = |role: Role| {
        layout
            .roles
            .iter()
            .position(|r| *r == role)
            .map(|index| values[index].as_str())
    };
    let raw_email = value_of(Role::Email).unwrap_or_default();
    let email: Address = raw_email.parse().map_err(|_| {
        if raw_email.is_empty() {
            "the email is empty".to_owned()
        } else {
            format!("`{raw_email}` is not a valid email address")
        }
    })?;
    let mut subscriber = Subscriber::new(email);
    let first = value_of(Role::FirstName).unwrap_or_default();
    let last = value_of(Role::LastName).unwrap_or_default();
    subscriber = subscriber.with_first_name(first);
    subscriber = match value_of(Role::Name) {
        Some(name) if !name.is_empty() => subscriber.with_name(name),
        _ => subscriber.with_name(format!("{first} {last}")),
    };
    if let Some(&index) = layout
        .signup
        .iter()
        .find(|index| !values[**index].is_empty())
    {
        subscriber.subscribed_at = Some(
            columns::parse_time(&values[index])
                .map_err(|reason| format!("{} {reason}", layout.header[index]))?,
        );
    }
    let mut warning = None;
    if let Some(zone) = value_of(Role::Timezone).filter(|zone| !zone.is_empty()) {
        match zone.parse::<Zone>() {
            Ok(zone) => subscriber.timezone = Some(zone),
            Err(err) => {
                warning = Some(format!(
                    "{err}; this subscriber gets the sequence's or the config's time zone until the row is fixed"
                ));
            }
        }
    }
    if let Some(status) = value_of(Role::Status) {
        subscriber.unsubscribed = !columns::is_active(status).ok_or_else(|| {
            format!(
                "status `{status}` is not one dripline knows ({})",
                columns::STATUSES
            )
        })?;
    }
    subscriber.unsubscribed |= value_of(Role::GoneAt).is_some_and(|at| !at.is_empty())
        || value_of(Role::Disabled).is_some_and(columns::is_disabled);
    for (name, value) in layout.fields.iter().zip(values) {
        if let Some(name) = name {
            subscriber.fields.insert(name.clone(), value);
        }
    }
    Ok((subscriber, warning))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> List {
        parse(text.as_bytes(), Path::new("list.csv"), &Columns::default())
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
        assert_eq!(
            emails,
            ["good@example.com", "tz@example.com", "last@example.com"]
        );
        assert_eq!(list.subscribers[1].timezone, None);
        assert_eq!(
            messages(&list),
            [
                "error: list.csv:3: skipped: `not-an-address` is not a valid email address",
                "warning: list.csv:4: unknown time zone `America/NewYork`; did you mean `America/New_York`?; this subscriber gets the sequence's or the config's time zone until the row is fixed",
                "error: list.csv:5: skipped: subscribed_at `yesterday` is not a date (2026-11-20) or a time (2026-11-20T08:00:00-05:00, 2026-11-20 13:00:00 UTC)",
                "error: list.csv:6: skipped: it has 2 values but the header names 4 columns",
                "warning: list.csv:7: skipped: GOOD@example.com is already on line 2; the first row wins",
            ]
        );
    }

    #[test]
    fn rows_that_are_not_utf8_are_reported_not_fatal() {
        let mut bytes = b"email,name\nok@example.com,Ok\nbad@example.com,".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let list = parse(bytes.as_slice(), Path::new("l.csv"), &Columns::default());
        assert_eq!(list.subscribers.len(), 1);
        assert_eq!(
            messages(&list),
            ["error: l.csv:3: skipped: the `name` value is not UTF-8 text; save the list as UTF-8"]
        );
    }

    #[test]
    fn empty_and_header_only_lists_are_reported() {
        let empty = parse_text("");
        assert!(empty.unusable);
        assert_eq!(
            messages(&empty),
            [
                "error: list.csv: the list is empty: the first line must be a header such as `email,name`"
            ]
        );
        assert_eq!(
            messages(&parse_text("email,name\n")),
            ["warning: list.csv: the list has a header but no subscribers"]
        );
        let no_email = parse_text("First Name,Last Name\nAnn,Lee\n");
        assert!(no_email.unusable);
        assert_eq!(
            messages(&no_email),
            [
                "error: list.csv: no email column: the header has `First Name`, `Last Name`; name the address column `email` (exports' `Email Address` and `email_address` work too), or map yours in dripline.toml, e.g. [[drip]] columns = { email = \"E-mail\" }"
            ]
        );
    }

    #[test]
    fn line_breaks_in_values_never_survive() {
        let list = parse_text("email,name\neve@example.com,\"Eve\r\nBcc: x@evil.test\"\n");
        assert_eq!(
            list.subscribers[0].name.as_deref(),
            Some("EveBcc: x@evil.test")
        );
    }

    /// Regression: in a CRLF list every reported line was one too small.
    #[test]
    fn line_numbers_are_the_physical_lines_for_crlf_bom_and_multi_line_rows() {
        let lf = "email,name\nok@example.com,Ok\nbad,Bad\n";
        let crlf = "\u{feff}email,name\r\nok@example.com,Ok\r\nbad,Bad\r\n";
        for text in [lf, crlf] {
            assert_eq!(
                messages(&parse_text(text)),
                ["error: list.csv:3: skipped: `bad` is not a valid email address"],
                "{text:?}"
            );
        }
        // A quoted value over three lines: the next row starts on line 5.
        let quoted =
            "email,note\r\nok@example.com,\"one\r\ntwo\r\nthree\"\r\nbad,x\r\nalso-bad,y\n";
        assert_eq!(
            messages(&parse_text(quoted)),
            [
                "error: list.csv:5: skipped: `bad` is not a valid email address",
                "error: list.csv:6: skipped: `also-bad` is not a valid email address"
            ]
        );
        // Blank lines count too.
        assert_eq!(
            messages(&parse_text("email\r\n\r\n\r\nbad\r\n")),
            ["error: list.csv:4: skipped: `bad` is not a valid email address"]
        );
    }

    #[test]
    fn a_list_that_is_not_utf8_text_is_unusable() {
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("email\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let list = parse(utf16.as_slice(), Path::new("l.csv"), &Columns::default());
        assert!(list.unusable);
        assert!(
            messages(&list)[0].contains("UTF-16"),
            "{:?}",
            messages(&list)
        );
        let latin1 = b"e\xe9mail\nx@example.com\n";
        let list = parse(&latin1[..], Path::new("l.csv"), &Columns::default());
        assert!(list.unusable);
        assert_eq!(
            messages(&list),
            ["error: l.csv: the header is not UTF-8 text: save the list as \"CSV UTF-8\""]
        );
    }
}
