//! Phone numbers, parsed the way people write them and stored in E.164.

use phonenumber::{Mode, country};
use serde::Serialize;

use utoipa::openapi::{Object, ObjectBuilder, Type};

use crate::validation::FieldError;

/// A valid phone number in E.164 form (`+919876543210`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number as people write it; without `+country` it is read in `default_region`.
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, FieldError> {
        if raw.chars().count() > 32 {
            return Err(FieldError::new("phone", "is too long"));
        }
        let region = default_region.parse::<country::Id>().ok();
        let number = phonenumber::parse(region, raw)
            .map_err(|_| FieldError::new("phone", "is not a phone number"))?;
        if !phonenumber::is_valid(&number) {
            return Err(FieldError::new("phone", "is not a valid phone number"));
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What [`PhoneNumber::parse`] takes, as far as a schema can say it: whether a number
    /// exists in its country's numbering plan is for the parser to tell.
    pub fn schema() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "In E.164 (+919876543210), or as written in the API's default region (DEFAULT_PHONE_REGION).",
            ))
            .min_length(Some(1))
            .max_length(Some(32))
            .build()
    }

    /// The last two digits only, for logs and messages.
    pub fn masked(&self) -> String {
        let tail: String = self
            .0
            .chars()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("***{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn numbers_are_stored_in_e164() {
        assert_eq!(
            PhoneNumber::parse("98765 43210", "IN").unwrap().as_str(),
            "+919876543210"
        );
        assert_eq!(
            PhoneNumber::parse("+1 650-253-0000", "IN")
                .unwrap()
                .as_str(),
            "+16502530000"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        for raw in ["", "12", "not a phone", "+999 123", &"9".repeat(40)] {
            assert!(PhoneNumber::parse(raw, "IN").is_err(), "{raw:?}");
        }
    }

    #[test]
    fn masking_hides_all_but_the_last_two_digits() {
        assert_eq!(
            PhoneNumber::parse("+919876543210", "IN").unwrap().masked(),
            "***10"
        );
    }
}
