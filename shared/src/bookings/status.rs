//! The states of a booking and the moves between them.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "booking_status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    Pending,
    Reserved,
    Rejected,
    Confirmed,
    Expired,
    Canceled,
    RefundPending,
    Refunded,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(
    type_name = "booking_reject_reason",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum RejectReason {
    SoldOut,
    SeatTaken,
    NotOnSale,
    LimitReached,
    InvalidSeats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a booking cannot move from {from:?} to {to:?}")]
pub struct IllegalTransition {
    pub from: BookingStatus,
    pub to: BookingStatus,
}

impl BookingStatus {
    /// Statuses no job or sweep will move on by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Confirmed | Self::Expired | Self::Canceled | Self::Refunded
        )
    }

    /// Statuses in which the booking holds or owns its seats.
    pub fn holds_seats(self) -> bool {
        matches!(self, Self::Reserved | Self::Confirmed | Self::RefundPending)
    }

    /// The one table of legal moves; `booking_transition_allowed` in the schema mirrors it.
    pub fn can_move_to(self, next: Self) -> bool {
        use BookingStatus::*;
        self == next
            || matches!(
                (self, next),
                (Pending, Reserved | Rejected)
                    | (Reserved, Confirmed | Expired | Canceled)
                    | (Expired, Confirmed)
                    | (Confirmed, RefundPending | Canceled)
                    | (RefundPending, Refunded | Confirmed)
            )
    }

    pub fn move_to(self, next: Self) -> Result<Self, IllegalTransition> {
        if self.can_move_to(next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }

    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Reserved,
        Self::Rejected,
        Self::Confirmed,
        Self::Expired,
        Self::Canceled,
        Self::RefundPending,
        Self::Refunded,
    ];
}

#[cfg(test)]
mod tests {
    use super::BookingStatus::{self, *};

    #[test]
    fn a_pending_booking_is_either_reserved_or_rejected() {
        assert_eq!(Pending.move_to(Reserved), Ok(Reserved));
        assert_eq!(Pending.move_to(Rejected), Ok(Rejected));
        assert!(Pending.move_to(Confirmed).is_err());
    }

    #[test]
    fn final_statuses_do_not_go_back_to_holding() {
        for from in BookingStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in [Pending, Reserved] {
                assert!(!from.can_move_to(to), "{from:?} -> {to:?} must be refused");
            }
        }
    }

    #[test]
    fn refunds_only_follow_a_confirmation() {
        let reach_refund_pending: Vec<_> = BookingStatus::ALL
            .into_iter()
            .filter(|from| *from != RefundPending && from.can_move_to(RefundPending))
            .collect();
        assert_eq!(reach_refund_pending, vec![Confirmed]);
    }
}
