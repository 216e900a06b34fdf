//! The OpenAPI document, served at `/api/openapi.json` (importable into Postman) and browsable
//! with Swagger UI at `/docs`.

use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "BMS API", description = "Live-show ticketing: venues, shows, seat holds, payments."),
    paths(super::health::health, super::health::live),
    components(schemas(ErrorBody, ErrorDetail)),
    tags((name = "operations", description = "Health and operations"))
)]
pub struct ApiDoc;
