//! The handlers of the job kinds, one module per kind.

mod refund;
mod reserve_seats;
mod send_email_verification;
mod send_otp;
mod verify_payment;
