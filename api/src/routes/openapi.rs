//! The OpenAPI document's frame: title, tags, the error schema, bearer auth. Each route adds its
//! own entry where it is registered (`routes::*::router`), so the document cannot list a route
//! that is not served, nor miss one that is. Served at `/api/openapi.json` (importable into
//! Postman) and browsable with Swagger UI at `/docs`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "BMS API", description = "Live-show ticketing: venues, shows, seat holds, payments."),
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
