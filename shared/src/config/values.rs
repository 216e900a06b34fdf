//! The kinds of value settings hold, each parsed from its text once: secrets that never print,
//! human durations, browser origins, cron schedules and rates.

use std::{fmt, str::FromStr, time::Duration};

use url::Url;

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
