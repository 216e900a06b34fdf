//! Access tokens (JWT, HS256, short-lived) and refresh tokens (opaque, stored only as an HMAC).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::{Role, users::User};
use crate::config::AuthSettings;

const ISSUER: &str = "bms";

/// What an access token says about its bearer: who (ids only) and with which role. No name or
/// email: nothing reads them from the token, and a token is readable by anyone who holds it
/// (logs, browser storage, proxies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The session (device) the token was issued to.
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid access token")]
pub struct InvalidToken(#[from] jsonwebtoken::errors::Error);

/// A freshly made refresh token: the value for the client and the hash for the database.
pub struct NewRefreshToken {
    pub token: String,
    pub hash: Vec<u8>,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
    refresh_reuse_grace: chrono::Duration,
    refresh_key: Vec<u8>,
}

impl TokenKeys {
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl: chrono::Duration::from_std(settings.jwt_expires_in)
                .unwrap_or(chrono::Duration::minutes(15)),
            refresh_ttl: chrono::Duration::from_std(settings.refresh_token_expires_in)
                .unwrap_or(chrono::Duration::days(30)),
            refresh_reuse_grace: chrono::Duration::from_std(settings.refresh_token_reuse_grace)
                .unwrap_or(chrono::Duration::seconds(30)),
            refresh_key: settings.refresh_token_secret.expose().as_bytes().to_vec(),
        }
    }

    pub fn access_ttl(&self) -> chrono::Duration {
        self.access_ttl
    }

    pub fn refresh_ttl(&self) -> chrono::Duration {
        self.refresh_ttl
    }

    /// How long after a rotation the token just replaced still yields its successor.
    pub fn refresh_reuse_grace(&self) -> chrono::Duration {
        self.refresh_reuse_grace
    }

    pub fn issue_access(
        &self,
        user: &User,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, InvalidToken> {
        let claims = AccessClaims {
            sub: user.id,
            sid: session_id,
            role: user.role,
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            iss: ISSUER.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks signature, algorithm, issuer and expiry.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        Ok(jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)?.claims)
    }

    /// The first refresh token of a session: random.
    pub fn new_refresh_token(&self) -> NewRefreshToken {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        self.refresh_token_from(&bytes)
    }

    /// The token that replaces `token` when it is used. It is derived from `token` with the
    /// server's key rather than drawn at random, so that two tabs refreshing with the same
    /// token at once both receive the same successor (only the hash of either is stored).
    /// Nobody without the key can derive it.
    pub fn successor_of(&self, token: &str) -> NewRefreshToken {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.refresh_key).expect("HMAC accepts any key length");
        mac.update(b"bms refresh-token successor\0");
        mac.update(token.as_bytes());
        self.refresh_token_from(&mac.finalize().into_bytes())
    }

    fn refresh_token_from(&self, bytes: &[u8]) -> NewRefreshToken {
        let token =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
        let hash = self.hash_refresh_token(&token);
        NewRefreshToken { token, hash }
    }

    /// The stored form of a refresh token: a keyed hash, so a copy of the table cannot be
    /// replayed.
    pub fn hash_refresh_token(&self, token: &str) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.refresh_key).expect("HMAC accepts any key length");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}
