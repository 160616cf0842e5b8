//! `snowcast snowflake jwt` and `snowcast load MANIFEST` against a recording stand-in for
//! Snowflake on 127.0.0.1.

#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use std::process::Command;

use serde_json::Value;
use snowflake_support::{credentials_json, secret_file, verify_token};

fn snowcast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_snowcast"))
        .args(args)
        .env_remove("SNOWCAST_SNOWFLAKE_SECRET")
        .env_remove("SNOWCAST_PIPE_SCOPE")
        .env_remove("SNOWCAST_PIPES")
        .output()
        .unwrap()
}

/// The manifest the notifier's sample event carries.
fn sample_manifest() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/snowpipe-notifier/sqs-manifest.json"
    );
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["Records"][0]["body"].as_str().unwrap().to_string()
}

fn load(
    manifest: &std::path::Path,
    secret: &std::path::Path,
    base_url: &str,
) -> std::process::Output {
    let (manifest, secret) = (manifest.to_str().unwrap(), secret.to_str().unwrap());
    snowcast(&["load", manifest, "--secret", secret, "--base-url", base_url])
}

#[test]
fn jwt_prints_a_token_the_public_key_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(
        dir.path(),
        &credentials_json("xy12345.us-east-2.aws", "key.pem", None),
    );
    let output = snowcast(&["snowflake", "jwt", "--secret", secret.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let claims = verify_token(&token);
    assert_eq!(claims["sub"], "XY12345.LOADER_SVC");
}

#[test]
fn load_hands_a_manifests_files_to_the_datasets_pipe() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, sample_manifest()).unwrap();

    let output = load(&manifest, &secret, &stand_in.url);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (report["files"].as_u64(), report["calls"].as_u64()),
        (Some(2), Some(1))
    );

    let requests: Vec<Value> = stand_in_get(&format!("{}/_requests", stand_in.url));
    assert_eq!(requests.len(), 1);
    // The pipe comes from the credentials' database and schema: RAW_DB.RAW.SALES_PIPE.
    assert_eq!(
        requests[0]["path"],
        "/v1/data/pipes/RAW_DB.RAW.SALES_PIPE/insertFiles"
    );
    let body: Value = serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["files"][0]["path"],
        "sales/tenant_id=acme/date=2024-03-01/sales-5458d24128236dd1-0.parquet"
    );

    // A pipe that does not exist: exit 1, the manifest named as failed.
    let refused = r#"[{"status": 404, "body": {"code": "390404", "message": "Specified pipe does not exist"}}]"#;
    stand_in_post(&format!("{}/_script", stand_in.url), refused);
    let output = load(&manifest, &secret, &stand_in.url);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["failed"][0], manifest.to_str().unwrap());
}

/// Blocking HTTP for the stand-in's control endpoints, through Python's urllib.
fn stand_in_get(url: &str) -> Vec<Value> {
    let output = Command::new(python::python())
        .args(["-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())", url])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stand_in_post(url: &str, body: &str) {
    let status = Command::new(python::python())
        .args([
            "-c",
            "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST')).read()",
            url,
            body,
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sql_prints_rows_as_json_lines_with_bound_values() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let result = serde_json::json!([{"status": 200, "body": {
        "statementHandle": "01bd2f4e-0000-4a1c-8000-0000000a1b2c",
        "resultSetMetaData": {"numRows": 2, "format": "jsonv2", "partitionInfo": [{"rowCount": 2}],
            "rowType": [{"name": "N", "type": "fixed", "scale": 0, "nullable": false},
                        {"name": "D", "type": "date", "scale": 0, "nullable": true}]},
        "data": [["1", "19783"], ["2", null]]}}]);
    stand_in_post(&format!("{}/_script", stand_in.url), &result.to_string());
    let output = snowcast(&[
        "snowflake",
        "sql",
        "SELECT n, d FROM t WHERE tenant_id = ? AND n < ?",
        "--bind",
        "TEXT:acme",
        "--bind",
        "FIXED:3",
        "--secret",
        secret.to_str().unwrap(),
        "--base-url",
        &stand_in.url,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"N": 1, "D": "2024-03-01"}),
            serde_json::json!({"N": 2, "D": null})
        ]
    );
    let requests = stand_in_get(&format!("{}/_requests", stand_in.url));
    let body: Value = serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["bindings"]["1"]["value"], "acme");
    assert_eq!(
        body["bindings"]["2"],
        serde_json::json!({"type": "FIXED", "value": "3"})
    );

    let bad = snowcast(&[
        "snowflake",
        "sql",
        "SELECT 1",
        "--bind",
        "BLOB:x",
        "--secret",
        secret.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown type"));
}

#[test]
fn load_reads_the_manifest_from_s3_and_the_secret_from_secrets_manager() {
    let stand_in = python::start("recording_server.py");
    let (bucket, secret_name) = (moto::unique("silver"), moto::unique("snowflake"));
    let config = moto::sdk_config();
    let manifest = sample_manifest();
    let key = "_manifests/sales/tenant_id=acme/sales-5458d24128236dd1.json";
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let s3 = snowcast::adapters::aws::s3_client(&config);
            s3.create_bucket().bucket(&bucket).send().await.unwrap();
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(manifest.into_bytes().into())
                .send()
                .await
                .unwrap();
            snowcast::adapters::aws::secrets_client(&config)
                .create_secret()
                .name(&secret_name)
                .secret_string(credentials_json("xy12345", "key.pem", None).to_string())
                .send()
                .await
                .unwrap();
        });
    let output = Command::new(env!("CARGO_BIN_EXE_snowcast"))
        .args([
            "load",
            &format!("s3://{bucket}/{key}"),
            "--secret",
            &secret_name,
        ])
        .args(["--base-url", &stand_in.url, "--pipe-scope", "SNOWCAST.RAW"])
        .envs(moto::child_env())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = stand_in_get(&format!("{}/_requests", stand_in.url));
    assert_eq!(
        requests[0]["path"],
        "/v1/data/pipes/SNOWCAST.RAW.SALES_PIPE/insertFiles"
    );
}

/// Finding 13: a file Snowpipe failed to load went unnoticed and could not be loaded again
/// (the pipe skips a path it processed). `snowcast loads` lists it; `--redrive` copies it
/// under a name for that failure and hands the copy to the pipe.
#[test]
fn loads_lists_failed_files_and_redrives_them_under_a_new_name() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let silver = moto::unique("silver");
    let failed = "sales/tenant_id=acme/date=2024-03-01/sales-5458d24128236dd1-0.parquet";
    let s3 = snowcast::adapters::aws::s3_client(&moto::sdk_config());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        s3.create_bucket().bucket(&silver).send().await.unwrap();
        s3.put_object()
            .bucket(&silver)
            .key(format!("lake/{failed}"))
            .body(b"PAR1 stand-in bytes".to_vec().into())
            .send()
            .await
            .unwrap();
    });
    let history = serde_json::json!({
        "pipe": "RAW_DB.RAW.SALES_PIPE", "completeResult": true,
        "files": [
            {"path": "sales/tenant_id=acme/date=2024-03-02/ok-0.parquet", "status": "LOADED",
             "lastInsertTime": "2026-11-22T09:31:00.000Z", "rowsInserted": 4, "rowsParsed": 4},
            {"path": failed, "status": "LOAD_FAILED", "lastInsertTime": "2026-11-22T09:44:00.000Z",
             "rowsInserted": 0, "rowsParsed": 4, "firstError": "Numeric value 'x' is not recognized"}
        ]
    });
    let run = |redrive: bool| {
        let script = serde_json::json!([
            {"status": 200, "body": history, "match": "SALES_PIPE/loadHistoryScan"}
        ]);
        stand_in_post(&format!("{}/_script", stand_in.url), &script.to_string());
        let silver_root = format!("s3://{silver}/lake");
        let mut args = vec![
            "loads",
            "--since",
            "2h",
            "--secret",
            secret.to_str().unwrap(),
        ];
        args.extend(["--base-url", &stand_in.url]);
        if redrive {
            args.extend(["--redrive", "--silver", &silver_root]);
        }
        let output = Command::new(env!("CARGO_BIN_EXE_snowcast"))
            .args(&args)
            .envs(moto::child_env())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8(output.stdout).unwrap(),
            stand_in_get(&format!("{}/_requests", stand_in.url)),
        )
    };

    let (listed, _) = run(false);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.starts_with(&format!("sales\tLOAD_FAILED\t{failed}\tNumeric value")));

    let (_, requests) = run(true);
    let inserts: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v1/data/pipes/RAW_DB.RAW.SALES_PIPE/insertFiles")
        .collect();
    assert_eq!(inserts.len(), 1);
    let body: Value = serde_json::from_str(inserts[0]["body"].as_str().unwrap()).unwrap();
    let copy = body["files"][0]["path"].as_str().unwrap().to_string();
    let stem = failed.trim_end_matches(".parquet");
    assert!(
        copy.starts_with(&format!("{stem}.r")) && copy.ends_with(".parquet"),
        "{copy}"
    );
    let stored = runtime.block_on(async {
        let listed = s3.list_objects_v2().bucket(&silver).send().await.unwrap();
        listed
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect::<Vec<_>>()
    });
    assert!(stored.contains(&format!("lake/{copy}")), "{stored:?}");

    // The same failure re-driven again gets the same name: the pipe would skip it.
    let (_, requests) = run(true);
    let again = requests
        .iter()
        .find(|r| r["path"] == "/v1/data/pipes/RAW_DB.RAW.SALES_PIPE/insertFiles")
        .unwrap();
    let body: Value = serde_json::from_str(again["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["files"][0]["path"], copy.as_str());
}

/// `migrate` applies the app layer on fakesnow twice (every statement is idempotent), and
/// its built-in copy is the whole of infra/snowflake, in order.
#[test]
fn migrate_applies_the_ddl_in_order_and_again_without_harm() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let secret = secret.to_str().unwrap();
    // fakesnow runs the database, the app tables and the procedures (not stages, pipes or
    // roles: those are parsed by check_sql.py in the shared tests).
    let ddl = dir.path().join("ddl");
    std::fs::create_dir(&ddl).unwrap();
    let infra = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/snowflake");
    for file in [
        "01_database.sql",
        "06_app_tables.sql",
        "07_app_procedures.sql",
    ] {
        std::fs::copy(format!("{infra}/{file}"), ddl.join(file)).unwrap();
    }
    for _ in 0..2 {
        let output = snowcast(&[
            "snowflake",
            "migrate",
            "--dir",
            ddl.to_str().unwrap(),
            "--secret",
            secret,
            "--base-url",
            &fake.url,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(log.contains("06_app_tables.sql: 7 statements"), "{log}");
    }
    let query = snowcast(&[
        "snowflake",
        "sql",
        "SELECT COUNT(*) AS N FROM SNOWCAST.APP.V_FORECAST WHERE TENANT_ID = ?",
        "--bind",
        "TEXT:acme",
        "--secret",
        secret,
        "--base-url",
        &fake.url,
    ]);
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&query.stdout).trim(), r#"{"N":0}"#);

    let dry = snowcast(&["snowflake", "migrate", "--dry-run", "--secret", "unused"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(infra)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    let listed: Vec<String> = String::from_utf8_lossy(&dry.stderr)
        .lines()
        .filter_map(|line| line.split(':').next().map(str::to_string))
        .collect();
    assert_eq!(
        listed, files,
        "the built-in copy lists every file of infra/snowflake, in order"
    );
}

/// `snowcast quota` prints the monitor's report, read-only, from Snowflake's answers for
/// both views (the fixtures the shared tests validate against the spec), as JSON and as
/// text.
#[test]
fn quota_prints_the_report_as_json_and_as_text() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/snowflake/quota");
    let answers = |_: ()| {
        let body = |name: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap())
                .unwrap()
        };
        // The two statements are sent at once: each answer matches its statement's text.
        serde_json::json!([
            {"status": 200, "body": body("hybrid_tables.json"), "match": "HYBRID_TABLES"},
            {"status": 200, "body": body("aggregate_query_history.json"),
             "match": "AGGREGATE_QUERY_HISTORY"},
        ])
        .to_string()
    };
    let run = |extra: &[&str]| {
        stand_in_post(&format!("{}/_script", stand_in.url), &answers(()));
        let mut args = vec![
            "quota",
            "--database",
            "snowcast",
            "--secret",
            secret.to_str().unwrap(),
            "--base-url",
            &stand_in.url,
        ];
        args.extend_from_slice(extra);
        let output = snowcast(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let report: Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let database = &report[0];
    assert_eq!(database["database"], "SNOWCAST");
    let levels: Vec<(&str, &str)> = database["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["metric"].as_str().unwrap(), m["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        levels,
        [
            ("storage", "warning"),
            ("operations", "critical"),
            ("writes", "critical"),
            ("throttling", "critical"),
        ],
        "1.46 TB of 2 TB; a minute of 8,000 operations/s and 1,085 writes/s; 3 throttled"
    );
    assert_eq!(
        database["metrics"][0]["projection"]["verdict"],
        "insufficient_history"
    );
    assert_eq!(database["tables"][1]["row_count"], Value::Null);
    assert!(
        database["alerts"].as_array().unwrap().is_empty(),
        "read-only"
    );

    let text = run(&[]);
    assert!(text.starts_with("SNOWCAST"), "{text}");
    assert!(text.contains("1.46 TB of 2.00 TB (73.1%)"), "{text}");
    assert!(
        text.contains("APP.NEW_TABLE_HT: 0.000 GB, rows unknown"),
        "{text}"
    );

    let requests = stand_in_get(&format!("{}/_requests", stand_in.url));
    assert_eq!(requests.len(), 4, "two statements per run, nothing else");
}
