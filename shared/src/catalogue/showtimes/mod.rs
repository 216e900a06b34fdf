//! Showtimes: one performance of an event, its sale window, its price tiers per seat section,
//! and its lifecycle. Publishing turns the venue's layout into the showtime's seat inventory
//! in the same transaction that puts it on sale.

//!
//! - [`requests`]: what editors send, and the checks it must pass;
//! - [`read`]: the showtime as buyers and editors read it;
//! - [`writes`]: creating, changing, publishing, cancelling and deleting, each one transaction.

mod read;
mod requests;
mod writes;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(in crate::catalogue) use self::read::load;
pub use self::{
    read::{PriceTier, Showtime, details},
    requests::{NewShowtime, ShowtimeChanges, TierInput},
    writes::{cancel, create, delete, publish, replace_price_tiers, update},
};

/// Where a showtime is in its life. Buyers see every status but `Draft`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "showtime_status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShowtimeStatus {
    Draft,
    OnSale,
    SoldOut,
    Canceled,
    Completed,
}

impl ShowtimeStatus {
    /// The moves the lifecycle allows; the database refuses the others too
    /// (`showtime_transition_allowed`).
    pub fn can_become(self, next: Self) -> bool {
        use ShowtimeStatus::*;
        self == next
            || matches!(
                (self, next),
                (Draft, OnSale | Canceled)
                    | (OnSale, SoldOut | Canceled | Completed)
                    | (SoldOut, OnSale | Canceled | Completed)
            )
    }

    fn is_final(self) -> bool {
        matches!(self, Self::Canceled | Self::Completed)
    }
}

#[cfg(test)]
mod tests {
    use super::ShowtimeStatus::*;

    #[test]
    fn lifecycle_moves_forward_only() {
        assert!(
            Draft.can_become(OnSale) && OnSale.can_become(SoldOut) && SoldOut.can_become(OnSale)
        );
        assert!(
            !OnSale.can_become(Draft)
                && !Canceled.can_become(OnSale)
                && !Completed.can_become(Canceled)
        );
        assert!(!Draft.can_become(Completed));
    }
}
