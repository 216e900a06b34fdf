//! Who is calling: the [`AuthUser`] and [`MaybeAuthUser`] extractors, and [`require_role`],
//! the route layer that declares which role a group of routes needs.
//!
//! A bearer token is checked twice: its signature and expiry (cheap, no I/O), then its session
//! in Postgres, so that logout, session revocation and a disabled account take effect at once,
//! and the role used is the current one, not the one the token was issued with. The session
//! check is reused for up to `AUTH_SESSION_CACHE_TTL`; every change to a user's sessions, role
//! or standing drops it at once on this instance and, through Redis, on the others
//! ([`account_changed`]).

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::Response,
};
use shared::accounts::{Role, sessions, users};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// The authenticated caller. Rejects the request with 401 when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
}

/// The caller if they sent credentials; credentials that do not check out are still a 401.
#[derive(Debug, Clone, Copy)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

/// Live-session checks this instance made recently, per (user, session).
#[derive(Clone)]
pub struct SessionCache {
    entries: moka::future::Cache<(Uuid, Uuid), AuthUser>,
}

impl SessionCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Drops everything cached about a user.
    pub fn forget_user(&self, user_id: Uuid) {
        let _ = self
            .entries
            .invalidate_entries_if(move |(user, _), _| *user == user_id);
    }
}

/// After a change to a user's sessions, role or standing: forget it here at once, and tell the
/// other instances.
pub async fn account_changed(state: &AppState, user_id: Uuid) {
    state.sessions.forget_user(user_id);
    state.status_hub.account_changed(user_id);
    sessions::announce_change(&state.redis, user_id).await;
    profile_changed(state, user_id).await;
}

/// After a change to what a user's profile shows: drop its cached copies everywhere.
pub async fn profile_changed(state: &AppState, user_id: Uuid) {
    state.cache.invalidate(&[users::cache_scope(user_id)]).await;
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<AuthUser>, ApiError> {
    if let Some(user) = parts.extensions.get::<AuthUser>() {
        return Ok(Some(*user));
    }
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let claims = state
        .tokens
        .verify_access(token.trim())
        .map_err(|_| ApiError::Unauthorized)?;
    let key = (claims.sub, claims.sid);
    if let Some(user) = state.sessions.entries.get(&key).await {
        return Ok(Some(user));
    }
    let principal = sessions::principal(&state.db, claims.sub, claims.sid)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let user = AuthUser {
        user_id: principal.user_id,
        session_id: principal.session_id,
        role: principal.role,
    };
    state.sessions.entries.insert(key, user).await;
    Ok(Some(user))
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(authenticate(parts, state).await?))
    }
}

/// A caller who may edit the catalogue (EDITOR or SUPER_ADMIN): 401 without a live session,
/// 403 for a plain user.
#[derive(Debug, Clone, Copy)]
pub struct Editor(pub AuthUser);

impl FromRequestParts<AppState> for Editor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role.includes(Role::Editor) {
            Ok(Self(user))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl MaybeAuthUser {
    /// Whether the caller may see what buyers may not (drafts, archived entries).
    pub fn is_editor(&self) -> bool {
        self.0.is_some_and(|user| user.role.includes(Role::Editor))
    }
}

/// The state of a [`require_role`] layer: the app and the least role allowed through.
#[derive(Clone)]
pub struct RoleGuard {
    state: AppState,
    role: Role,
}

impl RoleGuard {
    pub fn new(state: &AppState, role: Role) -> Self {
        Self {
            state: state.clone(),
            role,
        }
    }
}

/// Route layer: 401 without a live session, 403 when the caller's role is below the guard's.
/// Use as `.route_layer(from_fn_with_state(RoleGuard::new(&state, Role::Editor), require_role))`.
pub async fn require_role(
    State(guard): State<RoleGuard>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let user = authenticate(&parts, &guard.state)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !user.role.includes(guard.role) {
        return Err(ApiError::Forbidden);
    }
    // Handlers behind the guard get the same caller without a second lookup.
    parts.extensions.insert(user);
    Ok(next.run(Request::from_parts(parts, body)).await)
}
