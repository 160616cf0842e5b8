//! Cache and rate-limit ports of the forecast API: per-tenant generations, a cache shared
//! by every container (L2), and a request limiter. Adapters: Redis/Valkey
//! (`adapters::redis`, shared by all containers) and in-process (`adapters::memory::cache`,
//! one container). `services::api::cache` tiers them so Redis being down never fails a
//! request.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    domain::{
        forecast::TenantId,
        rate_limit::{Decision, Quota},
    },
    error::Result,
};

/// A tenant's data generation: every committed edit bumps it, and cache keys carry it,
/// so a bump retires every cached page of the tenant at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    /// Increases with every bump (0: never bumped).
    pub number: u64,
    /// Time since the last bump, by the clock of whoever keeps the generation (`None`:
    /// never bumped). A page read right after a bump may not show the edit yet (reads in
    /// another Snowflake session lag ~100 ms), so such pages are served but not cached.
    pub age: Option<Duration>,
}

/// Keeps the per-tenant generations.
#[async_trait]
pub trait Generations: Send + Sync {
    /// The tenant's generation now.
    async fn current(&self, tenant: &TenantId) -> Result<Generation>;

    /// Bumps the tenant's generation after a committed edit.
    async fn bump(&self, tenant: &TenantId) -> Result<()>;
}

/// A byte cache shared by every container (L2). Keys are scoped to a tenant.
#[async_trait]
pub trait SharedCache: Send + Sync {
    /// The value under `key`, if cached and not expired.
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>>;

    /// Caches `value` under `key` for `ttl`.
    async fn put(&self, tenant: &TenantId, key: &str, value: &[u8], ttl: Duration) -> Result<()>;
}

/// Admits or refuses a tenant's requests under its quota.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `tenant` against `quota`.
    async fn acquire(&self, tenant: &TenantId, quota: Quota) -> Result<Decision>;
}
