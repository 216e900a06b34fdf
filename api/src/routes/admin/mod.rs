//! `/api/admin`: what only a SUPER_ADMIN may do, one file per concern. The role is required by
//! the route layer in `startup`, not checked here; every change is written to the audit log.

pub mod audit;
pub mod bookings;
pub mod dead_letters;
pub mod payments;
pub mod users;
