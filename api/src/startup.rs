//! Building the HTTP application: state, routes and the middleware stack, bound to its own
//! listener so tests can start it on port 0 and ask which port it got.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware,
};
use shared::config::{CorsOrigins, Environment, Settings};
use tokio::net::TcpListener;
use tower_http::{
    LatencyUnit,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use shared::accounts::Role;

use crate::{
    auth::{RoleGuard, require_role},
    conditional,
    error::{ApiError, render_errors},
    extract::{ProxyRules, resolve_client_address},
    limits, observe,
    routes::{
        admin, auth, bookings, categories, events, health,
        openapi::{self, ApiDoc},
        payments, seat_sections, shows, showtimes, stats, users, venues,
    },
    state::AppState,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let address = SocketAddr::new(settings.http.host, settings.http.port);
        let listener = TcpListener::bind(address).await?;
        let state = AppState::new(settings)?;
        state
            .core
            .jobs
            .check_partitioning::<shared::jobs::ReserveSeats>()
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port(), "api listening");
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

pub fn router(state: AppState) -> Router {
    let http = state.core.settings.http.clone();
    let production = state.core.settings.environment == Environment::Production;
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id,
            )
        })
        // One line per request at INFO: status and latency, inside the request's span.
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        );
    // Layers wrap from the bottom up: the request id is set first, so every log line and every
    // error body of the request carries it.
    let super_admin = RoleGuard::new(&state, Role::SuperAdmin);
    let admin =
        admin::router().route_layer(middleware::from_fn_with_state(super_admin, require_role));
    let (routes, document) = documented_routes(admin).split_for_parts();
    // The operator's pages: open on a laptop, behind OPS_TOKEN when it is set; neither rate
    // limited nor counted.
    let (metrics, metrics_document) = operator_routes().split_for_parts();
    let document = complete_document(document, metrics_document);
    let operations = metrics
        .merge(SwaggerUi::new("/docs").url("/api/openapi.json", document))
        .route_layer(middleware::from_fn_with_state(
            http.ops_token.clone(),
            observe::operators_only,
        ));
    routes
        // Inner to outer: limits, then metrics, so refused requests are counted too.
        .route_layer(middleware::from_fn_with_state(state.clone(), limits::limit))
        .route_layer(middleware::from_fn(observe::track))
        .merge(operations)
        .fallback(|| async { ApiError::NotFound("route") })
        .with_state(state)
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            http.request_timeout,
        ))
        .layer(middleware::from_fn(conditional::not_modified))
        // Errors are rendered in the one shape before compression, so an error body is
        // compressed like any other and its content-encoding always matches it.
        .layer(middleware::from_fn(render_errors))
        .layer(CompressionLayer::new())
        .layer(middleware::map_response_with_state(
            production,
            security_headers,
        ))
        .layer(cors(&http.cors_origins))
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(ProxyRules {
                proxies: http.trusted_proxies.clone(),
                header: http.trusted_proxy_header,
            }),
            resolve_client_address,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Headers that tell browsers not to sniff types, frame the API or leak referrers; in
/// production also to use HTTPS only.
async fn security_headers(
    State(production): State<bool>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if production {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Every API route with its OpenAPI entry. `admin` is the admin routes, guarded or not (the
/// guard does not change the document).
fn documented_routes(admin: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(bookings::router())
        .merge(payments::router())
        .merge(categories::router())
        .merge(venues::router())
        .merge(shows::router())
        .merge(events::router())
        .merge(stats::router())
        .merge(showtimes::router())
        .merge(seat_sections::router())
        .merge(admin)
}

fn operator_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(observe::metrics))
}

fn complete_document(
    api: utoipa::openapi::OpenApi,
    operators: utoipa::openapi::OpenApi,
) -> utoipa::openapi::OpenApi {
    let mut document = api;
    document.merge(operators);
    openapi::with_cross_field_rules(openapi::with_stack_answers(document))
}

/// The document served at `/api/openapi.json`, built without settings or services (`api
/// openapi` prints it, for tools that generate clients or collections from it).
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = documented_routes(admin::router()).split_for_parts();
    let (_, operators) = operator_routes().split_for_parts();
    complete_document(api, operators)
}

fn cors(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600))
}
