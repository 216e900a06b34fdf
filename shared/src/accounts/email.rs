//! Email addresses as accounts know them: trimmed, lower-cased, checked.

use serde::Serialize;

use crate::validation::FieldError;

/// An email address, trimmed and lower-cased so that one mailbox is one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.len() > 254 {
            return Err(FieldError::new("email", "must be at most 254 characters"));
        }
        let valid = email_address::EmailAddress::is_valid(&normalised)
            && normalised
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.'));
        if !valid {
            return Err(FieldError::new("email", "is not a valid email address"));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
