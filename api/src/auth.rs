//! Who is calling: the [`AuthUser`] and [`MaybeAuthUser`] extractors, and [`require_role`],
//! the route layer that declares which role a group of routes needs.
//!
//! A bearer token's signature and expiry are checked on every request (cheap, no I/O). Its
//! session is not looked up in Postgres on every request: each instance keeps the list of users
//! whose sessions, role or standing changed while a token could still be alive
//! ([`SessionCache`]), fed at once by the changes announced through Redis and, as a safety
//! net for an announcement lost on the way, by a look at Postgres every
//! `AUTH_SESSION_CACHE_TTL`. A token issued after its user's last change is good as it says
//! (user, session, role); one issued before is checked in Postgres, so logout, session
//! revocation, a disabled account and a role change take effect at once. Until the list is
//! known to be complete (at start-up, or when Postgres could not be asked for a while), every
//! token is checked, with the answer reused for up to `AUTH_SESSION_CACHE_TTL`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::Response,
};
use chrono::{DateTime, Utc};
use shared::{
    accounts::{Role, sessions, tokens::AccessClaims},
    audit::Actor,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    error::ApiError,
    extract::{ClientInfo, RequestId},
    state::AppState,
};

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

/// An access token whose signature and expiry were checked earlier in this request (by the
/// rate limiter), so they are not checked twice.
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub AccessClaims);

/// Changes looked at again on each look at Postgres: a change written by a transaction that
/// started before the previous look but committed after it carries an earlier timestamp.
const LOOK_BACK: Duration = Duration::from_secs(60);

/// Which tokens this instance may trust without asking Postgres, and the answers it got when
/// it did ask.
#[derive(Clone)]
pub struct SessionCache {
    /// Live-session checks made in Postgres recently, per (user, session).
    entries: moka::future::Cache<(Uuid, Uuid), AuthUser>,
    /// Users whose sessions, role or standing changed, with the second of the latest change;
    /// kept as long as an access token lives.
    changed: moka::sync::Cache<Uuid, i64>,
    /// When the list above was last brought up to date with Postgres.
    synced: Arc<Mutex<Option<Instant>>>,
    /// Set while the look at Postgres fails, so an outage is logged once, and its end.
    failing: Arc<AtomicBool>,
    interval: Duration,
}

impl SessionCache {
    /// `ttl`: how long an answer from Postgres is reused, and how often Postgres is asked what
    /// changed. `token_lifetime`: how long a change matters.
    pub fn new(ttl: Duration, token_lifetime: Duration) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            changed: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(token_lifetime + LOOK_BACK)
                .build(),
            synced: Arc::default(),
            failing: Arc::default(),
            interval: ttl,
        }
    }

    /// Keeps the list of changes up to date with Postgres, every `AUTH_SESSION_CACHE_TTL`, for
    /// as long as the process runs. It asks on a connection of its own: queued behind a sale's
    /// requests for one of `db`'s, it would fall late, every token would then be checked in
    /// Postgres, and that load would keep it late.
    pub fn start_sync(&self, db: &PgPool, token_lifetime: Duration) {
        let cache = self.clone();
        let db = shared::db::dedicated_connection(db);
        tokio::spawn(async move {
            // The first look reaches back as far as a live token can.
            let mut since = Utc::now()
                - chrono::Duration::from_std(token_lifetime + LOOK_BACK)
                    .unwrap_or(chrono::Duration::hours(1));
            loop {
                // Bounded by the interval (a second at least): a look stuck on a dead
                // connection (a failover) or behind a lock is dropped and retried, not waited on.
                let look = tokio::time::timeout(
                    cache.interval.max(Duration::from_secs(1)),
                    sessions::changed_since(&db, since),
                )
                .await;
                match look {
                    Ok(Ok((changes, now))) => {
                        for (user_id, at) in changes {
                            cache.mark_changed(user_id, at);
                        }
                        since = now
                            - chrono::Duration::from_std(LOOK_BACK)
                                .unwrap_or(chrono::Duration::minutes(1));
                        if let Ok(mut synced) = cache.synced.lock() {
                            *synced = Some(Instant::now());
                        }
                        if cache.failing.swap(false, Ordering::Relaxed) {
                            tracing::info!("account changes read again; tokens are trusted again");
                        }
                    }
                    failed => {
                        // Once per outage, not every round.
                        if !cache.failing.swap(true, Ordering::Relaxed) {
                            let error = match failed {
                                Ok(Err(error)) => error.to_string(),
                                _ => "no answer within the interval".to_owned(),
                            };
                            tracing::warn!(
                                %error,
                                "account changes not read; after two rounds every token is checked in Postgres until they are"
                            );
                        }
                    }
                }
                tokio::time::sleep(cache.interval).await;
            }
        });
    }

    fn mark_changed(&self, user_id: Uuid, at: DateTime<Utc>) {
        let second = at.timestamp();
        let latest = self
            .changed
            .get(&user_id)
            .map_or(second, |known| known.max(second));
        self.changed.insert(user_id, latest);
    }

    /// Drops everything cached about a user, and checks their older tokens from now on.
    pub fn forget_user(&self, user_id: Uuid) {
        self.mark_changed(user_id, Utc::now());
        let _ = self
            .entries
            .invalidate_entries_if(move |(user, _), _| *user == user_id);
    }

    /// The caller a token names, if it can be taken at its word: the list of changes is up to
    /// date, and the token was issued after its user's last change (a change in the same
    /// second counts as after the token).
    fn trusted(&self, claims: &AccessClaims) -> Option<AuthUser> {
        let fresh = self
            .synced
            .lock()
            .ok()
            .and_then(|synced| *synced)
            // One late round of the sync is tolerated; after two, tokens are checked in
            // Postgres until it catches up. A lost announcement thus lives at most twice the
            // interval.
            .is_some_and(|at| at.elapsed() < self.interval * 2);
        let unchanged = self
            .changed
            .get(&claims.sub)
            .is_none_or(|changed| changed < claims.iat);
        (fresh && unchanged).then_some(AuthUser {
            user_id: claims.sub,
            session_id: claims.sid,
            role: claims.role,
        })
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<AuthUser>, ApiError> {
    if let Some(user) = parts.extensions.get::<AuthUser>() {
        return Ok(Some(*user));
    }
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let claims = match parts.extensions.get::<VerifiedToken>() {
        Some(VerifiedToken(claims)) => claims.clone(),
        None => {
            let token = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or(ApiError::Unauthorized)?;
            state
                .core
                .tokens
                .verify_access(token.trim())
                .map_err(|_| ApiError::Unauthorized)?
        }
    };
    if let Some(user) = state.sessions.trusted(&claims) {
        return Ok(Some(user));
    }
    let key = (claims.sub, claims.sid);
    if let Some(user) = state.sessions.entries.get(&key).await {
        return Ok(Some(user));
    }
    let principal = sessions::principal(&state.core.db, claims.sub, claims.sid)
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
        let user = authenticate(parts, state)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // A second extractor of this request (an `Editor` and an `Actor`) finds it here.
        parts.extensions.insert(user);
        Ok(user)
    }
}

/// The caller as the audit log knows them: who, from where, in which request. 401 without a
/// live session.
impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        let Ok(RequestId(request_id)) = RequestId::from_request_parts(parts, state).await;
        Ok(Actor {
            user_id: user.user_id,
            role: user.role,
            ip: client.ip,
            request_id,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{TestEnv, eventually};

    /// On the night every connection of the pool is busy with requests. The gate's look at
    /// Postgres must not wait behind them: if it did, every token would be checked in Postgres,
    /// adding to the very load that kept it waiting.
    #[tokio::test]
    async fn tokens_stay_trusted_while_requests_hold_every_pooled_connection() {
        let env = TestEnv::new().await;
        let db = shared::db::pool(&env.settings().database).unwrap();
        let mut held = Vec::new();
        for _ in 0..env.settings().database.pool_size {
            held.push(db.acquire().await.unwrap());
        }
        let interval = Duration::from_millis(100);
        let gate = SessionCache::new(interval, Duration::from_secs(900));
        gate.start_sync(&db, Duration::from_secs(900));
        let claims = AccessClaims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            role: Role::User,
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 900,
            iss: "bms".into(),
        };

        eventually!(gate.trusted(&claims).is_some());
        drop(held);
    }
}
