//! Passwords: the rules for new ones, and argon2id hashing and checking on a bounded pool of
//! threads of their own.

use std::{fmt, sync::Arc};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use tokio::sync::{OnceCell, Semaphore, oneshot};

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
pub enum HashError {
    /// Every hashing thread is busy and the wait queue is full: refuse now rather than queue
    /// without bound (each hash holds its argon2 memory while it runs).
    #[error("every password hashing thread is busy")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// argon2id with the configured cost, on a fixed pool of threads of its own: hashing takes
/// tens of milliseconds of CPU and `memory_kib` of memory, so it must neither stall the async
/// threads nor run in unbounded numbers at once. At most `threads` hashes run and `queue` wait;
/// a request past that gets [`HashError::Busy`] at once. A fixed set of threads also bounds
/// the allocator's per-thread arenas, so the memory a burst took is reused by the next one.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    pool: Arc<rayon::ThreadPool>,
    /// One permit per running or waiting hash.
    admission: Arc<Semaphore>,
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
        .map_err(|e| HashError::Failed(e.to_string()))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.threads)
            .thread_name(|index| format!("password-hash-{index}"))
            // A panic in argon2 must fail one request, not abort the process (rayon's default).
            .panic_handler(|_| tracing::error!("a password hashing task panicked"))
            .build()
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(Self {
            params,
            pool: Arc::new(pool),
            admission: Arc::new(Semaphore::new(settings.threads + settings.queue)),
            decoy: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Runs `work` on the hashing pool, or refuses at once when the pool and its queue are full.
    /// The work finishes even if the caller stops waiting, and holds its place until then.
    async fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let (done, outcome) = oneshot::channel();
        self.pool.spawn(move || {
            let _permit = permit;
            let _ = done.send(work());
        });
        outcome
            .await
            .map_err(|_| HashError::Failed("the hashing task stopped".into()))
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.0.clone();
        self.on_pool(move || {
            Self::argon2(params)
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|hash| hash.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        })
        .await?
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
        let (matches, outdated) = self
            .on_pool(move || {
                let parsed =
                    PasswordHash::new(&stored).map_err(|e| HashError::Failed(e.to_string()))?;
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
            .await??;
        Ok(match (real && matches, outdated) {
            (false, _) => Verification::Invalid,
            (true, false) => Verification::Valid,
            (true, true) => match self.hash(password).await {
                Ok(upgraded) => Verification::ValidRehashed(upgraded),
                // The password was right: the upgrade can wait for a quieter sign-in.
                Err(HashError::Busy) => Verification::Valid,
                Err(error) => return Err(error),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(iterations: u32) -> Argon2Settings {
        Argon2Settings {
            memory_kib: 1024,
            iterations,
            parallelism: 1,
            threads: 2,
            queue: 8,
        }
    }

    fn hasher(iterations: u32) -> PasswordHasher {
        PasswordHasher::new(&settings(iterations)).unwrap()
    }

    #[tokio::test]
    async fn past_the_pool_and_its_queue_hashing_is_refused_at_once() {
        let hasher = PasswordHasher::new(&Argon2Settings {
            threads: 1,
            queue: 1,
            ..settings(1)
        })
        .unwrap();
        // One task runs on the only thread and one waits, both until the test lets them go.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let occupy = |gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .on_pool(move || gate.lock().unwrap().recv().unwrap())
                    .await
            })
        };
        let running = occupy(Arc::clone(&gate));
        let waiting = occupy(Arc::clone(&gate));
        while hasher.admission.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let password = Password::parse("correct horse").unwrap();
        assert!(matches!(hasher.hash(&password).await, Err(HashError::Busy)));
        assert!(matches!(
            hasher.verify(&password, None).await,
            Err(HashError::Busy)
        ));
        release.send(()).unwrap();
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        waiting.await.unwrap().unwrap();
        // The places are free again once the work is done.
        assert!(hasher.hash(&password).await.is_ok());
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
