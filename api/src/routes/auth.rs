//! `/api/auth`: registration and the three ways to sign in (password, Google, phone code),
//! refresh-token rotation, and logout.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    accounts::{
        Email, Password, PhoneNumber, Verification,
        email_verification::{self, VerificationError},
        google::GoogleError,
        otp::{self, OtpError},
        sessions::{self, Device, SessionError, TokenPair},
        users::{self, GoogleAccount, User, UserError},
    },
    audit::{self, AuditEntry},
    jobs::{SendEmailVerification, SendOtp},
    validation::FieldError,
};
use utoipa::ToSchema;

use crate::{
    auth::{AuthUser, MaybeAuthUser, account_changed, profile_changed},
    error::ApiError,
    extract::{ClientInfo, Json, RequestId},
    state::AppState,
};

fn device(client: &ClientInfo, name: Option<String>) -> Result<Device, ApiError> {
    let name = name
        .map(|name| name.trim().to_owned())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|name| name.chars().count() > 100) {
        return Err(FieldError::new("device_name", "must be at most 100 characters").into());
    }
    Ok(Device {
        name,
        user_agent: client.user_agent.clone(),
        ip: client.ip,
    })
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::EmailTaken => ApiError::Conflict {
                code: "EMAIL_TAKEN",
                message: error.to_string(),
            },
            UserError::PhoneTaken => ApiError::Conflict {
                code: "PHONE_TAKEN",
                message: error.to_string(),
            },
            UserError::Database(error) => error.into(),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::InvalidRefreshToken => ApiError::AuthenticationFailed {
                code: "INVALID_REFRESH_TOKEN",
                message: error.to_string(),
            },
            SessionError::RefreshTokenReused { .. } => ApiError::AuthenticationFailed {
                code: "REFRESH_TOKEN_REUSED",
                message: error.to_string(),
            },
            SessionError::Token(error) => ApiError::Internal(error.into()),
            SessionError::Database(error) => error.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    name: String,
    email: String,
    password: String,
    device_name: Option<String>,
}

/// Creates an account with email and password and signs it in. A code to prove the email is
/// mailed to it (`POST /api/auth/email/verify`).
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenPair), (status = 409, description = "Email taken"),
              (status = 422, description = "Invalid field")))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<TokenPair>), ApiError> {
    let name = users::parse_name(&body.name)?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    let device = device(&client, body.device_name)?;
    let hash = state.passwords.hash(&password).await?;
    let mut tx = state.db.begin().await?;
    let user = users::insert_with_password(&mut tx, &name, &email, &hash).await?;
    let verification =
        email_verification::request(&mut tx, &state.settings.email_verification, user.id).await?;
    let pair = sessions::start(&mut tx, &state.tokens, user, &device).await?;
    tx.commit().await?;
    // The account exists either way: without the mail, its owner asks for another code.
    if let Err(error) = send_verification(&state, verification).await {
        tracing::warn!(%error, "the email verification code was not sent at registration");
    }
    Ok((StatusCode::CREATED, axum::Json(pair)))
}

/// Enqueues the mail of a verification request; a request whose job could not be enqueued is
/// removed, so it counts against no limit.
async fn send_verification(state: &AppState, id: uuid::Uuid) -> Result<(), ApiError> {
    let job = SendEmailVerification {
        verification_id: id,
    };
    if let Err(error) = state.jobs.publish(&job).await {
        tracing::error!(%error, "could not enqueue the email verification job");
        email_verification::discard(&state.db, id).await?;
        return Err(ApiError::Unavailable("sending email"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    device_name: Option<String>,
}

fn invalid_credentials() -> ApiError {
    ApiError::AuthenticationFailed {
        code: "INVALID_CREDENTIALS",
        message: "the email or password is not correct".into(),
    }
}

/// Signs in with email and password. Failures do not say whether the email exists; repeated
/// failures per account or per IP are refused for a while (429 with Retry-After).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "Wrong credentials"),
              (status = 429, description = "Too many failed attempts")))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<LoginRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    let email = Email::parse(&body.email)?;
    let device = device(&client, body.device_name)?;
    if let Some(retry_after) = state.login_throttle.attempt(&email, client.ip).await {
        return Err(ApiError::TooManyRequests {
            code: "TOO_MANY_ATTEMPTS",
            message: "too many failed sign-in attempts; try again later".into(),
            retry_after,
        });
    }
    let password = Password::attempt(&body.password)?;
    let checked = check_password(&state, &email, &password).await;
    let (credentials, hash) = match checked {
        Ok(Some(checked)) => checked,
        // The attempt is already counted.
        Ok(None) => return Err(invalid_credentials()),
        Err(error) => {
            state.login_throttle.not_checked(&email, client.ip).await;
            return Err(error);
        }
    };
    if credentials.disabled {
        return Err(ApiError::AuthenticationFailed {
            code: "ACCOUNT_DISABLED",
            message: "this account is disabled".into(),
        });
    }
    state.login_throttle.succeeded(&email, client.ip).await;
    let user_id = credentials.user.id;
    let mut tx = state.db.begin().await?;
    if !users::lock_if_password_is(&mut tx, user_id, &hash).await? {
        // The password changed, or the account was disabled, while it was being checked.
        return Err(invalid_credentials());
    }
    let pair = sessions::start(&mut tx, &state.tokens, credentials.user, &device).await?;
    tx.commit().await?;
    Ok(axum::Json(pair))
}

/// The account whose password this is, with the hash it now has (upgraded if it was
/// outdated), or `None` if there is no such account or the password is wrong
/// (indistinguishable to the caller).
async fn check_password(
    state: &AppState,
    email: &Email,
    password: &Password,
) -> Result<Option<(users::Credentials, String)>, ApiError> {
    let credentials = users::credentials(&state.db, email).await?;
    let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
    let verification = state.passwords.verify(password, stored.as_deref()).await?;
    Ok(match (credentials, stored, verification) {
        (Some(credentials), Some(stored), Verification::Valid) => Some((credentials, stored)),
        (Some(credentials), Some(stored), Verification::ValidRehashed(upgraded)) => {
            // The password was right: a failed upgrade must not turn that into an error (which
            // would also tell a guesser it was right without counting the guess).
            let id = credentials.user.id;
            match users::replace_password_hash(&state.db, id, &stored, &upgraded).await {
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchanges a refresh token for a new token pair. Each refresh token works once; presenting
/// a used one revokes its session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "Invalid or reused")))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    if body.refresh_token.len() > 200 {
        return Err(invalid_refresh_token());
    }
    match sessions::refresh(&state.db, &state.tokens, &body.refresh_token).await {
        Ok(pair) => Ok(axum::Json(pair)),
        Err(SessionError::RefreshTokenReused { user_id }) => {
            account_changed(&state, user_id).await;
            Err(SessionError::RefreshTokenReused { user_id }.into())
        }
        Err(error) => Err(error.into()),
    }
}

fn invalid_refresh_token() -> ApiError {
    SessionError::InvalidRefreshToken.into()
}

/// Ends the session the request was made with.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    sessions::revoke(&state.db, user.user_id, user.session_id, "signed out").await?;
    account_changed(&state, user.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleRequest {
    id_token: String,
    device_name: Option<String>,
}

/// Signs in with a Google ID token. A new Google user gets an account. An account with the same
/// email is linked to it if that email was proven; if it never was, Google's proof wins: the
/// account's password and phone are removed and its other sessions end.
#[utoipa::path(post, path = "/api/auth/google", tag = "auth", request_body = GoogleRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "Token refused")))]
#[tracing::instrument(skip_all)]
pub async fn google(
    State(state): State<AppState>,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Json(body): Json<GoogleRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    let device = device(&client, body.device_name)?;
    if body.id_token.len() > 8192 {
        return Err(FieldError::new("id_token", "is too long").into());
    }
    let identity = state
        .google
        .verify(&body.id_token)
        .await
        .map_err(|error| match error {
            GoogleError::KeysUnavailable(_) => ApiError::Unavailable("Google sign-in"),
            GoogleError::EmailNotVerified => ApiError::AuthenticationFailed {
                code: "GOOGLE_EMAIL_NOT_VERIFIED",
                message: error.to_string(),
            },
            GoogleError::InvalidToken(_) => ApiError::AuthenticationFailed {
                code: "INVALID_GOOGLE_TOKEN",
                message: "the Google token is not valid".into(),
            },
        })?;
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
    let mut tx = state.db.begin().await?;
    let (user, found) = users::upsert_google(&mut tx, &identity.subject, &email, &name).await?;
    let user_id = user.id;
    if found == GoogleAccount::Reclaimed {
        audit::record(
            &mut tx,
            AuditEntry {
                actor_id: Some(user_id),
                actor_role: Some(user.role),
                action: "user.reclaimed_by_google",
                resource_type: "user",
                resource_id: user_id.to_string(),
                ip: client.ip,
                request_id: Some(&request_id),
                before: Some(json!({"email_verified": false})),
                after: Some(json!({"email_verified": true, "password": "removed",
                                   "phone": "removed", "sessions": "revoked"})),
            },
        )
        .await?;
    }
    if let GoogleAccount::CreatedWithAddressOf { from } = found {
        audit::record(
            &mut tx,
            AuditEntry {
                actor_id: Some(user_id),
                actor_role: Some(user.role),
                action: "user.email_released_to_google",
                resource_type: "user",
                resource_id: from.to_string(),
                ip: client.ip,
                request_id: Some(&request_id),
                before: Some(json!({"email_verified": false})),
                after: Some(json!({"email": null, "taken_by": user_id})),
            },
        )
        .await?;
    }
    let pair = sessions::start(&mut tx, &state.tokens, user, &device).await?;
    tx.commit().await?;
    if let GoogleAccount::CreatedWithAddressOf { from } = found {
        profile_changed(&state, from).await;
    }
    if found == GoogleAccount::Reclaimed {
        // Whoever held the account before is signed out everywhere, at once.
        account_changed(&state, user_id).await;
    } else {
        // Linking may have set the Google identity.
        profile_changed(&state, user_id).await;
    }
    Ok(axum::Json(pair))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpRequested {
    /// Seconds the code will be valid once sent.
    expires_in: u64,
    /// Seconds before another code may be asked for.
    resend_after: u64,
}

impl From<OtpError> for ApiError {
    fn from(error: OtpError) -> Self {
        let message = error.to_string();
        let failed = |code| ApiError::AuthenticationFailed {
            code,
            message: message.clone(),
        };
        match error {
            OtpError::Cooldown { retry_after } => ApiError::TooManyRequests {
                code: "OTP_COOLDOWN",
                message,
                retry_after,
            },
            OtpError::TooMany { retry_after } => ApiError::TooManyRequests {
                code: "OTP_RATE_LIMITED",
                message,
                retry_after,
            },
            OtpError::NoCode => failed("OTP_NOT_FOUND"),
            OtpError::Expired => failed("OTP_EXPIRED"),
            OtpError::Locked => failed("OTP_LOCKED"),
            OtpError::Wrong { attempts_left } => ApiError::AuthenticationFailed {
                code: "OTP_INVALID",
                message: format!("the code is not correct; {attempts_left} attempts left"),
            },
            OtpError::Database(error) => error.into(),
        }
    }
}

/// Sends a sign-in code to a phone by SMS (through the send-OTP job).
#[utoipa::path(post, path = "/api/auth/otp/request", tag = "auth", request_body = OtpRequest,
    responses((status = 202, body = OtpRequested), (status = 422), (status = 429)))]
#[tracing::instrument(skip_all)]
pub async fn request_otp(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<OtpRequest>,
) -> Result<(StatusCode, axum::Json<OtpRequested>), ApiError> {
    let settings = &state.settings.otp;
    let phone = PhoneNumber::parse(&body.phone, &settings.default_region)?;
    let id = otp::create_request(&state.db, settings, &phone, client.ip).await?;
    if let Err(error) = state.jobs.publish(&SendOtp { otp_request_id: id }).await {
        tracing::error!(%error, "could not enqueue the OTP job");
        otp::discard(&state.db, id).await?;
        return Err(ApiError::Unavailable("sending codes"));
    }
    tracing::info!(phone = %phone.masked(), "OTP requested");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(OtpRequested {
            expires_in: settings.ttl.as_secs(),
            resend_after: settings.resend_cooldown.as_secs(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpVerifyRequest {
    phone: String,
    code: String,
    device_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OtpVerified {
    /// Signed in (a new account if the phone had none).
    SignedIn(TokenPair),
    /// The phone was attached to the caller's account.
    Attached { user: User },
}

/// Checks a code. Signed out, it signs in the phone's account (creating it if needed); signed
/// in, it attaches the phone to the caller's account. 5 wrong codes lock a code.
#[utoipa::path(post, path = "/api/auth/otp/verify", tag = "auth", request_body = OtpVerifyRequest,
    responses((status = 200, body = OtpVerified), (status = 401, description = "Wrong, expired or locked code"),
              (status = 409, description = "Phone belongs to another account")))]
#[tracing::instrument(skip_all)]
pub async fn verify_otp(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    client: ClientInfo,
    Json(body): Json<OtpVerifyRequest>,
) -> Result<axum::response::Response, ApiError> {
    let settings = &state.settings.otp;
    let phone = PhoneNumber::parse(&body.phone, &settings.default_region)?;
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new("code", "must be 6 digits").into());
    }
    let device = device(&client, body.device_name)?;
    otp::verify(&state.db, settings, &phone, code).await?;
    let mut tx = state.db.begin().await?;
    let outcome = match caller {
        Some(caller) => OtpVerified::Attached {
            user: users::attach_phone(&mut tx, caller.user_id, &phone).await?,
        },
        None => {
            let user = users::upsert_phone(&mut tx, &phone).await?;
            OtpVerified::SignedIn(sessions::start(&mut tx, &state.tokens, user, &device).await?)
        }
    };
    tx.commit().await?;
    let user_id = match &outcome {
        OtpVerified::Attached { user } => user.id,
        OtpVerified::SignedIn(pair) => pair.user.id,
    };
    profile_changed(&state, user_id).await;
    Ok(axum::Json(outcome).into_response())
}

impl From<VerificationError> for ApiError {
    fn from(error: VerificationError) -> Self {
        let message = error.to_string();
        let conflict = |code| ApiError::Conflict {
            code,
            message: message.clone(),
        };
        let refused = |code| ApiError::unprocessable(code, message.clone());
        match error {
            VerificationError::NoEmail => conflict("NO_EMAIL"),
            VerificationError::AlreadyVerified => conflict("EMAIL_ALREADY_VERIFIED"),
            VerificationError::Cooldown { retry_after } => ApiError::TooManyRequests {
                code: "EMAIL_VERIFICATION_COOLDOWN",
                message,
                retry_after,
            },
            VerificationError::TooMany { retry_after } => ApiError::TooManyRequests {
                code: "EMAIL_VERIFICATION_RATE_LIMITED",
                message,
                retry_after,
            },
            VerificationError::NoCode => refused("EMAIL_CODE_NOT_FOUND"),
            VerificationError::Expired => refused("EMAIL_CODE_EXPIRED"),
            VerificationError::Locked => refused("EMAIL_CODE_LOCKED"),
            VerificationError::Wrong { attempts_left } => ApiError::unprocessable(
                "EMAIL_CODE_INVALID",
                format!("the code is not correct; {attempts_left} attempts left"),
            ),
            VerificationError::Database(error) => error.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmailCodeRequested {
    /// Seconds the code will be valid once sent.
    expires_in: u64,
    /// Seconds before another code may be asked for.
    resend_after: u64,
}

/// Mails a new code that proves the caller owns their account's email address.
#[utoipa::path(post, path = "/api/auth/email/verification", tag = "auth", security(("bearer" = [])),
    responses((status = 202, body = EmailCodeRequested), (status = 401),
              (status = 409, description = "No email, or already verified"), (status = 429)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn request_email_verification(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<(StatusCode, axum::Json<EmailCodeRequested>), ApiError> {
    let settings = &state.settings.email_verification;
    let mut tx = state.db.begin().await?;
    let id = email_verification::request(&mut tx, settings, user.user_id).await?;
    tx.commit().await?;
    send_verification(&state, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(EmailCodeRequested {
            expires_in: settings.ttl.as_secs(),
            resend_after: settings.resend_cooldown.as_secs(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCode {
    /// The 6 digits mailed to the account's address.
    code: String,
}

/// Checks a mailed code: the account's current email is then verified. 5 wrong codes lock a
/// code.
#[utoipa::path(post, path = "/api/auth/email/verify", tag = "auth", security(("bearer" = [])),
    request_body = EmailCode,
    responses((status = 200, body = User), (status = 401),
              (status = 422, description = "Wrong, expired or locked code")))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn verify_email(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<EmailCode>,
) -> Result<axum::Json<User>, ApiError> {
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new("code", "must be 6 digits").into());
    }
    let verified =
        email_verification::verify(&state.db, &state.settings.otp, user.user_id, code).await?;
    profile_changed(&state, user.user_id).await;
    Ok(axum::Json(verified))
}

/// After the caller's email changed: mail a code for the new address (best effort; the owner
/// can ask again).
pub async fn email_changed(state: &AppState, user_id: uuid::Uuid) {
    let requested = async {
        let mut tx = state.db.begin().await?;
        let id = email_verification::request(&mut tx, &state.settings.email_verification, user_id)
            .await?;
        tx.commit().await?;
        send_verification(state, id).await
    };
    if let Err(error) = requested.await {
        tracing::warn!(
            ?error,
            "no verification code was mailed for the new address"
        );
    }
}
