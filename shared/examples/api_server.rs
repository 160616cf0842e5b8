//! The forecast API served over HTTP on the in-memory store, for load tests (`bench/api_load.py`
//! drives it with wrk beside the FastAPI peer). The synthetic data is `bench/api_data.py`'s:
//! tenant `bench`, SKUs `SKU-00000`.., days from 2027-01-01, draft of SKU i on day d =
//! ((i*31 + d*7) % 500) + 0.25.
//!
//! There is no token check: like the function behind API Gateway's authorizer, it reads
//! verified claims, here fixed to tenant `bench` with both scopes (a gateway stand-in; never
//! expose it).
//!
//!     cargo build --release --example api_server -p snowcast-shared --features redis
//!     api_server --addr 127.0.0.1:8080 --skus 200 --days 366 --cache l1|l2|both|none \
//!         [--redis-url redis://127.0.0.1:6379]
//!
//! `--cache`: `l1` in process only; `l2` Redis only (L1 off); `both` L1 keyed by Redis
//! generations; `none` every read goes to the store.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{extract::Request, middleware::Next, response::Response};
use chrono::{Days, NaiveDate};
use snowcast::{
    adapters::{
        memory::{
            cache::{LocalGenerations, LocalRateLimiter},
            forecast::MemoryForecastStore,
        },
        redis::Redis,
    },
    domain::{
        forecast::{Quantity, SkuId, TenantId},
        identity::Claims,
        rate_limit::{Quota, Quotas},
    },
    ports::cache::{Generations, RateLimiter, SharedCache},
    services::api::{
        self, EditorState, ReaderState,
        auth::AuthConfig,
        cache::{CacheSettings, InvalidatingEdits, PageCache, TieredGenerations},
        limit::RateLimits,
    },
};

struct Options {
    addr: String,
    skus: usize,
    days: u64,
    cache: String,
    redis_url: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:8080".into(),
        skus: 200,
        days: 366,
        cache: "l1".into(),
        redis_url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => options.addr = value,
            "--skus" => options.skus = value.parse().map_err(|_| "--skus: a number")?,
            "--days" => options.days = value.parse().map_err(|_| "--days: a number")?,
            "--cache" => options.cache = value,
            "--redis-url" => options.redis_url = Some(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn seeded(skus: usize, days: u64) -> Result<MemoryForecastStore, Box<dyn std::error::Error>> {
    let store = MemoryForecastStore::new();
    let tenant = TenantId::new("bench")?;
    let first = NaiveDate::from_ymd_opt(2027, 1, 1).ok_or("date")?;
    for i in 0..skus {
        let sku = SkuId::new(&format!("SKU-{i:05}"))?;
        for d in 0..days {
            let units = (i as u64 * 31 + d * 7) % 500;
            let quantity = Quantity::parse(&format!("{units}.25"))?;
            let date = first.checked_add_days(Days::new(d)).ok_or("date")?;
            store.put_draft(&tenant, &sku, date, quantity);
        }
    }
    Ok(store)
}

/// The gateway stand-in: every request carries tenant `bench`'s verified claims.
async fn bench_claims(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Claims {
        claims: HashMap::from([
            ("tenant_id".to_string(), "bench".to_string()),
            ("sub".to_string(), "bench".to_string()),
        ]),
        scopes: Some(vec!["forecast:read".into(), "forecast:write".into()]),
    });
    next.run(request).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let store = Arc::new(seeded(options.skus, options.days)?);
    let redis = match (&options.redis_url, options.cache.as_str()) {
        (Some(url), "l2" | "both") => Some(Arc::new(Redis::connect(
            url,
            false,
            Duration::from_millis(50),
        )?)),
        (None, "l2" | "both") => return Err("--cache l2/both needs --redis-url".into()),
        (_, "l1" | "none") => None,
        (_, other) => return Err(format!("--cache {other}: l1, l2, both or none").into()),
    };
    if let Some(redis) = &redis {
        // Wait for the background connection, so the first requests measure Redis too.
        while redis.current(&TenantId::new("bench")?).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let generations = Arc::new(TieredGenerations::new(
        redis.clone().map(|redis| redis as Arc<dyn Generations>),
        Arc::new(LocalGenerations::default()),
    ));
    let settings = CacheSettings {
        l1_bytes: if options.cache == "l2" { 0 } else { 64 << 20 },
        ..CacheSettings::default()
    };
    let cache = (options.cache != "none").then(|| {
        Arc::new(PageCache::new(
            settings,
            redis.clone().map(|redis| redis as Arc<dyn SharedCache>),
            generations.clone(),
        ))
    });
    // Limits as deployed (DESIGN.md's default, high enough not to refuse the benchmark's
    // single tenant: the limiter's cost is measured, not its refusals).
    let limits = Arc::new(RateLimits::new(
        Quotas::new(Quota::new(1_000_000, 1_000_000)?, None)?,
        redis.clone().map(|redis| redis as Arc<dyn RateLimiter>),
        Arc::new(LocalRateLimiter::default()),
    ));
    let reader = ReaderState {
        store: store.clone(),
        cache,
        limits: Some(limits.clone()),
    };
    let editor = EditorState {
        edits: Arc::new(InvalidatingEdits::new(store.clone(), generations)),
        prefs: store,
        limits: Some(limits),
    };
    let router = api::router(reader, editor, AuthConfig::default())
        .layer(axum::middleware::from_fn(bench_claims));
    let listener = tokio::net::TcpListener::bind(&options.addr).await?;
    eprintln!(
        "api_server on http://{} (cache {})",
        options.addr, options.cache
    );
    axum::serve(listener, router).await?;
    Ok(())
}
