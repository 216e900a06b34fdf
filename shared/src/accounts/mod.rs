//! Accounts and access: who a user is, how they prove it, and what they may do.
//!
//! - [`Email`], [`PhoneNumber`] and [`Password`] can only hold valid values;
//! - [`PasswordHasher`] runs argon2id off the async threads and upgrades old hashes;
//! - [`tokens`] issues short-lived JWT access tokens and opaque refresh tokens;
//! - [`sessions`] keeps one session per signed-in device, the family of its refresh tokens;
//! - [`otp`] and [`google`] are the other two ways to sign in;
//! - [`email_verification`] proves an account owns its email, which Google linking requires;
//! - [`preferences`] keeps what a user chose: city, language, which messages they want;
//! - [`sign_in`] holds the ways in and out of an account, [`admin`] what admins do to accounts
//!   (roles, disabling); both end in [`AccountError`] when refused.

pub mod admin;
mod email;
pub mod email_verification;
pub mod google;
pub mod otp;
mod password;
mod phone;
pub mod preferences;
mod role;
pub mod sessions;
pub mod sign_in;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use email::Email;
pub use password::{HashError, Password, PasswordHasher, Verification};
pub use phone::PhoneNumber;
pub use role::Role;

/// Why an account use case was refused; the variants of each step it took, and its own.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the email or password is not correct")]
    InvalidCredentials,
    #[error("this account is disabled")]
    Disabled,
    #[error("too many failed sign-in attempts; try again later")]
    TooManyAttempts { retry_after: std::time::Duration },
    /// A code could not be queued for sending; nothing was kept of the request.
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    #[error(transparent)]
    Invalid(#[from] crate::validation::FieldError),
    #[error(transparent)]
    User(#[from] users::UserError),
    #[error(transparent)]
    Session(#[from] sessions::SessionError),
    #[error(transparent)]
    Otp(#[from] otp::OtpError),
    #[error(transparent)]
    Verification(#[from] email_verification::VerificationError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
