//! The API functions' configuration, read once at start-up.

use std::time::Duration;

use super::{
    auth::{AuthConfig, DEFAULT_TENANT_CLAIM},
    cache::CacheSettings,
};
use crate::{
    domain::rate_limit::{Quota, Quotas},
    error::Result,
    lambda::env,
};

/// How an API function finds Snowflake and Redis, reads the caller's claims, caches and
/// limits.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `SNOWCAST_SNOWFLAKE_SECRET`: ARN or name of the Secrets Manager secret.
    pub secret_id: String,
    /// `SNOWCAST_SNOWFLAKE_BASE_URL`: overrides the account URL (private link, tests).
    pub base_url: Option<String>,
    /// `SNOWCAST_TENANT_CLAIM`: the claim holding the tenant (default `tenant_id`;
    /// Cognito: `custom:tenant_id`).
    pub auth: AuthConfig,
    /// `SNOWCAST_STATEMENT_TIMEOUT_SECONDS`: longest wait for one statement (default 10;
    /// keep it under the function's timeout).
    pub statement_timeout_seconds: u64,
    /// Redis, when `REDIS_URL` is set.
    pub redis: Option<RedisConfig>,
    /// Page lifetimes and L1 size (see [`CacheSettings`] for the variables).
    pub cache: CacheSettings,
    /// `SNOWCAST_RATE_LIMIT_PER_SECOND` (50), `SNOWCAST_RATE_LIMIT_BURST` (100) and
    /// `SNOWCAST_RATE_LIMIT_OVERRIDES` (`{"<tenant>": {"per_second": N, "burst": N}}`).
    pub quotas: Quotas,
}

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `REDIS_URL`: `redis://` or `rediss://` (TLS).
    pub url: String,
    /// `SNOWCAST_REDIS_CLUSTER`: cluster mode (ElastiCache Serverless: true).
    pub cluster: bool,
    /// `SNOWCAST_REDIS_TIMEOUT_MS`: deadline of one Redis call (default 50).
    pub timeout: Duration,
}

/// How the API reads claims, caches and limits, wherever it runs (the functions and the
/// local stack): the variables of [`ApiConfig`] that do not name a Snowflake or Redis.
#[derive(Debug, Clone)]
pub struct ServingConfig {
    /// See [`ApiConfig::auth`].
    pub auth: AuthConfig,
    /// See [`ApiConfig::cache`].
    pub cache: CacheSettings,
    /// See [`ApiConfig::quotas`].
    pub quotas: Quotas,
}

impl ServingConfig {
    /// Reads `SNOWCAST_TENANT_CLAIM`, the cache and the rate-limit variables.
    pub fn from_env() -> Result<Self> {
        let defaults = CacheSettings::default();
        let seconds = |name: &'static str, default: Duration| -> Result<Duration> {
            Ok(env::number(name)?.map_or(default, Duration::from_secs))
        };
        let quota = Quota::new(
            env::number("SNOWCAST_RATE_LIMIT_PER_SECOND")?.unwrap_or(Quota::DEFAULT.per_second),
            env::number("SNOWCAST_RATE_LIMIT_BURST")?.unwrap_or(Quota::DEFAULT.burst),
        )?;
        Ok(ServingConfig {
            auth: AuthConfig {
                tenant_claim: env::var("SNOWCAST_TENANT_CLAIM")
                    .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_string()),
            },
            cache: CacheSettings {
                ttl: seconds("SNOWCAST_CACHE_TTL_SECONDS", defaults.ttl)?,
                local_ttl: seconds("SNOWCAST_CACHE_LOCAL_TTL_SECONDS", defaults.local_ttl)?,
                settle: env::number("SNOWCAST_CACHE_SETTLE_MS")?
                    .map_or(defaults.settle, Duration::from_millis),
                l1_bytes: env::number::<u64>("SNOWCAST_CACHE_L1_MB")?
                    .map_or(defaults.l1_bytes, |mb| mb << 20),
            },
            quotas: Quotas::new(quota, env::var("SNOWCAST_RATE_LIMIT_OVERRIDES").as_deref())?,
        })
    }
}

impl ApiConfig {
    /// Reads the variables above.
    pub fn from_env() -> Result<Self> {
        let serving = ServingConfig::from_env()?;
        Ok(ApiConfig {
            secret_id: env::required("SNOWCAST_SNOWFLAKE_SECRET")?,
            base_url: env::var("SNOWCAST_SNOWFLAKE_BASE_URL"),
            auth: serving.auth,
            statement_timeout_seconds: env::number("SNOWCAST_STATEMENT_TIMEOUT_SECONDS")?
                .unwrap_or(10),
            redis: match env::var("REDIS_URL") {
                Some(url) => Some(RedisConfig {
                    url,
                    cluster: env::boolean("SNOWCAST_REDIS_CLUSTER")?.unwrap_or(false),
                    timeout: Duration::from_millis(
                        env::number("SNOWCAST_REDIS_TIMEOUT_MS")?.unwrap_or(50),
                    ),
                }),
                None => None,
            },
            cache: serving.cache,
            quotas: serving.quotas,
        })
    }
}
