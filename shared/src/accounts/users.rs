//! The `users` table.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{AccountError, Email, PhoneNumber, Role};
use crate::{core::Core, db::is_unique_violation};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("this phone number belongs to another account")]
    PhoneTaken,
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for UserError {
    fn from(error: sqlx::Error) -> Self {
        if is_unique_violation(&error, "users_email_key") {
            Self::EmailTaken
        } else if is_unique_violation(&error, "users_phone_key") {
            Self::PhoneTaken
        } else {
            Self::Database(error)
        }
    }
}

/// A user with what a password login needs.
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
    pub disabled: bool,
}

pub async fn insert_with_password(
    conn: &mut PgConnection,
    name: &str,
    email: &Email,
    password_hash: &str,
) -> Result<User, UserError> {
    Ok(sqlx::query_as!(
        User,
        r#"INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        name,
        email.as_str(),
        password_hash
    )
    .fetch_one(conn)
    .await?)
}

/// The cache scope of everything cached about one user.
pub fn cache_scope(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

/// The cache entry of a user's own profile.
pub fn profile_cache_entry(user_id: Uuid) -> crate::cache::Entry {
    crate::cache::Entry {
        kind: crate::cache::Kind::User,
        key: format!("user:{user_id}:profile"),
        scope: cache_scope(user_id),
    }
}

pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn credentials(db: &PgPool, email: &Email) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT password_hash, disabled_at IS NOT NULL AS "disabled!", id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at FROM users WHERE email = $1"#,
        email.as_str()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Credentials {
        password_hash: row.password_hash,
        disabled: row.disabled,
        user: User {
            id: row.id,
            name: row.name,
            email: row.email,
            email_verified: row.email_verified,
            phone: row.phone,
            phone_verified: row.phone_verified,
            role: row.role,
            created_at: row.created_at,
        },
    }))
}

/// Replaces the hash `old` of the same password with `new` (stronger parameters). `false` if
/// the account's hash is no longer `old`: the password was changed or removed meanwhile (a
/// Google sign-in reclaimed the account), which an upgrade must never undo.
pub async fn replace_password_hash(
    db: &PgPool,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    let replaced = sqlx::query!(
        "UPDATE users SET password_hash = $3, updated_at = now()
         WHERE id = $1 AND password_hash = $2",
        id,
        old,
        new
    )
    .execute(db)
    .await?;
    Ok(replaced.rows_affected() == 1)
}

/// Locks the account for a password sign-in's session and tells whether its password is still
/// the one just checked (`hash`) and the account still enabled. Checking happens outside any
/// transaction (argon2 takes a while); this closes the gap, so a sign-in that was checking
/// while the password was removed (a Google sign-in reclaiming the account) or the account
/// disabled opens no session.
pub async fn lock_if_password_is(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        r#"SELECT password_hash IS NOT DISTINCT FROM $2 AND disabled_at IS NULL AS "same!"
           FROM users WHERE id = $1 FOR UPDATE"#,
        id,
        hash
    )
    .fetch_optional(conn)
    .await?
    .unwrap_or(false))
}

/// Changes name and/or email; a new email is unverified until proven again.
/// Changes `id`'s name and/or email; its cached copies go. A new email is unverified until
/// proven: a code is mailed to it (best effort; the owner can ask again).
pub async fn change_profile(
    core: &Core,
    id: Uuid,
    name: Option<&str>,
    email: Option<&Email>,
) -> Result<User, AccountError> {
    let updated = update_profile(&core.db, id, name, email)
        .await?
        .ok_or(AccountError::NotFound("user"))?;
    core.profile_changed(id).await;
    if email.is_some()
        && !updated.email_verified
        && let Err(error) = super::email_verification::send_code(core, id).await
    {
        tracing::warn!(%error, "no verification code was mailed for the new address");
    }
    Ok(updated)
}

async fn update_profile(
    db: &PgPool,
    id: Uuid,
    name: Option<&str>,
    email: Option<&Email>,
) -> Result<Option<User>, UserError> {
    Ok(sqlx::query_as!(
        User,
        r#"UPDATE users SET
             name = COALESCE($2, name),
             email_verified_at = CASE WHEN $3::text IS NOT NULL AND $3 IS DISTINCT FROM email
                                      THEN NULL ELSE email_verified_at END,
             email = COALESCE($3, email),
             updated_at = now()
         WHERE id = $1 RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        id,
        name,
        email.map(Email::as_str)
    )
    .fetch_optional(db)
    .await?)
}

/// Gives a user another role. Returns the role they had and the user as they now are; `None`
/// if there is no such user.
pub(crate) async fn set_role(
    conn: &mut PgConnection,
    id: Uuid,
    role: Role,
) -> Result<Option<(Role, User)>, sqlx::Error> {
    let before: Option<Role> = sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM users WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(before) = before else {
        return Ok(None);
    };
    let user = sqlx::query_as!(
        User,
        r#"UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        id,
        role as Role
    )
    .fetch_one(conn)
    .await?;
    Ok(Some((before, user)))
}

/// How a Google sign-in found its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleAccount {
    /// Seen before, by its Google subject.
    Known,
    /// An account whose email was already proven, linked now.
    Linked,
    /// An account whose email was never proven: whoever registered it did not show they own
    /// the address, and Google just did. The Google user gets it; its password, phone and
    /// every session of whoever held it before are gone.
    Reclaimed,
    Created,
    /// A new account, with an address the Google-linked account `from` had changed to without
    /// proving it: the address is taken from it (it keeps its Google identity).
    CreatedWithAddressOf {
        from: Uuid,
    },
}

/// Signs in a Google account: by its subject if seen before, else through the account with
/// the same email (linked if that email was proven, reclaimed from whoever registered it if
/// not), else by creating one.
pub async fn upsert_google(
    conn: &mut PgConnection,
    subject: &str,
    email: &Email,
    name: &str,
) -> Result<(User, GoogleAccount), UserError> {
    if let Some(user) = sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at FROM users WHERE google_subject = $1"#,
        subject
    )
    .fetch_optional(&mut *conn)
    .await?
    {
        return Ok((user, GoogleAccount::Known));
    }
    let same_email = sqlx::query!(
        r#"SELECT id, email_verified_at IS NOT NULL AS "verified!", google_subject IS NOT NULL AS "has_google!"
           FROM users WHERE email = $1 FOR UPDATE"#,
        email.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(account) = same_email else {
        let user = insert_google(conn, subject, email, name).await?;
        return Ok((user, GoogleAccount::Created));
    };
    if account.has_google {
        if account.verified {
            // Another Google identity owns this address, proven.
            return Err(UserError::EmailTaken);
        }
        // A Google-linked account moved to this address without proving it; Google just proved
        // it for someone else, who gets it.
        sqlx::query!(
            "UPDATE users SET email = NULL, email_verified_at = NULL, updated_at = now() WHERE id = $1",
            account.id
        )
        .execute(&mut *conn)
        .await?;
        let user = insert_google(conn, subject, email, name).await?;
        return Ok((
            user,
            GoogleAccount::CreatedWithAddressOf { from: account.id },
        ));
    }
    if account.verified {
        let user = sqlx::query_as!(
            User,
            r#"UPDATE users SET google_subject = $2, updated_at = now() WHERE id = $1
             RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                      phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                      role AS "role: Role", created_at"#,
            account.id,
            subject
        )
        .fetch_one(&mut *conn)
        .await?;
        return Ok((user, GoogleAccount::Linked));
    }
    // The person who proved the email wins. The phone goes too: it may be the other person's,
    // and it signs in by itself.
    let user = sqlx::query_as!(
        User,
        r#"UPDATE users SET google_subject = $2, email_verified_at = now(), password_hash = NULL,
                            name = $3, phone = NULL, phone_verified_at = NULL, updated_at = now()
         WHERE id = $1
         RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        account.id,
        subject,
        name
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'email proven by Google sign-in'
         WHERE user_id = $1 AND revoked_at IS NULL",
        account.id
    )
    .execute(&mut *conn)
    .await?;
    Ok((user, GoogleAccount::Reclaimed))
}

async fn insert_google(
    conn: &mut PgConnection,
    subject: &str,
    email: &Email,
    name: &str,
) -> Result<User, UserError> {
    Ok(sqlx::query_as!(
        User,
        r#"INSERT INTO users (name, email, email_verified_at, google_subject)
         VALUES ($1, $2, now(), $3) RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        name,
        email.as_str(),
        subject
    )
    .fetch_one(conn)
    .await?)
}

/// The account of a verified phone, created if there is none.
pub async fn upsert_phone(conn: &mut PgConnection, phone: &PhoneNumber) -> Result<User, UserError> {
    Ok(sqlx::query_as!(
        User,
        r#"INSERT INTO users (name, phone, phone_verified_at) VALUES ('', $1, now())
         ON CONFLICT (phone) DO UPDATE SET phone_verified_at = COALESCE(users.phone_verified_at, now())
         RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        phone.as_str()
    )
    .fetch_one(conn)
    .await?)
}

/// Attaches a verified phone to a signed-in account.
pub async fn attach_phone(
    conn: &mut PgConnection,
    id: Uuid,
    phone: &PhoneNumber,
) -> Result<User, UserError> {
    Ok(sqlx::query_as!(
        User,
        r#"UPDATE users SET phone = $2, phone_verified_at = now(), updated_at = now()
         WHERE id = $1 RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                  phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                  role AS "role: Role", created_at"#,
        id,
        phone.as_str()
    )
    .fetch_one(conn)
    .await?)
}

/// A person's display name: trimmed, 1 to 100 characters.
pub fn parse_name(raw: &str) -> Result<String, crate::validation::FieldError> {
    crate::validation::required_text("name", raw, NAME_MAX)
}

/// The longest display name, in characters.
pub const NAME_MAX: usize = 100;

/// A user as admins list them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserSummary {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Users newest first, optionally by role and by a part of their name, email or phone, older
/// than `before` (the last id of the previous page).
pub async fn search(
    db: &PgPool,
    text: Option<&str>,
    role: Option<Role>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserSummary>, sqlx::Error> {
    // LIKE's wildcards in the searched text are meant literally.
    let pattern = text.map(|text| {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    sqlx::query_as!(
        UserSummary,
        r#"SELECT id, name, email, phone, role AS "role: Role", disabled_at IS NOT NULL AS "disabled!",
                  created_at
           FROM users
           WHERE ($1::text IS NULL OR name ILIKE $1 OR email ILIKE $1 OR phone ILIKE $1)
             AND ($2::user_role IS NULL OR role = $2)
             AND ($3::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM users WHERE id = $3))
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        pattern,
        role as Option<Role>,
        before,
        limit
    )
    .fetch_all(db)
    .await
}

/// Disables or re-enables an account; disabling also ends every session. Returns whether it
/// was disabled before, or `None` if there is no such user.
pub(crate) async fn set_disabled(
    conn: &mut PgConnection,
    id: Uuid,
    disabled: bool,
) -> Result<Option<bool>, sqlx::Error> {
    let before = sqlx::query_scalar!(
        r#"SELECT disabled_at IS NOT NULL AS "disabled!" FROM users WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if before.is_some() {
        sqlx::query!(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END,
                              updated_at = now()
             WHERE id = $1",
            id,
            disabled
        )
        .execute(&mut *conn)
        .await?;
        if disabled {
            sqlx::query!(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = 'account disabled'
                 WHERE user_id = $1 AND revoked_at IS NULL",
                id
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(before)
}
