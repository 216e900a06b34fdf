//! Passwords: the rules for new ones, and argon2id hashing and checking off the async threads.

use std::{fmt, sync::Arc};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use tokio::sync::OnceCell;

use crate::{config::Argon2Settings, validation::FieldError};

/// A password as typed: 8 to 128 characters. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let length = raw.chars().count();
        if length < 8 {
            return Err(FieldError::new("password", "must be at least 8 characters"));
        }
        if length > 128 {
            return Err(FieldError::new(
                "password",
                "must be at most 128 characters",
            ));
        }
        if raw.trim().is_empty() {
            return Err(FieldError::new("password", "must not be only spaces"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password offered at sign-in. It is only compared with a stored hash, so it is held to
    /// no creation rule (those may have tightened since it was set), only to a size bound.
    pub fn attempt(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > 1024 {
            return Err(FieldError::new("password", "must be 1 to 1024 bytes"));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    Valid,
    /// Valid, and here is a hash with the current parameters to store instead.
    ValidRehashed(String),
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// argon2id with the configured cost, run on the blocking pool: hashing takes tens of
/// milliseconds of CPU and must not stall the async threads serving other requests.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// Verified against when the account does not exist, so both cases take as long.
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(settings: &Argon2Settings) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError(e.to_string()))?;
        Ok(Self {
            params,
            decoy: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.0.clone();
        tokio::task::spawn_blocking(move || {
            Self::argon2(params)
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|hash| hash.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await
        .map_err(|e| HashError(e.to_string()))?
    }

    /// Checks `password` against `stored`, or against a decoy when there is no stored hash.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let decoy;
        let (stored, real) = match stored {
            Some(stored) => (stored.to_owned(), true),
            None => {
                decoy = self
                    .decoy
                    .get_or_try_init(|| async {
                        self.hash(&Password("decoy-password".into())).await
                    })
                    .await?;
                (decoy.clone(), false)
            }
        };
        let params = self.params.clone();
        let candidate = password.0.clone();
        let (matches, outdated) = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored).map_err(|e| HashError(e.to_string()))?;
            let matches = Self::argon2(params.clone())
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok();
            let outdated = parsed.algorithm != Algorithm::Argon2id.ident()
                || Params::try_from(&parsed).map_or(true, |used| {
                    (used.m_cost(), used.t_cost(), used.p_cost())
                        != (params.m_cost(), params.t_cost(), params.p_cost())
                });
            Ok::<_, HashError>((matches, outdated))
        })
        .await
        .map_err(|e| HashError(e.to_string()))??;
        Ok(match (real && matches, outdated) {
            (false, _) => Verification::Invalid,
            (true, false) => Verification::Valid,
            (true, true) => Verification::ValidRehashed(self.hash(password).await?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(iterations: u32) -> PasswordHasher {
        PasswordHasher::new(&Argon2Settings {
            memory_kib: 1024,
            iterations,
            parallelism: 1,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = hasher(1);
        let password = Password::parse("correct horse").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            hasher.verify(&password, Some(&hash)).await.unwrap(),
            Verification::Valid
        );
        let wrong = Password::parse("battery staple").unwrap();
        assert_eq!(
            hasher.verify(&wrong, Some(&hash)).await.unwrap(),
            Verification::Invalid
        );
        assert_eq!(
            hasher.verify(&password, None).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn a_hash_with_old_parameters_is_upgraded() {
        let password = Password::parse("correct horse").unwrap();
        let old = hasher(1).hash(&password).await.unwrap();
        match hasher(2).verify(&password, Some(&old)).await.unwrap() {
            Verification::ValidRehashed(new) => assert!(new.contains("t=2"), "{new}"),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse("         ").is_err());
        assert!(format!("{:?}", Password::parse("secret-password").unwrap()).contains(".."));
    }
}
