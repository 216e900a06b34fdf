//! The one error of the domain's use cases: a refusal the caller may be told of (not found, a
//! rule broken, a conflict with what exists, a proof that does not check out), or a dependency
//! that failed, whose cause is logged and not told. The API maps it to HTTP in one place.

use crate::{jobs::PublishError, payments::razorpay::RazorpayError, validation::FieldError};

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A value breaks a rule (negative price, sale window after the show, a seat of another
    /// showtime).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The request contradicts what exists (a name taken, a booking in the wrong status,
    /// records depending on what would be deleted).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A payment's signature does not match: someone other than Razorpay wrote it.
    #[error("the payment signature does not match")]
    BadSignature,
    #[error(transparent)]
    Provider(#[from] RazorpayError),
    /// A job could not be queued; nothing was done that the caller must undo.
    #[error(transparent)]
    Queue(#[from] PublishError),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl DomainError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// Constraint violations the database can still raise after the checks in code (two editors
/// racing), turned into the answer the check would have given.
impl From<sqlx::Error> for DomainError {
    fn from(error: sqlx::Error) -> Self {
        let Some(constraint) = error
            .as_database_error()
            .and_then(|e| e.constraint())
            .map(str::to_owned)
        else {
            return Self::Database(error);
        };
        // What the caller is told names no table; the log keeps the database's own words.
        tracing::info!(%error, "a constraint refused the write");
        match constraint.as_str() {
            "seat_sections_venue_id_name_key" => {
                FieldError::new("sections", "section names must be unique in a venue").into()
            }
            "categories_name_key" => {
                Self::conflict("NAME_TAKEN", "a category with this name exists")
            }
            "categories_slug_key" => {
                Self::conflict("SLUG_TAKEN", "a category with this slug exists")
            }
            "price_tiers_showtime_id_section_id_key" => {
                FieldError::new("price_tiers", "a section can have only one price tier").into()
            }
            "showtimes_sale_window" => {
                FieldError::new("sale_ends_at", "must be after sale_starts_at").into()
            }
            "showtimes_sale_opens_before_start" => {
                FieldError::new("sale_starts_at", "must not be after starts_at").into()
            }
            "showtimes_ends_after_start" => {
                FieldError::new("ends_at", "must be after starts_at").into()
            }
            "showtime_status_transition" => Self::conflict(
                "ILLEGAL_TRANSITION",
                "the showtime cannot move to that status",
            ),
            name if name.ends_with("_fkey") => Self::conflict(
                "IN_USE",
                "other records depend on this; archive it instead of deleting it",
            ),
            _ => Self::Database(error),
        }
    }
}
