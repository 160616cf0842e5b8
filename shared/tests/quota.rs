//! The quota monitor against real servers: its two statements answered by SQL API fixtures
//! (validated against Snowflake's spec) and executed on fakesnow (the views created as
//! tables there), and the scheduled handler end to end on moto (history in S3, alerts
//! through SNS into an SQS subscription) with the sample events of
//! `events/quota-monitor/`.

#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use snowcast::{
    adapters::{
        aws::{
            self,
            s3::{S3Sink, S3Uri},
            sns::SnsAlerts,
        },
        snowflake::{
            quota::SnowflakeUsage,
            script,
            sql::{Binding, SqlClient},
            statements,
        },
    },
    domain::quota::{Quotas, TableUsage},
    ports::quota::UsageSource,
    services::quota_monitor::{QuotaMonitor, Settings, config::RequestWindow},
};
use snowflake_support::{assert_sqlapi_conforms, fakesnow_traffic, sql_client};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/snowflake/quota");
const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/quota-monitor");

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn client(url: &str, dir: &std::path::Path) -> SqlClient {
    sql_client(url, dir, "snowcast:quota-monitor").await
}

#[tokio::test]
async fn snowflake_answers_for_both_views_conform_to_the_spec_and_decode() {
    let stand_in = python::start("recording_server.py");
    let fixtures = [
        read_json(&format!("{FIXTURES}/hybrid_tables.json")),
        read_json(&format!("{FIXTURES}/aggregate_query_history.json")),
    ];
    let script: Vec<Value> = fixtures
        .iter()
        .map(|body| json!({"status": 200, "body": body, "match": "/api/v2/statements"}))
        .collect();
    snowflake_support::post_script(&stand_in.url, Value::Array(script)).await;
    let dir = tempfile::tempdir().unwrap();
    let usage = SnowflakeUsage::new(client(&stand_in.url, dir.path()).await);

    let tables = usage.storage("snowcast").await.unwrap();
    assert_eq!(
        tables[..2],
        [
            TableUsage {
                schema: "APP".into(),
                name: "MANUAL_EDITS_HT".into(),
                bytes: 1_462_318_809_088,
                row_count: Some(48_211_907),
            },
            TableUsage {
                schema: "APP".into(),
                name: "NEW_TABLE_HT".into(),
                bytes: 0,
                row_count: None,
            },
        ],
        "NULL BYTES and ROW_COUNT of a table being created"
    );
    let (from, to) = (time("2026-11-22T06:00:00Z"), time("2026-11-22T10:15:00Z"));
    let minutes = usage.requests("SNOWCAST", from, to).await.unwrap();
    assert_eq!(minutes.len(), 4);
    assert_eq!(minutes[0].start, time("2026-11-22T06:15:00Z"));
    assert_eq!(
        (minutes[2].calls, minutes[2].writes, minutes[2].throttled),
        (480_000, 60_300, 3)
    );

    let requests: Vec<Value> = reqwest::get(format!("{}/_requests", stand_in.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let responses: Vec<Value> = fixtures
        .iter()
        .map(|body| json!({"schema": "ResultSet", "body": body}))
        .collect();
    assert_sqlapi_conforms(&json!({"requests": requests, "responses": responses}));
    let bodies: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(bodies[0]["statement"], statements::QUOTA_STORAGE);
    assert_eq!(
        bodies[0]["bindings"]["1"],
        json!({"type": "TEXT", "value": "SNOWCAST.INFORMATION_SCHEMA.HYBRID_TABLES"})
    );
    assert_eq!(bodies[1]["statement"], statements::QUOTA_REQUESTS);
    assert_eq!(
        bodies[1]["bindings"]["4"],
        json!({"type": "TEXT", "value": "2026-11-22T06:00:00Z"})
    );
}

fn ltz(at: DateTime<Utc>) -> Binding {
    Binding {
        kind: "TIMESTAMP_LTZ".into(),
        value: Some(at.to_rfc3339()),
    }
}

/// Found by the adversarial review: an answer without the columns asked for (or without a
/// result set), or with fewer rows than it announces, read as 0 bytes and announced a
/// recovery. Each is an error now.
#[tokio::test]
async fn answers_that_are_not_the_result_asked_for_are_errors() {
    let stand_in = python::start("recording_server.py");
    let full = read_json(&format!("{FIXTURES}/hybrid_tables.json"));
    let mut no_bytes = full.clone();
    no_bytes["resultSetMetaData"]["rowType"]
        .as_array_mut()
        .unwrap()
        .pop();
    for row in no_bytes["data"].as_array_mut().unwrap() {
        row.as_array_mut().unwrap().pop();
    }
    let mut short = full.clone();
    short["data"] = json!([]);
    let no_result = snowflake_support::no_result_answer(&full["statementHandle"]);
    let dir = tempfile::tempdir().unwrap();
    let usage = SnowflakeUsage::new(client(&stand_in.url, dir.path()).await);
    for (answer, expected) in [
        (no_bytes, "no column BYTES"),
        (short, "a result of 3 rows came with 0"),
        (no_result, "no column SCHEMA, NAME, ROW_COUNT, BYTES"),
    ] {
        snowflake_support::script_answers(&stand_in.url, &[answer]).await;
        let error = usage.storage("SNOWCAST").await.unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
}

/// Fills the stand-ins: SNOWCAST at 1.9 TB (critical), and request minutes before `run`:
/// one with 3 throttled requests, one of another database only, one outside the window.
async fn seed(client: &SqlClient, run: DateTime<Utc>) {
    let views = std::fs::read_to_string(format!("{FIXTURES}/stand_in_views.sql")).unwrap();
    for statement in script::statements(&views) {
        client.execute(&statement, &[]).await.unwrap();
    }
    let table = "INSERT INTO SNOWCAST.INFORMATION_SCHEMA.HYBRID_TABLES \
                 (CATALOG, \"SCHEMA\", \"NAME\", ROW_COUNT, BYTES) VALUES ('SNOWCAST', 'APP', ?, ?, ?)";
    for (name, rows, bytes) in [
        (
            "MANUAL_EDITS_HT",
            Binding::fixed(60_000_000),
            Binding::fixed(1_899_000_000_000),
        ),
        (
            "USER_PREFS_HT",
            Binding::null("FIXED"),
            Binding::fixed(1_000_000_000),
        ),
    ] {
        client
            .execute(table, &[Binding::text(name), rows, bytes])
            .await
            .unwrap();
    }
    let minute = "INSERT INTO SNOWFLAKE.ACCOUNT_USAGE.AGGREGATE_QUERY_HISTORY (INTERVAL_START_TIME, \
                  INTERVAL_END_TIME, DATABASE_NAME, QUERY_TYPE, CALLS, \
                  HYBRID_TABLE_REQUESTS_THROTTLED_COUNT) VALUES (?, ?, ?, ?, ?, ?)";
    let rows = [
        (200, "SNOWCAST", "SELECT", 240_000, 0),
        (200, "SNOWCAST", "UPDATE", 36_000, 0),
        (199, "SNOWCAST", "INSERT", 30_000, 3),
        (198, "OTHERDB", "SELECT", 600, 0),
        (600, "SNOWCAST", "SELECT", 999_999, 9),
    ];
    for (minutes_before, database, kind, calls, throttled) in rows {
        let start = run - Duration::minutes(minutes_before);
        client
            .execute(
                minute,
                &[
                    ltz(start),
                    ltz(start + Duration::minutes(1)),
                    Binding::text(database),
                    Binding::text(kind),
                    Binding::fixed(calls),
                    Binding::fixed(throttled),
                ],
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_usage_statements_run_on_fakesnow_and_conform_to_the_spec() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    let run = time("2026-11-22T10:15:00Z");
    seed(&client(&fake.url, dir.path()).await, run).await;
    let usage = SnowflakeUsage::new(client(&fake.url, dir.path()).await);

    let tables = usage.storage("SNOWCAST").await.unwrap();
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[0].bytes, 1_899_000_000_000);
    assert_eq!(tables[1].row_count, None, "NULL ROW_COUNT stays unknown");
    assert!(usage.storage("EMPTYDB").await.unwrap().is_empty());

    let window = RequestWindow::default();
    let from = run - window.lag - window.window;
    let minutes = usage.requests("SNOWCAST", from, run).await.unwrap();
    let seen: Vec<(i64, u64, u64, u64)> = minutes
        .iter()
        .map(|m| {
            (
                (run - m.start).num_minutes(),
                m.calls,
                m.writes,
                m.throttled,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (200, 276_000, 36_000, 0),
            (199, 30_000, 30_000, 3),
            (198, 0, 0, 0),
        ],
        "minutes grouped, writes counted, another database's minute a zero, old minutes out"
    );

    let (traffic, sent) = fakesnow_traffic(&fake.url).await;
    for statement in [statements::QUOTA_STORAGE, statements::QUOTA_REQUESTS] {
        assert!(
            sent.iter().any(|s| s == statement),
            "never sent: {statement}"
        );
    }
    assert_sqlapi_conforms(&traffic);
}

/// An SQS queue subscribed to a new SNS topic: (topic ARN, queue URL).
async fn alert_topic() -> (String, String) {
    let config = moto::sdk_config();
    let sns = aws::sns_client(&config);
    let sqs = aws::sqs_client(&config);
    let topic = sns
        .create_topic()
        .name(moto::unique("quota-alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(moto::unique("quota-alerts"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attributes
        .attributes
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap()
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    (topic, queue)
}

/// The SNS notifications waiting in `queue`, removed from it.
async fn notifications(queue: &str) -> Vec<Value> {
    let sqs = aws::sqs_client(&moto::sdk_config());
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for message in messages {
            out.push(serde_json::from_str(message.body.as_deref().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(message.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn the_scheduled_handler_alerts_once_through_sns_and_keeps_its_history_in_s3() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    let scheduler = read_json(&format!("{EVENTS}/scheduler.json"));
    let run = time(scheduler["time"].as_str().unwrap());
    seed(&client(&fake.url, dir.path()).await, run).await;

    let config = moto::sdk_config();
    let s3 = aws::s3_client(&config);
    let bucket = moto::unique("quota-state");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let (topic, queue) = alert_topic().await;
    let monitor = QuotaMonitor::new(
        Arc::new(SnowflakeUsage::new(client(&fake.url, dir.path()).await)),
        Arc::new(S3Sink::new(
            s3.clone(),
            S3Uri::root(&format!("s3://{bucket}/monitor")).unwrap(),
        )),
        Some(Arc::new(SnsAlerts::new(aws::sns_client(&config), &topic))),
        Settings {
            databases: vec!["SNOWCAST".into(), "EMPTYDB".into()],
            quotas: Quotas::default(),
            window: RequestWindow::default(),
        },
    );

    // EventBridge Scheduler's input: storage at 95% and throttling are critical.
    let summary = monitor.handle(scheduler).await.unwrap();
    assert_eq!(summary["databases"][0]["levels"]["storage"], "critical");
    assert_eq!(summary["databases"][1]["levels"]["storage"], "ok");
    let alerts = notifications(&queue).await;
    let mut subjects: Vec<&str> = alerts
        .iter()
        .map(|a| a["Subject"].as_str().unwrap())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[snowcast] SNOWCAST storage CRITICAL: 1.90 TB of 2.00 TB (95.0%)",
            "[snowcast] SNOWCAST throttling CRITICAL: 3 throttled request(s)",
        ]
    );
    let storage = alerts
        .iter()
        .find(|a| a["Subject"].as_str().unwrap().contains("storage"))
        .unwrap();
    assert!(
        storage["Message"]
            .as_str()
            .unwrap()
            .contains("shard tenants across databases")
    );
    assert_eq!(
        storage["MessageAttributes"]["dedup_key"]["Value"],
        "SNOWCAST/storage/critical"
    );
    let state = s3
        .get_object()
        .bucket(&bucket)
        .key("monitor/quota-monitor/SNOWCAST.json")
        .send()
        .await
        .unwrap();
    let state: Value =
        serde_json::from_slice(&state.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(state["levels"]["storage"], "critical");
    assert_eq!(state["samples"].as_array().unwrap().len(), 1);

    // The classic scheduled rule 15 minutes later: the breach is sustained, no new alert.
    let rule = read_json(&format!("{EVENTS}/scheduled-rule.json"));
    monitor.handle(rule).await.unwrap();
    assert!(
        notifications(&queue).await.is_empty(),
        "a sustained breach is one alert"
    );

    // A rule's custom input: only the databases it names, at the time of the call; storage
    // is still critical, so still silent.
    let custom = read_json(&format!("{EVENTS}/custom-input.json"));
    let summary = monitor.handle(custom).await.unwrap();
    assert_eq!(summary["databases"].as_array().unwrap().len(), 1);
    assert_eq!(summary["databases"][0]["levels"]["storage"], "critical");
    assert!(notifications(&queue).await.is_empty());
}
