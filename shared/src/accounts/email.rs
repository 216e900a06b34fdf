//! Email addresses as accounts know them: trimmed, lower-cased, checked.

use serde::Serialize;

use utoipa::openapi::{Object, ObjectBuilder, SchemaFormat, Type};

use crate::validation::{FieldError, schema::string_or_null};

/// An email address, trimmed and lower-cased so that one mailbox is one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.chars().count() > 254 {
            return Err(FieldError::new("email", "must be at most 254 characters"));
        }
        // A bare address only: a display name (`Asha <asha@example.com>`) or an IP literal
        // would let one mailbox hold many accounts under different spellings.
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        // A quoted local part (`"asha"@example.com`) is the same mailbox as the bare one.
        let quoted = normalised.contains(['"', '\\']);
        let control = normalised.chars().any(char::is_control);
        if quoted
            || control
            || email_address::EmailAddress::parse_with_options(&normalised, options).is_err()
        {
            return Err(FieldError::new("email", "is not a valid email address"));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What [`Email::parse`] takes, as the OpenAPI document states it
    /// (`#[schema(schema_with = Email::schema)]`).
    pub fn schema() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("email".into())))
            .max_length(Some(254))
            .build()
    }

    /// [`Email::schema`], or `null`.
    pub fn schema_or_null() -> Object {
        string_or_null(Self::schema())
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Asha@Example.COM ").unwrap().as_str(),
            "asha@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "asha",
            "asha@",
            "@example.com",
            "asha@localhost",
            "a b@example.com",
            "asha <asha@example.com>",
            "asha@[192.168.0.1]",
            "\"asha\"@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
