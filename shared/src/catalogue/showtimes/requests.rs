//! What an editor sends to create or change a showtime and its price tiers, and the checks it
//! must pass before anything is written.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::validation::{FieldError, objects, schema};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShowtime {
    pub event_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    /// Seats one buyer may hold or own for this showtime (default 10).
    #[schema(minimum = 1, maximum = 100)]
    pub max_seats_per_user: Option<i32>,
    #[serde(default, deserialize_with = "objects")]
    #[schema(max_items = 200)]
    pub price_tiers: Vec<TierInput>,
}

/// Changes to a showtime; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowtimeChanges {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_seats_per_user: Option<i32>,
}

/// The price of one section of the venue at this showtime.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    pub section_id: Uuid,
    /// Defaults to the section's name.
    #[schema(schema_with = schema::required_text_or_null::<100>)]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price_paise: i64,
    /// Seats of the section put on sale, best first (default: all of them).
    #[schema(minimum = 0, maximum = 100_000)]
    pub allocated_capacity: Option<i32>,
}

/// When a showtime happens and when it sells, checked against each other.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    pub(super) starts_at: DateTime<Utc>,
    pub(super) ends_at: Option<DateTime<Utc>>,
    pub(super) sale_starts_at: DateTime<Utc>,
    pub(super) sale_ends_at: DateTime<Utc>,
}

impl Schedule {
    pub(super) fn parse(
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        sale_starts_at: DateTime<Utc>,
        sale_ends_at: DateTime<Utc>,
    ) -> Result<Self, FieldError> {
        if ends_at.is_some_and(|end| end <= starts_at) {
            return Err(FieldError::new("ends_at", "must be after starts_at"));
        }
        if sale_ends_at <= sale_starts_at {
            return Err(FieldError::new(
                "sale_ends_at",
                "must be after sale_starts_at",
            ));
        }
        if starts_at < sale_starts_at {
            return Err(FieldError::new(
                "starts_at",
                "a showtime cannot start before its sale opens",
            ));
        }
        if sale_ends_at > ends_at.unwrap_or(starts_at) {
            return Err(FieldError::new(
                "sale_ends_at",
                "the sale must close by the time the show ends",
            ));
        }
        Ok(Self {
            starts_at,
            ends_at,
            sale_starts_at,
            sale_ends_at,
        })
    }
}

pub(super) fn seats_per_user(value: Option<i32>) -> Result<i32, FieldError> {
    let value = value.unwrap_or(10);
    if (1..=100).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "max_seats_per_user",
            "must be between 1 and 100",
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_schedule_holds_together() {
        let now = Utc::now();
        let day = Duration::days(1);
        assert!(Schedule::parse(now + day, None, now, now + day).is_ok());
        assert!(
            Schedule::parse(now, None, now + day, now + day * 2).is_err(),
            "starts before sale"
        );
        assert!(
            Schedule::parse(now + day, Some(now), now - day, now).is_err(),
            "ends before start"
        );
        assert!(
            Schedule::parse(now + day, None, now, now - day).is_err(),
            "sale ends before it opens"
        );
    }
}
