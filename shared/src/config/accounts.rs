//! Signing in: token lifetimes and secrets, password hashing, sign-in throttling, phone codes
//! and email verification codes.

use std::time::Duration;

use super::{
    SettingsError,
    reader::{Reader, long_secret, positive, region},
    values::{HumanDuration, Secret},
};

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub jwt_expires_in: Duration,
    pub refresh_token_secret: Secret,
    pub refresh_token_expires_in: Duration,
    /// A refresh token used this recently, whose successor is still unused, yields that same
    /// successor again instead of counting as theft: two tabs refreshing at once both stay
    /// signed in.
    pub refresh_token_reuse_grace: Duration,
    pub argon2: Argon2Settings,
    /// Failed logins allowed per account and address pair, per account, and per client
    /// address, within `login_failure_window` before further attempts are refused with 429.
    pub login_max_failures_per_account_address: u32,
    pub login_max_failures_per_account: u32,
    pub login_max_failures_per_ip: u32,
    pub login_failure_window: Duration,
    /// How long an API instance may trust its copy of a session check. Revocations reach every
    /// instance at once through Redis; this bounds how stale a missed one can be.
    pub session_cache_ttl: Duration,
}

/// argon2id cost. Hashes made with other parameters are upgraded at the next login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Threads that hash (each holds `memory_kib` while it works), and how many requests may
    /// wait for one; past that, sign-ins are refused with 503 at once.
    pub threads: usize,
    pub queue: usize,
}

#[derive(Debug, Clone)]
pub struct OtpSettings {
    /// Key of the HMAC that stores codes, so a leaked table does not give them away.
    pub secret: Secret,
    pub ttl: Duration,
    pub max_attempts: u32,
    pub resend_cooldown: Duration,
    pub max_per_phone_per_hour: u32,
    pub max_per_ip_per_hour: u32,
    /// Region assumed for phone numbers written without a country code (ISO 3166, e.g. IN).
    pub default_region: String,
}

/// Codes that prove an account owns its email address (sent by email, checked like phone
/// codes: stored as an HMAC with `OTP_SECRET`).
#[derive(Debug, Clone)]
pub struct EmailVerificationSettings {
    pub ttl: Duration,
    pub max_attempts: u32,
    pub resend_cooldown: Duration,
    /// Codes one account, and one address across all accounts, may be sent per hour.
    pub max_per_user_per_hour: u32,
}

impl AuthSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let auth = AuthSettings {
            jwt_secret: env.required_with("JWT_SECRET", long_secret)?,
            jwt_expires_in: env
                .or("JWT_EXPIRES_IN", HumanDuration(Duration::from_secs(900)))?
                .0,
            refresh_token_secret: env.required_with("REFRESH_TOKEN_SECRET", long_secret)?,
            refresh_token_expires_in: env
                .or(
                    "REFRESH_TOKEN_EXPIRES_IN",
                    HumanDuration(Duration::from_secs(30 * 86_400)),
                )?
                .0,
            refresh_token_reuse_grace: env
                .or(
                    "REFRESH_TOKEN_REUSE_GRACE",
                    HumanDuration(Duration::from_secs(30)),
                )?
                .0,
            argon2: Argon2Settings {
                memory_kib: env.or_with("ARGON2_MEMORY_KIB", 19_456, positive)?,
                iterations: env.or_with("ARGON2_ITERATIONS", 2, positive)?,
                parallelism: env.or_with("ARGON2_PARALLELISM", 1, positive)?,
                threads: env.or_with(
                    "PASSWORD_HASH_THREADS",
                    std::thread::available_parallelism().map_or(2, usize::from),
                    positive,
                )?,
                queue: env.or_with("PASSWORD_HASH_QUEUE", 64, positive)?,
            },
            login_max_failures_per_account_address: env.or_with(
                "LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS",
                5,
                positive,
            )?,
            login_max_failures_per_account: env.or_with(
                "LOGIN_MAX_FAILURES_PER_ACCOUNT",
                20,
                positive,
            )?,
            login_max_failures_per_ip: env.or_with("LOGIN_MAX_FAILURES_PER_IP", 50, positive)?,
            login_failure_window: env
                .or(
                    "LOGIN_FAILURE_WINDOW",
                    HumanDuration(Duration::from_secs(900)),
                )?
                .0,
            session_cache_ttl: env
                .or(
                    "AUTH_SESSION_CACHE_TTL",
                    HumanDuration(Duration::from_secs(5)),
                )?
                .0,
        };
        Ok(auth)
    }
}

impl OtpSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let otp = OtpSettings {
            secret: env.required_with("OTP_SECRET", long_secret)?,
            ttl: env
                .or("OTP_TTL", HumanDuration(Duration::from_secs(300)))?
                .0,
            max_attempts: env.or_with("OTP_MAX_ATTEMPTS", 5, positive)?,
            resend_cooldown: env
                .or(
                    "OTP_RESEND_COOLDOWN",
                    HumanDuration(Duration::from_secs(30)),
                )?
                .0,
            max_per_phone_per_hour: env.or_with("OTP_MAX_PER_PHONE_PER_HOUR", 5, positive)?,
            max_per_ip_per_hour: env.or_with("OTP_MAX_PER_IP_PER_HOUR", 20, positive)?,
            default_region: env.or_with("DEFAULT_PHONE_REGION", "IN".to_owned(), region)?,
        };
        Ok(otp)
    }
}

impl EmailVerificationSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let email_verification = EmailVerificationSettings {
            ttl: env
                .or(
                    "EMAIL_VERIFICATION_TTL",
                    HumanDuration(Duration::from_secs(1800)),
                )?
                .0,
            max_attempts: env.or_with("EMAIL_VERIFICATION_MAX_ATTEMPTS", 5, positive)?,
            resend_cooldown: env
                .or(
                    "EMAIL_VERIFICATION_RESEND_COOLDOWN",
                    HumanDuration(Duration::from_secs(60)),
                )?
                .0,
            max_per_user_per_hour: env.or_with("EMAIL_VERIFICATION_MAX_PER_HOUR", 5, positive)?,
        };
        Ok(email_verification)
    }
}
