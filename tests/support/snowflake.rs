//! Snowflake test fixtures: RSA keys made by the SDK's own crypto library, credentials
//! files. Include with `#[path = "../../tests/support/snowflake.rs"] mod snowflake_support;`
//! beside `python.rs`.

#![allow(dead_code)] // each test binary uses its own subset

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::{Value, json};

use crate::python;

/// Keys made once per test binary by the SDK's own crypto library.
pub fn keys() -> &'static Path {
    static KEYS: OnceLock<tempfile::TempDir> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(python::python())
            .args([
                &python::script("snowpipe_sdk.py"),
                "keys",
                dir.path().to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        dir
    })
    .path()
}

pub fn read_key(name: &str) -> String {
    std::fs::read_to_string(keys().join(name)).unwrap()
}

pub fn credentials_json(account: &str, key: &str, passphrase: Option<&str>) -> Value {
    json!({
        "account": account, "user": "loader_svc", "private_key": read_key(key),
        "private_key_passphrase": passphrase, "role": "LOADER", "warehouse": "LOAD_WH",
        "database": "RAW_DB", "schema": "RAW",
    })
}

/// Writes the credentials file the CLI and tests read (the same JSON as the secret).
pub fn secret_file(dir: &Path, credentials: &Value) -> PathBuf {
    let path = dir.join("snowflake.json");
    std::fs::write(&path, credentials.to_string()).unwrap();
    path
}

/// Verifies an RS256 token with the test public key (PyJWT) and returns its claims.
pub fn verify_token(token: &str) -> Value {
    let verified = Command::new(python::python())
        .args([
            &python::script("snowpipe_sdk.py"),
            "verify",
            keys().join("public.pem").to_str().unwrap(),
            token.trim(),
        ])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    serde_json::from_slice(&verified.stdout).unwrap()
}

/// A session on a credentials file (read and its key parsed now).
pub async fn file_session(
    secret: PathBuf,
) -> std::sync::Arc<snowcast::adapters::snowflake::session::Session> {
    let source = std::sync::Arc::new(snowcast::adapters::local::FileSecret(secret));
    std::sync::Arc::new(
        snowcast::adapters::snowflake::session::Session::open(source)
            .await
            .unwrap(),
    )
}

/// Snowflake's own OpenAPI spec of the SQL API v2.
pub const SQLAPI_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/snowflake/sqlapi.yaml"
);

/// Runs `check_sqlapi.py` on `traffic` (`{"requests": [..], "responses": [{"schema",
/// "body"}]}`): whether every request and response conforms to the spec, and its report.
pub fn check_sqlapi(traffic: &Value) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traffic.json");
    std::fs::write(&file, traffic.to_string()).unwrap();
    Command::new(python::python())
        .args([
            &python::script("check_sqlapi.py"),
            SQLAPI_SPEC,
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

/// Fails the test unless every request and response of `traffic` conforms to the spec.
pub fn assert_sqlapi_conforms(traffic: &Value) {
    let output = check_sqlapi(traffic);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Everything the fakesnow adapter at `url` was sent and answered, and the statements sent.
pub async fn fakesnow_traffic(url: &str) -> (Value, Vec<String>) {
    let traffic: Value = reqwest::get(format!("{url}/_traffic"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = traffic["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["body"].as_str().unwrap()).unwrap()["statement"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (traffic, sent)
}

/// A SQL API client for `url` on a fresh credentials file in `dir`, tagged `query_tag`.
pub async fn sql_client(
    url: &str,
    dir: &Path,
    query_tag: &str,
) -> snowcast::adapters::snowflake::sql::SqlClient {
    let secret = secret_file(dir, &credentials_json("xy12345", "key.pem", None));
    snowcast::adapters::snowflake::sql::SqlClient::new(
        reqwest::Client::new(),
        file_session(secret).await,
        Some(url.to_string()),
        query_tag,
    )
}

/// The SQL API's answer to a statement that returns no result set (DDL, a bare CALL).
pub fn no_result_answer(handle: &Value) -> Value {
    json!({"code": "090001", "message": "Statement executed successfully.",
           "statementHandle": handle})
}

/// Queues `answers` on the recording stand-in: its next requests get them, in order, each
/// as a 200.
pub async fn script_answers(stand_in: &str, answers: &[Value]) {
    let script = answers
        .iter()
        .map(|body| json!({"status": 200, "body": body}))
        .collect();
    post_script(stand_in, Value::Array(script)).await;
}

/// Queues a script on the recording stand-in: entries `{"status", "body", "match"?}`.
pub async fn post_script(stand_in: &str, script: Value) {
    let response = reqwest::Client::new()
        .post(format!("{stand_in}/_script"))
        .body(script.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}
