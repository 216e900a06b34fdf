//! Settings for every process, read from the environment (and `.env` in development).
//!
//! Everything is parsed once at start-up into typed values, so a missing or malformed variable
//! stops the process before it serves anything, with one line that names the variable.
//! `.env.example` lists every variable with a working local default.

use std::{collections::HashMap, fmt, net::IpAddr, str::FromStr, time::Duration};

use url::Url;

use crate::client_address::{ForwardedHeader, TrustedProxies};

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

/// A secret value: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Whether an `Authorization` header value is `Bearer <this secret>`, compared in constant
    /// time.
    pub fn is_bearer(&self, authorization: Option<&str>) -> bool {
        let presented = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), self.0.as_bytes()).into()
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self(value.to_owned()))
    }
}

/// A duration written the human way: `250ms`, `30s`, `15m`, `10min`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let duration = humantime::parse_duration(value).map_err(|e| e.to_string())?;
        if duration.is_zero() {
            return Err("must be longer than zero".into());
        }
        Ok(Self(duration))
    }
}

/// Allowed browser origins: `*` or a comma-separated list of origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

impl FromStr for CorsOrigins {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.trim() == "*" {
            return Ok(Self::Any);
        }
        let origins = value
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(|origin| {
                let url = Url::parse(origin).map_err(|e| format!("{origin:?}: {e}"))?;
                if url.path() != "/" || url.query().is_some() {
                    return Err(format!("{origin:?} must be an origin, without a path"));
                }
                Ok(origin.trim_end_matches('/').to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err("expected * or a comma-separated list of origins".into());
        }
        Ok(Self::List(origins))
    }
}

/// A six-field cron expression (seconds first), as apalis-cron reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression(pub String);

impl FromStr for CronExpression {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        cron::Schedule::from_str(value).map_err(|e| e.to_string())?;
        Ok(Self(value.to_owned()))
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

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    pub base_url: Url,
    pub cors_origins: CorsOrigins,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Proxies whose forwarding header names the client; none by default.
    pub trusted_proxies: TrustedProxies,
    /// The one header they write it in.
    pub trusted_proxy_header: ForwardedHeader,
    /// When set, `/metrics`, `/docs` and `/api/openapi.json` (and the workers' `/metrics`)
    /// answer only `Authorization: Bearer <token>`. Required in production.
    pub ops_token: Option<Secret>,
}

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

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Statements slower than this are logged at WARN, with their duration.
    pub slow_query_threshold: Duration,
    pub url: Secret,
    pub pool_size: u32,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: Secret,
    pub password: Option<Secret>,
    /// Every key this deployment writes starts with `<prefix>:`, so several deployments
    /// (or test runs) can share one Redis.
    pub key_prefix: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RabbitMqSettings {
    pub url: Secret,
    /// Every queue and exchange name starts with `<prefix>.`.
    pub queue_prefix: String,
    /// Lets short-lived environments (tests, previews) have their queues removed by the broker
    /// once unused for this long. Unset in production.
    pub queue_expires: Option<Duration>,
    /// Partition queues of a partitioned job kind (reservations); a new count makes a new ring
    /// (see `jobs::QueueTopology`).
    pub partitions: u16,
}

#[derive(Debug, Clone)]
pub struct RazorpaySettings {
    pub base_url: Url,
    pub key_id: String,
    pub key_secret: Secret,
    pub webhook_secret: Secret,
    /// Still accepted for webhook signatures for a while after a secret rotation.
    pub previous_webhook_secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub client_id: String,
    pub jwks_url: Url,
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub base_url: Url,
    pub account_sid: String,
    pub auth_token: Secret,
    pub from_number: String,
}

/// SendGrid's Mail Send API, which delivers account email (the local stand-in by default).
#[derive(Debug, Clone)]
pub struct SendGridSettings {
    pub base_url: Url,
    pub api_key: Secret,
    pub from_address: String,
    pub from_name: String,
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

#[derive(Debug, Clone)]
pub struct BookingSettings {
    pub hold_duration: Duration,
    pub hold_sweep_schedule: CronExpression,
    pub max_seats_per_booking: u32,
    /// How long a reservation lock lives if its holder never releases it.
    pub lock_ttl: Duration,
    /// Tries to take a busy lock before reserving without it.
    pub lock_retries: u32,
    pub lock_retry_min: Duration,
    pub lock_retry_max: Duration,
    /// Longest time an availability answer may be served from cache.
    pub availability_cache_ttl: Duration,
    /// How long the Redis copy of a booking's status is kept.
    pub status_ttl: Duration,
    /// A booking still PENDING this long after it was made has its job published again.
    pub republish_pending_after: Duration,
    /// Long-polls and event streams one user, and one API instance, may hold open at once.
    pub live_max_per_user: usize,
    pub live_max_per_instance: usize,
}

/// A rate: at most `count` requests per `window`, written `120/1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (count, window) = value
            .split_once('/')
            .ok_or_else(|| "expected a count and a window, like 120/1m".to_owned())?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{count:?} is not a count"))?;
        if count == 0 {
            return Err("the count must be at least 1".into());
        }
        let window = HumanDuration::from_str(window.trim())?.0;
        Ok(Self { count, window })
    }
}

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

/// How long each kind of cached answer may be served; writes invalidate them at once.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Venue, show, event and showtime pages.
    pub details_ttl: Duration,
    /// Pages of search results.
    pub listing_ttl: Duration,
    pub categories_ttl: Duration,
    /// A user's own data.
    pub user_ttl: Duration,
    /// Most bytes of answers one process keeps in memory.
    pub local_max_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Attempts in one worker before a job is dead-lettered (the first run included).
    pub max_attempts: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub concurrency: JobConcurrency,
    /// Where a worker process serves `/metrics` and `/health` (0: any free port).
    pub http_port: u16,
}

/// Jobs of each kind one worker process runs at once.
#[derive(Debug, Clone, Copy)]
pub struct JobConcurrency {
    pub reserve_seats: u16,
    pub verify_payment: u16,
    pub refund: u16,
    pub send_otp: u16,
    pub send_email_verification: u16,
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
        let http = HttpSettings {
            host: env.or("HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: env.required("PORT")?,
            base_url: env.required("BASE_URL")?,
            cors_origins: env.required("CORS_ORIGIN")?,
            request_timeout: env
                .or("REQUEST_TIMEOUT", HumanDuration(Duration::from_secs(30)))?
                .0,
            body_limit_bytes: env.or("REQUEST_BODY_LIMIT_BYTES", 256 * 1024)?,
            trusted_proxies: env.or("TRUSTED_PROXIES", TrustedProxies::default())?,
            trusted_proxy_header: env.or("TRUSTED_PROXY_HEADER", ForwardedHeader::default())?,
            ops_token: env.optional_with("OPS_TOKEN", long_secret)?,
        };
        if environment == Environment::Production && http.cors_origins == CorsOrigins::Any {
            return Err(SettingsError::Malformed {
                name: "CORS_ORIGIN",
                reason: "must list the allowed origins in production, not *".into(),
            });
        }
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
        let database = DatabaseSettings {
            slow_query_threshold: env
                .or(
                    "DATABASE_SLOW_QUERY_THRESHOLD",
                    HumanDuration(Duration::from_millis(250)),
                )?
                .0,
            url: env.required_with("DATABASE_URL", url_with_scheme(&["postgres", "postgresql"]))?,
            pool_size: env.or_with("DATABASE_POOL_SIZE", 10, positive)?,
            connect_timeout: env
                .or(
                    "DATABASE_CONNECT_TIMEOUT",
                    HumanDuration(Duration::from_secs(5)),
                )?
                .0,
        };
        if env.or("REDIS_CLUSTER_ENABLED", false)? {
            return Err(SettingsError::Malformed {
                name: "REDIS_CLUSTER_ENABLED",
                reason: "cluster mode is not supported; point REDIS_URL at a single node or a \
                         cluster proxy and set this to false"
                    .into(),
            });
        }
        let redis = RedisSettings {
            url: env.required_with("REDIS_URL", url_with_scheme(&["redis", "rediss"]))?,
            password: env.optional("REDIS_PASSWORD")?,
            key_prefix: env.or_with("REDIS_KEY_PREFIX", "bms".to_owned(), name_part)?,
            timeout: env
                .or("REDIS_TIMEOUT", HumanDuration(Duration::from_millis(500)))?
                .0,
        };
        let rabbitmq = RabbitMqSettings {
            url: env.required_with("RABBITMQ_URL", url_with_scheme(&["amqp", "amqps"]))?,
            queue_prefix: env.or_with("RABBITMQ_QUEUE_PREFIX", "bms".to_owned(), name_part)?,
            queue_expires: env
                .optional::<HumanDuration>("RABBITMQ_QUEUE_EXPIRES")?
                .map(|d| d.0),
            partitions: env.or_with("RABBITMQ_PARTITIONS", 8, |n: u16| {
                if (1..=256).contains(&n) {
                    Ok(n)
                } else {
                    Err("must be between 1 and 256".to_owned())
                }
            })?,
        };
        let razorpay = RazorpaySettings {
            base_url: env.required("RAZORPAY_BASE_URL")?,
            key_id: env.required("RAZORPAY_KEY_ID")?,
            key_secret: env.required("RAZORPAY_KEY_SECRET")?,
            webhook_secret: env.required("RAZORPAY_WEBHOOK_SECRET")?,
            previous_webhook_secret: env.optional("RAZORPAY_PREVIOUS_WEBHOOK_SECRET")?,
        };
        let google = GoogleSettings {
            client_id: env.required("GOOGLE_CLIENT_ID")?,
            jwks_url: env.required("GOOGLE_JWKS_URL")?,
        };
        let twilio = TwilioSettings {
            base_url: env.required("TWILIO_BASE_URL")?,
            account_sid: env.required("TWILIO_ACCOUNT_SID")?,
            auth_token: env.required("TWILIO_AUTH_TOKEN")?,
            from_number: env.required("TWILIO_FROM_NUMBER")?,
        };
        let sendgrid = SendGridSettings {
            base_url: env.required("SENDGRID_BASE_URL")?,
            api_key: env.required("SENDGRID_API_KEY")?,
            from_address: env.required_with("EMAIL_FROM_ADDRESS", |address: String| {
                crate::accounts::Email::parse(&address)
                    .map(|_| address)
                    .map_err(|_| "is not an email address".to_owned())
            })?,
            from_name: env.or("EMAIL_FROM_NAME", "BMS".to_owned())?,
        };
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
        let bookings = BookingSettings {
            hold_duration: env
                .or("HOLD_DURATION", HumanDuration(Duration::from_secs(600)))?
                .0,
            hold_sweep_schedule: env.or(
                "HOLD_SWEEP_SCHEDULE",
                CronExpression("*/15 * * * * *".to_owned()),
            )?,
            max_seats_per_booking: env.or_with("MAX_SEATS_PER_BOOKING", 10, positive)?,
            lock_ttl: env
                .or("BOOKING_LOCK_TTL", HumanDuration(Duration::from_secs(5)))?
                .0,
            lock_retries: env.or("BOOKING_LOCK_RETRIES", 40)?,
            lock_retry_min: env
                .or(
                    "BOOKING_LOCK_RETRY_MIN",
                    HumanDuration(Duration::from_millis(2)),
                )?
                .0,
            lock_retry_max: env
                .or(
                    "BOOKING_LOCK_RETRY_MAX",
                    HumanDuration(Duration::from_millis(50)),
                )?
                .0,
            availability_cache_ttl: env
                .or(
                    "AVAILABILITY_CACHE_TTL",
                    HumanDuration(Duration::from_secs(30)),
                )?
                .0,
            status_ttl: env
                .or(
                    "BOOKING_STATUS_TTL",
                    HumanDuration(Duration::from_secs(3600)),
                )?
                .0,
            republish_pending_after: env
                .or(
                    "REPUBLISH_PENDING_AFTER",
                    HumanDuration(Duration::from_secs(30)),
                )?
                .0,
            live_max_per_user: env.or_with("LIVE_MAX_PER_USER", 8, positive)?,
            live_max_per_instance: env.or_with("LIVE_MAX_PER_INSTANCE", 10_000, positive)?,
        };
        let jobs = JobSettings {
            max_attempts: env.or_with("JOB_MAX_ATTEMPTS", 5, positive)?,
            backoff_min: env
                .or("JOB_BACKOFF_MIN", HumanDuration(Duration::from_millis(200)))?
                .0,
            backoff_max: env
                .or("JOB_BACKOFF_MAX", HumanDuration(Duration::from_secs(30)))?
                .0,
            concurrency: JobConcurrency {
                reserve_seats: env.or_with("WORKER_CONCURRENCY_RESERVE_SEATS", 256, positive)?,
                verify_payment: env.or_with("WORKER_CONCURRENCY_VERIFY_PAYMENT", 16, positive)?,
                refund: env.or_with("WORKER_CONCURRENCY_REFUND", 4, positive)?,
                send_otp: env.or_with("WORKER_CONCURRENCY_SEND_OTP", 8, positive)?,
                send_email_verification: env.or_with(
                    "WORKER_CONCURRENCY_SEND_EMAIL_VERIFICATION",
                    8,
                    positive,
                )?,
            },
            http_port: env.or("WORKERS_HTTP_PORT", 9100)?,
        };
        if jobs.backoff_min > jobs.backoff_max {
            return Err(SettingsError::Malformed {
                name: "JOB_BACKOFF_MIN",
                reason: "must not be longer than JOB_BACKOFF_MAX".into(),
            });
        }
        let cache = CacheSettings {
            details_ttl: env.or_with("CACHE_TTL_DETAILS", minutes(5), cache_ttl)?.0,
            listing_ttl: env.or_with("CACHE_TTL_LISTINGS", minutes(1), cache_ttl)?.0,
            categories_ttl: env
                .or_with("CACHE_TTL_CATEGORIES", minutes(10), cache_ttl)?
                .0,
            user_ttl: env.or_with("CACHE_TTL_USER", minutes(5), cache_ttl)?.0,
            local_max_bytes: env.or_with("CACHE_LOCAL_MAX_MB", 64_u64, positive)? * 1024 * 1024,
        };
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
        if environment == Environment::Production {
            let problems = production_problems(&lookup, &http);
            if !problems.is_empty() {
                return Err(SettingsError::UnsafeForProduction(problems));
            }
        }
        Ok(Self {
            environment,
            http,
            auth,
            otp,
            database,
            redis,
            rabbitmq,
            razorpay,
            google,
            twilio,
            sendgrid,
            email_verification,
            bookings,
            jobs,
            cache,
            rate_limits,
        })
    }
}

/// Settings whose `.env.example` value is public: a production deployment using it is open to
/// anyone who read the repository.
const SECRETS: [&str; 8] = [
    "JWT_SECRET",
    "REFRESH_TOKEN_SECRET",
    "OTP_SECRET",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "TWILIO_AUTH_TOKEN",
    "SENDGRID_API_KEY",
    "OPS_TOKEN",
];

/// Where the external services are reached. In production each must be the real service over
/// TLS, never the local stand-in (plain HTTP on this machine, or the `.env.example` address).
const PROVIDER_URLS: [&str; 4] = [
    "RAZORPAY_BASE_URL",
    "TWILIO_BASE_URL",
    "SENDGRID_BASE_URL",
    "GOOGLE_JWKS_URL",
];

/// What a production deployment must not run with, one line per mistake.
fn production_problems(
    lookup: &impl Fn(&str) -> Option<String>,
    http: &HttpSettings,
) -> Vec<String> {
    let example: HashMap<String, String> =
        dotenvy::from_read_iter(include_str!("../../.env.example").as_bytes())
            .filter_map(Result::ok)
            .collect();
    let value = |name: &str| lookup(name).map(|value| value.trim().to_owned());
    let mut problems = Vec::new();
    for name in SECRETS {
        if value(name).is_some_and(|value| example.get(name) == Some(&value)) {
            problems.push(format!(
                "{name}: is the public example value from .env.example"
            ));
        }
    }
    for name in PROVIDER_URLS {
        let Some(raw) = value(name) else { continue };
        let url = Url::parse(&raw).ok();
        let local = url.as_ref().is_none_or(|url| match url.host() {
            Some(url::Host::Domain(domain)) => domain == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
            None => true,
        });
        if example.get(name) == Some(&raw) || local {
            problems.push(format!(
                "{name}: points at the local stand-in ({raw}); use the real service"
            ));
        } else if url.is_some_and(|url| url.scheme() != "https") {
            problems.push(format!("{name}: must use https ({raw})"));
        }
    }
    if http.ops_token.is_none() {
        problems.push(
            "OPS_TOKEN: must be set, so that /metrics and /docs are closed to the public".into(),
        );
    }
    problems
}

struct Reader<'a, F> {
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn raw(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn parse<T: FromStr>(
        &self,
        name: &'static str,
        value: &str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        value
            .parse::<T>()
            .map_err(|e| e.to_string())
            .and_then(check)
            .map_err(|reason| SettingsError::Malformed { name, reason })
    }

    fn required<T: FromStr>(&self, name: &'static str) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.required_with(name, Ok)
    }

    fn required_with<T: FromStr>(
        &self,
        name: &'static str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        let value = self.raw(name).ok_or(SettingsError::Missing(name))?;
        self.parse(name, &value, check)
    }

    fn optional<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.optional_with(name, Ok)
    }

    fn optional_with<T: FromStr>(
        &self,
        name: &'static str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.raw(name)
            .map(|value| self.parse(name, &value, check))
            .transpose()
    }

    fn or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.or_with(name, default, Ok)
    }

    fn or_with<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            Some(value) => self.parse(name, &value, check),
            None => Ok(default),
        }
    }
}

fn minutes(count: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(60 * count))
}

/// Between a second and an hour: the cache's version keys outlive any entry (see `cache`).
fn cache_ttl(value: HumanDuration) -> Result<HumanDuration, String> {
    if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&value.0) {
        Ok(value)
    } else {
        Err("must be between 1s and 1h".into())
    }
}

fn positive<T: PartialOrd + Default>(value: T) -> Result<T, String> {
    if value > T::default() {
        Ok(value)
    } else {
        Err("must be greater than zero".into())
    }
}

fn region(value: String) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    if upper.parse::<phonenumber::country::Id>().is_ok() {
        Ok(upper)
    } else {
        Err("expected a two-letter region code such as IN or US".into())
    }
}

fn long_secret(secret: Secret) -> Result<Secret, String> {
    if secret.expose().len() < 32 {
        return Err("must be at least 32 characters".into());
    }
    Ok(secret)
}

fn name_part(value: String) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(value)
    } else {
        Err("use 1 to 64 letters, digits, '-' or '_'".into())
    }
}

fn url_with_scheme(schemes: &'static [&'static str]) -> impl Fn(Secret) -> Result<Secret, String> {
    move |secret| {
        let url = Url::parse(secret.expose()).map_err(|e| e.to_string())?;
        if schemes.contains(&url.scheme()) {
            Ok(secret)
        } else {
            Err(format!("expected a {} URL", schemes.join(" or ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings `.env.example` ships, so a test changes only what it is about.
    pub(crate) fn example() -> HashMap<String, String> {
        let text = include_str!("../../.env.example");
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
