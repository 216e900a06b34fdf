//! Settings for every process, read from the environment (and `.env` in development).
//!
//! Everything is parsed once at start-up into typed values, so a missing or malformed variable
//! stops the process before it serves anything, with one line that names the variable.
//! `.env.example` lists every variable with a working local default.

mod accounts;
mod bookings;
mod cache;
mod http;
mod jobs;
mod production;
mod providers;
mod rate_limits;
mod reader;
mod stores;
mod values;

use std::{collections::HashMap, str::FromStr};

use self::reader::Reader;
pub use self::{
    accounts::{Argon2Settings, AuthSettings, EmailVerificationSettings, OtpSettings},
    bookings::BookingSettings,
    cache::CacheSettings,
    http::HttpSettings,
    jobs::{JobConcurrency, JobSettings},
    providers::{GoogleSettings, RazorpaySettings, SendGridSettings, TwilioSettings},
    rate_limits::RateLimitSettings,
    stores::{DatabaseSettings, RabbitMqSettings, RedisSettings},
    values::{CorsOrigins, CronExpression, HumanDuration, Rate, Secret},
};

/// Why the settings could not be loaded. `Display` is the one line shown to the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("missing required setting {0} (see .env.example)")]
    Missing(&'static str),
    #[error("setting {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
    /// Settings that are fine on a laptop and dangerous in production, one line each.
    #[error("refusing to start in production:\n{}", .0.join("\n"))]
    UnsafeForProduction(Vec<String>),
}

/// Which kind of deployment this is; production tightens CORS and logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "development" | "dev" | "local" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!(
                "expected development, test or production, got {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub otp: OtpSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub rabbitmq: RabbitMqSettings,
    pub razorpay: RazorpaySettings,
    pub google: GoogleSettings,
    pub twilio: TwilioSettings,
    pub sendgrid: SendGridSettings,
    pub email_verification: EmailVerificationSettings,
    pub bookings: BookingSettings,
    pub jobs: JobSettings,
    pub cache: CacheSettings,
    pub rate_limits: RateLimitSettings,
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, SettingsError> {
        // A missing .env is normal outside development.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings from a map; tests use this to avoid touching the process environment.
    pub fn from_map(values: &HashMap<String, String>) -> Result<Self, SettingsError> {
        Self::from_lookup(|name| values.get(name).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Reader { lookup: &lookup };
        let environment = env.or("APP_ENV", Environment::Development)?;
        let http = HttpSettings::read(&env)?;
        if environment == Environment::Production && http.cors_origins == CorsOrigins::Any {
            return Err(SettingsError::Malformed {
                name: "CORS_ORIGIN",
                reason: "must list the allowed origins in production, not *".into(),
            });
        }
        let settings = Self {
            environment,
            http,
            auth: AuthSettings::read(&env)?,
            otp: OtpSettings::read(&env)?,
            database: DatabaseSettings::read(&env)?,
            redis: RedisSettings::read(&env)?,
            rabbitmq: RabbitMqSettings::read(&env)?,
            razorpay: RazorpaySettings::read(&env)?,
            google: GoogleSettings::read(&env)?,
            twilio: TwilioSettings::read(&env)?,
            sendgrid: SendGridSettings::read(&env)?,
            email_verification: EmailVerificationSettings::read(&env)?,
            bookings: BookingSettings::read(&env)?,
            jobs: JobSettings::read(&env)?,
            cache: CacheSettings::read(&env)?,
            rate_limits: RateLimitSettings::read(&env)?,
        };
        if environment == Environment::Production {
            let problems = production::production_problems(&lookup, &settings.http);
            if !problems.is_empty() {
                return Err(SettingsError::UnsafeForProduction(problems));
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{production::SECRETS, *};

    /// The settings `.env.example` ships, so a test changes only what it is about.
    pub(crate) fn example() -> HashMap<String, String> {
        let text = include_str!("../../../.env.example");
        dotenvy::from_read_iter(text.as_bytes())
            .map(|item| item.expect("a valid .env.example line"))
            .collect()
    }

    #[test]
    fn the_example_file_is_complete_and_valid() {
        let settings = Settings::from_map(&example()).expect("valid settings");
        assert_eq!(settings.http.port, 8080);
        assert_eq!(settings.bookings.hold_duration, Duration::from_secs(600));
    }

    /// Settings a production deployment could start with.
    fn production() -> HashMap<String, String> {
        let mut values = example();
        values.insert("APP_ENV".into(), "production".into());
        values.insert("CORS_ORIGIN".into(), "https://tickets.example.com".into());
        for name in SECRETS {
            values.insert(name.into(), format!("{name}-only-this-deployment-knows-it"));
        }
        for (name, url) in [
            ("RAZORPAY_BASE_URL", "https://api.razorpay.com"),
            ("TWILIO_BASE_URL", "https://api.twilio.com"),
            ("SENDGRID_BASE_URL", "https://api.sendgrid.com"),
            (
                "GOOGLE_JWKS_URL",
                "https://www.googleapis.com/oauth2/v3/certs",
            ),
        ] {
            values.insert(name.into(), url.into());
        }
        values
    }

    #[test]
    fn production_refuses_example_secrets_stand_in_urls_and_open_operations() {
        assert!(Settings::from_map(&production()).is_ok());
        let mut values = production();
        let example = example();
        for name in ["JWT_SECRET", "RAZORPAY_WEBHOOK_SECRET", "SENDGRID_API_KEY"] {
            values.insert(name.into(), example[name].clone());
        }
        values.insert("TWILIO_BASE_URL".into(), example["TWILIO_BASE_URL"].clone());
        values.insert(
            "GOOGLE_JWKS_URL".into(),
            "http://10.1.2.3:9090/google/oauth2/v3/certs".into(),
        );
        values.remove("OPS_TOKEN");
        let error = Settings::from_map(&values).unwrap_err();
        let SettingsError::UnsafeForProduction(problems) = &error else {
            panic!("{error}");
        };
        let named: Vec<&str> = problems
            .iter()
            .map(|line| line.split(':').next().unwrap())
            .collect();
        assert_eq!(
            named,
            [
                "JWT_SECRET",
                "RAZORPAY_WEBHOOK_SECRET",
                "SENDGRID_API_KEY",
                "TWILIO_BASE_URL",
                "GOOGLE_JWKS_URL",
                "OPS_TOKEN"
            ],
            "{error}"
        );
        assert_eq!(error.to_string().lines().count(), 7, "one line per mistake");
        // Development takes the example as it is.
        assert!(Settings::from_map(&example).is_ok());
    }

    #[test]
    fn production_lists_its_browser_origins() {
        let mut values = production();
        values.insert("CORS_ORIGIN".into(), "*".into());
        let error = Settings::from_map(&values).unwrap_err();
        assert!(
            matches!(
                error,
                SettingsError::Malformed {
                    name: "CORS_ORIGIN",
                    ..
                }
            ),
            "{error}"
        );
        values.insert("CORS_ORIGIN".into(), "https://tickets.example.com".into());
        assert!(Settings::from_map(&values).is_ok());
    }

    #[test]
    fn rates_are_a_count_over_a_window() {
        assert_eq!(
            "120/1m".parse::<Rate>().unwrap(),
            Rate {
                count: 120,
                window: Duration::from_secs(60)
            }
        );
        for bad in ["120", "0/1m", "x/1m", "5/never"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_required_setting_is_named() {
        let mut values = example();
        values.remove("DATABASE_URL");
        let error = Settings::from_map(&values).unwrap_err();
        assert_eq!(error, SettingsError::Missing("DATABASE_URL"));
        assert_eq!(
            error.to_string(),
            "missing required setting DATABASE_URL (see .env.example)"
        );
    }

    #[test]
    fn a_blank_setting_counts_as_missing() {
        let mut values = example();
        values.insert("JWT_SECRET".into(), "   ".into());
        assert_eq!(
            Settings::from_map(&values).unwrap_err(),
            SettingsError::Missing("JWT_SECRET")
        );
    }

    #[test]
    fn malformed_settings_are_named_with_the_reason() {
        let cases = [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("DATABASE_POOL_SIZE", "0"),
            ("HOLD_DURATION", "ten minutes"),
            ("DATABASE_URL", "mysql://localhost/db"),
            ("JWT_SECRET", "short"),
            ("CORS_ORIGIN", "http://example.com/path"),
            ("HOLD_SWEEP_SCHEDULE", "every minute"),
            ("APP_ENV", "staging"),
            ("REDIS_KEY_PREFIX", "has spaces"),
            ("DEFAULT_PHONE_REGION", "XX"),
            ("OTP_SECRET", "too-short"),
        ];
        for (name, value) in cases {
            let mut values = example();
            values.insert(name.into(), value.into());
            match Settings::from_map(&values) {
                Err(SettingsError::Malformed { name: named, .. }) => assert_eq!(named, name),
                other => panic!("{name}={value:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings = Settings::from_map(&example()).expect("valid settings");
        let printed = format!("{settings:?}");
        assert!(!printed.contains(settings.auth.jwt_secret.expose()));
        assert!(!printed.contains(settings.razorpay.key_secret.expose()));
    }
}
