//! Accounts and access: who a user is, how they prove it, and what they may do.
//!
//! - [`Email`], [`PhoneNumber`] and [`Password`] can only hold valid values;
//! - [`PasswordHasher`] runs argon2id off the async threads and upgrades old hashes;
//! - [`tokens`] issues short-lived JWT access tokens and opaque refresh tokens;
//! - [`sessions`] keeps one session per signed-in device, the family of its refresh tokens;
//! - [`otp`] and [`google`] are the other two ways to sign in;
//! - [`email_verification`] proves an account owns its email, which Google linking requires.

mod email;
pub mod email_verification;
pub mod google;
pub mod otp;
mod password;
mod phone;
mod role;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use email::Email;
pub use password::{HashError, Password, PasswordHasher, Verification};
pub use phone::PhoneNumber;
pub use role::Role;
