//! Subscribers: the people a sequence is sent to.
//!
//! For now this module owns only the domain type that rendering needs;
//! reading the list file into it (with per-row errors) comes later. A
//! `Subscriber` always holds a real address: whatever builds one has
//! already parsed its input.

use std::collections::BTreeMap;

use lettre::Address;

/// One person on a list, as the templates see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The address emails go to.
    pub email: Address,
    /// The display name, when the list gives one.
    pub name: Option<String>,
    /// The first name, when the list gives one; see [`Subscriber::first_name`].
    pub first_name: Option<String>,
    /// Every other column of the list, for `subscriber.fields.<column>`.
    pub fields: BTreeMap<String, String>,
}

impl Subscriber {
    /// A subscriber with only an address.
    pub fn new(email: Address) -> Self {
        Subscriber {
            email,
            name: None,
            first_name: None,
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

    /// The first name as given, or else the first word of the name.
    pub fn first_name(&self) -> Option<&str> {
        self.first_name
            .as_deref()
            .or_else(|| self.name.as_deref()?.split_whitespace().next())
    }
}

fn non_blank(text: String) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Subscriber {
        Subscriber::new("ada@example.com".parse().unwrap())
    }

    #[test]
    fn first_name_is_derived_from_the_name_unless_given() {
        assert_eq!(ada().first_name(), None);
        assert_eq!(
            ada().with_name("  Ada  Lovelace ").first_name(),
            Some("Ada")
        );
        let given = ada().with_name("Augusta Ada King").with_first_name("Ada");
        assert_eq!(given.first_name(), Some("Ada"));
    }

    #[test]
    fn blank_names_count_as_none() {
        let subscriber = ada().with_name("   ").with_first_name("");
        assert_eq!(subscriber.name, None);
        assert_eq!(subscriber.first_name(), None);
    }
}
