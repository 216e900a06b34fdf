//! `/api/bookings`: ask for seats, follow the reservation (poll, long-poll, server-sent events),
//! cancel a hold, read tickets. A booking is visible to its owner and to super admins only;
//! to anyone else it answers 404, as if it did not exist.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::stream;
use serde::{Deserialize, Serialize};
use shared::{
    accounts::Role,
    audit::Actor,
    bookings::{
        BookingStatus, SeatSelection,
        cancel::{self, Canceled},
        create::{self, BookingRequest, CreateError, IdempotencyKey},
        history::{self, BookingSummary, Ticket},
        view::{self, BookingView},
    },
    validation::{PageSize, schema},
};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::Json,
    live::{AccountWatch, Held, HoldRefused, Watch},
    state::AppState,
};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history))
        .routes(routes!(create))
        .routes(routes!(status))
        .routes(routes!(events))
        .routes(routes!(cancel))
        .routes(routes!(tickets))
}

const LONGEST_WAIT: u64 = 30;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBooking {
    showtime_id: Uuid,
    /// Named seats, or
    #[schema(schema_with = schema::distinct_ids_or_null::<1, 10>)]
    seat_ids: Option<Vec<Uuid>>,
    /// a section and
    section_id: Option<Uuid>,
    /// how many seats in it (best available).
    #[schema(minimum = 1, maximum = 10)]
    quantity: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingAccepted {
    booking_id: Uuid,
    status: BookingStatus,
    status_url: String,
}

impl From<CreateError> for ApiError {
    fn from(error: CreateError) -> Self {
        let message = error.to_string();
        match error {
            CreateError::ShowtimeNotFound => ApiError::NotFound("showtime"),
            CreateError::NotOnSale => ApiError::Conflict {
                code: "NOT_ON_SALE",
                message,
            },
            CreateError::UnknownSeats(_) => ApiError::unprocessable("UNKNOWN_SEATS", message),
            CreateError::UnknownSection => ApiError::unprocessable("UNKNOWN_SECTION", message),
            CreateError::LimitReached { .. } => ApiError::Conflict {
                code: "LIMIT_REACHED",
                message,
            },
            CreateError::KeyReused => ApiError::Conflict {
                code: "IDEMPOTENCY_KEY_REUSED",
                message,
            },
            CreateError::Unavailable(what) => ApiError::Unavailable(what),
            CreateError::Database(error) => error.into(),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let value = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::BadRequest {
            code: "MISSING_IDEMPOTENCY_KEY",
            message: "send an Idempotency-Key header (a unique value per booking attempt)".into(),
        })?;
    IdempotencyKey::parse(value.to_str().unwrap_or_default()).ok_or_else(|| {
        ApiError::unprocessable(
            "VALIDATION_FAILED",
            "Idempotency-Key: use 1 to 255 visible ASCII characters",
        )
    })
}

/// Asks for seats. Answers 202 with the booking id and where to follow it; the reservation
/// happens in a worker. The same Idempotency-Key with the same body answers the same booking.
#[utoipa::path(post, path = "/api/bookings", tag = "bookings", security(("bearer" = [])),
    request_body = NewBooking,
    params(("Idempotency-Key" = String, Header, pattern = r"^[!-~]{1,255}$",
            description = "Unique per booking attempt: 1 to 255 visible ASCII characters")),
    responses((status = 202, body = BookingAccepted), (status = 404, description = "No such showtime"),
              (status = 409, description = "Not on sale, limit reached, or key reused"),
              (status = 422, description = "Invalid seats or quantity")))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<NewBooking>,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let showtime_id = body.showtime_id;
    let selection = SeatSelection::parse(
        body.seat_ids,
        body.section_id,
        body.quantity,
        state.core.settings.bookings.max_seats_per_booking,
    )?;
    let request = BookingRequest {
        user_id: user.user_id,
        showtime_id,
        selection,
        idempotency_key,
    };
    // On a task of its own: once the booking is stored its job must be published, even if the
    // client hangs up (which drops this handler) between the two.
    let accepted = tokio::spawn(accept(state.clone(), request))
        .await
        .map_err(|error| anyhow::anyhow!("accepting a booking stopped: {error}"))??;
    let status_url = format!("/api/bookings/{}", accepted.booking_id);
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(BookingAccepted {
            booking_id: accepted.booking_id,
            status: accepted.status,
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if accepted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Accepts the request (`shared::bookings::accept`), timed for the debug log.
async fn accept(state: AppState, request: BookingRequest) -> Result<create::Accepted, ApiError> {
    let started = std::time::Instant::now();
    let accepted = state.acceptor.accept(request).await?;
    tracing::debug!(
        accept_ms = started.elapsed().as_secs_f64() * 1000.0,
        replayed = accepted.replayed,
        "booking accepted"
    );
    Ok(accepted)
}

/// Whether `user` may see a booking of `owner`'s: its owner, or a super admin.
fn visible_to(owner: Uuid, user: &AuthUser) -> bool {
    owner == user.user_id || user.role.includes(Role::SuperAdmin)
}

/// This process's recent copy, else the fast copy from Redis, else Postgres.
async fn current(state: &AppState, id: Uuid) -> Result<Option<BookingView>, ApiError> {
    if let Some(view) = state.status_hub.recent(id).and_then(|recent| recent.view()) {
        return Ok(Some(view));
    }
    if let Some(view) = view::cached(&state.core.redis, id).await {
        return Ok(Some(view));
    }
    Ok(view::load(&state.core.db, id).await?)
}

/// The booking as its owner (or a super admin) may see it. A booking the API accepted for the
/// caller but nobody has recorded yet (Redis lost its copy, the worker has not written it) is
/// PENDING, never 404.
async fn visible(state: &AppState, id: Uuid, user: &AuthUser) -> Result<BookingView, ApiError> {
    match current(state, id).await? {
        Some(view) if visible_to(view.user_id, user) => Ok(view),
        Some(_) => Err(ApiError::NotFound("booking")),
        None => state
            .acceptor
            .queued(id, user.user_id)
            .ok_or(ApiError::NotFound("booking")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatusQuery {
    /// Seconds (up to 30) to wait while the booking is still in status `from`.
    #[param(maximum = 30)]
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    wait: Option<u64>,
    /// The status the client knows; `PENDING` by default, so a long-poll after booking answers
    /// as soon as the reservation is decided.
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent_name")]
    from: Option<BookingStatus>,
}

/// A booking and its status. With `?wait=N` the answer waits up to N seconds while the status
/// is still `from` (PENDING unless given), and comes as soon as it changes.
#[utoipa::path(get, path = "/api/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id"), StatusQuery),
    responses((status = 200, body = BookingView), (status = 404),
              (status = 429, description = "Too many long-polls open for this user"),
              (status = 503, description = "This instance holds all the long-polls it may")))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id, booking_id = %id))]
pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let wait = query.wait.unwrap_or(0);
    if wait > LONGEST_WAIT {
        return Err(ApiError::unprocessable(
            "VALIDATION_FAILED",
            format!("wait: at most {LONGEST_WAIT} seconds"),
        ));
    }
    // A plain read of a status this process knows: the ready JSON, nothing else.
    if wait == 0
        && let Some(recent) = state.status_hub.recent(id)
        && visible_to(recent.user_id, &user)
    {
        return Ok(super::ready_json(recent.json.clone()));
    }
    // Held only while it waits; a plain read holds nothing.
    let _held = if wait > 0 {
        Some(hold_connection(&state, &user)?)
    } else {
        None
    };
    // Watch before reading, so a change between the two is not missed.
    let mut watch = state.status_hub.watch(id);
    let mut latest = visible(&state, id, &user).await?;
    let from = query.from.unwrap_or(BookingStatus::Pending);
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut quiet_rounds = 0;
    while latest.status == from && Instant::now() < deadline {
        let pause = state
            .status_hub
            .recheck_after(quiet_rounds)
            .min(deadline - Instant::now());
        latest = match watch.next(pause).await {
            Some(pushed) => pushed,
            None => {
                quiet_rounds += 1;
                view::load(&state.core.db, id).await?.unwrap_or(latest)
            }
        };
    }
    Ok(axum::Json(latest).into_response())
}

/// A place among the connections held open, or why there is none: 429 when this user holds
/// their share, 503 when this instance holds all it may (both with Retry-After).
fn hold_connection(state: &AppState, user: &AuthUser) -> Result<Held, ApiError> {
    state
        .held_connections
        .hold(user.user_id)
        .map_err(|refused| match refused {
            HoldRefused::User => ApiError::TooManyRequests {
                code: "TOO_MANY_STREAMS",
                message: "too many long-polls and event streams open at once; close one first"
                    .into(),
                retry_after: Duration::from_secs(5),
            },
            HoldRefused::Instance => ApiError::Unavailable("live updates"),
        })
}

/// What an event stream carries between events.
struct Stream {
    state: AppState,
    user: AuthUser,
    watch: Watch,
    account: AccountWatch,
    _held: Held,
    last: Option<BookingView>,
    pending: Option<BookingView>,
    quiet_rounds: u32,
}

/// Server-sent events: the booking now, then every status change, until a final status. The
/// stream also ends when the session it was opened with is revoked.
#[utoipa::path(get, path = "/api/bookings/{id}/events", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, description = "text/event-stream of `status` events carrying the booking"),
              (status = 404), (status = 429, description = "Too many streams open for this user"),
              (status = 503, description = "This instance holds all the streams it may")))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id, booking_id = %id))]
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let held = hold_connection(&state, &user)?;
    let watch = state.status_hub.watch(id);
    let account = state.status_hub.watch_account(user.user_id);
    let first = visible(&state, id, &user).await?;
    let start = Stream {
        state,
        user,
        watch,
        account,
        _held: held,
        last: None,
        pending: Some(first),
        quiet_rounds: 0,
    };
    let updates = stream::unfold(start, |mut stream| async move {
        if let Some(view) = stream.pending.take() {
            let event = status_event(&view);
            stream.last = Some(view);
            return Some((event, stream));
        }
        let last = stream.last.clone()?;
        if last.status.is_final() {
            return None;
        }
        loop {
            let pause = stream.state.status_hub.recheck_after(stream.quiet_rounds);
            let next = tokio::select! {
                pushed = stream.watch.next(pause) => pushed,
                () = stream.account.changed() => {
                    if !session_alive(&stream.state, &stream.user).await {
                        return None;
                    }
                    continue;
                }
            };
            let next = match next {
                Some(pushed) => pushed,
                None => {
                    stream.quiet_rounds = stream.quiet_rounds.saturating_add(1);
                    match view::load(&stream.state.core.db, last.id).await {
                        Ok(Some(view)) => view,
                        _ => continue,
                    }
                }
            };
            if next.status != last.status {
                let event = status_event(&next);
                stream.last = Some(next);
                return Some((event, stream));
            }
        }
    });
    Ok(Sse::new(updates).keep_alive(KeepAlive::default()))
}

/// Whether the session a stream was opened with is still live (read from Postgres: this runs
/// only when the account changed).
async fn session_alive(state: &AppState, user: &AuthUser) -> bool {
    match shared::accounts::sessions::principal(&state.core.db, user.user_id, user.session_id).await
    {
        Ok(principal) => principal.is_some(),
        // Unknown for now: keep the stream, the next change asks again.
        Err(_) => true,
    }
}

fn status_event(view: &BookingView) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("status")
        .json_data(view)
        .unwrap_or_else(|_| Event::default().event("status")))
}

/// Cancels a booking. A held one is CANCELED and its seats are on sale again at once (200). A
/// paid one is refunded where the show's rules allow (202, REFUND_PENDING until Razorpay
/// processes it, then REFUNDED and its seats back on sale). Which of the two is decided under
/// the booking's lock, so a payment settling at the same moment is never lost.
#[utoipa::path(post, path = "/api/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = BookingView), (status = 202, body = BookingView),
        (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, booking_id = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Actor,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<BookingView>), ApiError> {
    Ok(match cancel::cancel(&state.core, &caller, id).await? {
        Canceled::Released(view) => (StatusCode::OK, axum::Json(view)),
        Canceled::Refunding(view) => (StatusCode::ACCEPTED, axum::Json(view)),
    })
}

/// The tickets of a confirmed booking.
#[utoipa::path(get, path = "/api/bookings/{id}/tickets", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = [Ticket]), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id, booking_id = %id))]
pub async fn tickets(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<Ticket>>, ApiError> {
    let view = view::load(&state.core.db, id)
        .await?
        .filter(|view| visible_to(view.user_id, &user))
        .ok_or(ApiError::NotFound("booking"))?;
    if view.status != BookingStatus::Confirmed {
        return Err(ApiError::Conflict {
            code: "NOT_CONFIRMED",
            message: "tickets are issued once the booking is paid".into(),
        });
    }
    Ok(axum::Json(history::tickets(&state.core.db, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent_name")]
    status: Option<BookingStatus>,
    /// The last booking id of the previous page.
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    before: Option<Uuid>,
    /// 1 to 100, 20 by default.
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingPage {
    bookings: Vec<BookingSummary>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<Uuid>,
}

/// The caller's bookings, newest first.
#[utoipa::path(get, path = "/api/users/me/bookings", tag = "bookings", security(("bearer" = [])),
    params(HistoryQuery), responses((status = 200, body = BookingPage)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<HistoryQuery>,
) -> Result<axum::Json<BookingPage>, ApiError> {
    let limit = PageSize::parse(query.limit, 20, 100)?;
    let bookings = history::list_for_user(
        &state.core.db,
        user.user_id,
        query.status,
        query.before,
        limit.as_i64(),
    )
    .await?;
    let next_before = (bookings.len() == limit.as_usize())
        .then(|| bookings.last().map(|b| b.id))
        .flatten();
    Ok(axum::Json(BookingPage {
        bookings,
        next_before,
    }))
}
