//! What a production deployment must not run with: the public example secrets, the local
//! stand-in instead of a real provider, plain HTTP, open operations endpoints.

use std::collections::HashMap;

use url::Url;

use super::http::HttpSettings;

/// Settings whose `.env.example` value is public: a production deployment using it is open to
/// anyone who read the repository.
pub(super) const SECRETS: [&str; 8] = [
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
pub(super) fn production_problems(
    lookup: &impl Fn(&str) -> Option<String>,
    http: &HttpSettings,
) -> Vec<String> {
    let example: HashMap<String, String> =
        dotenvy::from_read_iter(include_str!("../../../.env.example").as_bytes())
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
