//! `/api/admin`: what only a SUPER_ADMIN may do, one file per concern. The role is required by
//! the route layer in `startup`, not checked here; every change is written to the audit log.

pub mod audit;
pub mod bookings;
pub mod dead_letters;
pub mod payments;
pub mod users;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every admin route, each registered with its OpenAPI entry; `startup` puts the role guard in
/// front of them.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router())
        .merge(audit::router())
        .merge(dead_letters::router())
        .merge(bookings::router())
        .merge(payments::router())
}
