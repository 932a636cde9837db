//! Which column of a list means what: dripline's own names, the names
//! the exports of Mailchimp, Kit (ConvertKit), Substack, Beehiiv,
//! MailerLite and listmonk use (tests/fixtures/lists/SOURCES.md says where
//! each comes from), and the `[[drip]] columns` mapping for anything else;
//! and what their statuses and timestamps mean.
//!
//! Pure: it works on the header's names and on values.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use super::Joined;

/// `[[drip]] columns`: the header names of a list that uses its own, e.g.
/// `columns = { email = "E-mail", first_name = "Vorname" }`. Names match
/// whatever their letter case and surrounding spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The address.
    pub email: Option<String>,
    /// The display name.
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// When they signed up.
    pub subscribed_at: Option<String>,
    /// Their IANA time zone.
    pub timezone: Option<String>,
    /// Whether they are active.
    pub status: Option<String>,
}

/// What dripline reads from a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Email,
    Name,
    FirstName,
    LastName,
    /// A signup time; several may be present (Mailchimp's OPTIN_TIME and
    /// CONFIRM_TIME): the first non-empty one in [`ALIASES`] order wins.
    SubscribedAt,
    Timezone,
    /// A status word: `active`, `unsubscribed`, `cleaned`, ...
    Status,
    /// Set when the subscriber is gone: Mailchimp's UNSUB_TIME and
    /// CLEAN_TIME, Beehiiv's unsubscribed_at.
    GoneAt,
    /// Substack's `email_disabled`: `true` means no email.
    Disabled,
    /// Any other column: a template field.
    Field,
}

/// Header names by role, in priority order, compared after
/// [`normalize`]. Which export uses which is in SOURCES.md.
const ALIASES: &[(&str, Role)] = &[
    ("email", Role::Email),
    ("emailaddress", Role::Email),
    ("e-mail", Role::Email),
    ("name", Role::Name),
    ("fullname", Role::Name),
    ("firstname", Role::FirstName),
    ("lastname", Role::LastName),
    ("subscribedat", Role::SubscribedAt),
    ("confirmtime", Role::SubscribedAt),
    ("optintime", Role::SubscribedAt),
    ("createdat", Role::SubscribedAt),
    ("datesubscribed", Role::SubscribedAt),
    ("timezone", Role::Timezone),
    ("status", Role::Status),
    ("state", Role::Status),
    ("unsubtime", Role::GoneAt),
    ("cleantime", Role::GoneAt),
    ("unsubscribedat", Role::GoneAt),
    ("emaildisabled", Role::Disabled),
];

/// A header name as compared with the aliases: lower case, without
/// spaces, underscores or dots (`Email Address` and `email_address` meet).
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The role of each column of `header` (names already trimmed), with the
/// `[[drip]] columns` mapping first. Only the first column of a role that
/// allows one is used; later ones of that role are fields.
pub fn roles(header: &[String], mapping: &Columns) -> Vec<Role> {
    let mapped: Vec<(Role, String)> = [
        (Role::Email, &mapping.email),
        (Role::Name, &mapping.name),
        (Role::FirstName, &mapping.first_name),
        (Role::LastName, &mapping.last_name),
        (Role::SubscribedAt, &mapping.subscribed_at),
        (Role::Timezone, &mapping.timezone),
        (Role::Status, &mapping.status),
    ]
    .into_iter()
    .filter_map(|(role, name)| Some((role, normalize(name.as_deref()?))))
    .collect();
    let mut roles: Vec<Role> = header
        .iter()
        .map(|name| {
            let name = normalize(name);
            if let Some((role, _)) = mapped.iter().find(|(_, mapped)| *mapped == name) {
                return *role;
            }
            // A role the mapping names is read from that column only.
            ALIASES
                .iter()
                .find(|(alias, role)| {
                    *alias == name && !mapped.iter().any(|(taken, _)| taken == role)
                })
                .map_or(Role::Field, |(_, role)| *role)
        })
        .collect();
    // A `name` beside a `last_name` and no first name is the first name
    // (MailerLite's `name` and `last_name` fields).
    if roles.contains(&Role::LastName)
        && !roles.contains(&Role::FirstName)
        && let Some(name) = roles.iter_mut().find(|role| **role == Role::Name)
    {
        *name = Role::FirstName;
    }
    // One column per role, except the signup times, read in priority order.
    for role in [
        Role::Email,
        Role::Name,
        Role::FirstName,
        Role::LastName,
        Role::Timezone,
        Role::Status,
        Role::Disabled,
    ] {
        let mut seen = false;
        for column in roles.iter_mut().filter(|column| **column == role) {
            if seen {
                *column = Role::Field;
            }
            seen = true;
        }
    }
    roles
}

/// The columns of `header` that hold signup times, best first.
pub fn signup_columns(header: &[String], roles: &[Role]) -> Vec<usize> {
    let rank = |name: &str| {
        let name = normalize(name);
        ALIASES
            .iter()
            .position(|(alias, _)| *alias == name)
            .unwrap_or(0)
    };
    let mut columns: Vec<usize> = (0..header.len())
        .filter(|index| roles[*index] == Role::SubscribedAt)
        .collect();
    columns.sort_by_key(|index| rank(&header[*index]));
    columns
}

/// Whether a status word means the subscriber may get email: `None` for a
/// word dripline does not know.
pub fn is_active(status: &str) -> Option<bool> {
    match status.trim().to_lowercase().as_str() {
        "" | "active" | "subscribed" | "confirmed" => Some(true),
        "unsubscribed" | "cleaned" | "bounced" | "cancelled" | "canceled" | "complained"
        | "inactive" | "pending" | "unconfirmed" | "junk" | "blocklisted" | "spam" | "archived"
        | "validating" => Some(false),
        _ => None,
    }
}

/// The statuses [`is_active`] knows, for messages.
pub const STATUSES: &str = "active, subscribed, confirmed (active); unsubscribed, cleaned, bounced, cancelled, complained, inactive, pending, unconfirmed, junk, blocklisted, spam, archived, validating (not active)";

/// A signup time as the exports write it: RFC 3339 (Substack's
/// `2018-08-27T15:06:27.713Z`), `2024-05-01 12:00:00 UTC` (Kit, Beehiiv),
/// `2018-02-05 19:28:23` (Mailchimp, in UTC), or a date (local midnight).
pub fn parse_time(value: &str) -> Result<Joined, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Joined::At(at.with_timezone(&Utc)));
    }
    let naive = value
        .strip_suffix(" UTC")
        .or_else(|| value.strip_suffix(" GMT"))
        .unwrap_or(value);
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(naive, format) {
            return Ok(Joined::At(at.and_utc()));
        }
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Joined::Date)
        .map_err(|_| {
            format!(
                "`{value}` is not a date (2026-11-20) or a time (2026-11-20T08:00:00-05:00, 2026-11-20 13:00:00 UTC)"
            )
        })
}

/// Whether a Substack `email_disabled` value disables email.
pub fn is_disabled(value: &str) -> bool {
    matches!(value.trim().to_lowercase().as_str(), "true" | "yes" | "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &str) -> Vec<String> {
        names.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn export_names_find_their_roles() {
        let mailchimp =
            header("Email Address,First Name,Last Name,OPTIN_TIME,CONFIRM_TIME,TIMEZONE");
        assert_eq!(
            roles(&mailchimp, &Columns::default()),
            [
                Role::Email,
                Role::FirstName,
                Role::LastName,
                Role::SubscribedAt,
                Role::SubscribedAt,
                Role::Timezone
            ]
        );
        assert_eq!(
            signup_columns(&mailchimp, &roles(&mailchimp, &Columns::default())),
            [4, 3]
        );
        let mailerlite = header("email,name,last_name,status");
        assert_eq!(
            roles(&mailerlite, &Columns::default()),
            [Role::Email, Role::FirstName, Role::LastName, Role::Status]
        );
        let kit = header("first_name,email_address,state,created_at");
        assert_eq!(
            roles(&kit, &Columns::default()),
            [
                Role::FirstName,
                Role::Email,
                Role::Status,
                Role::SubscribedAt
            ]
        );
    }

    #[test]
    fn the_mapping_wins_and_a_second_email_column_is_a_field() {
        let list = header("E-Mail-Adresse,Vorname,email");
        let mapping = Columns {
            email: Some(" e-mail-adresse ".to_owned()),
            first_name: Some("VORNAME".to_owned()),
            ..Columns::default()
        };
        assert_eq!(
            roles(&list, &mapping),
            [Role::Email, Role::FirstName, Role::Field]
        );
    }

    #[test]
    fn export_timestamps_parse() {
        let at = |text: &str| match parse_time(text) {
            Ok(Joined::At(at)) => at.to_rfc3339(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(at("2024-05-01 12:00:00 UTC"), "2024-05-01T12:00:00+00:00");
        assert_eq!(at("2018-02-05 19:28:23"), "2018-02-05T19:28:23+00:00");
        assert_eq!(
            at("2018-08-27T15:06:27.713Z"),
            "2018-08-27T15:06:27.713+00:00"
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn statuses_of_the_exports() {
        for active in ["active", "Active", "subscribed", ""] {
            assert_eq!(is_active(active), Some(true), "{active}");
        }
        for gone in [
            "unsubscribed",
            "cleaned",
            "bounced",
            "cancelled",
            "inactive",
            "pending",
        ] {
            assert_eq!(is_active(gone), Some(false), "{gone}");
        }
        assert_eq!(is_active("paused-ish"), None);
    }
}
