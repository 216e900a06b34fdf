//! `/api/stats`: sales figures and queue health for editors and admins.

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use shared::{
    jobs::admin::QueueHealth,
    stats::{self, Conversion, Interval, SalesBucket, ShowStats, ShowtimeStats, TopShow},
    validation::{FieldError, PageSize},
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{auth::Editor, error::ApiError, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(showtime))
        .routes(routes!(show))
        .routes(routes!(sales))
        .routes(routes!(top_shows))
        .routes(routes!(conversion))
        .routes(routes!(queues))
}

/// Seats sold, held and free, occupancy, and money of one showtime.
#[utoipa::path(get, path = "/api/stats/showtimes/{id}", tag = "stats", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = ShowtimeStats), (status = 403), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn showtime(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ShowtimeStats>, ApiError> {
    stats::showtimes(&state.core.db, &[id])
        .await?
        .pop()
        .map(axum::Json)
        .ok_or(ApiError::NotFound("showtime"))
}

/// A show's totals and each of its showtimes.
#[utoipa::path(get, path = "/api/stats/shows/{id}", tag = "stats", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Show id")),
    responses((status = 200, body = ShowStats), (status = 403), (status = 404)))]
#[tracing::instrument(skip_all, fields(show_id = %id))]
pub async fn show(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ShowStats>, ApiError> {
    stats::show(&state.core.db, id)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("show"))
}

/// How many shows the top-shows report lists by default.
const TOP_SHOWS: u32 = 10;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Start (default: the period before `to`).
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    from: Option<DateTime<Utc>>,
    /// End, exclusive (default: now).
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    to: Option<DateTime<Utc>>,
    /// Only this show.
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    show_id: Option<Uuid>,
    /// hour or day (sales over time only; default day).
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent_name")]
    interval: Option<Interval>,
    /// Top shows only: 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    limit: Option<u32>,
}

impl Window {
    /// `[from, to)`, at most `longest` long, by default the last `default`; and the page size,
    /// read by top shows only but checked on every report, as the document says.
    fn range(
        &self,
        default: Duration,
        longest: Duration,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>, PageSize), FieldError> {
        let limit = PageSize::parse(self.limit, TOP_SHOWS, 100)?;
        let to = self.to.unwrap_or_else(Utc::now);
        let from = self.from.unwrap_or(to - default);
        if from >= to {
            return Err(FieldError::new("from", "must be before to"));
        }
        if to - from > longest {
            return Err(FieldError::new(
                "from",
                format!("the window is at most {} days", longest.num_days()),
            ));
        }
        Ok((from, to, limit))
    }
}

/// Payments, tickets and money captured per hour or day.
#[utoipa::path(get, path = "/api/stats/sales", tag = "stats", security(("bearer" = [])),
    params(Window), responses((status = 200, body = [SalesBucket]), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn sales(
    State(state): State<AppState>,
    _editor: Editor,
    Query(window): Query<Window>,
) -> Result<axum::Json<Vec<SalesBucket>>, ApiError> {
    let interval = window.interval.unwrap_or(Interval::Day);
    let (from, to, _) = match interval {
        Interval::Hour => window.range(Duration::hours(48), Duration::days(31))?,
        Interval::Day => window.range(Duration::days(30), Duration::days(400))?,
    };
    Ok(axum::Json(
        stats::sales_over_time(&state.core.db, interval, from, to, window.show_id).await?,
    ))
}

/// Shows by tickets sold in the window (default the last 30 days).
#[utoipa::path(get, path = "/api/stats/top-shows", tag = "stats", security(("bearer" = [])),
    params(Window), responses((status = 200, body = [TopShow]), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn top_shows(
    State(state): State<AppState>,
    _editor: Editor,
    Query(window): Query<Window>,
) -> Result<axum::Json<Vec<TopShow>>, ApiError> {
    let (from, to, limit) = window.range(Duration::days(30), Duration::days(400))?;
    Ok(axum::Json(
        stats::top_shows(&state.core.db, from, to, limit.as_i64()).await?,
    ))
}

/// Holds made in the window and how many were paid, let lapse or canceled.
#[utoipa::path(get, path = "/api/stats/conversion", tag = "stats", security(("bearer" = [])),
    params(Window), responses((status = 200, body = Conversion), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn conversion(
    State(state): State<AppState>,
    _editor: Editor,
    Query(window): Query<Window>,
) -> Result<axum::Json<Conversion>, ApiError> {
    let (from, to, _) = window.range(Duration::days(30), Duration::days(400))?;
    Ok(axum::Json(
        stats::conversion(&state.core.db, from, to, window.show_id).await?,
    ))
}

/// Every job kind's queue: messages waiting, consumers, dead letters.
#[utoipa::path(get, path = "/api/stats/queues", tag = "stats", security(("bearer" = [])),
    responses((status = 200, body = [QueueHealth]), (status = 403), (status = 503)))]
#[tracing::instrument(skip_all)]
pub async fn queues(
    State(state): State<AppState>,
    _editor: Editor,
) -> Result<axum::Json<Vec<QueueHealth>>, ApiError> {
    Ok(axum::Json(state.queues.health().await?))
}
