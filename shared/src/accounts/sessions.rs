//! Device sessions and refresh-token rotation.
//!
//! A session is one signed-in device and the family of every refresh token issued to it.
//! Each refresh token works once: using it marks it used and issues its successor. Presenting a
//! used token again means two parties hold the family (the token was stolen), so the whole
//! session is revoked and both must sign in again. One exception: two tabs of one browser
//! refreshing with the same token at once. For a short grace after a rotation, the token just
//! replaced yields the same successor again, as long as nobody has used that successor yet
//! (successors are derived from their predecessor with the server's key, so both callers get
//! the same one without it being stored).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    Role,
    tokens::{InvalidToken, TokenKeys},
    users::User,
};

/// Where a sign-in came from, recorded on its session.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

/// What a client receives when it signs in or refreshes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused { user_id: Uuid },
    #[error(transparent)]
    Token(#[from] InvalidToken),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Opens a session for `user` on `device` and issues its first tokens.
pub async fn start(
    conn: &mut PgConnection,
    keys: &TokenKeys,
    user: User,
    device: &Device,
) -> Result<TokenPair, SessionError> {
    // Tokens are stamped with the database's clock, the clock of the changes (revocations,
    // disabling) an API instance compares them with to decide whether to trust them.
    let now = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut *conn)
        .await?;
    let refresh = keys.new_refresh_token();
    let expires_at = now + keys.refresh_ttl();
    let session_id = sqlx::query_scalar!(
        "INSERT INTO sessions (user_id, device_name, user_agent, ip, expires_at)
         VALUES ($1, $2, $3, $4::text::inet, $5) RETURNING id",
        user.id,
        device.name.as_deref(),
        device.user_agent.as_deref(),
        device.ip.map(|ip| ip.to_string()),
        expires_at
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO refresh_tokens (session_id, token_hash, expires_at) VALUES ($1, $2, $3)",
        session_id,
        refresh.hash,
        expires_at
    )
    .execute(&mut *conn)
    .await?;
    pair(keys, user, session_id, refresh.token, now)
}

/// Exchanges a refresh token for a new pair, once. The token just replaced still yields the
/// same pair again for `REFRESH_TOKEN_REUSE_GRACE` while its successor is unused (two tabs
/// refreshing at once); any other reuse revokes the session.
pub async fn refresh(
    db: &PgPool,
    keys: &TokenKeys,
    token: &str,
) -> Result<TokenPair, SessionError> {
    let hash = keys.hash_refresh_token(token);
    let mut tx = db.begin().await?;
    let Some(current) = sqlx::query!(
        r#"SELECT rt.id, rt.session_id, rt.used_at, rt.expires_at, rt.replaced_by,
                  s.revoked_at, s.user_id, u.disabled_at, now() AS "now!"
           FROM refresh_tokens rt
           JOIN sessions s ON s.id = rt.session_id
           JOIN users u ON u.id = s.user_id
           WHERE rt.token_hash = $1
           FOR UPDATE OF rt, s"#,
        hash
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(SessionError::InvalidRefreshToken);
    };
    // The database's clock, as for `start`.
    let now = current.now;
    let live =
        current.revoked_at.is_none() && current.disabled_at.is_none() && current.expires_at > now;
    let next = keys.successor_of(token);
    if let Some(used_at) = current.used_at {
        // Read in a statement of its own: the row lock above may have waited for the
        // rotation that wrote this successor, which that statement's snapshot cannot see.
        let successor_unused = sqlx::query_scalar!(
            r#"SELECT used_at IS NULL AS "unused!" FROM refresh_tokens
               WHERE id = $1 AND token_hash = $2"#,
            current.replaced_by,
            next.hash
        )
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(false);
        let within_grace = used_at > now - keys.refresh_reuse_grace();
        if within_grace && successor_unused && live {
            // A second tab with the same token, moments after the first: same successor.
            tx.commit().await?;
            let user = find_user(db, current.user_id).await?;
            return pair(keys, user, current.session_id, next.token, now);
        }
        sqlx::query!(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()),
                                 revoked_reason = COALESCE(revoked_reason, 'refresh token reused')
             WHERE id = $1",
            current.session_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(session_id = %current.session_id, "refresh token reused; session revoked");
        return Err(SessionError::RefreshTokenReused {
            user_id: current.user_id,
        });
    }
    if !live {
        return Err(SessionError::InvalidRefreshToken);
    }
    let expires_at = now + keys.refresh_ttl();
    sqlx::query!(
        "WITH successor AS (
             INSERT INTO refresh_tokens (session_id, token_hash, expires_at)
             VALUES ($1, $2, $3) RETURNING id
         )
         UPDATE refresh_tokens SET used_at = now(), replaced_by = (SELECT id FROM successor)
         WHERE id = $4",
        current.session_id,
        next.hash,
        expires_at,
        current.id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE sessions SET last_used_at = now(), expires_at = $2 WHERE id = $1",
        current.session_id,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let user = find_user(db, current.user_id).await?;
    pair(keys, user, current.session_id, next.token, now)
}

async fn find_user(db: &PgPool, id: Uuid) -> Result<User, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_one(db)
    .await
}

fn pair(
    keys: &TokenKeys,
    user: User,
    session_id: Uuid,
    refresh_token: String,
    now: DateTime<Utc>,
) -> Result<TokenPair, SessionError> {
    Ok(TokenPair {
        access_token: keys.issue_access(&user, session_id, now)?,
        token_type: "Bearer",
        expires_in: keys.access_ttl().num_seconds(),
        refresh_token,
        session_id,
        user,
    })
}

/// The signed-in user behind a live session, with their current role (which may have changed
/// since the access token was issued). `None` when the session was revoked or expired, or the
/// account disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
}

pub async fn principal(
    db: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Option<Principal>, sqlx::Error> {
    sqlx::query_as!(
        Principal,
        r#"SELECT u.id AS user_id, s.id AS session_id, u.role AS "role: Role"
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND u.id = $2
             AND s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL"#,
        session_id,
        user_id
    )
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// Whether this is the session the request was made with.
    pub current: bool,
}

/// The live sessions of a user, most recently used first.
pub async fn list(
    db: &PgPool,
    user_id: Uuid,
    current: Uuid,
) -> Result<Vec<SessionView>, sqlx::Error> {
    sqlx::query_as!(
        SessionView,
        r#"SELECT id, device_name, user_agent, host(ip) AS ip, created_at, last_used_at,
                  id = $2 AS "current!"
           FROM sessions
           WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
           ORDER BY last_used_at DESC"#,
        user_id,
        current
    )
    .fetch_all(db)
    .await
}

/// Revokes one of the user's own sessions. `false` if the user has no such live session.
pub async fn revoke(
    db: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $3
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        session_id,
        user_id,
        reason
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// Revokes every live session of the user but `keep`; returns how many.
pub async fn revoke_others(db: &PgPool, user_id: Uuid, keep: Uuid) -> Result<u64, sqlx::Error> {
    let revoked = sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'signed out by another device'
         WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
        user_id,
        keep
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected())
}

/// Users whose sessions, role or standing changed after `since`, each with the latest change,
/// and the database's clock now (where the next look starts). What lets an API instance trust
/// an access token without asking Postgres: a token issued before its user's last change is
/// checked; any other is good until it expires.
pub async fn changed_since(
    db: &PgPool,
    since: DateTime<Utc>,
) -> Result<(Vec<(Uuid, DateTime<Utc>)>, DateTime<Utc>), sqlx::Error> {
    let mut tx = db.begin().await?;
    // now() is the transaction's start: a change committed after it is seen by the next look.
    let now = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut *tx)
        .await?;
    let changed = sqlx::query!(
        r#"SELECT user_id AS "user_id!", max(at) AS "at!" FROM (
               SELECT user_id, revoked_at AS at FROM sessions WHERE revoked_at > $1
               UNION ALL
               SELECT id, updated_at FROM users WHERE updated_at > $1
           ) AS changes GROUP BY user_id"#,
        since
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        changed
            .into_iter()
            .map(|row| (row.user_id, row.at))
            .collect(),
        now,
    ))
}

/// The channel on which a change to a user's sessions, role or standing is announced, so every
/// API instance drops what it cached about that user.
pub fn changes_channel(redis: &crate::redis_client::RedisClient) -> String {
    redis.key("account-changes")
}

/// Announces that what was true of `user_id`'s sessions may no longer be. Best effort: an
/// instance that misses it forgets by itself within `AUTH_SESSION_CACHE_TTL`.
pub async fn announce_change(redis: &crate::redis_client::RedisClient, user_id: Uuid) {
    let outcome: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            redis::AsyncCommands::publish(
                &mut connection,
                changes_channel(redis),
                user_id.to_string(),
            )
            .await
        })
        .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, %user_id, "could not announce an account change");
    }
}
