//! The OpenAPI document's frame: title, tags, the error schema, bearer auth. Each route adds its
//! own entry where it is registered (`routes::*::router`), so the document cannot list a route
//! that is not served, nor miss one that is. Served at `/api/openapi.json` (importable into
//! Postman) and browsable with Swagger UI at `/docs`.

use axum::http::Method;
use serde_json::json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    openapi::{
        Content, OpenApi as OpenApiDocument, Ref, RefOr, Required, Response, Schema,
        path::{Operation, ParameterIn},
    },
};

use shared::{catalogue::discovery::ShowSort, stats::Interval};

use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "BMS API", description = "Live-show ticketing: venues, shows, seat holds, payments."),
    // Types that parameters name by reference; utoipa registers only those in bodies.
    components(schemas(ErrorBody, ErrorDetail, ShowSort, Interval)),
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
        (name = "seat-sections", description = "One section of a venue as a showtime sells it"),
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

/// Adds to every operation the answers the layers around its handler give, so a client can
/// expect each status it may meet. A handler's own entry lists what the handler decides; this
/// adds what the stack decides, from what the operation takes:
///
/// - any operation: 408 (too slow), 500, 503 (a dependency is down);
/// - with a path, query or body: 400 (malformed) and 422 (well-formed but not valid);
/// - with a body: 413 (too large) and 415 (not JSON);
/// - with bearer auth, required or optional: 401 (a token that does not check out);
/// - under `/api/admin`: 403 (not a SUPER_ADMIN);
/// - rate limited ([`crate::limits::group`]): 429.
///
/// Every error answer, listed here or by the handler, is given the one error shape. Operation
/// ids, which utoipa takes from the handlers' names (`list`, `create`...), are prefixed with
/// the tag (`shows_list`), so that each is unique as OpenAPI requires.
pub fn with_stack_answers(mut document: OpenApiDocument) -> OpenApiDocument {
    for (path, item) in document.paths.paths.iter_mut() {
        let operations = [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                add_stack_answers(path, &method, operation);
                empty_means_absent(operation);
                name_by_tag(operation);
            }
        }
    }
    document
}

/// Rules between fields that the derived schemas cannot carry, added to their components as
/// JSON Schema states them. Each mirrors a check of the server's:
///
/// - `NewBooking`: named seats, or a section and a quantity (`shared::bookings::SeatSelection`);
/// - `ProfileChange`: a name, an email or both (`routes::users::update_me`);
/// - `NewVenue` and `VenueChanges`: latitude and longitude together (`shared::catalogue::venues`);
/// - `CategoryInput`: without a slug, a name to make one from (`shared::catalogue::categories`).
///
/// Rules that compare values (a window's end after its start, a show in the future) or need
/// stored records (an id that exists) are beyond JSON Schema; the server answers them with 422,
/// 404 or 409 and says which rule.
pub fn with_cross_field_rules(mut document: OpenApiDocument) -> OpenApiDocument {
    let none = || json!({"type": "null"});
    let given = |kind: &str| json!({"type": kind});
    let together = |one: &str, other: &str| {
        json!({
            "if": {"required": [one], "properties": {one: given("number")}},
            "then": {"required": [other], "properties": {other: given("number")}}
        })
    };
    let venue =
        json!({"allOf": [together("latitude", "longitude"), together("longitude", "latitude")]});
    let rules = [
        (
            "NewBooking",
            json!({"oneOf": [
                {"required": ["seat_ids"],
                 "properties": {"seat_ids": given("array"), "section_id": none(), "quantity": none()}},
                {"required": ["section_id", "quantity"],
                 "properties": {"seat_ids": none(), "section_id": given("string"), "quantity": given("integer")}}
            ]}),
        ),
        (
            "ProfileChange",
            json!({"anyOf": [
                {"required": ["name"], "properties": {"name": given("string")}},
                {"required": ["email"], "properties": {"email": given("string")}}
            ]}),
        ),
        ("NewVenue", venue.clone()),
        ("VenueChanges", venue),
        (
            "CategoryInput",
            json!({
                "if": {"not": {"required": ["slug"], "properties": {"slug": given("string")}}},
                "then": {"properties": {"name": {"pattern": "[A-Za-z0-9\\u0130\\u212a]"}}}
            }),
        ),
    ];
    let Some(components) = document.components.as_mut() else {
        return document;
    };
    for (name, rule) in rules {
        // The document test checks that each of these components carries its rule.
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) else {
            continue;
        };
        let extensions = object.extensions.get_or_insert_with(Default::default);
        for (keyword, value) in rule.as_object().into_iter().flatten() {
            extensions.insert(keyword.clone(), value.clone());
        }
    }
    document
}

fn name_by_tag(operation: &mut Operation) {
    let tag = operation.tags.iter().flatten().next().cloned();
    if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
        *id = format!("{}_{id}", tag.replace('-', "_"));
    }
}

/// Every list reads an empty optional query parameter (`?city=`) as absent
/// (`shared::validation::empty_is_absent`); the document says so with `allowEmptyValue`, which
/// utoipa has no field for, so it goes in beside the extensions it serialises flat.
fn empty_means_absent(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in == ParameterIn::Query && parameter.required == Required::False {
            parameter
                .extensions
                .get_or_insert_with(Default::default)
                .insert("allowEmptyValue".to_owned(), true.into());
        }
    }
}

fn add_stack_answers(path: &str, method: &Method, operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    let has_input = has_body
        || operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
    let signed_in = operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|value| value.get("bearer").is_some())
    });
    let mut statuses = vec![
        ("408", "The request took too long"),
        ("500", "Something failed on our side"),
        ("503", "A dependency is unavailable; retry later"),
    ];
    if has_input {
        statuses.push(("400", "A malformed path, query, header or body"));
        statuses.push(("422", "A well-formed request that is not valid"));
    }
    if has_body {
        statuses.push(("413", "The body is too large"));
        statuses.push(("415", "The body is not JSON"));
    }
    if signed_in {
        statuses.push(("401", "The token is missing, malformed, expired or revoked"));
    }
    if path.starts_with("/api/admin") {
        statuses.push(("403", "SUPER_ADMIN only"));
    }
    if crate::limits::group(method, path).is_some() {
        statuses.push(("429", "Rate limited; `Retry-After` says when to retry"));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in statuses {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let RefOr::T(response) = response
            && is_error
            && response.content.is_empty()
        {
            response.content.insert(
                "application/json".to_owned(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
        }
    }
}
