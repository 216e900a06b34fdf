//! `/api/auth`: registration and the three ways to sign in (password, Google, phone code),
//! refresh-token rotation, and logout.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    accounts::{
        AccountError, Email, Password, PhoneNumber,
        email_verification::{self, VerificationError},
        google::GoogleError,
        otp::{self, OtpError},
        sessions::{Device, SessionError, TokenPair},
        sign_in::{self, OtpVerified, Registration},
        users::{self, User, UserError},
    },
    validation::{FieldError, optional_text, schema},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{AuthUser, MaybeAuthUser},
    error::ApiError,
    extract::{ClientInfo, Json, RequestId},
    state::AppState,
};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(google))
        .routes(routes!(request_otp))
        .routes(routes!(verify_otp))
        .routes(routes!(request_email_verification))
        .routes(routes!(verify_email))
}

/// The longest name a client may give its device, in characters.
const DEVICE_NAME_MAX: usize = 100;

fn device(client: &ClientInfo, name: Option<String>) -> Result<Device, ApiError> {
    let name = name
        .map(|name| optional_text("device_name", &name, DEVICE_NAME_MAX))
        .transpose()?
        .filter(|name| !name.is_empty());
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

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let message = error.to_string();
        match error {
            AccountError::InvalidCredentials => ApiError::AuthenticationFailed {
                code: "INVALID_CREDENTIALS",
                message,
            },
            AccountError::Disabled => ApiError::AuthenticationFailed {
                code: "ACCOUNT_DISABLED",
                message,
            },
            AccountError::TooManyAttempts { retry_after } => ApiError::TooManyRequests {
                code: "TOO_MANY_ATTEMPTS",
                message,
                retry_after,
            },
            AccountError::NotFound(what) => ApiError::NotFound(what),
            AccountError::Unavailable(what) => ApiError::Unavailable(what),
            AccountError::Invalid(error) => error.into(),
            AccountError::User(error) => error.into(),
            AccountError::Session(error) => error.into(),
            AccountError::Otp(error) => error.into(),
            AccountError::Verification(error) => error.into(),
            AccountError::Hash(error) => error.into(),
            AccountError::Database(error) => error.into(),
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
    #[schema(schema_with = schema::required_text::<{ users::NAME_MAX }>)]
    name: String,
    #[schema(schema_with = Email::schema)]
    email: String,
    /// 8 to 128 characters, not all whitespace.
    #[schema(schema_with = schema::not_blank::<8, 128>)]
    password: String,
    #[schema(schema_with = schema::optional_text_or_null::<DEVICE_NAME_MAX>)]
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
    let registration = Registration {
        name: users::parse_name(&body.name)?,
        email: Email::parse(&body.email)?,
        password: Password::parse(&body.password)?,
        device: device(&client, body.device_name)?,
    };
    let pair = sign_in::register(&state.core, &state.passwords, registration).await?;
    Ok((StatusCode::CREATED, axum::Json(pair)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = Email::schema)]
    email: String,
    // The server takes up to 1024 bytes; 256 characters are that many bytes at most.
    #[schema(min_length = 1, max_length = 256)]
    password: String,
    #[schema(schema_with = schema::optional_text_or_null::<DEVICE_NAME_MAX>)]
    device_name: Option<String>,
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
    let pair = sign_in::with_password(
        &state.core,
        &state.passwords,
        &state.login_throttle,
        email,
        &body.password,
        device,
    )
    .await?;
    Ok(axum::Json(pair))
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
        return Err(SessionError::InvalidRefreshToken.into());
    }
    Ok(axum::Json(
        sign_in::refresh(&state.core, &body.refresh_token).await?,
    ))
}

/// Ends the session the request was made with.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    sign_in::sign_out(&state.core, user.user_id, user.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleRequest {
    /// A JWT, which is ASCII.
    #[schema(max_length = 8192, pattern = r"^[\u0000-\u007f]*$")]
    id_token: String,
    #[schema(schema_with = schema::optional_text_or_null::<DEVICE_NAME_MAX>)]
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
    let pair = sign_in::with_google(&state.core, &identity, &device, &request_id).await?;
    Ok(axum::Json(pair))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    #[schema(schema_with = PhoneNumber::schema)]
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
    let settings = &state.core.settings.otp;
    let phone = PhoneNumber::parse(&body.phone, &settings.default_region)?;
    otp::send_code(&state.core, &phone, client.ip).await?;
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
    #[schema(schema_with = PhoneNumber::schema)]
    phone: String,
    /// The 6 digits texted to the phone.
    #[schema(pattern = r"^[0-9]{6}$")]
    code: String,
    #[schema(schema_with = schema::optional_text_or_null::<DEVICE_NAME_MAX>)]
    device_name: Option<String>,
}

/// Checks a code. Signed out, it signs in the phone's account (creating it if needed); signed
/// in, it attaches the phone to the caller's account. 5 wrong codes lock a code.
#[utoipa::path(post, path = "/api/auth/otp/verify", tag = "auth", security((), ("bearer" = [])), request_body = OtpVerifyRequest,
    responses((status = 200, body = OtpVerified), (status = 401, description = "Wrong, expired or locked code"),
              (status = 409, description = "Phone belongs to another account")))]
#[tracing::instrument(skip_all)]
pub async fn verify_otp(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    client: ClientInfo,
    Json(body): Json<OtpVerifyRequest>,
) -> Result<axum::Json<OtpVerified>, ApiError> {
    let settings = &state.core.settings.otp;
    let phone = PhoneNumber::parse(&body.phone, &settings.default_region)?;
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new("code", "must be 6 digits").into());
    }
    let device = device(&client, body.device_name)?;
    let caller = caller.map(|caller| caller.user_id);
    let outcome = sign_in::with_phone(&state.core, &phone, code, caller, &device).await?;
    Ok(axum::Json(outcome))
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
    email_verification::send_code(&state.core, user.user_id).await?;
    let settings = &state.core.settings.email_verification;
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
    #[schema(pattern = r"^[0-9]{6}$")]
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
    let verified = email_verification::confirm(&state.core, user.user_id, code).await?;
    Ok(axum::Json(verified))
}
