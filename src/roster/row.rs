//! How a list row is kept in the roster: its hash, to tell an unchanged
//! row without parsing it, and the subscriber it describes, to render
//! their emails without reading the list. Pure: bytes in, bytes out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::subscribers::{Joined, Subscriber};
use crate::zone::Zone;

/// Hashes the records of one list, read under one layout: the same bytes
/// under another header mean another row.
pub struct RowHasher {
    /// The layout, already absorbed.
    prefix: Sha256,
}

impl RowHasher {
    pub fn new(layout: &str) -> RowHasher {
        RowHasher {
            prefix: Sha256::new_with_prefix(layout.as_bytes()),
        }
    }

    /// The hash of a record. Each value is length-prefixed, so no two
    /// records share a hash by moving a comma. 64 bits: two different rows
    /// of a million-row list share one with odds of about one in 2^24; the
    /// price would be one of them taken for the other's duplicate.
    pub fn hash(&self, record: &csv::ByteRecord) -> i64 {
        let mut hasher = self.prefix.clone();
        for value in record {
            hasher.update((value.len() as u64).to_le_bytes());
            hasher.update(value);
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_le_bytes(first)
    }
}

/// A set of row hashes. They are SHA-256 already, so they serve as their
/// own hash ([`AsIs`]) instead of being hashed again for every look-up of a
/// million-row list.
pub type RowHashes = HashSet<i64, BuildHasherDefault<AsIs>>;

/// A map keyed by row hashes or key hashes ([`key_hash`]), used as their
/// own hash.
pub type ByHash<K, V> = HashMap<K, V, BuildHasherDefault<AsIs>>;

/// The hasher of [`RowHashes`] and [`ByHash`]: an integer key, already a
/// uniform hash, is its own (its low 64 bits); other bytes are folded in.
#[derive(Default)]
pub struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_i64(&mut self, value: i64) {
        self.0 = value as u64;
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

/// A subscriber key as 128 bits, to tell the addresses of a large list
/// apart without holding them (a collision: about one in 2^88).
pub fn key_hash(key: &str) -> u128 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// A subscriber as the roster stores them (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    joined_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    joined_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<String, String>,
}

/// The stored form of a subscriber.
pub fn encode(subscriber: &Subscriber) -> String {
    let stored = Stored {
        email: subscriber.email.to_string(),
        name: subscriber.name.clone(),
        first_name: subscriber.first_name.clone(),
        joined_at: match subscriber.subscribed_at {
            Some(Joined::At(at)) => Some(at),
            _ => None,
        },
        joined_on: match subscriber.subscribed_at {
            Some(Joined::Date(date)) => Some(date),
            _ => None,
        },
        timezone: subscriber.timezone.map(|zone| zone.to_string()),
        fields: subscriber.fields.clone(),
    };
    serde_json::to_string(&stored).unwrap_or_else(|err| unreachable!("a row serializes: {err}"))
}

/// The subscriber a stored row describes; an error when it is not one
/// dripline wrote.
pub fn decode(row: &str) -> Result<Subscriber, String> {
    let stored: Stored = serde_json::from_str(row).map_err(|err| err.to_string())?;
    let email = stored
        .email
        .parse()
        .map_err(|_| format!("`{}` is not an email address", stored.email))?;
    let mut subscriber = Subscriber::new(email);
    subscriber.name = stored.name;
    subscriber.first_name = stored.first_name;
    subscriber.subscribed_at = stored
        .joined_at
        .map(Joined::At)
        .or(stored.joined_on.map(Joined::Date));
    subscriber.timezone = stored
        .timezone
        .and_then(|zone| zone.parse::<chrono_tz::Tz>().ok())
        .map(Zone);
    subscriber.fields = stored.fields;
    Ok(subscriber)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(values: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(values.to_vec())
    }

    #[test]
    fn a_subscriber_survives_the_round_trip() {
        let mut ann = Subscriber::new("Ann.Lee@example.com".parse().unwrap())
            .with_name("Ann Lee")
            .with_field("city", "Paris, \"the\" city");
        ann.timezone = Some(Zone(chrono_tz::Europe::Paris));
        ann.subscribed_at = Some(Joined::Date(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()));
        assert_eq!(decode(&encode(&ann)).unwrap(), ann);
        let at = DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").unwrap();
        ann.subscribed_at = Some(Joined::At(at.to_utc()));
        assert_eq!(decode(&encode(&ann)).unwrap(), ann);
    }

    #[test]
    fn the_hash_follows_the_values_their_boundaries_and_the_layout() {
        let hasher = RowHasher::new("email=Email\n");
        let hash = hasher.hash(&record(&["a@example.com", "Ann"]));
        assert_eq!(hash, hasher.hash(&record(&["a@example.com", "Ann"])));
        assert_ne!(hash, hasher.hash(&record(&["a@example.com", "Anne"])));
        assert_ne!(hash, hasher.hash(&record(&["a@example.comA", "nn"])));
        let other = RowHasher::new("name=Email\n");
        assert_ne!(hash, other.hash(&record(&["a@example.com", "Ann"])));
    }

    #[test]
    fn a_row_dripline_did_not_write_is_an_error() {
        assert!(decode("{}").is_err());
        assert!(decode(r#"{"email":"not an address"}"#).is_err());
    }
}
