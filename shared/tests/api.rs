//! The forecast API's handlers: every fixture in `events/forecast-reader` and
//! `events/edit-api` (API Gateway HTTP API payload 2.0, authorizer claims included) through
//! the function's router on a seeded in-memory store, with the status its name ends in;
//! then the promises the fixtures cannot show alone: tenant isolation, read-your-writes,
//! ETags, the spreadsheet round trip, concurrent If-Match writers, keyset paging, and the
//! OpenAPI document matching the router.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
    middleware::from_fn,
};
use chrono::{NaiveDate, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use snowcast::{
    Error,
    adapters::{api_gateway::gateway_context, memory::forecast::MemoryForecastStore},
    domain::{
        forecast::{Cell, EditInput, Quantity, SkuId, TenantId},
        identity::Claims,
    },
    ports::forecast::EditStore,
    services::api::{self, EditorState, ReaderState, auth::AuthConfig, paths},
};
use tower::ServiceExt;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
/// Words of the injected store fault that must never reach a client.
const SECRET_WORDS: [&str; 3] = ["SNOWCAST.APP", "xy12345", "SELECT"];

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

/// The fixtures' world: acme has drafts for two SKUs over ten days, one edit (SKU-1 on
/// Jan 2, version 1) and two days of SKU-1 sales in December; globex has its own SKU-1
/// draft.
fn seeded() -> MemoryForecastStore {
    let store = MemoryForecastStore::new()
        .with_clock(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    for sku in ["SKU-1", "A/B 'x' é"] {
        for d in 1..=10 {
            store.put_draft(
                &tenant("acme"),
                &SkuId::new(sku).unwrap(),
                day(d),
                Quantity::parse("10.5").unwrap(),
            );
        }
    }
    store.put_draft(
        &tenant("globex"),
        &SkuId::new("SKU-1").unwrap(),
        day(1),
        Quantity::parse("99").unwrap(),
    );
    let edit = EditInput {
        cell: Cell {
            sku_id: SkuId::new("SKU-1").unwrap(),
            date: day(2),
        },
        quantity: Quantity::parse("12").unwrap(),
        note: None,
    };
    ready(store.put_edit(&tenant("acme"), "planner-0", &edit, None)).unwrap();
    for (d, units) in [(30, 7), (31, 5)] {
        let date = NaiveDate::from_ymd_opt(2025, 12, d).unwrap();
        store.put_sales(&tenant("acme"), &SkuId::new("SKU-1").unwrap(), date, units);
    }
    store
}

/// The output of a future that never waits (the memory store's).
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the memory store waited"),
    }
}

fn router(store: &MemoryForecastStore) -> Router {
    let store = Arc::new(store.clone());
    api::router(
        ReaderState::uncached(store.clone()),
        EditorState {
            edits: store.clone(),
            prefs: store,
            limits: None,
        },
        AuthConfig::default(),
    )
    .layer(from_fn(gateway_context))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send<B>(router: Router<()>, request: Request<B>) -> Answer
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// A request as the gateway would hand it over after verifying a token of `tenant` with
/// both scopes.
fn request(method: &str, uri: &str, tenant: &str, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let mut request = builder
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    request.extensions_mut().insert(Claims {
        claims: HashMap::from([
            ("tenant_id".to_string(), tenant.to_string()),
            ("sub".to_string(), format!("user-of-{tenant}")),
        ]),
        scopes: Some(vec!["forecast:read".into(), "forecast:write".into()]),
    });
    request
}

fn fault(name: &str) -> Option<Error> {
    let message =
        "SQL compilation error: SELECT * FROM SNOWCAST.APP.MANUAL_EDITS_HT on account xy12345";
    if name.contains("store-busy") {
        Some(Error::Snowflake {
            status: 429,
            code: None,
            sql_state: None,
            message: message.into(),
        })
    } else if name.contains("store-fault") {
        Some(Error::Snowflake {
            status: 422,
            code: Some("002003".into()),
            sql_state: Some("42S02".into()),
            message: message.into(),
        })
    } else {
        None
    }
}

#[tokio::test]
async fn every_fixture_answers_the_status_in_its_name() {
    let mut checked = 0;
    for function in ["forecast-reader", "edit-api"] {
        let mut files: Vec<_> = std::fs::read_dir(format!("{EVENTS}/{function}"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_stem().unwrap().to_string_lossy().to_string();
            let expected: u16 = name
                .split('-')
                .find_map(|part| part.parse().ok().filter(|n| (100..600).contains(n)))
                .unwrap_or_else(|| panic!("{name}: no status in the name"));
            let store = seeded();
            let calls_before = store.calls();
            if let Some(error) = fault(&name) {
                store.fail_next(error);
            }
            let store_arc = Arc::new(store.clone());
            let routes = match function {
                "forecast-reader" => {
                    api::reader(ReaderState::uncached(store_arc), AuthConfig::default())
                }
                _ => api::editor(
                    EditorState {
                        edits: store_arc.clone(),
                        prefs: store_arc,
                        limits: None,
                    },
                    AuthConfig::default(),
                ),
            };
            let event = std::fs::read_to_string(&file).unwrap();
            let request = lambda_http::request::from_str(&event).unwrap();
            let answer = send(routes.layer(from_fn(gateway_context)), request).await;
            assert_eq!(
                answer.status.as_u16(),
                expected,
                "{function}/{name}: {}",
                answer.text()
            );
            if expected >= 400 {
                assert_problem(&answer, expected, &name);
            }
            if matches!(expected, 400 | 401 | 403 | 413 | 415) {
                assert_eq!(
                    store.calls(),
                    calls_before,
                    "{name}: rejected before any store call"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "{checked} fixtures");
}

fn assert_problem(answer: &Answer, status: u16, name: &str) {
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{name}"
    );
    let problem = answer.json();
    for field in ["type", "title", "status", "detail", "instance"] {
        assert!(
            problem.get(field).is_some(),
            "{name}: no {field} in {problem}"
        );
    }
    assert_eq!(problem["status"], status, "{name}");
    assert_eq!(
        problem["instance"], "req-1",
        "{name}: the gateway's request id"
    );
    for word in SECRET_WORDS {
        assert!(
            !answer.text().contains(word),
            "{name} leaks {word}: {}",
            answer.text()
        );
    }
    if status == 503 {
        assert!(answer.headers.contains_key(header::RETRY_AFTER), "{name}");
    }
}

#[tokio::test]
async fn an_edit_is_visible_on_the_very_next_read_and_changes_the_etag() {
    let store = seeded();
    let app = router(&store);
    let uri = "/v1/forecast?from=2026-01-01&to=2026-01-10&sku_id=SKU-1";
    let first = send(app.clone(), request("GET", uri, "acme", None)).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.headers[header::ETAG].to_str().unwrap().to_string();
    let mut again = request("GET", uri, "acme", None);
    again
        .headers_mut()
        .insert(header::IF_NONE_MATCH, etag.parse().unwrap());
    assert_eq!(
        send(app.clone(), again).await.status,
        StatusCode::NOT_MODIFIED
    );

    let put = send(
        app.clone(),
        request(
            "PUT",
            "/v1/edits/SKU-1/2026-01-05",
            "acme",
            Some(json!({"quantity": 7.125, "note": "recount"})),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(put.headers[header::ETAG], "\"1\"");

    let mut after = request("GET", uri, "acme", None);
    after
        .headers_mut()
        .insert(header::IF_NONE_MATCH, etag.parse().unwrap());
    let after = send(app.clone(), after).await;
    assert_eq!(after.status, StatusCode::OK, "the page changed, so no 304");
    let row = after.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["date"] == "2026-01-05")
        .cloned()
        .unwrap();
    assert_eq!(row["quantity"], 7.125);
    assert_eq!(row["draft_quantity"], 10.5);
    assert_eq!(row["manual_quantity"], 7.125);
    assert_eq!(row["version"], 1);

    let hidden = send(
        app,
        request("GET", &format!("{uri}&show_manual=false"), "acme", None),
    )
    .await;
    let row = hidden.json()["items"][4].clone();
    assert_eq!(
        (row["date"].as_str(), row["quantity"].as_f64()),
        (Some("2026-01-05"), Some(10.5))
    );
}

#[tokio::test]
async fn a_tenant_can_neither_read_nor_write_another_by_path_query_body_batch_or_csv() {
    let store = seeded();
    let app = router(&store);
    let acme_before = send(
        app.clone(),
        request(
            "GET",
            "/v1/edits?from=2026-01-01&to=2026-01-10",
            "acme",
            None,
        ),
    )
    .await
    .json();

    // Query: a tenant parameter is not a thing; globex sees only its own rows.
    let page = send(
        app.clone(),
        request(
            "GET",
            "/v1/forecast?from=2026-01-01&to=2026-01-10&tenant_id=acme&sku_id=SKU-1",
            "globex",
            None,
        ),
    )
    .await
    .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["draft_quantity"], 99);
    // Sales too: acme's SKU-1 sold in December, globex's did not.
    let sales = |tenant| {
        request(
            "GET",
            "/v1/sales?sku_id=SKU-1&from=2025-12-01&to=2025-12-31&tenant_id=acme",
            tenant,
            None,
        )
    };
    let theirs = send(app.clone(), sales("globex")).await.json();
    assert_eq!(theirs, json!({"items": []}));
    let ours = send(app.clone(), sales("acme")).await.json();
    assert_eq!(
        ours,
        json!({"items": [{"date": "2025-12-30", "units": 7}, {"date": "2025-12-31", "units": 5}]})
    );

    // Body: a tenant field is rejected, not obeyed.
    let smuggled = send(
        app.clone(),
        request(
            "PUT",
            "/v1/edits/SKU-1/2026-01-02",
            "globex",
            Some(json!({"quantity": 1, "tenant_id": "acme"})),
        ),
    )
    .await;
    assert_eq!(smuggled.status, StatusCode::BAD_REQUEST);

    // Path, batch and CSV writes by globex land in globex.
    let path = send(
        app.clone(),
        request(
            "PUT",
            "/v1/edits/SKU-1/2026-01-02",
            "globex",
            Some(json!({"quantity": 1})),
        ),
    )
    .await;
    assert_eq!(path.status, StatusCode::OK);
    assert_eq!(
        path.json()["version"],
        1,
        "globex's own first edit, not acme's version 2"
    );
    let batch = json!({"edits": [{"sku_id": "SKU-1", "date": "2026-01-03", "quantity": 2}]});
    assert_eq!(
        send(
            app.clone(),
            request("POST", "/v1/edits", "globex", Some(batch))
        )
        .await
        .status,
        StatusCode::OK
    );
    let mut csv = request("POST", "/v1/edits", "globex", None);
    *csv.body_mut() = Body::from("sku_id,date,quantity\nSKU-1,2026-01-04,3\n");
    csv.headers_mut()
        .insert(header::CONTENT_TYPE, "text/csv".parse().unwrap());
    assert_eq!(send(app.clone(), csv).await.status, StatusCode::OK);
    // Revert by globex of a cell only acme edited: 404 for globex, acme keeps its edit.
    let delete = send(
        app.clone(),
        request("DELETE", "/v1/edits/SKU-1/2026-01-02", "globex", None),
    )
    .await;
    assert_eq!(
        delete.status,
        StatusCode::NO_CONTENT,
        "globex reverts its own edit"
    );
    let again = send(
        app.clone(),
        request("DELETE", "/v1/edits/SKU-1/2026-01-02", "globex", None),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let acme_after = send(
        app.clone(),
        request(
            "GET",
            "/v1/edits?from=2026-01-01&to=2026-01-10",
            "acme",
            None,
        ),
    )
    .await
    .json();
    assert_eq!(acme_before, acme_after, "acme's edits are untouched");
    let history = send(
        app,
        request(
            "GET",
            "/v1/edits/history?from=2026-01-01&to=2026-01-10",
            "acme",
            None,
        ),
    )
    .await
    .json();
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["edited_by"] != "user-of-globex"),
        "{history}"
    );
}

#[tokio::test]
async fn hostile_strings_in_every_field_are_stored_and_returned_verbatim() {
    let store = seeded();
    let app = router(&store);
    let hostile = [
        "x'); DROP TABLE MANUAL_EDITS_HT; --",
        "' OR '1'='1",
        "\"; SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.USERS; --",
        "$$; CALL SYSTEM$WAIT(100); $$",
        "é/ü 中文 %2F ../..",
    ];
    for (i, text) in hostile.iter().enumerate() {
        let sku: String =
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let uri = format!("/v1/edits/{sku}/2026-01-0{}", i + 1);
        let put = send(
            app.clone(),
            request(
                "PUT",
                &uri,
                "acme",
                Some(json!({"quantity": 1, "note": text})),
            ),
        )
        .await;
        assert_eq!(put.status, StatusCode::OK, "{text}: {}", put.text());
        assert_eq!(put.json()["sku_id"], *text);
        assert_eq!(put.json()["note"], *text);
        let key_ok = send(
            app.clone(),
            request(
                "PUT",
                &format!("/v1/prefs/k{i}"),
                "acme",
                Some(json!({"value": text})),
            ),
        )
        .await;
        assert_eq!(key_ok.status, StatusCode::OK);
    }
    let edits = send(
        app.clone(),
        request(
            "GET",
            "/v1/edits?from=2026-01-01&to=2026-01-10",
            "acme",
            None,
        ),
    )
    .await
    .json();
    for text in hostile {
        assert!(
            edits["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["sku_id"] == text && e["note"] == text),
            "{text}"
        );
    }
    let prefs = send(app, request("GET", "/v1/prefs", "acme", None))
        .await
        .json();
    assert_eq!(prefs["prefs"]["k0"], hostile[0]);
}

#[tokio::test]
async fn a_page_exported_as_csv_comes_back_as_only_the_changed_cells() {
    let store = seeded();
    let app = router(&store);
    let csv = send(
        app.clone(),
        request(
            "GET",
            "/v1/forecast?from=2026-01-01&to=2026-01-10&format=csv&limit=1000",
            "acme",
            None,
        ),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text();
    assert_eq!(
        text.lines().count(),
        21,
        "header + 2 SKUs x 10 days:\n{text}"
    );

    let post = |body: String| {
        let mut request = request("POST", "/v1/edits", "acme", None);
        *request.body_mut() = Body::from(body);
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().unwrap(),
        );
        send(app.clone(), request)
    };
    let unchanged = post(text.clone()).await;
    assert_eq!(unchanged.status, StatusCode::OK, "{}", unchanged.text());
    assert_eq!(unchanged.json()["applied"], 0);
    assert_eq!(
        unchanged.json()["unchanged"],
        1,
        "the one edited cell, same value"
    );
    assert_eq!(unchanged.json()["skipped"], 19);

    // Change one draft cell, quoting a note with a comma and a newline.
    let changed = text.replacen(
        "SKU-1,2026-01-07,10.5,,10.5,,0",
        "SKU-1,2026-01-07,11,\"re-forecast,\nper call\",10.5,,0",
        1,
    );
    let applied = post(changed).await.json();
    assert_eq!(applied["applied"], 1, "{applied}");
    assert_eq!(
        applied["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["date"] == "2026-01-07")
            .unwrap()["note"],
        "re-forecast,\nper call"
    );
}

#[tokio::test]
async fn two_writers_with_the_same_version_one_wins_and_history_holds_one_change() {
    let store = seeded();
    let app = router(&store);
    let put = |quantity: f64| {
        let mut request = request(
            "PUT",
            "/v1/edits/SKU-1/2026-01-02",
            "acme",
            Some(json!({"quantity": quantity})),
        );
        request
            .headers_mut()
            .insert(header::IF_MATCH, "\"1\"".parse().unwrap());
        tokio::spawn(send(app.clone(), request))
    };
    let (a, b) = (put(20.0), put(30.0));
    let mut statuses = vec![a.await.unwrap().status, b.await.unwrap().status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
    let history = send(
        app,
        request(
            "GET",
            "/v1/edits/history?from=2026-01-02&to=2026-01-02&sku_id=SKU-1",
            "acme",
            None,
        ),
    )
    .await
    .json();
    let items = history["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "the seed edit and exactly one accepted change: {history}"
    );
    assert_eq!(items[1]["old_quantity"], 12);
}

#[tokio::test]
async fn keyset_pages_in_any_order_of_writes_return_every_cell_once() {
    let store = MemoryForecastStore::new();
    let mut skus: Vec<String> = (0..37)
        .map(|i| format!("SKU-{:03}", (i * 17) % 37))
        .collect();
    skus.reverse();
    for sku in &skus {
        for d in [9, 1, 5, 3] {
            store.put_draft(
                &tenant("acme"),
                &SkuId::new(sku).unwrap(),
                day(d),
                Quantity::parse("1").unwrap(),
            );
        }
    }
    let app = router(&store);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/v1/forecast?from=2026-01-01&to=2026-01-31&limit=7&cursor={c}"),
            None => "/v1/forecast?from=2026-01-01&to=2026-01-31&limit=7".to_string(),
        };
        let page = send(app.clone(), request("GET", &uri, "acme", None))
            .await
            .json();
        for row in page["items"].as_array().unwrap() {
            seen.push((
                row["sku_id"].as_str().unwrap().to_string(),
                row["date"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ordered by (sku_id, date), no repeats");
    assert_eq!(seen.len(), 37 * 4);
}

/// Every route of the router is in the document, and every operation of the document is
/// routed: a path probe answers 404 only for what is not routed, 405 for a missing method.
#[tokio::test]
async fn the_openapi_document_and_the_router_agree() {
    let document: Value = serde_json::from_str(api::OPENAPI_JSON).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let documented: std::collections::BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "put", "post", "delete", "patch"].contains(&key.as_str()))
                .map(|method| (path.clone(), method.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect();
    let declared: std::collections::BTreeSet<(String, String)> = paths::ALL
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
        .collect();
    assert_eq!(documented, declared, "document vs the router's route table");

    let app = router(&seeded());
    for (path, _) in paths::ALL {
        let concrete = path
            .replace("{sku_id}", "SKU-1")
            .replace("{date}", "2026-01-02")
            .replace("{key}", "theme");
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            // Authenticated, so a wrong method is told apart from a missing token (without
            // one, the route's 401 comes first).
            let probe = request(method, &concrete, "acme", None);
            let status = send(app.clone(), probe).await.status;
            let routed = declared.contains(&(path.to_string(), method.to_string()));
            match routed {
                true => assert!(
                    ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
                    "{method} {path} is documented but answered {status}"
                ),
                false => assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not documented"
                ),
            }
        }
    }
    let served = send(
        app,
        Request::builder()
            .uri(paths::OPENAPI)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(served.json(), document);
}

/// The tenant claim is configurable (Cognito's `custom:tenant_id`), and scopes come from the
/// `scope` claim when the gateway passes no list.
#[tokio::test]
async fn cognito_claims_name_the_tenant_and_the_scope_claim_grants_scopes() {
    let store = seeded();
    let shared = Arc::new(store.clone());
    let cognito = AuthConfig {
        tenant_claim: "custom:tenant_id".into(),
    };
    let app = api::reader(ReaderState::uncached(shared), cognito);
    let ask = |claims: HashMap<String, String>| {
        let mut request = Request::builder()
            .uri("/v1/forecast?from=2026-01-01&to=2026-01-02&sku_id=SKU-1")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(Claims {
            claims,
            scopes: None,
        });
        send(app.clone(), request)
    };
    let claims = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let ok = ask(claims(&[
        ("custom:tenant_id", "acme"),
        ("sub", "u"),
        ("scope", "openid forecast:read"),
    ]))
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.json()["items"][1]["manual_quantity"], 12, "acme's data");
    let plain = ask(claims(&[
        ("tenant_id", "acme"),
        ("sub", "u"),
        ("scope", "forecast:read"),
    ]))
    .await;
    assert_eq!(
        plain.status,
        StatusCode::UNAUTHORIZED,
        "only the configured claim counts"
    );
    let array = ask(claims(&[
        ("custom:tenant_id", "acme"),
        ("sub", "u"),
        ("scope", "[forecast:write]"),
    ]))
    .await;
    assert_eq!(array.status, StatusCode::FORBIDDEN);
}
