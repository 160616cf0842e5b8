//! The contract test: schemathesis (property-based, driven by the checked-in OpenAPI
//! document) against the whole router served on 127.0.0.1 over the in-memory store. No
//! request may get a 5xx, and every response must match the document: status, media type,
//! headers and body schema.
//!
//! A gateway verified the token in production; here a stand-in turns any bearer token into
//! the claims of tenant `acme` with both scopes, and passes requests without one unchanged
//! (so the router's own 401 is exercised).

#[path = "../../tests/support/python.rs"]
mod python;

use std::{collections::HashMap, process::Command, sync::Arc};

use axum::{extract::Request, http::header, middleware::Next, response::Response};
use snowcast::{
    adapters::memory::forecast::MemoryForecastStore,
    domain::{
        forecast::{Quantity, SkuId, TenantId},
        identity::Claims,
    },
    services::api::{self, EditorState, ReaderState, auth::AuthConfig},
};

async fn stand_in_gateway(mut request: Request, next: Next) -> Response {
    if request.headers().contains_key(header::AUTHORIZATION) {
        request.extensions_mut().insert(Claims {
            claims: HashMap::from([
                ("tenant_id".to_string(), "acme".to_string()),
                ("sub".to_string(), "contract-test".to_string()),
            ]),
            scopes: Some(vec!["forecast:read".into(), "forecast:write".into()]),
        });
    }
    next.run(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    let store = MemoryForecastStore::new();
    let acme = TenantId::new("acme").unwrap();
    for sku in ["SKU-1", "SKU-2"] {
        for day in 1..=28 {
            let date = chrono::NaiveDate::from_ymd_opt(2026, 2, day).unwrap();
            store.put_draft(
                &acme,
                &SkuId::new(sku).unwrap(),
                date,
                Quantity::parse("4.5").unwrap(),
            );
        }
    }
    let store = Arc::new(store);
    let app = api::router(
        ReaderState::uncached(store.clone()),
        EditorState {
            edits: store.clone(),
            prefs: store,
            limits: None,
        },
        AuthConfig::default(),
    )
    .layer(axum::middleware::from_fn(stand_in_gateway));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let schemathesis = std::path::Path::new(&python::python()).with_file_name("schemathesis");
    // schemathesis keeps a cache in its working directory: not the repository.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(cwd)
            .args([
                "run",
                &format!("http://{address}/v1/openapi.json"),
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance,negative_data_rejection",
                "--header",
                "Authorization: Bearer contract-test",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "60",
                // One worker: hypothesis's lambda-source cache races across threads
                // ("AST constructor recursion depth mismatch", a tool error, not ours).
                "--workers",
                "1",
                "--suppress-health-check",
                "all",
                "--seed",
                "20261122",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
