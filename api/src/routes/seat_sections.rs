//! `/api/seat-sections`: one section of a venue as a showtime sells it, for a seat picker that
//! draws one section at a time.

use axum::{
    extract::{Path, Query, State},
    response::Response,
};
use serde::Deserialize;
use shared::bookings::availability::{Form, SectionSeats};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::showtimes::read_availability;
use crate::{error::ApiError, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(details))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtShowtime {
    /// The showtime whose prices and seat states to give.
    pub showtime_id: Uuid,
}

/// A section at a showtime: its name, price tier, counts, and each seat with its state. As
/// fresh as the showtime's availability; 404 if the showtime does not sell the section.
#[utoipa::path(get, path = "/api/seat-sections/{id}", tag = "seat-sections",
    params(("id" = Uuid, Path, description = "Seat section id"), AtShowtime),
    responses((status = 200, body = SectionSeats),
              (status = 304, description = "The copy named in If-None-Match is current"),
              (status = 404, description = "No such showtime, or it does not sell this section")))]
#[tracing::instrument(skip_all, fields(section_id = %id, showtime_id = %at.showtime_id))]
pub async fn details(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(at): Query<AtShowtime>,
) -> Result<Response, ApiError> {
    read_availability(&state, at.showtime_id, Form::Section(id), "seat section").await
}
