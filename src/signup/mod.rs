//! Signups with double opt-in: the rules, pure.
//!
//! A form post becomes a [`Submission`] once ([`parse`]); [`decide`] says
//! whether it earns a confirmation email, from where the address stands
//! (new, pending, subscribed, suppressed), and every outcome gets the same
//! answer so that nobody learns who is on a list. Confirmed signups become
//! [`Subscriber`]s of their drip beside its list file ([`merge`]). The
//! HTTP side is in [`crate::serve`], the state in [`crate::store::signups`],
//! the email in [`crate::render::confirmation`]. Nothing here touches the
//! clock, the network or the disk.

pub mod form;
pub mod limits;
pub mod token;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use lettre::Address;

use crate::config::{Drip, Signup};
use crate::store::signups::{Confirmed, Standing};
use crate::subscribers::{Joined, List, Subscriber};
use crate::zone::Zone;

/// The honeypot: a field people never see or fill in, that form-filling
/// bots do.
pub const HONEYPOT: &str = "website";

/// Form fields the form itself uses; custom fields take other names.
const RESERVED: [&str; 4] = ["email", "name", "timezone", HONEYPOT];

/// The longest value accepted in any field, in characters.
pub const MAX_FIELD: usize = 200;

/// The longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// A form post, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub address: Address,
    pub name: Option<String>,
    pub timezone: Option<Zone>,
    pub fields: BTreeMap<String, String>,
    /// The honeypot was filled in: answer as usual, do nothing.
    pub bot: bool,
}

/// Why a post cannot be a signup: said to the person on the form page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("Please enter your email address.")]
    NoAddress,
    #[error("That does not look like an email address; please check it.")]
    BadAddress,
    #[error("Please keep each field under {MAX_FIELD} characters.")]
    TooLong,
}

/// Parses an `application/x-www-form-urlencoded` body against the form's
/// settings. Unknown fields are ignored; an unknown time zone is dropped
/// (the sequence's zone applies).
pub fn parse(body: &[u8], settings: &Signup) -> Result<Submission, Invalid> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        values
            .entry(name.into_owned())
            .or_insert_with(|| value.trim().to_owned());
    }
    let bot = values.get(HONEYPOT).is_some_and(|value| !value.is_empty());
    if values
        .values()
        .any(|value| value.chars().count() > MAX_FIELD)
    {
        return Err(Invalid::TooLong);
    }
    let address = values.get("email").map(String::as_str).unwrap_or_default();
    if address.is_empty() {
        return Err(Invalid::NoAddress);
    }
    if address.len() > MAX_ADDRESS || address.chars().any(char::is_control) {
        return Err(Invalid::BadAddress);
    }
    let address: Address = address.parse().map_err(|_| Invalid::BadAddress)?;
    let clean = |value: &String| {
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        (!value.is_empty()).then_some(value)
    };
    let fields = settings
        .fields
        .iter()
        .filter_map(|field| Some((field.clone(), clean(values.get(field)?)?)))
        .collect();
    Ok(Submission {
        address,
        name: values.get("name").and_then(clean),
        timezone: values
            .get("timezone")
            .and_then(|zone| zone.parse::<chrono_tz::Tz>().ok())
            .map(Zone),
        fields,
        bot,
    })
}

/// What a valid post leads to. Whatever it is, the person sees the same page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Record the request and send a confirmation email.
    Confirm,
    /// Nothing: already subscribed, a confirmation already on its way
    /// (one per address until its link expires), or an address that must
    /// not be mailed (bounced, complained).
    Nothing,
}

/// The rule for a post of an address that stands as `standing` on the
/// sequence and is suppressed for `suppression` (a reason), at `now`. An
/// unsubscribed address may come back, through a new confirmation.
pub fn decide(standing: Option<Standing>, suppression: Option<&str>, now: DateTime<Utc>) -> Action {
    match suppression {
        Some("unsubscribed") | None => {}
        Some(_) => return Action::Nothing,
    }
    let Some(standing) = standing else {
        return Action::Confirm;
    };
    let pending = standing
        .confirmed_at
        .is_none_or(|confirmed| confirmed < standing.requested_at)
        && standing.expires_at > now;
    let subscribed = standing.confirmed_at.is_some() && suppression.is_none();
    if pending || subscribed {
        Action::Nothing
    } else {
        Action::Confirm
    }
}

/// Normalizes an origin (`https://www.example.com`, no path): lower case,
/// no trailing slash; `None` for anything else.
pub fn origin(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let valid = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    valid.then_some(text)
}

/// The origin of a base URL (`https://news.example.com/dripline` gives
/// `https://news.example.com`).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    origin(&format!("{scheme}://{host}"))
}

/// Problems with `[signup.<sequence>]`, each a sentence saying what to do.
pub fn problems(
    sequence: &str,
    settings: &Signup,
    drips: &[Drip],
    has_base_url: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !drips.iter().any(|drip| drip.sequence.get_ref() == sequence) {
        problems.push(format!(
            "[signup.{sequence}] names a sequence no [[drip]] sends; add a [[drip]] with sequence = \"{sequence}\" or rename the table"
        ));
    }
    if !has_base_url {
        problems.push(format!(
            "[signup.{sequence}] needs [unsubscribe] base_url, the public URL of `dripline serve`, for the form and its confirmation links"
        ));
    }
    for field in &settings.fields {
        let plain = !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain || RESERVED.contains(&field.as_str()) {
            problems.push(format!(
                "[signup.{sequence}] fields: `{field}` cannot be a field name; use lower-case letters, digits and `_`, and none of {}",
                RESERVED.join(", ")
            ));
        }
    }
    if settings.confirm_within.as_secs() < 600 {
        problems.push(format!(
            "[signup.{sequence}] confirm_within is too short for people to find the email; give it at least \"10m\" (the default is \"48h\")"
        ));
    }
    problems
}

/// A confirmed signup as a subscriber of its drip: their clock starts at
/// the confirmation.
pub fn subscriber(confirmed: &Confirmed) -> Option<Subscriber> {
    let address: Address = confirmed.address.parse().ok()?;
    let mut subscriber = Subscriber::new(address);
    subscriber.name = confirmed.name.clone();
    subscriber.subscribed_at = Some(Joined::At(confirmed.confirmed_at));
    subscriber.timezone = confirmed
        .timezone
        .as_deref()
        .and_then(|zone| zone.parse::<chrono_tz::Tz>().ok())
        .map(Zone);
    subscriber.fields = confirmed.fields.clone();
    Some(subscriber)
}

/// Adds the confirmed signups to a drip's list: a row of the list file
/// wins over a signup of the same address.
pub fn merge(list: &mut List, confirmed: &[Confirmed]) {
    if confirmed.is_empty() {
        return;
    }
    let listed: HashSet<String> = list.subscribers.iter().map(Subscriber::key).collect();
    list.subscribers.extend(
        confirmed
            .iter()
            .filter(|signup| !listed.contains(&signup.email))
            .filter_map(subscriber),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn standing(confirmed: Option<i64>, requested: i64, expires: i64) -> Option<Standing> {
        Some(Standing {
            confirmed_at: confirmed.map(at),
            requested_at: at(requested),
            expires_at: at(expires),
        })
    }

    #[test]
    fn only_new_expired_or_unsubscribed_addresses_get_a_confirmation() {
        let now = at(1000);
        assert_eq!(decide(None, None, now), Action::Confirm);
        assert_eq!(
            decide(standing(None, 900, 2000), None, now),
            Action::Nothing,
            "pending"
        );
        assert_eq!(
            decide(standing(None, 10, 500), None, now),
            Action::Confirm,
            "expired"
        );
        assert_eq!(
            decide(standing(Some(20), 10, 500), None, now),
            Action::Nothing,
            "subscribed"
        );
        assert_eq!(
            decide(standing(Some(20), 10, 500), Some("unsubscribed"), now),
            Action::Confirm,
            "came back"
        );
        assert_eq!(
            decide(standing(Some(20), 900, 2000), Some("unsubscribed"), now),
            Action::Nothing,
            "came back, confirmation on its way"
        );
        for reason in ["bounced", "complained"] {
            assert_eq!(decide(None, Some(reason), now), Action::Nothing);
        }
    }

    #[test]
    fn posts_are_parsed_once() {
        let settings = Signup {
            fields: vec!["company".into()],
            ..Signup::default()
        };
        let post = parse(
            b"email=Ada%40Example.com&name=Ada+L&timezone=Europe%2FParis&company=ACME&other=x",
            &settings,
        )
        .unwrap();
        assert_eq!(post.address.to_string(), "Ada@Example.com");
        assert_eq!(post.name.as_deref(), Some("Ada L"));
        assert_eq!(
            post.timezone.map(|zone| zone.0),
            Some(chrono_tz::Europe::Paris)
        );
        assert_eq!(post.fields.get("company").map(String::as_str), Some("ACME"));
        assert_eq!(post.fields.len(), 1);
        assert!(!post.bot);
        assert!(parse(b"email=a%40b.c&website=spam", &settings).unwrap().bot);
        assert_eq!(parse(b"name=x", &settings), Err(Invalid::NoAddress));
        assert_eq!(parse(b"email=nope", &settings), Err(Invalid::BadAddress));
        assert_eq!(
            parse(b"email=a%0A%40b.c", &settings),
            Err(Invalid::BadAddress)
        );
        let long = format!("email=a%40b.c&name={}", "x".repeat(MAX_FIELD + 1));
        assert_eq!(parse(long.as_bytes(), &settings), Err(Invalid::TooLong));
        let zone = parse(b"email=a%40b.c&timezone=Mars%2FBase", &settings).unwrap();
        assert_eq!(zone.timezone, None);
    }

    #[test]
    fn confirmed_signups_join_the_list_unless_a_row_has_the_address() {
        let confirmed = |address: &str| Confirmed {
            email: address.to_lowercase(),
            address: address.to_owned(),
            name: Some("Signup".into()),
            timezone: Some("Asia/Tokyo".into()),
            fields: BTreeMap::new(),
            requested_at: at(10),
            confirmed_at: at(20),
            confirmed_ip: "192.0.2.1".into(),
            confirmed_form: "hosted".into(),
        };
        let mut list = crate::subscribers::parse(
            &b"email,name\nada@example.com,Ada Row\n"[..],
            std::path::Path::new("list.csv"),
            &crate::subscribers::Columns::default(),
        );
        merge(
            &mut list,
            &[confirmed("ADA@example.com"), confirmed("Bo@example.com")],
        );
        let names: Vec<(String, Option<String>)> = list
            .subscribers
            .iter()
            .map(|s| (s.key(), s.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("ada@example.com".to_owned(), Some("Ada Row".to_owned())),
                ("bo@example.com".to_owned(), Some("Signup".to_owned())),
            ]
        );
        let bo = &list.subscribers[1];
        assert_eq!(bo.subscribed_at, Some(Joined::At(at(20))));
        assert_eq!(bo.timezone.map(|zone| zone.0), Some(chrono_tz::Asia::Tokyo));
    }

    #[test]
    fn origins_are_scheme_and_host() {
        assert_eq!(
            origin("HTTPS://www.Example.com/").as_deref(),
            Some("https://www.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("https://example.com/form"), None);
        assert_eq!(origin("example.com"), None);
        assert_eq!(
            origin_of("https://news.example.com/dripline").as_deref(),
            Some("https://news.example.com")
        );
    }
}
