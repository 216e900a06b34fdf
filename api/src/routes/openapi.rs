//! The OpenAPI document, served at `/api/openapi.json` (importable into Postman) and browsable
//! with Swagger UI at `/docs`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "BMS API", description = "Live-show ticketing: venues, shows, seat holds, payments."),
    paths(
        super::health::health,
        super::health::live,
        crate::observe::metrics,
        super::auth::register,
        super::auth::login,
        super::auth::refresh,
        super::auth::logout,
        super::auth::google,
        super::auth::request_otp,
        super::auth::verify_otp,
        super::auth::request_email_verification,
        super::auth::verify_email,
        super::users::me,
        super::users::update_me,
        super::users::list_sessions,
        super::users::revoke_session,
        super::users::revoke_other_sessions,
        super::admin::users::change_role,
        super::admin::users::users,
        super::admin::users::set_disabled,
        super::admin::audit::audit_log,
        super::admin::dead_letters::dead_letters,
        super::admin::dead_letters::replay_dead_letter,
        super::admin::bookings::refund_booking,
        super::admin::bookings::manual_booking,
        super::admin::bookings::move_seats,
        super::admin::bookings::cancel_booking,
        super::admin::payments::payments,
        super::admin::payments::payment,
        super::admin::payments::recheck_payment,
        super::admin::payments::showtime_refunds,
        super::payments::create_order,
        super::payments::verify,
        super::payments::webhook,
        super::bookings::create,
        super::bookings::status,
        super::bookings::events,
        super::bookings::cancel,
        super::bookings::tickets,
        super::bookings::history,
        super::showtimes::availability,
        super::showtimes::compact_availability,
        super::showtimes::seat_map,
        super::showtimes::details,
        super::showtimes::create,
        super::showtimes::update,
        super::showtimes::replace_price_tiers,
        super::showtimes::publish,
        super::showtimes::cancel,
        super::showtimes::delete,
        super::categories::list,
        super::categories::create,
        super::categories::update,
        super::categories::delete,
        super::venues::list,
        super::venues::details,
        super::venues::layout,
        super::venues::create,
        super::venues::update,
        super::venues::replace_layout,
        super::venues::archive,
        super::venues::delete,
        super::shows::list,
        super::shows::details,
        super::shows::create,
        super::shows::update,
        super::shows::archive,
        super::shows::delete,
        super::stats::showtime,
        super::stats::show,
        super::stats::sales,
        super::stats::top_shows,
        super::stats::conversion,
        super::stats::queues,
        super::events::details,
        super::events::create,
        super::events::update,
        super::events::archive,
        super::events::delete,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health and operations"),
        (name = "auth", description = "Registration, sign-in, tokens"),
        (name = "users", description = "The caller's profile and sessions"),
        (name = "admin", description = "SUPER_ADMIN only"),
        (name = "bookings", description = "Seat holds and their status"),
        (name = "showtimes", description = "Showtimes: what buyers read before booking; setup and publishing for editors"),
        (name = "venues", description = "Venues and seat layouts"),
        (name = "payments", description = "Razorpay orders, Checkout results and webhooks"),
        (name = "shows", description = "Discovery and show pages"),
        (name = "events", description = "A show's stops at venues"),
        (name = "catalogue", description = "Categories"),
        (name = "stats", description = "Sales figures and queue health (EDITOR and SUPER_ADMIN)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
