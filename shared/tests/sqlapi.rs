//! The SQL API v2 client against a recording stand-in on 127.0.0.1. Every request it sends
//! and every response fixture it parses is validated against Snowflake's own OpenAPI spec
//! (`tests/data/snowflake/sqlapi.yaml`) by `check_sqlapi.py`.

#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use std::time::Duration;

use serde_json::{Value, json};
use snowcast::{
    Error,
    adapters::snowflake::{
        retry::RetryPolicy,
        sql::{Binding, SqlClient},
    },
};
use snowflake_support::{
    assert_sqlapi_conforms, check_sqlapi, credentials_json, file_session, secret_file,
};

const HANDLE: &str = "01bd2f4e-0000-4a1c-8000-0000000a1b2c";
struct Harness {
    stand_in: python::Server,
    client: SqlClient,
    _dir: tempfile::TempDir,
    /// Fixtures served, with the schema each must satisfy.
    fixtures: Vec<Value>,
}

impl Harness {
    async fn new() -> Harness {
        let stand_in = python::start("recording_server.py");
        let dir = tempfile::tempdir().unwrap();
        let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
        let client = SqlClient::new(
            reqwest::Client::new(),
            file_session(secret).await,
            Some(stand_in.url.clone()),
            "snowcast-test",
        )
        .with_retry(RetryPolicy {
            base_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        });
        Harness {
            stand_in,
            client,
            _dir: dir,
            fixtures: Vec::new(),
        }
    }

    /// Queues answers: (status, schema, body, match).
    async fn serve(&mut self, answers: &[(u16, &str, Value, &str)]) {
        let script: Vec<Value> = answers
            .iter()
            .map(|(status, _, body, matching)| json!({"status": status, "body": body, "match": matching}))
            .collect();
        for (_, schema, body, _) in answers {
            self.fixtures.push(json!({"schema": schema, "body": body}));
        }
        snowflake_support::post_script(&self.stand_in.url, Value::Array(script)).await;
    }

    /// Validates every request so far and every fixture against the spec.
    async fn requests_and_fixtures_conform(&self) -> Vec<Value> {
        let requests: Vec<Value> = reqwest::get(format!("{}/_requests", self.stand_in.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_sqlapi_conforms(&json!({"requests": requests, "responses": self.fixtures}));
        requests
    }
}

#[test]
fn the_spec_check_rejects_what_the_spec_forbids() {
    let request = json!({"method": "POST", "path": "/api/v2/statements", "query": {"requestId": "not-a-uuid"},
                         "headers": {"user-agent": "x"}, "body": "{\"statement\": 42}"});
    let fixture = json!({"schema": "ResultSet", "body": {"createdOn": "yesterday"}});
    let output = check_sqlapi(&json!({"requests": [request], "responses": [fixture]}));
    assert!(!output.status.success());
    let problems = String::from_utf8_lossy(&output.stderr);
    for expected in ["requestId", "statement", "createdOn"] {
        assert!(
            problems.contains(expected),
            "{expected} not reported: {problems}"
        );
    }
}

fn row_type() -> Value {
    json!([
        {"name": "SKU_ID", "type": "text", "length": 64, "precision": 0, "scale": 0, "nullable": false},
        {"name": "DATE", "type": "date", "length": 0, "precision": 0, "scale": 0, "nullable": false},
        {"name": "QUANTITY", "type": "fixed", "length": 0, "precision": 12, "scale": 2, "nullable": true},
        {"name": "UNITS", "type": "fixed", "length": 0, "precision": 38, "scale": 0, "nullable": true},
        {"name": "UPDATED_AT", "type": "timestamp_ltz", "length": 0, "precision": 0, "scale": 9, "nullable": true},
    ])
}

fn rows(from: usize, count: usize) -> Vec<Value> {
    (from..from + count)
        .map(|i| {
            json!([
                format!("SKU-{i}"),
                "19783",
                format!("{i}.50"),
                i.to_string(),
                "1709251200.000000000"
            ])
        })
        .collect()
}

/// A finished result whose first partition holds `first` rows of `partitions`.
fn result_set(partitions: &[usize]) -> Value {
    json!({
        "code": "090001", "sqlState": "00000", "message": "Statement executed successfully.",
        "statementHandle": HANDLE, "createdOn": 1_763_630_105_000_i64,
        "statementStatusUrl": format!("/api/v2/statements/{HANDLE}"),
        "resultSetMetaData": {
            "numRows": partitions.iter().sum::<usize>(), "format": "jsonv2",
            "partitionInfo": partitions.iter().map(|n| json!({"rowCount": n, "uncompressedSize": 100 * n})).collect::<Vec<_>>(),
            "rowType": row_type(),
        },
        "data": rows(0, partitions[0]),
    })
}

/// What `GET ...?partition=N` returns: the rows only.
fn partition(from: usize, count: usize) -> Value {
    json!({"code": "090001", "statementHandle": HANDLE, "data": rows(from, count)})
}

#[tokio::test]
async fn results_of_many_partitions_are_fetched_and_decoded() {
    let mut harness = Harness::new().await;
    harness
        .serve(&[
            (
                200,
                "ResultSet",
                result_set(&[3, 4, 2]),
                "/api/v2/statements?",
            ),
            (200, "ResultSet", partition(3, 4), "partition=1"),
            (200, "ResultSet", partition(7, 2), "partition=2"),
        ])
        .await;
    let result = harness
        .client
        .execute(
            "SELECT sku_id, date, quantity, units, updated_at FROM manual_edits_ht WHERE tenant_id = ? AND date >= ?",
            &[Binding::text("acme"), Binding::date(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap())],
        )
        .await
        .unwrap();
    assert_eq!(result.rows.len(), 9);
    let skus: Vec<&str> = result
        .rows
        .iter()
        .map(|r| r["SKU_ID"].as_str().unwrap())
        .collect();
    assert_eq!(
        skus,
        (0..9).map(|i| format!("SKU-{i}")).collect::<Vec<_>>(),
        "partitions in order"
    );
    assert_eq!(result.rows[4]["DATE"], "2024-03-01");
    assert_eq!(result.rows[4]["QUANTITY"], "4.50");
    assert_eq!(result.rows[4]["UNITS"], 4);
    assert_eq!(result.rows[4]["UPDATED_AT"], "2024-03-01T00:00:00+00:00");

    let requests = harness.requests_and_fixtures_conform().await;
    let submit = &requests[0];
    let body: Value = serde_json::from_str(submit["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["bindings"]["1"],
        json!({"type": "TEXT", "value": "acme"})
    );
    assert_eq!(
        body["bindings"]["2"],
        json!({"type": "DATE", "value": "2024-03-01"})
    );
    assert!(
        !body["statement"].as_str().unwrap().contains("acme"),
        "values are bound, never spliced"
    );
    assert_eq!(body["parameters"]["query_tag"], "snowcast-test");
    assert_eq!(
        (body["database"].as_str(), body["role"].as_str()),
        (Some("RAW_DB"), Some("LOADER"))
    );
    assert_eq!(
        submit["headers"]["x-snowflake-authorization-token-type"],
        "KEYPAIR_JWT"
    );
    assert!(
        submit["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("snowcast/")
    );
    assert!(
        requests.iter().all(|r| r["query"]["requestId"].is_string()),
        "a request id on every call"
    );
    let mut fetched: Vec<&str> = requests[1..]
        .iter()
        .map(|r| r["query"]["partition"].as_str().unwrap())
        .collect();
    fetched.sort();
    assert_eq!(fetched, ["1", "2"]);
}

/// Finding 8: a status URL that already has a query got `?partition=N` appended to it, so
/// every fetch asked for partition 0 again.
#[tokio::test]
async fn sql_api_partition_url_keeps_the_status_url_query() {
    let mut harness = Harness::new().await;
    let mut first = result_set(&[2, 3, 1]);
    first["statementStatusUrl"] = json!(format!(
        "/api/v2/statements/{HANDLE}?requestId=0b9d7e2a-5f1c-4f3e-9a57-3c2d1e0f4a6b"
    ));
    harness
        .serve(&[
            (200, "ResultSet", first, "/api/v2/statements?"),
            (200, "ResultSet", partition(2, 3), "partition=1"),
            (200, "ResultSet", partition(5, 1), "partition=2"),
        ])
        .await;
    let result = harness.client.execute("SELECT 1", &[]).await.unwrap();
    assert_eq!(result.rows.len(), 6);
    let requests = harness.requests_and_fixtures_conform().await;
    let mut fetched: Vec<&str> = requests[1..]
        .iter()
        .map(|r| {
            r["query"]["partition"]
                .as_str()
                .expect("a partition parameter")
        })
        .collect();
    fetched.sort();
    assert_eq!(fetched, ["1", "2"]);
}

#[tokio::test]
async fn a_202_is_polled_until_the_result_is_ready() {
    let mut harness = Harness::new().await;
    let running = json!({
        "code": "333334", "message": "Asynchronous execution in progress.",
        "statementHandle": HANDLE, "statementStatusUrl": format!("/api/v2/statements/{HANDLE}"),
    });
    harness
        .serve(&[
            (202, "QueryStatus", running.clone(), "/api/v2/statements?"),
            (202, "QueryStatus", running, HANDLE),
            (200, "ResultSet", result_set(&[2]), HANDLE),
        ])
        .await;
    let result = harness.client.execute("SELECT 1", &[]).await.unwrap();
    assert_eq!(result.rows.len(), 2);
    let requests = harness.requests_and_fixtures_conform().await;
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1]["method"], "GET");
    assert_eq!(requests[1]["path"], format!("/api/v2/statements/{HANDLE}"));
}

#[tokio::test]
async fn a_statement_that_never_finishes_is_cancelled_at_the_deadline() {
    let mut harness = Harness::new().await;
    let running = json!({"code": "333334", "message": "Asynchronous execution in progress.",
                         "statementHandle": HANDLE, "statementStatusUrl": format!("/api/v2/statements/{HANDLE}")});
    let answers: Vec<(u16, &str, Value, &str)> = (0..40)
        .map(|_| (202, "QueryStatus", running.clone(), ""))
        .collect();
    harness.serve(&answers).await;
    harness.client.deadline = Duration::from_millis(1500);
    let started = std::time::Instant::now();
    let error = harness
        .client
        .execute("CALL slow()", &[])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Deadline(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let requests = harness.requests_and_fixtures_conform().await;
    let last = requests.last().unwrap();
    assert_eq!(
        (last["method"].as_str(), last["path"].as_str()),
        (
            Some("POST"),
            Some(&*format!("/api/v2/statements/{HANDLE}/cancel"))
        )
    );
}

#[tokio::test]
async fn a_422_is_a_typed_error_with_code_and_sql_state() {
    let mut harness = Harness::new().await;
    let failure = json!({
        "code": "002003", "sqlState": "42S02",
        "message": "SQL compilation error:\nObject 'MANUAL_EDITS_HT' does not exist or not authorized.",
        "statementHandle": HANDLE, "createdOn": 1_763_630_105_000_i64,
    });
    harness
        .serve(&[(422, "QueryFailureStatus", failure, "")])
        .await;
    let error = harness
        .client
        .execute("SELECT * FROM manual_edits_ht", &[])
        .await
        .unwrap_err();
    match &error {
        Error::Snowflake {
            status: 422,
            code,
            sql_state,
            message,
        } => {
            assert_eq!(code.as_deref(), Some("002003"));
            assert_eq!(sql_state.as_deref(), Some("42S02"));
            assert!(message.contains("does not exist"));
        }
        other => panic!("expected a 422, got {other}"),
    }
    assert_eq!(
        harness.requests_and_fixtures_conform().await.len(),
        1,
        "422 is not retried"
    );
}

#[tokio::test]
async fn throttled_submissions_are_resent_with_the_same_request_id_and_retry() {
    let mut harness = Harness::new().await;
    harness
        .serve(&[
            (429, "QueryFailureStatus", json!({"code": "390501", "message": "Too many requests", "sqlState": "", "statementHandle": HANDLE}), ""),
            (200, "ResultSet", result_set(&[1]), ""),
        ])
        .await;
    let result = harness
        .client
        .execute(
            "UPDATE t SET x = ? WHERE id = ?",
            &[Binding::fixed(1), Binding::text("a")],
        )
        .await
        .unwrap();
    assert_eq!(result.rows.len(), 1);
    let requests = harness.requests_and_fixtures_conform().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0]["query"]["requestId"],
        requests[1]["query"]["requestId"]
    );
    assert!(requests[0]["query"].get("retry").is_none());
    assert_eq!(requests[1]["query"]["retry"], "true");
}
