//! Handler latency of the forecast API on the in-memory store: every request type through
//! the whole router (problem middleware, auth, validation, handler, serialisation), timed
//! one request at a time in process, so what is measured is the code, not a network.
//!
//!     cargo run --profile profiling --example api_latency -p snowcast-shared
//!
//! Prints p50 and p99 per request type (microseconds). The store holds 200 SKUs x 366 days
//! of drafts and a few thousand edits, written in shuffled order.

use std::{collections::HashMap, sync::Arc, time::Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, header},
};
use chrono::NaiveDate;
use http_body_util::BodyExt;
use snowcast::{
    adapters::memory::forecast::MemoryForecastStore,
    domain::{
        forecast::{Quantity, SkuId, TenantId},
        identity::Claims,
    },
    services::api::{self, EditorState, ReaderState, auth::AuthConfig},
};
use tower::ServiceExt;

const SKUS: usize = 200;
const RUNS: usize = 3_000;

fn claims() -> Claims {
    Claims {
        claims: HashMap::from([
            ("tenant_id".to_string(), "acme".to_string()),
            ("sub".to_string(), "bench".to_string()),
        ]),
        scopes: Some(vec!["forecast:read".into(), "forecast:write".into()]),
    }
}

fn request(method: &str, uri: &str, body: Option<(&str, String)>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some((media, _)) = &body {
        builder = builder.header(header::CONTENT_TYPE, *media);
    }
    let mut request = builder
        .body(body.map_or_else(Body::empty, |(_, text)| Body::from(text)))
        .expect("a valid request");
    request.extensions_mut().insert(claims());
    request
}

fn seeded() -> MemoryForecastStore {
    let store = MemoryForecastStore::new();
    let acme = TenantId::new("acme").expect("tenant");
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    // Shuffled SKU order (a multiplicative walk), as drafts arrive per model run.
    for i in 0..SKUS {
        let sku = SkuId::new(&format!("SKU-{:04}", (i * 7919) % SKUS)).expect("sku");
        for day in 0..366 {
            let date = start + chrono::Days::new(day);
            store.put_draft(
                &acme,
                &sku,
                date,
                Quantity::from_units((day as i64 % 97) * 2_500).expect("q"),
            );
        }
    }
    store
}

async fn time(router: &Router, name: &str, make: &dyn Fn(usize) -> Request<Body>) {
    let mut micros = Vec::with_capacity(RUNS);
    for i in 0..RUNS + RUNS / 10 {
        let request = make(i);
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let elapsed = started.elapsed();
        assert!(
            status.is_success(),
            "{name}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        if i >= RUNS / 10 {
            micros.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    println!("| {name} | {:.0} | {:.0} |", at(0.50), at(0.99));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let store = Arc::new(seeded());
    let router = api::router(
        ReaderState::uncached(store.clone()),
        EditorState {
            edits: store.clone(),
            prefs: store,
            limits: None,
        },
        AuthConfig::default(),
    );
    println!("| request | p50 µs | p99 µs |\n|---|---:|---:|");
    time(&router, "GET /v1/forecast, one SKU, 366 days", &|i| {
        request(
            "GET",
            &format!(
                "/v1/forecast?sku_id=SKU-{:04}&from=2026-01-01&to=2026-12-31&limit=1000",
                i % SKUS
            ),
            None,
        )
    })
    .await;
    time(
        &router,
        "GET /v1/forecast, all SKUs, one week, 100 rows",
        &|_| {
            request(
                "GET",
                "/v1/forecast?from=2026-03-01&to=2026-03-07&limit=100",
                None,
            )
        },
    )
    .await;
    time(
        &router,
        "GET /v1/forecast?format=csv, one SKU, 90 days",
        &|i| {
            request(
                "GET",
                &format!(
                    "/v1/forecast?sku_id=SKU-{:04}&from=2026-01-01&to=2026-03-31&format=csv",
                    i % SKUS
                ),
                None,
            )
        },
    )
    .await;
    time(&router, "PUT /v1/edits/{sku}/{date}", &|i| {
        let body = format!("{{\"quantity\": {}.5, \"note\": \"bench\"}}", i % 50);
        request(
            "PUT",
            &format!("/v1/edits/SKU-{:04}/2026-02-{:02}", i % SKUS, 1 + i % 28),
            Some(("application/json", body)),
        )
    })
    .await;
    time(
        &router,
        "GET /v1/edits/history, one SKU, of 3,300 changes",
        &|i| {
            request(
                "GET",
                &format!(
                    "/v1/edits/history?sku_id=SKU-{:04}&from=2026-01-01&to=2026-12-31&limit=50",
                    i % SKUS
                ),
                None,
            )
        },
    )
    .await;
    time(&router, "POST /v1/edits, 100 edits", &|i| {
        let edits: Vec<String> = (0..100)
            .map(|k| {
                format!(
                    "{{\"sku_id\":\"SKU-{:04}\",\"date\":\"2026-04-{:02}\",\"quantity\":{}}}",
                    k,
                    1 + k % 30,
                    i % 7
                )
            })
            .collect();
        let body = format!("{{\"edits\":[{}]}}", edits.join(","));
        request("POST", "/v1/edits", Some(("application/json", body)))
    })
    .await;
}
