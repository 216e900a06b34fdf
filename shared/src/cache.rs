//! The read cache: an in-process level (moka) in front of Redis in front of Postgres, holding
//! answers as ready-to-send JSON.
//!
//! Every entry belongs to a *scope*: its own entity (`show:<id>`) or a group of entries that
//! change together (every show listing). A write bumps its scopes' versions in Redis and
//! announces them on a pub/sub channel ([`Cache::invalidate`]):
//!
//! - In Redis an entry lives under `<key>@v<scope version>`, read together with the version in
//!   one round trip. Bumping a version makes every older copy unreachable at once, with no key
//!   scan. It also closes the classic race of delete-on-write caches: a reader that loaded from
//!   Postgres before a write and stores after it stores under the old version, where nobody
//!   looks any more.
//! - The in-process level of every API instance evicts the announced scopes. It is used only
//!   while this process's subscription is up, and it is emptied each time the subscription
//!   (re)starts, since announcements may have been missed meanwhile. So a lost connection can
//!   never leave an instance serving an old answer until its TTL.
//!
//! Redis is a speed-up only: while the subscription is down (Redis unreachable), both levels
//! are skipped and every read goes straight to Postgres, without waiting on Redis each time.

use std::{
    collections::HashSet,
    future::Future,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::StreamExt;
use redis::AsyncCommands;
use serde::Serialize;

use crate::{config::CacheSettings, redis_client::RedisClient};

/// How long a scope's version is remembered after its last bump. Longer than any entry lives,
/// so an entry stored under a forgotten version has always expired before it could be read
/// again under the version counting restarts from.
const VERSION_TTL_SECONDS: u64 = 24 * 3600;

/// What kind of data an entry holds; the kind sets its time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One venue, show, event or showtime page.
    Details,
    /// A page of search results.
    Listing,
    /// The category list.
    Categories,
    /// A user's own data.
    User,
}

/// One cacheable answer: its key, kind, and the scope whose writes make it stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub key: String,
    pub scope: String,
}

/// Where an answer came from: this process, Redis, or Postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Process,
    Redis,
    Database,
}

/// An answer as JSON, ready to send.
#[derive(Debug, Clone)]
pub struct Cached {
    pub json: Json,
    pub source: Source,
}

/// JSON bytes with their tag: a digest of the bytes, computed once when the answer is made or
/// first reaches this process. Equal answers carry equal tags in every process, and a changed
/// answer a new one, so a client holding a tag can be told its copy is still good.
#[derive(Debug, Clone)]
pub struct Json {
    bytes: Bytes,
    tag: Arc<str>,
}

impl Json {
    pub fn new(bytes: Bytes) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&bytes);
        // 128 bits tell answers apart as well as 256 do here, in half the header.
        let tag = hex::encode(&digest[..16]).into();
        Self { bytes, tag }
    }

    pub fn of<T: Serialize>(value: &T) -> Self {
        Self::new(Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The digest, as hex.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

#[derive(Clone)]
struct Local {
    json: Json,
    scope: Arc<str>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Local> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Local, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisClient,
    settings: CacheSettings,
    local: moka::future::Cache<String, Local>,
    /// Typed in-process values kept fresh by the same announcements ([`Cache::typed`]), one
    /// value per scope.
    typed: std::sync::Mutex<Vec<Weak<dyn ScopedValues>>>,
    /// Whether announcements reach this process, and so whether its level may be used.
    listening: AtomicBool,
    /// Bumped by every eviction, so a load that raced one does not stay in this process.
    evictions: AtomicU64,
}

impl Inner {
    fn clear_typed(&self) {
        if let Ok(typed) = self.typed.lock() {
            for values in typed.iter().filter_map(Weak::upgrade) {
                values.clear();
            }
        }
    }
}

/// Why a load produced nothing to cache.
#[derive(Debug)]
enum Miss {
    Absent,
    Failed(sqlx::Error),
}

impl Cache {
    pub fn new(redis: RedisClient, settings: CacheSettings) -> Self {
        let local = moka::future::Cache::builder()
            .weigher(|_: &String, value: &Local| {
                u32::try_from(value.json.bytes().len()).unwrap_or(u32::MAX)
            })
            .max_capacity(settings.local_max_bytes)
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .build();
        Self {
            inner: Arc::new(Inner {
                redis,
                settings,
                local,
                typed: std::sync::Mutex::default(),
                listening: AtomicBool::new(false),
                evictions: AtomicU64::new(0),
            }),
        }
    }

    /// How long an entry of this kind is kept.
    pub fn ttl(&self, kind: Kind) -> Duration {
        let settings = &self.inner.settings;
        match kind {
            Kind::Details => settings.details_ttl,
            Kind::Listing => settings.listing_ttl,
            Kind::Categories => settings.categories_ttl,
            Kind::User => settings.user_ttl,
        }
    }

    /// Starts listening for other processes' invalidations. Until this runs (or while Redis is
    /// unreachable) the in-process level stays unused. The task ends with the last handle.
    pub fn listen(&self) {
        tokio::spawn(listen(
            Arc::downgrade(&self.inner),
            self.inner.redis.clone(),
        ));
    }

    /// The cached answer if a level has one, else `load`'s answer, which is then cached.
    /// `Ok(None)` (nothing found) is not cached.
    pub async fn get_or_load<T, F>(
        &self,
        entry: &Entry,
        load: F,
    ) -> Result<Option<Cached>, sqlx::Error>
    where
        T: Serialize,
        F: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        let inner = &self.inner;
        if !inner.listening.load(Ordering::Acquire) {
            // Redis is unreachable (or this process just started): do not wait on it per read.
            count(Source::Database);
            return Ok(load.await?.map(|value| Cached {
                json: Json::of(&value),
                source: Source::Database,
            }));
        }
        let evictions = inner.evictions.load(Ordering::Acquire);
        let mut source = Source::Process;
        let outcome = inner
            .local
            .try_get_with(entry.key.clone(), async {
                let cached = self.redis_or_load(entry, load).await?;
                source = cached.source;
                Ok::<_, Miss>(Local {
                    json: cached.json,
                    scope: entry.scope.as_str().into(),
                    ttl: self.ttl(entry.kind),
                })
            })
            .await;
        // A load that found nothing or failed still went to Postgres.
        count(if outcome.is_ok() {
            source
        } else {
            Source::Database
        });
        let local = match outcome {
            Ok(local) => local,
            Err(shared) => {
                return match Arc::try_unwrap(shared) {
                    Ok(miss) => absent_is_none(miss),
                    Err(shared) => match shared.as_ref() {
                        Miss::Absent => Ok(None),
                        // Every waiter gets its own error of the same kind: an outage stays
                        // an outage (503), anything else stays a failure.
                        Miss::Failed(error) if crate::db::is_unavailable(error) => {
                            Err(sqlx::Error::Io(std::io::Error::other(error.to_string())))
                        }
                        Miss::Failed(error) => Err(sqlx::Error::Protocol(error.to_string())),
                    },
                };
            }
        };
        if source != Source::Process && inner.evictions.load(Ordering::Acquire) != evictions {
            // An invalidation arrived while this was loading: the answer may predate it.
            inner.local.invalidate(&entry.key).await;
        }
        Ok(Some(Cached {
            json: local.json,
            source,
        }))
    }

    async fn redis_or_load<T, F>(&self, entry: &Entry, load: F) -> Result<Cached, Miss>
    where
        T: Serialize,
        F: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        let redis = &self.inner.redis;
        let version_key = redis.key(&format!("cache-version:{}", entry.scope));
        let data_key = redis.key(&format!("cache:{}", entry.key));
        let read: Option<(String, Option<Vec<u8>>)> = redis
            .bounded(async {
                let mut connection = redis.connection().await?;
                READ_VERSIONED_SCRIPT
                    .key(&version_key)
                    .key(&data_key)
                    .invoke_async(&mut connection)
                    .await
            })
            .await
            .inspect_err(|error| tracing::debug!(%error, "cache read skipped Redis"))
            .ok();
        let version = match read {
            Some((_, Some(json))) => {
                return Ok(Cached {
                    json: Json::new(Bytes::from(json)),
                    source: Source::Redis,
                });
            }
            Some((version, None)) => Some(version),
            None => None,
        };
        let value = load.await.map_err(Miss::Failed)?.ok_or(Miss::Absent)?;
        let json = Json::of(&value);
        if let Some(version) = version {
            let ttl = self.ttl(entry.kind).as_secs().max(1);
            let stored: redis::RedisResult<()> = redis
                .bounded(async {
                    let mut connection = redis.connection().await?;
                    connection
                        .set_ex(format!("{data_key}@v{version}"), json.bytes().as_ref(), ttl)
                        .await
                })
                .await;
            if let Err(error) = stored {
                tracing::debug!(%error, "answer not cached in Redis");
            }
        }
        Ok(Cached {
            json,
            source: Source::Database,
        })
    }

    /// Makes every cached answer in `scopes` stale, here at once and on the other instances as
    /// soon as the announcement reaches them. Call after the write has committed.
    pub async fn invalidate(&self, scopes: &[String]) {
        if scopes.is_empty() {
            return;
        }
        evict(&self.inner, scopes.iter().cloned().collect()).await;
        let redis = &self.inner.redis;
        let mut pipe = redis::pipe();
        for scope in scopes {
            let key = redis.key(&format!("cache-version:{scope}"));
            pipe.incr(&key, 1).ignore();
            pipe.expire(&key, VERSION_TTL_SECONDS as i64).ignore();
        }
        let announcement = serde_json::to_string(scopes).unwrap_or_default();
        pipe.publish(channel(redis), announcement).ignore();
        let outcome: redis::RedisResult<()> = redis
            .bounded(async {
                let mut connection = redis.connection().await?;
                pipe.query_async(&mut connection).await
            })
            .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, ?scopes, "cache not invalidated in Redis; stale answers expire by their TTL");
        }
    }
}

/// Cache reads by the level that answered; the hit ratio is (process + redis) / all.
pub(crate) fn count(source: Source) {
    let level = match source {
        Source::Process => "process",
        Source::Redis => "redis",
        Source::Database => "database",
    };
    metrics::counter!("cache_reads_total", "level" => level).increment(1);
}

/// Answers are plain data: serialising them cannot fail.
fn absent_is_none(miss: Miss) -> Result<Option<Cached>, sqlx::Error> {
    match miss {
        Miss::Absent => Ok(None),
        Miss::Failed(error) => Err(error),
    }
}

/// The scope's version and the entry stored under it, in one round trip. A missing entry comes
/// back as nil (Lua's false), so the reply is always two elements.
const READ_VERSIONED: &str = r"
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('GET', KEYS[2] .. '@v' .. version)}
";

/// Loaded once per process; invoked by its hash (EVALSHA), loaded again if Redis lost it.
static READ_VERSIONED_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(READ_VERSIONED));

fn channel(redis: &RedisClient) -> String {
    redis.key("cache-invalidations")
}

/// A typed in-process cache that announced scopes evict from.
trait ScopedValues: Send + Sync {
    fn evict(&self, scopes: &HashSet<String>);
    fn clear(&self);
}

/// Values of type `V`, one per scope, held in this process only (not as JSON, not in Redis),
/// for what is read on every request and costly to decode: evicted by the same announcements
/// as every cached answer, emptied when the subscription restarts, and trusted while it is up
/// (while it is down, for a second only). Made by [`Cache::typed`].
pub struct TypedCache<V> {
    cache: Cache,
    values: Arc<TypedValues<V>>,
}

struct TypedValues<V> {
    /// Trusted while the announcements arrive, for up to the cache's TTL.
    map: moka::sync::Cache<String, Arc<V>>,
    /// Every value loaded, kept [`UNANNOUNCED_TTL`]: what is served while announcements
    /// cannot arrive (Redis away), so that a dependency outage in an on-sale does not turn
    /// every request into a load.
    brief: moka::sync::Cache<String, Arc<V>>,
    /// One load per scope at a time: the others wait for it and take its value.
    loading: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

/// How stale a value may be served while evictions cannot be announced.
const UNANNOUNCED_TTL: Duration = Duration::from_secs(1);

impl<V: Send + Sync + 'static> TypedValues<V> {
    fn trusted(&self, scope: &str, announced: bool) -> Option<Arc<V>> {
        if announced {
            self.map.get(scope)
        } else {
            self.brief.get(scope)
        }
    }
}

impl<V: Send + Sync + 'static> ScopedValues for TypedValues<V> {
    fn evict(&self, scopes: &HashSet<String>) {
        for scope in scopes {
            self.map.invalidate(scope);
            self.brief.invalidate(scope);
        }
    }

    fn clear(&self) {
        self.map.invalidate_all();
        self.brief.invalidate_all();
    }
}

impl Cache {
    /// A typed in-process cache of at most `capacity` values, each kept at most `ttl`.
    pub fn typed<V: Send + Sync + 'static>(&self, capacity: u64, ttl: Duration) -> TypedCache<V> {
        let values = Arc::new(TypedValues {
            map: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            brief: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(UNANNOUNCED_TTL)
                .build(),
            loading: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        });
        let weak: Weak<dyn ScopedValues> = Arc::downgrade(&values) as Weak<dyn ScopedValues>;
        if let Ok(mut typed) = self.inner.typed.lock() {
            typed.retain(|existing| existing.strong_count() > 0);
            typed.push(weak);
        }
        TypedCache {
            cache: self.clone(),
            values,
        }
    }
}

impl<V: Send + Sync + 'static> TypedCache<V> {
    /// The value of `scope` from this process if it may be trusted, else `load`'s, which is
    /// then kept (unless an announcement raced the load). `Ok(None)` is not kept. Concurrent
    /// callers missing the same scope share one load. While announcements cannot arrive, a
    /// value is trusted for [`UNANNOUNCED_TTL`] only.
    pub async fn get_or_load<F>(&self, scope: &str, load: F) -> Result<Option<Arc<V>>, sqlx::Error>
    where
        F: Future<Output = Result<Option<V>, sqlx::Error>>,
    {
        let inner = &self.cache.inner;
        let usable = inner.listening.load(Ordering::Acquire);
        if let Some(value) = self.values.trusted(scope, usable) {
            count(Source::Process);
            return Ok(Some(value));
        }
        let gate = self
            .values
            .loading
            .get_with(scope.to_owned(), || Arc::new(tokio::sync::Mutex::new(())));
        let _turn = gate.lock().await;
        // Loaded by whoever held the turn before.
        if let Some(value) = self.values.trusted(scope, usable) {
            count(Source::Process);
            return Ok(Some(value));
        }
        let evictions = inner.evictions.load(Ordering::Acquire);
        let Some(value) = load.await? else {
            return Ok(None);
        };
        count(Source::Database);
        let value = Arc::new(value);
        if inner.evictions.load(Ordering::Acquire) == evictions {
            if usable {
                self.values.map.insert(scope.to_owned(), Arc::clone(&value));
            }
            self.values
                .brief
                .insert(scope.to_owned(), Arc::clone(&value));
        }
        Ok(Some(value))
    }
}

async fn evict(inner: &Inner, scopes: HashSet<String>) {
    inner.evictions.fetch_add(1, Ordering::AcqRel);
    if let Ok(typed) = inner.typed.lock() {
        for values in typed.iter().filter_map(Weak::upgrade) {
            values.evict(&scopes);
        }
    }
    let evicted = inner
        .local
        .invalidate_entries_if(move |_, value| scopes.contains(value.scope.as_ref()));
    if let Err(error) = evicted {
        // Only possible without invalidation closures; then nothing here may be trusted.
        tracing::error!(%error, "cannot evict cache entries; emptying this process's cache");
        inner.local.invalidate_all();
    }
}

async fn listen(inner: Weak<Inner>, redis: RedisClient) {
    let channel = channel(&redis);
    loop {
        match redis.pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    let Some(strong) = inner.upgrade() else {
                        return;
                    };
                    // Whatever was announced while nobody listened is unknown: start empty.
                    strong.evictions.fetch_add(1, Ordering::AcqRel);
                    strong.local.invalidate_all();
                    strong.clear_typed();
                    strong.listening.store(true, Ordering::Release);
                    drop(strong);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Some(strong) = inner.upgrade() else {
                            return;
                        };
                        let scopes = message
                            .get_payload::<String>()
                            .ok()
                            .and_then(|payload| serde_json::from_str::<Vec<String>>(&payload).ok());
                        match scopes {
                            Some(scopes) => evict(&strong, scopes.into_iter().collect()).await,
                            None => {
                                strong.evictions.fetch_add(1, Ordering::AcqRel);
                                strong.local.invalidate_all();
                                strong.clear_typed();
                            }
                        }
                    }
                    if let Some(strong) = inner.upgrade() {
                        strong.listening.store(false, Ordering::Release);
                    }
                    tracing::warn!("cache invalidation subscription ended; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "cannot subscribe to cache invalidations"),
            },
            Err(error) => tracing::debug!(%error, "Redis unavailable for cache invalidations"),
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
