//! forecast-reader: pages of `V_FORECAST` (JSON or CSV, with ETags) behind API Gateway's
//! JWT authorizer, cached in process and in Redis, and the OpenAPI document. Wiring only;
//! the routes are `snowcast::services::api::reader`.

use std::{sync::Arc, time::Duration};

use lambda_http::Error;
use snowcast::{
    adapters::{
        api_gateway::gateway_context,
        memory::cache::{LocalGenerations, LocalRateLimiter},
        redis::Redis,
        snowflake::forecast::SnowflakeForecastStore,
    },
    lambda::telemetry,
    ports::cache::{Generations, RateLimiter, SharedCache},
    services::api::{
        self, ReaderState,
        cache::{PageCache, TieredGenerations},
        config::ApiConfig,
        limit::RateLimits,
    },
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = ApiConfig::from_env()?;
    let redis = match &config.redis {
        Some(redis) => Some(Arc::new(Redis::connect(
            &redis.url,
            redis.cluster,
            redis.timeout,
        )?)),
        None => None,
    };
    let timeout = Duration::from_secs(config.statement_timeout_seconds);
    let store = SnowflakeForecastStore::open_from_secrets_manager(
        &config.secret_id,
        config.base_url,
        "snowcast:forecast-reader",
        timeout,
    )
    .await?;
    let generations = Arc::new(TieredGenerations::new(
        redis.clone().map(|redis| redis as Arc<dyn Generations>),
        Arc::new(LocalGenerations::default()),
    ));
    let limits = RateLimits::new(
        config.quotas,
        redis.clone().map(|redis| redis as Arc<dyn RateLimiter>),
        Arc::new(LocalRateLimiter::default()),
    );
    let cache = PageCache::new(
        config.cache,
        redis.map(|redis| redis as Arc<dyn SharedCache>),
        generations,
    );
    let state = ReaderState {
        store: Arc::new(store),
        cache: Some(Arc::new(cache)),
        limits: Some(Arc::new(limits)),
    };
    let router = api::reader(state, config.auth).layer(axum::middleware::from_fn(gateway_context));
    lambda_http::run(router).await
}
