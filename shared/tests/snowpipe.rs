//! The Snowpipe client and the notifier against a recording stand-in for Snowflake on
//! 127.0.0.1, side by side with the official `snowflake-ingest` Python SDK on the same key,
//! account and files; and under faults (429 storms, 401 after rotation, 503 past budget).

#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use snowcast::{
    Error,
    adapters::{
        aws::secrets::SecretsManagerSecret,
        local::FileSecret,
        snowflake::{
            pipes::{PipeMap, SnowpipeLoader},
            retry::RetryPolicy,
            session::Session,
            snowpipe::{SnowpipeClient, StagedFile},
        },
    },
    domain::manifest::LoadMessage,
    lambda::SqsBatchResponse,
    ports::secrets::{Credentials, SecretSource},
    services::snowpipe_notifier::Notifier,
};
use snowflake_support::{credentials_json, secret_file, verify_token};

const PIPE: &str = "RAW_DB.RAW.SALES_PIPE";

/// A secret source that counts its reads.
struct CountingSecret {
    inner: FileSecret,
    reads: AtomicUsize,
}

#[async_trait]
impl SecretSource for CountingSecret {
    async fn read(&self) -> snowcast::Result<Credentials> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read().await
    }

    fn name(&self) -> String {
        self.inner.name()
    }
}

async fn client(url: &str, secret: Arc<dyn SecretSource>) -> SnowpipeClient {
    SnowpipeClient::new(
        reqwest::Client::new(),
        Arc::new(Session::open(secret).await.unwrap()),
        Some(url.to_string()),
    )
}

async fn recorded(url: &str) -> Vec<Value> {
    let response = reqwest::get(format!("{url}/_requests")).await.unwrap();
    response.json().await.unwrap()
}

fn claims(authorization: &str) -> Value {
    let token = authorization.strip_prefix("Bearer ").unwrap();
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn files(count: usize) -> Vec<StagedFile> {
    (0..count)
        .map(|i| StagedFile {
            path: format!("sales/tenant_id=acme/date=2024-03-01/f-{i}.parquet"),
            size: Some(1000 + i as u64),
        })
        .collect()
}

/// Runs `snowpipe_sdk.py COMMAND ARGS.json` (the official SDK) with `args`.
fn run_sdk(dir: &std::path::Path, command: &str, args: &Value) {
    let args_path = dir.join("args.json");
    std::fs::write(&args_path, args.to_string()).unwrap();
    let sdk = Command::new(python::python())
        .args([
            &python::script("snowpipe_sdk.py"),
            command,
            args_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        sdk.status.success(),
        "{}",
        String::from_utf8_lossy(&sdk.stderr)
    );
}

#[tokio::test]
async fn insert_files_matches_the_official_sdk_for_every_account_form() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    // `.global` accounts are left out: the SDK upper-cases the account before its
    // `== "global"` test, so it never applies the rule (snowcast does; see `jwt_account`).
    for account in ["xy12345", "xy12345.us-east-2.aws", "myorg-myaccount"] {
        let credentials = credentials_json(account, "key.pem", None);
        let files = files(3);
        let args = json!({
            "base_url": stand_in.url, "account": account, "user": "loader_svc", "pipe": PIPE,
            "private_key": credentials["private_key"], "files": files,
        });
        run_sdk(dir.path(), "ingest", &args);

        let secret = Arc::new(FileSecret(secret_file(dir.path(), &credentials)));
        let summary = client(&stand_in.url, secret)
            .await
            .insert_files(PIPE, &files)
            .await
            .unwrap();
        assert_eq!((summary.files, summary.calls, summary.retries), (3, 1, 0));

        let requests = recorded(&stand_in.url).await;
        let [theirs, ours] = &requests[..] else {
            panic!("two requests, got {requests:#?}");
        };
        assert_eq!(ours["method"], theirs["method"], "{account}");
        assert_eq!(ours["path"], format!("/v1/data/pipes/{PIPE}/insertFiles"));
        assert_eq!(ours["path"], theirs["path"], "{account}");
        let query_keys = |r: &Value| {
            r["query"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            query_keys(ours),
            query_keys(theirs),
            "{account}: query shape"
        );
        assert!(uuid::Uuid::parse_str(ours["query"]["requestId"].as_str().unwrap()).is_ok());
        let body = |r: &Value| serde_json::from_str::<Value>(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body(ours), body(theirs), "{account}: body");
        assert_eq!(ours["headers"]["content-type"], "application/json");

        let (ours_claims, theirs_claims) = (
            claims(ours["headers"]["authorization"].as_str().unwrap()),
            claims(theirs["headers"]["authorization"].as_str().unwrap()),
        );
        assert_eq!(ours_claims["iss"], theirs_claims["iss"], "{account}: iss");
        assert_eq!(ours_claims["sub"], theirs_claims["sub"], "{account}: sub");
        let lifetime = |c: &Value| c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
        assert_eq!(lifetime(&ours_claims), lifetime(&theirs_claims));
        assert_eq!(lifetime(&ours_claims), 59 * 60);

        // The signature verifies with the public key (PyJWT, RS256).
        let token = ours["headers"]["authorization"]
            .as_str()
            .unwrap()
            .trim_start_matches("Bearer ");
        verify_token(token);
    }
}

#[tokio::test]
async fn encrypted_keys_give_the_same_identity() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let mut issuers = Vec::new();
    for (key, passphrase) in [("key.pem", None), ("key-encrypted.pem", Some("s3cret"))] {
        let credentials = credentials_json("xy12345.us-east-2.aws", key, passphrase);
        let secret = Arc::new(FileSecret(secret_file(dir.path(), &credentials)));
        client(&stand_in.url, secret)
            .await
            .insert_files(PIPE, &files(1))
            .await
            .unwrap();
        let requests = recorded(&stand_in.url).await;
        issuers
            .push(claims(requests[0]["headers"]["authorization"].as_str().unwrap())["iss"].clone());
    }
    assert_eq!(issuers[0], issuers[1]);
    assert!(
        issuers[0]
            .as_str()
            .unwrap()
            .starts_with("XY12345.LOADER_SVC.SHA256:")
    );

    let wrong = credentials_json("xy12345", "key-encrypted.pem", Some("nope"));
    let secret = Arc::new(FileSecret(secret_file(dir.path(), &wrong)));
    // A bad secret fails the session when it opens (a function's init), not every call.
    let Err(error) = Session::open(secret).await else {
        panic!("a wrong passphrase fails the session");
    };
    assert!(matches!(error, Error::Credentials(_)), "{error}");
    assert!(
        !error.to_string().contains("nope"),
        "the passphrase never appears in errors"
    );
}

#[tokio::test]
async fn credentials_come_from_secrets_manager_and_are_never_printed() {
    let secrets = snowcast::adapters::aws::secrets_client(&moto::sdk_config());
    let name = moto::unique("snowflake");
    let credentials = credentials_json("myorg-myaccount", "key-encrypted.pem", Some("s3cret"));
    secrets
        .create_secret()
        .name(&name)
        .secret_string(credentials.to_string())
        .send()
        .await
        .unwrap();
    let source = Arc::new(SecretsManagerSecret::new(secrets.clone(), &name));
    let identity = Session::open(source).await.unwrap().identity().await;
    assert_eq!(
        identity.signer.claims(std::time::SystemTime::now()).sub,
        "MYORG-MYACCOUNT.LOADER_SVC"
    );
    let shown = format!("{identity:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("s3cret"),
        "{shown}"
    );

    let missing = Arc::new(SecretsManagerSecret::new(secrets, "no-such-secret"));
    let Err(error) = Session::open(missing).await else {
        panic!("a missing secret fails the session");
    };
    assert!(
        matches!(error, Error::Credentials(_)) && error.to_string().contains("no-such-secret"),
        "{error}"
    );
}

#[tokio::test]
async fn throttling_is_retried_with_the_same_request_id() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = Arc::new(FileSecret(secret_file(
        dir.path(),
        &credentials_json("xy12345", "key.pem", None),
    )));
    let busy = json!({"status": 429, "body": {"code": "429", "message": "too many requests"}});
    snowflake_support::post_script(&stand_in.url, json!([busy, busy])).await;
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let summary = client(&stand_in.url, secret)
        .await
        .with_retry(policy)
        .insert_files(PIPE, &files(2))
        .await
        .unwrap();
    assert_eq!((summary.calls, summary.retries), (1, 2));
    let requests = recorded(&stand_in.url).await;
    assert_eq!(requests.len(), 3);
    let ids: Vec<&Value> = requests.iter().map(|r| &r["query"]["requestId"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one request id for all attempts: {ids:?}"
    );
}

#[tokio::test]
async fn a_401_rereads_the_secret_once() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let secret = Arc::new(CountingSecret {
        inner: FileSecret(path),
        reads: AtomicUsize::new(0),
    });
    let expired =
        json!({"status": 401, "body": {"code": "390318", "message": "JWT token is invalid"}});
    snowflake_support::post_script(&stand_in.url, json!([expired])).await;
    let client = client(&stand_in.url, secret.clone()).await;
    client.insert_files(PIPE, &files(1)).await.unwrap();
    assert_eq!(
        secret.reads.load(Ordering::SeqCst),
        2,
        "read at start, re-read after the 401"
    );

    // A second 401 in a row is an error, not a loop.
    snowflake_support::post_script(&stand_in.url, json!([expired, expired])).await;
    let error = client
        .insert_files(PIPE, &files(1))
        .await
        .unwrap_err()
        .error;
    assert!(
        matches!(error, Error::Snowflake { status: 401, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("390318"));
}

#[tokio::test]
async fn an_unavailable_service_is_given_up_within_the_budget() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = Arc::new(FileSecret(secret_file(
        dir.path(),
        &credentials_json("xy12345", "key.pem", None),
    )));
    let down = json!({"status": 503, "body": "Service Unavailable"});
    snowflake_support::post_script(&stand_in.url, Value::Array(vec![down; 50])).await;
    let policy = RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        budget: Duration::from_secs(1),
    };
    let started = std::time::Instant::now();
    let error = client(&stand_in.url, secret)
        .await
        .with_retry(policy)
        .insert_files(PIPE, &files(1))
        .await
        .unwrap_err()
        .error;
    assert!(
        matches!(error, Error::Snowflake { status: 503, .. }),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn more_than_5000_files_go_in_several_requests() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = Arc::new(FileSecret(secret_file(
        dir.path(),
        &credentials_json("xy12345", "key.pem", None),
    )));
    let summary = client(&stand_in.url, secret)
        .await
        .insert_files(PIPE, &files(12_001))
        .await
        .unwrap();
    assert_eq!((summary.files, summary.calls), (12_001, 3));
    let sizes: Vec<usize> = recorded(&stand_in.url)
        .await
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["body"].as_str().unwrap()).unwrap()["files"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [5000, 5000, 2001]);
}

#[tokio::test]
async fn insert_reports_give_each_files_load_status() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = Arc::new(FileSecret(secret_file(
        dir.path(),
        &credentials_json("xy12345", "key.pem", None),
    )));
    let report = json!({
        "pipe": PIPE, "completeResult": true, "nextBeginMark": "1_16",
        "files": [
            {"path": "sales/a.parquet", "stageLocation": "s3://silver/", "fileSize": 100, "timeReceived": "2026-11-20T09:15:03.000Z",
             "lastInsertTime": "2026-11-20T09:15:09.000Z", "rowsInserted": 10, "rowsParsed": 10, "errorsSeen": 0, "errorLimit": 1,
             "complete": true, "status": "LOADED"},
            {"path": "sales/b.parquet", "stageLocation": "s3://silver/", "fileSize": 100, "timeReceived": "2026-11-20T09:15:03.000Z",
             "rowsInserted": 0, "rowsParsed": 4, "errorsSeen": 4, "errorLimit": 1, "firstError": "Numeric value 'x' is not recognized",
             "firstErrorLineNum": 1, "complete": true, "status": "LOAD_FAILED"}
        ]
    });
    snowflake_support::post_script(&stand_in.url, json!([{"status": 200, "body": report}])).await;
    let report = client(&stand_in.url, secret)
        .await
        .insert_report(PIPE, Some("1_15"))
        .await
        .unwrap();
    assert_eq!(report.next_begin_mark.as_deref(), Some("1_16"));
    let statuses: Vec<(&str, &str)> = report
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("sales/a.parquet", "LOADED"),
            ("sales/b.parquet", "LOAD_FAILED")
        ]
    );
    assert_eq!(
        report.files[1].first_error.as_deref(),
        Some("Numeric value 'x' is not recognized")
    );
    let requests = recorded(&stand_in.url).await;
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(
        requests[0]["path"],
        format!("/v1/data/pipes/{PIPE}/insertReport")
    );
    assert_eq!(requests[0]["query"]["beginMark"], "1_15");
}

/// A `loadHistoryScan` answer of `pipe` with one loaded and one failed file per path pair.
fn history(pipe: &str, loaded: &str, failed: &str) -> Value {
    json!({
        "pipe": pipe, "completeResult": true,
        "startTimeInclusive": "2026-11-22T09:30:00.000Z", "endTimeExclusive": "2026-11-22T09:45:00.000Z",
        "rangeStartTime": "2026-11-22T09:31:00.000Z", "rangeEndTime": "2026-11-22T09:44:00.000Z",
        "files": [
            {"path": loaded, "stageLocation": "s3://silver/", "fileSize": 100, "timeReceived": "2026-11-22T09:30:03.000Z",
             "lastInsertTime": "2026-11-22T09:31:00.000Z", "rowsInserted": 10, "rowsParsed": 10, "errorsSeen": 0,
             "errorLimit": 1, "complete": true, "status": "LOADED"},
            {"path": failed, "stageLocation": "s3://silver/", "fileSize": 100, "timeReceived": "2026-11-22T09:30:03.000Z",
             "lastInsertTime": "2026-11-22T09:44:00.000Z", "rowsInserted": 0, "rowsParsed": 4, "errorsSeen": 4, "errorLimit": 1,
             "firstError": "Numeric value 'x' is not recognized", "complete": true, "status": "LOAD_FAILED"}
        ]
    })
}

/// Finding 13: a file Snowpipe accepted but failed to load (a COPY error) went unnoticed.
/// The scheduled audit finds it with `loadHistoryScan`, asked as the official SDK asks.
#[tokio::test]
async fn accounting_failed_loads_are_found_by_the_scheduled_audit() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_json("xy12345", "key.pem", None);
    let args = json!({
        "base_url": stand_in.url, "account": "xy12345", "user": "loader_svc", "pipe": PIPE,
        "private_key": credentials["private_key"],
        "start": "2026-11-22T09:30:00.000Z", "end": "2026-11-22T09:45:00.000Z",
    });
    run_sdk(dir.path(), "history", &args);
    let theirs = recorded(&stand_in.url).await.remove(0);

    let pipes = PipeMap::parse(&format!("sales={PIPE}"), None, None).unwrap();
    let secret = Arc::new(FileSecret(secret_file(dir.path(), &credentials)));
    let notifier = Notifier::new(Arc::new(SnowpipeLoader::new(
        client(&stand_in.url, secret).await,
        pipes,
    )));
    let answer = history(PIPE, "sales/t/a.parquet", "sales/t/b.parquet");
    snowflake_support::post_script(&stand_in.url, json!([{"status": 200, "body": answer}])).await;
    let event = json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
                       "account": "123456789012", "time": "2026-11-22T10:07:31Z", "region": "us-east-1",
                       "resources": ["arn:aws:events:us-east-1:123456789012:rule/audit"], "detail": {}});
    let audit = notifier.handle(event).await.unwrap();
    assert_eq!(audit["loaded"], 1);
    assert_eq!(audit["failed"].as_array().unwrap().len(), 1);
    assert_eq!(audit["failed"][0]["path"], "sales/t/b.parquet");
    assert_eq!(
        audit["failed"][0]["first_error"],
        "Numeric value 'x' is not recognized"
    );

    let ours = recorded(&stand_in.url).await.remove(0);
    assert_eq!(ours["method"], theirs["method"]);
    assert_eq!(
        ours["path"],
        format!("/v1/data/pipes/{PIPE}/loadHistoryScan")
    );
    assert_eq!(ours["path"], theirs["path"]);
    for key in ["startTimeInclusive", "endTimeExclusive"] {
        assert_eq!(ours["query"][key], theirs["query"][key], "{key}");
    }
    assert!(ours["query"]["requestId"].is_string());
}

/// A window whose answer is full (10,000 files) is asked for again in halves.
#[tokio::test]
async fn a_full_history_answer_is_split_until_nothing_is_left_out() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let notifier = notifier(&stand_in.url, dir.path(), RetryPolicy::default()).await;
    let mut full = history("RAW_DB.RAW.SALES_PIPE", "x", "y");
    let one = full["files"][0].clone();
    full["files"] = Value::Array(vec![one; 10_000]);
    let half = history(
        "RAW_DB.RAW.SALES_PIPE",
        "sales/a.parquet",
        "sales/b.parquet",
    );
    snowflake_support::post_script(
        &stand_in.url,
        json!([
            {"status": 200, "body": full, "match": "SALES_PIPE"},
            {"status": 200, "body": half, "match": "SALES_PIPE"},
            {"status": 200, "body": half, "match": "SALES_PIPE"},
        ]),
    )
    .await;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let audit = notifier
        .audit(at("2026-11-22T09:30:00Z"), at("2026-11-22T09:45:00Z"))
        .await
        .unwrap();
    assert_eq!((audit.loaded, audit.failed.len()), (2, 2));
    let sales: Vec<Value> = recorded(&stand_in.url)
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().contains("SALES_PIPE"))
        .collect();
    let windows: Vec<(&str, &str)> = sales
        .iter()
        .map(|r| {
            (
                r["query"]["startTimeInclusive"].as_str().unwrap(),
                r["query"]["endTimeExclusive"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        windows[0],
        ("2026-11-22T09:30:00.000Z", "2026-11-22T09:45:00.000Z")
    );
    let mut halves = windows[1..].to_vec();
    halves.sort();
    assert_eq!(
        halves,
        [
            ("2026-11-22T09:30:00.000Z", "2026-11-22T09:37:30.000Z"),
            ("2026-11-22T09:37:30.000Z", "2026-11-22T09:45:00.000Z")
        ]
    );
}

/// The notifier's sample events (`events/snowpipe-notifier/`), as `sam local invoke` and
/// `cargo lambda invoke` send them: a load message in the current format, one in the
/// format of earlier versions (a whole manifest), and the audit's scheduled event.
#[tokio::test]
async fn sample_events_drive_the_notifier() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let notifier = notifier(&stand_in.url, dir.path(), RetryPolicy::default()).await;
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/snowpipe-notifier");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{events}/{name}")).unwrap()).unwrap()
    };
    for name in ["sqs-load-message.json", "sqs-manifest.json"] {
        let response: SqsBatchResponse =
            serde_json::from_value(notifier.handle(read(name)).await.unwrap()).unwrap();
        assert!(response.batch_item_failures.is_empty(), "{name}");
        let requests = recorded(&stand_in.url).await;
        assert_eq!(requests.len(), 1, "{name}");
        let body: Value = serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["files"].as_array().unwrap().len(), 2, "{name}");
    }
    let audit = notifier.handle(read("scheduled-audit.json")).await.unwrap();
    assert_eq!(audit["from"], "2026-11-22T09:30:00Z");
    assert_eq!(audit["to"], "2026-11-22T09:45:00Z");
    let scans = recorded(&stand_in.url).await;
    assert_eq!(scans.len(), 3, "one scan per pipe");
    assert!(
        scans
            .iter()
            .all(|r| r["path"].as_str().unwrap().ends_with("/loadHistoryScan"))
    );
}

/// A load-queue message: a manifest with `files` of `dataset`.
fn manifest_message(id: &str, dataset: &str, files: &[&str]) -> Value {
    let files: Vec<Value> = files
        .iter()
        .map(|key| json!({"key": key, "uri": format!("s3://silver/{key}"), "partition": null, "rows": 10, "bytes": 100}))
        .collect();
    let manifest = json!({
        "version": 1, "status": "accepted", "reason": null, "tenant_id": "acme",
        "dataset": dataset, "contract": dataset,
        "source": {"key": "s3://bronze/acme/x.csv", "fingerprint": "00", "compression": "none",
                   "encoding": "utf-8", "delimiter": ",", "text_bytes": 1},
        "columns": [], "missing_columns": [], "extra_columns": [],
        "rows_read": 10 * files.len(), "rows_written": 10 * files.len(), "rows_rejected": 0,
        "rows_invalid": 0, "files": files, "rejects": null, "partitions": [],
        "ingested_at": "2026-11-20T09:15:02Z", "spilled_bytes": 0,
        "timings": {"convert_ms": 1, "finalize_ms": 1, "total_ms": 2},
    });
    json!({"messageId": id, "body": manifest.to_string(), "eventSource": "aws:sqs"})
}

#[tokio::test]
async fn a_failed_insert_fails_only_the_messages_whose_files_it_carried() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = Arc::new(FileSecret(secret_file(
        dir.path(),
        &credentials_json("xy12345", "key.pem", None),
    )));
    let pipes = PipeMap::parse(
        "sales=RAW_DB.RAW.SALES_PIPE",
        Some("RAW_DB.RAW".into()),
        None,
    )
    .unwrap();
    let notifier = Notifier::new(Arc::new(SnowpipeLoader::new(
        client(&stand_in.url, secret).await,
        pipes,
    )));
    // Datasets are sent in name order: inventory first (accepted), then sales (refused).
    let refused = json!({"status": 400, "body": {"code": "390404", "message": "Specified pipe does not exist"}});
    snowflake_support::post_script(
        &stand_in.url,
        json!([{"status": 200, "body": {"responseCode": "SUCCESS"}}, refused]),
    )
    .await;
    let event = json!({"Records": [
        manifest_message("m-inv", "inventory", &["inventory/tenant_id=acme/a.parquet"]),
        manifest_message("m-sales-1", "sales", &["sales/tenant_id=acme/d=1/a.parquet"]),
        manifest_message("m-sales-2", "sales", &["sales/tenant_id=acme/d=2/b.parquet", "sales/tenant_id=acme/d=3/c.parquet"]),
        {"messageId": "m-junk", "body": "not a manifest", "eventSource": "aws:sqs"},
    ]});
    let response: SqsBatchResponse =
        serde_json::from_value(notifier.handle(event).await.unwrap()).unwrap();
    let mut failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(failed, ["m-junk", "m-sales-1", "m-sales-2"]);

    let requests = recorded(&stand_in.url).await;
    assert_eq!(
        requests.len(),
        2,
        "one call per dataset for the whole batch"
    );
    assert_eq!(
        requests[0]["path"],
        "/v1/data/pipes/RAW_DB.RAW.INVENTORY_PIPE/insertFiles"
    );
    assert_eq!(
        requests[1]["path"],
        "/v1/data/pipes/RAW_DB.RAW.SALES_PIPE/insertFiles"
    );
    let sales: Value = serde_json::from_str(requests[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sales["files"].as_array().unwrap().len(),
        3,
        "both sales messages in one call"
    );
}

/// A notifier on the stand-in with its pipes in `RAW_DB.RAW`, retrying quickly.
async fn notifier(url: &str, dir: &std::path::Path, policy: RetryPolicy) -> Notifier {
    let secret = Arc::new(FileSecret(secret_file(
        dir,
        &credentials_json("xy12345", "key.pem", None),
    )));
    let pipes = PipeMap::parse("", Some("RAW_DB.RAW".into()), None).unwrap();
    Notifier::new(Arc::new(SnowpipeLoader::new(
        client(url, secret).await.with_retry(policy),
        pipes,
    )))
}

/// Finding 9: only contracted datasets have pipes; a message of another dataset went to
/// `<DATASET>_PIPE`, failed forever and poisoned the queue.
#[tokio::test]
async fn datasets_without_a_pipe_are_acknowledged_and_counted_not_dead_lettered() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let notifier = notifier(&stand_in.url, dir.path(), RetryPolicy::default()).await;
    let event = json!({"Records": [
        manifest_message("m-weather", "weather", &["weather/tenant_id=acme/a.parquet"]),
        manifest_message("m-sales", "sales", &["sales/tenant_id=acme/d=1/a.parquet"]),
    ]});
    let response: SqsBatchResponse =
        serde_json::from_value(notifier.handle(event).await.unwrap()).unwrap();
    assert!(response.batch_item_failures.is_empty());
    let requests = recorded(&stand_in.url).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["path"],
        "/v1/data/pipes/RAW_DB.RAW.SALES_PIPE/insertFiles"
    );
}

/// Finding 13: a load that failed after six attempts reported `retries: 0`.
#[tokio::test]
async fn accounting_a_failed_load_reports_the_retries_it_made() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let down = json!({"status": 503, "body": "Service Unavailable"});
    snowflake_support::post_script(&stand_in.url, Value::Array(vec![down; 6])).await;
    let policy = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(30),
    };
    let notifier = notifier(&stand_in.url, dir.path(), policy).await;
    let message: LoadMessage = serde_json::from_str(
        manifest_message("m1", "sales", &["sales/tenant_id=acme/d=1/a.parquet"])["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let report = notifier.load(vec![("m1".into(), message)]).await;
    assert_eq!(report.failed, ["m1"]);
    assert_eq!((report.calls, report.retries, report.files), (1, 5, 0));
    assert_eq!(recorded(&stand_in.url).await.len(), 6, "six attempts");
}

#[test]
fn the_snowflake_objects_parse_as_snowflake_sql() {
    let infra = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/snowflake");
    let mut files: Vec<String> = std::fs::read_dir(infra)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".sql"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 11);
    let check = |paths: &[String]| {
        Command::new(python::python())
            .arg(python::script("check_sql.py"))
            .args(paths)
            .output()
            .unwrap()
    };
    let output = check(&files);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let statements: usize = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(statements >= 20, "{statements} statements");

    // The check fails on a pipe whose body is not a COPY.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.sql");
    std::fs::write(&broken, "CREATE PIPE RAW.P AS SELECT 1;").unwrap();
    assert!(!check(&[broken.display().to_string()]).status.success());
}
