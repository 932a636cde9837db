//! Time zones by IANA name, with a suggestion when a name is misspelled.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;

/// An IANA time zone that exists (`America/New_York`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(Tz::UTC)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// A time zone name that is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{name}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| "; use an IANA name such as `America/New_York` or `Europe/Berlin`".to_owned()))]
pub struct UnknownZone {
    name: String,
    suggestion: Option<&'static str>,
}

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Self, UnknownZone> {
        if let Ok(tz) = name.parse::<Tz>() {
            return Ok(Zone(tz));
        }
        let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let suggestion = names()
            .find(|candidate| candidate.eq_ignore_ascii_case(name))
            .or_else(|| {
                names()
                    .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
                    .filter(|(similarity, _)| *similarity > 0.85)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, candidate)| candidate)
            });
        Err(UnknownZone {
            name: name.to_owned(),
            suggestion,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name() {
        let err = "America/NewYork".parse::<Zone>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone `America/NewYork`; did you mean `America/New_York`?"
        );
        let err = "europe/berlin".parse::<Zone>().unwrap_err();
        assert!(err.to_string().ends_with("did you mean `Europe/Berlin`?"));
    }

    #[test]
    fn nonsense_gets_an_example() {
        let err = "Moon/Base".parse::<Zone>().unwrap_err();
        assert!(err.to_string().contains("use an IANA name"), "{err}");
    }
}
