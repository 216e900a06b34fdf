//! Money. Every amount BMS charges, captures, refunds or shows is a [`Paise`]: a whole number of
//! paise (₹1 = 100 paise), never negative, never a float. In JSON and in Postgres it is the
//! plain integer, so clients and the schema see what they always saw.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::FieldError;

/// An amount in paise, never negative.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
#[schema(value_type = i64)]
pub struct Paise(i64);

/// A `bigint` column of paise. Read through the same check as JSON, so a negative amount in
/// the database is an error where it is read, not a refund of less than nothing.
impl sqlx::Type<sqlx::Postgres> for Paise {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <i64 as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Paise {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let paise = <i64 as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(Self::try_from(paise)?)
    }
}

impl Paise {
    pub const ZERO: Self = Self(0);
    /// The most a price may be: ₹1 crore.
    const MAX_PRICE: i64 = 1_000_000_000;

    /// A price as an editor typed it: not negative, at most ₹1 crore.
    pub fn price(field: &'static str, value: i64) -> Result<Self, FieldError> {
        if value < 0 {
            return Err(FieldError::new(field, "a price cannot be negative"));
        }
        if value > Self::MAX_PRICE {
            return Err(FieldError::new(
                field,
                format!("at most {} paise", Self::MAX_PRICE),
            ));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// What is left of `self` once `taken` is gone; zero rather than below.
    pub fn saturating_sub(self, taken: Self) -> Self {
        Self(self.0.saturating_sub(taken.0).max(0))
    }
}

/// Amounts added up (a show's takings over its showtimes), saturating rather than wrapping.
impl std::ops::AddAssign for Paise {
    fn add_assign(&mut self, amount: Self) {
        self.0 = self.0.saturating_add(amount.0);
    }
}

/// The sum of several amounts (the seats of a booking), saturating rather than wrapping.
impl std::iter::Sum for Paise {
    fn sum<I: Iterator<Item = Self>>(amounts: I) -> Self {
        Self(amounts.fold(0_i64, |total, amount| total.saturating_add(amount.0)))
    }
}

impl TryFrom<i64> for Paise {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value < 0 {
            return Err(format!("{value} paise: an amount cannot be negative"));
        }
        Ok(Self(value))
    }
}

impl From<Paise> for i64 {
    fn from(amount: Paise) -> Self {
        amount.0
    }
}

impl std::fmt::Display for Paise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} paise", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_is_between_zero_and_a_crore() {
        assert!(Paise::price("price", -1).is_err());
        assert_eq!(Paise::price("price", 0).unwrap().get(), 0);
        assert!(Paise::price("price", Paise::MAX_PRICE + 1).is_err());
    }

    #[test]
    fn an_amount_is_the_plain_integer_in_json_and_never_negative() {
        assert_eq!(serde_json::to_string(&Paise(45_000)).unwrap(), "45000");
        assert_eq!(
            serde_json::from_str::<Paise>("45000").unwrap(),
            Paise(45_000)
        );
        assert!(serde_json::from_str::<Paise>("-1").is_err());
    }
}
