//! Google sign-in: checking a Google ID token (RS256) against Google's published keys.
//!
//! The key set is fetched with reqwest from `GOOGLE_JWKS_URL` and kept as long as its
//! `Cache-Control: max-age` says. A token signed with a key we have not seen triggers one
//! early refresh (Google rotates keys), at most every few seconds.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::config::GoogleSettings;

const ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(300);
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Who Google says signed in.
#[derive(Debug, Clone)]
pub struct GoogleIdentity {
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("the Google token is not valid: {0}")]
    InvalidToken(String),
    #[error("the Google account's email is not verified")]
    EmailNotVerified,
    #[error("Google's signing keys could not be fetched")]
    KeysUnavailable(#[source] reqwest::Error),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: serde_json::Value,
    name: Option<String>,
}

struct CachedKeys {
    keys: JwkSet,
    fetched_at: Instant,
    lifetime: Duration,
}

pub struct GoogleVerifier {
    http: reqwest::Client,
    settings: GoogleSettings,
    cache: RwLock<Option<CachedKeys>>,
}

impl GoogleVerifier {
    pub fn new(settings: &GoogleSettings, http: reqwest::Client) -> Self {
        Self {
            http,
            settings: settings.clone(),
            cache: RwLock::new(None),
        }
    }

    /// Checks signature, algorithm, audience, issuer, expiry and `email_verified`.
    pub async fn verify(&self, id_token: &str) -> Result<GoogleIdentity, GoogleError> {
        let invalid = |e: jsonwebtoken::errors::Error| GoogleError::InvalidToken(e.to_string());
        let header = jsonwebtoken::decode_header(id_token).map_err(invalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(GoogleError::InvalidToken(format!(
                "algorithm {:?}",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| GoogleError::InvalidToken("no key id".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_issuer(&ISSUERS);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(id_token, &key, &validation)
            .map_err(invalid)?
            .claims;
        let verified = matches!(&claims.email_verified, serde_json::Value::Bool(true))
            || claims.email_verified.as_str() == Some("true");
        let email = claims
            .email
            .filter(|_| verified)
            .ok_or(GoogleError::EmailNotVerified)?;
        Ok(GoogleIdentity {
            subject: claims.sub,
            email,
            name: claims.name,
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, GoogleError> {
        {
            let cache = self.cache.read().await;
            if let Some(cached) = cache.as_ref() {
                let fresh = cached.fetched_at.elapsed() < cached.lifetime;
                if let Some(jwk) = cached.keys.find(kid).filter(|_| fresh) {
                    return DecodingKey::from_jwk(jwk)
                        .map_err(|e| GoogleError::InvalidToken(e.to_string()));
                }
            }
        }
        let mut cache = self.cache.write().await;
        let recently_fetched = cache
            .as_ref()
            .is_some_and(|cached| cached.fetched_at.elapsed() < MIN_REFRESH_INTERVAL);
        if !recently_fetched {
            *cache = Some(self.fetch().await?);
        }
        let jwk = cache
            .as_ref()
            .and_then(|cached| cached.keys.find(kid))
            .ok_or_else(|| GoogleError::InvalidToken("unknown signing key".into()))?;
        DecodingKey::from_jwk(jwk).map_err(|e| GoogleError::InvalidToken(e.to_string()))
    }

    async fn fetch(&self) -> Result<CachedKeys, GoogleError> {
        let response = self
            .http
            .get(self.settings.jwks_url.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(GoogleError::KeysUnavailable)?;
        let lifetime = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_KEY_LIFETIME);
        let keys = response
            .json::<JwkSet>()
            .await
            .map_err(GoogleError::KeysUnavailable)?;
        Ok(CachedKeys {
            keys,
            fetched_at: Instant::now(),
            lifetime,
        })
    }
}

fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|directive| directive.trim().strip_prefix("max-age="))
        .find_map(|seconds| seconds.parse().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=19845, must-revalidate"),
            Some(Duration::from_secs(19845))
        );
        assert_eq!(max_age("no-cache"), None);
    }
}
