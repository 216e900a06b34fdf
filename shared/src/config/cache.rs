//! How long cached answers live, and how much one process keeps.

use std::time::Duration;

use super::{
    SettingsError,
    reader::{Reader, cache_ttl, minutes, positive},
};

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

impl CacheSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let cache = CacheSettings {
            details_ttl: env.or_with("CACHE_TTL_DETAILS", minutes(5), cache_ttl)?.0,
            listing_ttl: env.or_with("CACHE_TTL_LISTINGS", minutes(1), cache_ttl)?.0,
            categories_ttl: env
                .or_with("CACHE_TTL_CATEGORIES", minutes(10), cache_ttl)?
                .0,
            user_ttl: env.or_with("CACHE_TTL_USER", minutes(5), cache_ttl)?.0,
            local_max_bytes: env.or_with("CACHE_LOCAL_MAX_MB", 64_u64, positive)? * 1024 * 1024,
        };
        Ok(cache)
    }
}
