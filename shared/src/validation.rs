//! What every parse of outside input shares: the error it returns (which field, and what is
//! wrong with it), the size of a page of a list, and how an empty query parameter is read.

use std::{fmt::Display, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// How many rows one page of a list holds: 1 to the list's largest page, the list's default
/// when the client does not say. Every list checks its `limit` this one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub fn parse(limit: Option<u32>, default: u32, largest: u32) -> Result<Self, FieldError> {
        match limit.unwrap_or(default) {
            size if (1..=largest).contains(&size) => Ok(Self(size)),
            _ => Err(FieldError::new(
                "limit",
                format!("must be between 1 and {largest}"),
            )),
        }
    }

    /// As SQL's `LIMIT` takes it.
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }

    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// For an optional query parameter (`#[serde(default, deserialize_with = ...)]`): an empty
/// value (`?cursor=`, as forms and many clients send an unset field) means the parameter is
/// absent; any other value is parsed as `T` is from text.
pub fn empty_is_absent<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    present(deserializer)?
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// [`empty_is_absent`] for a type named by text in serde's own way (an enum of names).
pub fn empty_is_absent_name<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::IntoDeserializer;
    present(deserializer)?
        .map(|text| {
            let text: serde::de::value::StrDeserializer<'_, D::Error> =
                text.as_str().into_deserializer();
            T::deserialize(text)
        })
        .transpose()
}

/// The parameter's text, trimmed, or `None` when it is missing or empty.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_size_is_the_default_when_absent_and_refused_outside_its_range() {
        assert_eq!(PageSize::parse(None, 20, 100).unwrap().as_i64(), 20);
        assert_eq!(PageSize::parse(Some(100), 20, 100).unwrap().as_usize(), 100);
        for refused in [0, 101] {
            let error = PageSize::parse(Some(refused), 20, 100).unwrap_err();
            assert_eq!(error.to_string(), "limit: must be between 1 and 100");
        }
    }
}
