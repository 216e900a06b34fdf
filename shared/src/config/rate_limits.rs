//! Requests allowed per route group, per user and per client address.

use std::time::Duration;

use super::{
    SettingsError,
    reader::{Reader, positive},
    values::Rate,
};

/// Requests allowed per route group, per user and (times `ip_factor`, for users sharing an
/// address) per client IP, counted in Redis across every API instance.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// GET and HEAD.
    pub reads: Rate,
    /// Other methods, outside the groups below.
    pub writes: Rate,
    /// Sign-in, registration, token refresh, code checks.
    pub auth: Rate,
    /// Asking for a code by SMS.
    pub otp: Rate,
    /// Asking for seats.
    pub bookings: Rate,
    pub ip_factor: u32,
}

impl RateLimitSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let minute = Duration::from_secs(60);
        let rate = |count| Rate {
            count,
            window: minute,
        };
        let rate_limits = RateLimitSettings {
            reads: env.or("RATE_LIMIT_READS", rate(600))?,
            writes: env.or("RATE_LIMIT_WRITES", rate(120))?,
            auth: env.or("RATE_LIMIT_AUTH", rate(20))?,
            otp: env.or("RATE_LIMIT_OTP", rate(5))?,
            bookings: env.or("RATE_LIMIT_BOOKINGS", rate(30))?,
            ip_factor: env.or_with("RATE_LIMIT_IP_FACTOR", 4, positive)?,
        };
        Ok(rate_limits)
    }
}
