//! `dripline export SEQ`: a sequence's signups and every suppression as
//! CSV, so an operator can carry them to another tool (the columns are
//! the ones mailing tools import: an address, a status, dates).
//!
//! One row per address: each subscriber enrolled in the sequence, and each
//! suppressed address, enrolled or not (a suppression holds for every
//! sequence). A subscriber who joined through the signup form also has
//! their consent record: when they signed up, and when, from which client
//! address and through which form they confirmed. Rows are sorted by
//! address. Pure: the caller reads the store.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::store::signups::Confirmed;
use crate::store::{SequenceState, Suppression};

/// The header row.
pub const COLUMNS: [&str; 12] = [
    "email",
    "status",
    "enrolled_at",
    "steps_sent",
    "last_sent_at",
    "suppressed_reason",
    "suppressed_at",
    "suppressed_detail",
    "signed_up_at",
    "consent_at",
    "consent_ip",
    "consent_form",
];

/// Writes the rows for a sequence of `steps` steps as CSV.
pub fn write(
    out: impl std::io::Write,
    steps: usize,
    state: &SequenceState,
    suppressions: &HashMap<String, Suppression>,
    signups: &[Confirmed],
) -> csv::Result<()> {
    let signups: HashMap<&str, &Confirmed> = signups
        .iter()
        .map(|signup| (signup.email.as_str(), signup))
        .collect();
    let mut emails: BTreeMap<&str, ()> = BTreeMap::new();
    emails.extend(state.enrollments.keys().map(|email| (email.as_str(), ())));
    emails.extend(suppressions.keys().map(|email| (email.as_str(), ())));
    emails.extend(signups.keys().map(|email| (*email, ())));
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(COLUMNS)?;
    for email in emails.keys() {
        let enrollment = state.enrollments.get(*email);
        let suppression = suppressions.get(*email);
        let signup = signups.get(*email);
        let sent = enrollment.map_or(0, |e| e.sent_steps.len());
        let status = match (suppression, enrollment) {
            (Some(suppression), _) => suppression.reason.as_str(),
            (None, Some(_)) if sent >= steps => "completed",
            (None, _) => "active",
        };
        writer.write_record([
            *email,
            status,
            &enrollment.map(|e| time(e.enrolled_at)).unwrap_or_default(),
            &enrollment.map(|_| sent.to_string()).unwrap_or_default(),
            &enrollment
                .and_then(|e| e.last_sent_at)
                .map(time)
                .unwrap_or_default(),
            suppression.map_or("", |s| s.reason.as_str()),
            &suppression.map(|s| time(s.at)).unwrap_or_default(),
            suppression.map_or("", |s| s.detail.as_str()),
            &signup.map(|s| time(s.requested_at)).unwrap_or_default(),
            &signup.map(|s| time(s.confirmed_at)).unwrap_or_default(),
            signup.map_or("", |s| s.confirmed_ip.as_str()),
            signup.map_or("", |s| s.confirmed_form.as_str()),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Enrollment;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn signups_and_every_suppression_are_rows() {
        let mut state = SequenceState::default();
        for (email, sent) in [
            ("ada@example.com", 2),
            ("bob@example.com", 1),
            ("cy@example.com", 1),
        ] {
            state.enrollments.insert(
                email.to_owned(),
                Enrollment {
                    enrolled_at: at(0),
                    sent_steps: (0..sent).map(|n| format!("s{n}")).collect(),
                    last_sent_at: Some(at(86_400)),
                },
            );
        }
        let mut suppressions = HashMap::new();
        for (email, reason, detail) in [
            ("cy@example.com", "bounced", "DSN failed 5.1.1, \"quoted\""),
            ("eve@example.org", "complained", "ARF abuse report"),
        ] {
            suppressions.insert(
                email.to_owned(),
                Suppression {
                    reason: crate::store::Reason::parse(reason),
                    at: at(172_800),
                    detail: detail.to_owned(),
                },
            );
        }
        let signup = Confirmed {
            email: "bob@example.com".into(),
            address: "Bob@example.com".into(),
            name: None,
            timezone: None,
            fields: BTreeMap::new(),
            requested_at: at(-60),
            confirmed_at: at(0),
            confirmed_ip: "192.0.2.7".into(),
            confirmed_form: "https://coach.example.com".into(),
        };
        let mut out = Vec::new();
        write(&mut out, 2, &state, &suppressions, &[signup]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "email,status,enrolled_at,steps_sent,last_sent_at,suppressed_reason,suppressed_at,suppressed_detail,signed_up_at,consent_at,consent_ip,consent_form\n\
             ada@example.com,completed,1970-01-01T00:00:00Z,2,1970-01-02T00:00:00Z,,,,,,,\n\
             bob@example.com,active,1970-01-01T00:00:00Z,1,1970-01-02T00:00:00Z,,,,1969-12-31T23:59:00Z,1970-01-01T00:00:00Z,192.0.2.7,https://coach.example.com\n\
             cy@example.com,bounced,1970-01-01T00:00:00Z,1,1970-01-02T00:00:00Z,bounced,1970-01-03T00:00:00Z,\"DSN failed 5.1.1, \"\"quoted\"\"\",,,,\n\
             eve@example.org,complained,,,,complained,1970-01-03T00:00:00Z,ARF abuse report,,,,\n"
        );
    }
}
