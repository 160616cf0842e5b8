//! Edit-to-visible latency across two reader instances: an editor and two readers, each
//! with its own Redis connection, L1 and fallbacks (as separate containers have), over one
//! in-memory store. Each round warms both readers' caches, PUTs a new quantity through the
//! editor, then reads on the other reader until the page shows it; the time from the PUT's
//! start to that read's end is the edit-to-visible latency, and the reads it took are
//! counted (1: the next read showed it).
//!
//!     redis-server --port 6390 --save '' &
//!     cargo run --profile profiling --example edit_visibility -p snowcast-shared \
//!         --features redis -- redis://127.0.0.1:6390
//!
//! Prints p50/p99 of the latency and the most reads any round needed.

use std::{collections::HashMap, sync::Arc, time::Duration, time::Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use chrono::NaiveDate;
use http_body_util::BodyExt;
use serde_json::Value;
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
use tower::ServiceExt;

const ROUNDS: usize = 100;
const PAGE: &str = "/v1/forecast?sku_id=SKU-1&from=2027-01-01&to=2027-03-31";

type Failure = Box<dyn std::error::Error>;

/// One container's ports over its own Redis connection.
async fn container(
    url: &str,
) -> Result<(Arc<TieredGenerations>, Arc<Redis>, Arc<RateLimits>), Failure> {
    let redis = Arc::new(Redis::connect(url, false, Duration::from_millis(50))?);
    while redis.current(&TenantId::new("acme")?).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generations = Arc::new(TieredGenerations::new(
        Some(redis.clone() as Arc<dyn Generations>),
        Arc::new(LocalGenerations::default()),
    ));
    let limits = Arc::new(RateLimits::new(
        Quotas::new(Quota::new(1_000_000, 1_000_000)?, None)?,
        Some(redis.clone() as Arc<dyn RateLimiter>),
        Arc::new(LocalRateLimiter::default()),
    ));
    Ok((generations, redis, limits))
}

async fn reader(url: &str, store: &Arc<MemoryForecastStore>) -> Result<Router, Failure> {
    let (generations, redis, limits) = container(url).await?;
    let cache = PageCache::new(
        CacheSettings::default(),
        Some(redis as Arc<dyn SharedCache>),
        generations,
    );
    let state = ReaderState {
        store: store.clone(),
        cache: Some(Arc::new(cache)),
        limits: Some(limits),
    };
    Ok(api::reader(state, AuthConfig::default()))
}

async fn send(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> Result<Value, Failure> {
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let mut request = builder.body(body.map_or_else(Body::empty, Body::from))?;
    request.extensions_mut().insert(Claims {
        claims: HashMap::from([
            ("tenant_id".to_string(), "acme".to_string()),
            ("sub".to_string(), "bench".to_string()),
        ]),
        scopes: Some(vec!["forecast:read".into(), "forecast:write".into()]),
    });
    let response = router.clone().oneshot(request).await?;
    if response.status() != StatusCode::OK {
        return Err(format!("{method} {uri}: {}", response.status()).into());
    }
    Ok(serde_json::from_slice(
        &response.into_body().collect().await?.to_bytes(),
    )?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: edit_visibility REDIS_URL")?;
    let store = Arc::new(MemoryForecastStore::new());
    let acme = TenantId::new("acme")?;
    let first = NaiveDate::from_ymd_opt(2027, 1, 1).ok_or("date")?;
    for d in 0..90 {
        let date = first + chrono::Days::new(d);
        store.put_draft(&acme, &SkuId::new("SKU-1")?, date, Quantity::parse("10")?);
    }
    let (a, b) = (reader(&url, &store).await?, reader(&url, &store).await?);
    let (generations, _, limits) = container(&url).await?;
    let editor = api::editor(
        EditorState {
            edits: Arc::new(InvalidatingEdits::new(store.clone(), generations)),
            prefs: store.clone(),
            limits: Some(limits),
        },
        AuthConfig::default(),
    );
    let mut latencies = Vec::with_capacity(ROUNDS);
    let mut most_reads = 0;
    for round in 0..ROUNDS {
        // Both readers hold the page in L1 and L2, past the settle window.
        tokio::time::sleep(Duration::from_millis(1_050)).await;
        send(&a, "GET", PAGE, None).await?;
        send(&b, "GET", PAGE, None).await?;
        let quantity = 100 + round as i64;
        let (writer_side, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        send(writer_side, "GET", PAGE, None).await?;
        let started = Instant::now();
        let body = format!("{{\"quantity\": {quantity}}}");
        send(&editor, "PUT", "/v1/edits/SKU-1/2027-01-05", Some(body)).await?;
        let mut reads = 0;
        loop {
            reads += 1;
            let page = send(other, "GET", PAGE, None).await?;
            if page["items"][4]["quantity"].as_i64() == Some(quantity) {
                break;
            }
        }
        latencies.push(started.elapsed());
        most_reads = most_reads.max(reads);
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "edit-to-visible across two readers ({ROUNDS} rounds): p50 {:.2} ms, p99 {:.2} ms; \
         reads needed: at most {most_reads}",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}
