//! The ways into an account: register with email and password, sign in with a password, a
//! Google ID token or a code sent to a phone, refresh a token pair, and sign out. Each starts
//! or ends a session in one transaction, with the account changes and audit entries it makes,
//! and after the commit tells every instance what changed.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AccountError, Email, Password, PasswordHasher, PhoneNumber, Verification, email_verification,
    google::GoogleIdentity,
    otp,
    sessions::{self, Device, SessionError, TokenPair},
    throttle::LoginThrottle,
    users::{self, GoogleAccount, User},
};
use crate::{
    audit::{self, AuditEntry},
    core::Core,
};

/// A new account's details, parsed.
pub struct Registration {
    pub name: String,
    pub email: Email,
    pub password: Password,
    pub device: Device,
}

/// Creates an account with email and password and signs it in. A code to prove the email is
/// mailed to it; without the mail the account still exists, and its owner asks for another.
pub async fn register(
    core: &Core,
    passwords: &PasswordHasher,
    registration: Registration,
) -> Result<TokenPair, AccountError> {
    let hash = passwords.hash(&registration.password).await?;
    let mut tx = core.db.begin().await?;
    let user = users::insert_with_password(&mut tx, &registration.name, &registration.email, &hash)
        .await?;
    let verification =
        email_verification::request(&mut tx, &core.settings.email_verification, user.id).await?;
    let pair = sessions::start(&mut tx, &core.tokens, user, &registration.device).await?;
    tx.commit().await?;
    if let Err(error) = email_verification::send(core, verification).await {
        tracing::warn!(%error, "the email verification code was not sent at registration");
    }
    Ok(pair)
}

/// Signs in with email and password. Failures do not say whether the email exists; repeated
/// failures per account or per address are refused for a while.
pub async fn with_password(
    core: &Core,
    passwords: &PasswordHasher,
    throttle: &LoginThrottle,
    email: Email,
    password: &str,
    device: Device,
) -> Result<TokenPair, AccountError> {
    let ip = device.ip;
    if let Some(retry_after) = throttle.attempt(&email, ip).await {
        return Err(AccountError::TooManyAttempts { retry_after });
    }
    let password = Password::attempt(password)?;
    let (credentials, hash) = match check_password(core, passwords, &email, &password).await {
        Ok(Some(checked)) => checked,
        // The attempt is already counted.
        Ok(None) => return Err(AccountError::InvalidCredentials),
        Err(error) => {
            throttle.not_checked(&email, ip).await;
            return Err(error);
        }
    };
    if credentials.disabled {
        return Err(AccountError::Disabled);
    }
    throttle.succeeded(&email, ip).await;
    let user_id = credentials.user.id;
    let mut tx = core.db.begin().await?;
    if !users::lock_if_password_is(&mut tx, user_id, &hash).await? {
        // The password changed, or the account was disabled, while it was being checked.
        return Err(AccountError::InvalidCredentials);
    }
    let pair = sessions::start(&mut tx, &core.tokens, credentials.user, &device).await?;
    tx.commit().await?;
    Ok(pair)
}

/// The account whose password this is, with the hash it now has (upgraded if it was
/// outdated), or `None` if there is no such account or the password is wrong
/// (indistinguishable to the caller).
async fn check_password(
    core: &Core,
    passwords: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> Result<Option<(users::Credentials, String)>, AccountError> {
    let credentials = users::credentials(&core.db, email).await?;
    let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
    let verification = passwords.verify(password, stored.as_deref()).await?;
    Ok(match (credentials, stored, verification) {
        (Some(credentials), Some(stored), Verification::Valid) => Some((credentials, stored)),
        (Some(credentials), Some(stored), Verification::ValidRehashed(upgraded)) => {
            // The password was right: a failed upgrade must not turn that into an error (which
            // would also tell a guesser it was right without counting the guess).
            let id = credentials.user.id;
            match users::replace_password_hash(&core.db, id, &stored, &upgraded).await {
                Ok(true) => Some((credentials, upgraded)),
                Ok(false) => Some((credentials, stored)),
                Err(error) => {
                    tracing::warn!(%error, "password hash not upgraded; the next sign-in tries again");
                    Some((credentials, stored))
                }
            }
        }
        _ => None,
    })
}

/// Signs in with an identity Google vouched for. A new Google user gets an account. An account
/// with the same email is linked to it if that email was proven; if it never was, Google's
/// proof wins: the account's password and phone are removed and its other sessions end.
pub async fn with_google(
    core: &Core,
    identity: &GoogleIdentity,
    device: &Device,
    request_id: &str,
) -> Result<TokenPair, AccountError> {
    let email = Email::parse(&identity.email)?;
    let name = identity
        .name
        .as_deref()
        .and_then(|name| users::parse_name(name).ok())
        .unwrap_or_else(|| {
            email
                .as_str()
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned()
        });
    let mut tx = core.db.begin().await?;
    let (user, found) = users::upsert_google(&mut tx, &identity.subject, &email, &name).await?;
    let user_id = user.id;
    let by_user = |action, resource_id: Uuid, ip: Option<IpAddr>| AuditEntry {
        actor_id: Some(user_id),
        actor_role: Some(user.role),
        action,
        resource_type: "user",
        resource_id: resource_id.to_string(),
        ip,
        request_id: Some(request_id),
        before: Some(json!({"email_verified": false})),
        after: None,
    };
    if found == GoogleAccount::Reclaimed {
        audit::record(
            &mut tx,
            AuditEntry {
                after: Some(json!({"email_verified": true, "password": "removed",
                                   "phone": "removed", "sessions": "revoked"})),
                ..by_user("user.reclaimed_by_google", user_id, device.ip)
            },
        )
        .await?;
    }
    if let GoogleAccount::CreatedWithAddressOf { from } = found {
        audit::record(
            &mut tx,
            AuditEntry {
                after: Some(json!({"email": null, "taken_by": user_id})),
                ..by_user("user.email_released_to_google", from, device.ip)
            },
        )
        .await?;
    }
    let pair = sessions::start(&mut tx, &core.tokens, user, device).await?;
    tx.commit().await?;
    if let GoogleAccount::CreatedWithAddressOf { from } = found {
        core.profile_changed(from).await;
    }
    if found == GoogleAccount::Reclaimed {
        // Whoever held the account before is signed out everywhere, at once.
        core.account_changed(user_id).await;
    } else {
        // Linking may have set the Google identity.
        core.profile_changed(user_id).await;
    }
    Ok(pair)
}

/// What a phone code proved.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OtpVerified {
    /// Signed in (a new account if the phone had none).
    SignedIn(TokenPair),
    /// The phone was attached to the caller's account.
    Attached { user: User },
}

/// Checks a code sent to `phone`. Signed out (`caller` is `None`), it signs in the phone's
/// account, creating it if needed; signed in, it attaches the phone to the caller's account.
pub async fn with_phone(
    core: &Core,
    phone: &PhoneNumber,
    code: &str,
    caller: Option<Uuid>,
    device: &Device,
) -> Result<OtpVerified, AccountError> {
    otp::verify(&core.db, &core.settings.otp, phone, code).await?;
    let mut tx = core.db.begin().await?;
    let outcome = match caller {
        Some(caller) => OtpVerified::Attached {
            user: users::attach_phone(&mut tx, caller, phone).await?,
        },
        None => {
            let user = users::upsert_phone(&mut tx, phone).await?;
            OtpVerified::SignedIn(sessions::start(&mut tx, &core.tokens, user, device).await?)
        }
    };
    tx.commit().await?;
    let user_id = match &outcome {
        OtpVerified::Attached { user } => user.id,
        OtpVerified::SignedIn(pair) => pair.user.id,
    };
    core.profile_changed(user_id).await;
    Ok(outcome)
}

/// Exchanges a refresh token for a new pair. A reused one revokes its session, at once on
/// every instance.
pub async fn refresh(core: &Core, token: &str) -> Result<TokenPair, AccountError> {
    match sessions::refresh(&core.db, &core.tokens, token).await {
        Ok(pair) => Ok(pair),
        Err(SessionError::RefreshTokenReused { user_id }) => {
            core.account_changed(user_id).await;
            Err(SessionError::RefreshTokenReused { user_id }.into())
        }
        Err(error) => Err(error.into()),
    }
}

/// Signs `user_id` out of `session_id`. Every instance forgets the session, even one that
/// missed an earlier revocation of it.
pub async fn sign_out(core: &Core, user_id: Uuid, session_id: Uuid) -> Result<(), AccountError> {
    sessions::revoke(&core.db, user_id, session_id, "signed out").await?;
    core.account_changed(user_id).await;
    Ok(())
}

/// Ends one of `user_id`'s sessions (`reason` says why, on the session). `false` if they have
/// no such live session.
pub async fn end_session(
    core: &Core,
    user_id: Uuid,
    session_id: Uuid,
    reason: &str,
) -> Result<bool, AccountError> {
    let ended = sessions::revoke(&core.db, user_id, session_id, reason).await?;
    if ended {
        core.account_changed(user_id).await;
    }
    Ok(ended)
}

/// Ends every session of `user_id` but `keep`. Returns how many ended.
pub async fn end_other_sessions(
    core: &Core,
    user_id: Uuid,
    keep: Uuid,
) -> Result<u64, AccountError> {
    let ended = sessions::revoke_others(&core.db, user_id, keep).await?;
    core.account_changed(user_id).await;
    Ok(ended)
}
