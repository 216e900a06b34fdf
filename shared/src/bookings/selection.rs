//! What a buyer asks for: named seats, or a quantity in a section ("best available").

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validation::FieldError;

/// A valid seat request: 1 to `max` distinct named seats, or 1 to `max` seats of one section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeatSelection {
    /// Sorted and distinct, so equal requests compare (and fingerprint) equal.
    Named {
        seat_ids: Vec<Uuid>,
    },
    BestAvailable {
        section_id: Uuid,
        quantity: u32,
    },
}

impl SeatSelection {
    /// Accepts exactly one of the two forms.
    pub fn parse(
        seat_ids: Option<Vec<Uuid>>,
        section_id: Option<Uuid>,
        quantity: Option<i64>,
        max: u32,
    ) -> Result<Self, FieldError> {
        match (seat_ids, section_id, quantity) {
            (Some(seat_ids), None, None) => {
                if seat_ids.is_empty() {
                    return Err(FieldError::new("seat_ids", "must name at least one seat"));
                }
                let distinct: BTreeSet<Uuid> = seat_ids.iter().copied().collect();
                if distinct.len() != seat_ids.len() {
                    return Err(FieldError::new("seat_ids", "must not name a seat twice"));
                }
                if distinct.len() > max as usize {
                    return Err(FieldError::new(
                        "seat_ids",
                        format!("may name at most {max} seats"),
                    ));
                }
                Ok(Self::Named {
                    seat_ids: distinct.into_iter().collect(),
                })
            }
            (None, Some(section_id), Some(quantity)) => {
                if quantity < 1 || quantity > i64::from(max) {
                    return Err(FieldError::new(
                        "quantity",
                        format!("must be between 1 and {max}"),
                    ));
                }
                Ok(Self::BestAvailable {
                    section_id,
                    quantity: u32::try_from(quantity).unwrap_or(max),
                })
            }
            _ => Err(FieldError::new(
                "seats",
                "give either seat_ids, or section_id with quantity",
            )),
        }
    }

    /// The seats named, none for best available.
    pub fn named_seats(&self) -> &[Uuid] {
        match self {
            Self::Named { seat_ids } => seat_ids,
            Self::BestAvailable { .. } => &[],
        }
    }

    /// The section asked for best available, none for named seats.
    pub fn section_id(&self) -> Option<Uuid> {
        match self {
            Self::Named { .. } => None,
            Self::BestAvailable { section_id, .. } => Some(*section_id),
        }
    }

    pub fn quantity(&self) -> u32 {
        match self {
            Self::Named { seat_ids } => u32::try_from(seat_ids.len()).unwrap_or(u32::MAX),
            Self::BestAvailable { quantity, .. } => *quantity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_seats_are_sorted_and_distinct() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let one = SeatSelection::parse(Some(vec![a, b]), None, None, 10).unwrap();
        let other = SeatSelection::parse(Some(vec![b, a]), None, None, 10).unwrap();
        assert_eq!(one, other);
        assert!(SeatSelection::parse(Some(vec![a, a]), None, None, 10).is_err());
        assert!(SeatSelection::parse(Some(vec![]), None, None, 10).is_err());
        assert!(SeatSelection::parse(Some(vec![a, b]), None, None, 1).is_err());
    }

    #[test]
    fn quantities_are_bounded() {
        let section = Some(Uuid::new_v4());
        for bad in [0, -1, 11, 10_000] {
            assert!(
                SeatSelection::parse(None, section, Some(bad), 10).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            SeatSelection::parse(None, section, Some(10), 10)
                .unwrap()
                .quantity(),
            10
        );
    }

    #[test]
    fn exactly_one_form_is_accepted() {
        let seat = Uuid::new_v4();
        assert!(SeatSelection::parse(None, None, None, 10).is_err());
        assert!(SeatSelection::parse(Some(vec![seat]), Some(seat), Some(1), 10).is_err());
        assert!(SeatSelection::parse(None, Some(seat), None, 10).is_err());
    }
}
