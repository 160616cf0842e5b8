//! The monitor over its in-memory twins: levels across runs, deduplicated alerts, lagging
//! views, empty and failing databases, projections from the kept history.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::{
    adapters::memory::{
        MemorySink,
        quota::{MemoryAlerts, MemoryUsage},
    },
    domain::quota::RequestInterval,
};

const TB: f64 = 1e12;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn table(name: &str, bytes: f64, rows: Option<u64>) -> TableUsage {
    TableUsage {
        schema: "APP".into(),
        name: name.into(),
        bytes: bytes as u64,
        row_count: rows,
    }
}

/// One minute of requests, `minutes_before` the run at `run`.
fn minute(
    run: DateTime<Utc>,
    minutes_before: i64,
    ops: u64,
    writes: u64,
    throttled: u64,
) -> RequestInterval {
    RequestInterval {
        start: run - Duration::minutes(minutes_before),
        calls: ops * 60,
        writes: writes * 60,
        throttled,
    }
}

struct Rig {
    usage: MemoryUsage,
    state: MemorySink,
    alerts: MemoryAlerts,
    monitor: QuotaMonitor,
}

fn rig(databases: &[&str]) -> Rig {
    let usage = MemoryUsage::default();
    let state = MemorySink::default();
    let alerts = MemoryAlerts::default();
    let monitor = QuotaMonitor::new(
        Arc::new(usage.clone()),
        Arc::new(state.clone()),
        Some(Arc::new(alerts.clone())),
        Settings {
            databases: databases.iter().map(|d| d.to_string()).collect(),
            quotas: Quotas::default(),
            window: RequestWindow::default(),
        },
    );
    Rig {
        usage,
        state,
        alerts,
        monitor,
    }
}

fn scheduler_event(at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({"source": "snowcast.scheduler", "time": at.to_rfc3339(),
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/quota"})
}

impl Rig {
    async fn run_at(&self, when: DateTime<Utc>) -> serde_json::Value {
        self.monitor.handle(scheduler_event(when)).await.unwrap()
    }

    fn changes(&self) -> Vec<(Metric, Change, Level)> {
        self.alerts
            .published()
            .iter()
            .map(|a| (a.metric, a.change, a.level))
            .collect()
    }
}

#[tokio::test]
async fn a_sustained_breach_alerts_once_and_each_change_of_level_once_more() {
    let rig = rig(&["SNOWCAST"]);
    let storage = [0.5, 1.5, 1.52, 1.54, 1.85, 1.9, 1.6, 0.9, 0.8];
    for (run, used) in storage.iter().enumerate() {
        rig.usage.set(
            "SNOWCAST",
            vec![table("MANUAL_EDITS_HT", used * TB, Some(1_000))],
            vec![minute(at(15 * run as i64), 5, 100, 10, 0)],
        );
        rig.run_at(at(15 * run as i64)).await;
    }
    assert_eq!(
        rig.changes(),
        [
            (Metric::Storage, Change::Escalated, Level::Warning),
            (Metric::Storage, Change::Escalated, Level::Critical),
            (Metric::Storage, Change::Eased, Level::Warning),
            (Metric::Storage, Change::Recovered, Level::Ok),
        ]
    );
    let alerts = rig.alerts.published();
    assert!(
        alerts[0].subject.contains("SNOWCAST storage WARNING"),
        "{}",
        alerts[0].subject
    );
    assert!(
        alerts[0].subject.contains("(75.0%)"),
        "{}",
        alerts[0].subject
    );
    assert!(alerts[1].message.contains("shard tenants across databases"));
    assert!(alerts[1].message.contains("OLTP store"));
    assert!(
        !alerts[3].message.contains("shard"),
        "a recovery gives no advice"
    );
    assert!(alerts.iter().all(|a| a.subject.len() < 100));
    let long = sns_subject(&format!("[snowcast] {}\u{e9}\n storage", "D".repeat(200)));
    assert_eq!(long.len(), 99);
    assert!(long.ends_with("...") && long.is_ascii() && !long.contains('\n'));
    assert_eq!(sns_subject("caf\u{e9}\tok"), "caf??ok");
}

#[tokio::test]
async fn a_throttled_request_is_critical_and_its_end_a_recovery() {
    let rig = rig(&["SNOWCAST"]);
    rig.usage
        .set("SNOWCAST", vec![], vec![minute(at(0), 3, 50, 5, 2)]);
    rig.run_at(at(0)).await;
    rig.run_at(at(15)).await;
    rig.usage
        .set("SNOWCAST", vec![], vec![minute(at(600), 3, 50, 5, 0)]);
    rig.run_at(at(600)).await;
    assert_eq!(
        rig.changes(),
        [
            (Metric::Throttling, Change::Raised, Level::Critical),
            (Metric::Throttling, Change::Recovered, Level::Ok),
        ]
    );
}

#[tokio::test]
async fn request_rates_are_levelled_on_the_busiest_minute() {
    let rig = rig(&["SNOWCAST"]);
    let run = at(0);
    rig.usage.set(
        "SNOWCAST",
        vec![],
        vec![
            minute(run, 200, 1_000, 100, 0),
            minute(run, 199, 7_300, 950, 0),
            minute(run, 198, 2_000, 100, 0),
        ],
    );
    rig.run_at(run).await;
    let ops = rig.changes();
    assert_eq!(
        ops,
        [
            (Metric::Operations, Change::Raised, Level::Critical),
            (Metric::Writes, Change::Raised, Level::Critical),
        ],
        "7,300 ops/s is 91% of 8,000; 950 writes/s is 95% of 1,000"
    );
}

#[tokio::test]
async fn a_view_that_lags_announces_no_recovery_for_lack_of_data() {
    let rig = rig(&["SNOWCAST"]);
    rig.usage
        .set("SNOWCAST", vec![], vec![minute(at(0), 30, 7_500, 0, 1)]);
    rig.run_at(at(0)).await;
    // Later the window holds nothing yet (the view is behind): no level, no alert.
    rig.usage.set("SNOWCAST", vec![], vec![]);
    let (reports, failures) = rig.monitor.run(&["SNOWCAST".into()], at(300), true).await;
    assert!(failures.is_empty());
    let report = &reports[0];
    assert_eq!(report.requests, None);
    let ops = report.metric(Metric::Operations).unwrap();
    assert_eq!((ops.value, ops.level), (None, None));
    assert_eq!(describe_value(ops), "no data in the window yet");
    assert_eq!(
        rig.changes(),
        [
            (Metric::Operations, Change::Raised, Level::Critical),
            (Metric::Throttling, Change::Raised, Level::Critical),
        ]
    );
    let names: Vec<String> = report.metric_records()[0].to_json(0)["_aws"]["CloudWatchMetrics"][0]
        ["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"StorageBytes".to_string()));
    assert!(
        !names.contains(&"OperationsPerSecond".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_database_without_hybrid_tables_and_tables_without_row_counts() {
    let rig = rig(&["EMPTY", "SNOWCAST"]);
    rig.usage.set(
        "SNOWCAST",
        vec![
            table("MANUAL_EDITS_HT", 2e9, None),
            table("USER_PREFS_HT", 1e6, Some(40)),
        ],
        vec![],
    );
    let (reports, failures) = rig
        .monitor
        .run(&["EMPTY".into(), "SNOWCAST".into()], at(0), true)
        .await;
    assert!(failures.is_empty());
    let empty = &reports[0];
    assert!(empty.tables.is_empty());
    let storage = empty.metric(Metric::Storage).unwrap();
    assert_eq!((storage.value, storage.level), (Some(0.0), Some(Level::Ok)));
    let records = reports[1].metric_records();
    assert_eq!(records.len(), 3, "the database and one per table");
    let edits = records[1].to_json(0);
    assert_eq!(edits["Table"], "APP.MANUAL_EDITS_HT");
    assert_eq!(edits["TableBytes"], 2e9);
    assert!(
        edits.get("TableRows").is_none(),
        "NULL ROW_COUNT is not a zero"
    );
    assert_eq!(records[2].to_json(0)["TableRows"], 40.0);
    assert_eq!(
        reports[1].metric(Metric::Storage).unwrap().value,
        Some(2.001e9)
    );
    assert!(rig.alerts.published().is_empty());
}

#[tokio::test]
async fn one_failing_database_fails_the_run_after_the_others_are_checked() {
    let rig = rig(&["BROKEN", "SNOWCAST"]);
    rig.usage.fail("BROKEN", "Insufficient privileges");
    rig.usage
        .set("SNOWCAST", vec![table("T", 1.9 * TB, Some(1))], vec![]);
    let error = rig
        .monitor
        .handle(scheduler_event(at(0)))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Insufficient privileges"),
        "{error}"
    );
    assert_eq!(
        rig.changes(),
        [(Metric::Storage, Change::Raised, Level::Critical)]
    );
    assert!(
        rig.state
            .objects()
            .contains_key("quota-monitor/SNOWCAST.json"),
        "the healthy database's state is saved"
    );
}

struct FailingAlerts;

#[async_trait]
impl AlertSink for FailingAlerts {
    async fn publish(&self, _: &Alert) -> crate::error::Result<()> {
        Err(Error::Alert {
            topic: "topic".into(),
            message: "throttled".into(),
        })
    }
}

#[tokio::test]
async fn an_alert_that_cannot_be_published_is_raised_again_next_run() {
    let rig = rig(&["SNOWCAST"]);
    rig.usage
        .set("SNOWCAST", vec![table("T", 1.95 * TB, Some(1))], vec![]);
    let failing = QuotaMonitor::new(
        Arc::new(rig.usage.clone()),
        Arc::new(rig.state.clone()),
        Some(Arc::new(FailingAlerts)),
        rig.monitor.settings.clone(),
    );
    assert!(failing.handle(scheduler_event(at(0))).await.is_err());
    assert!(
        rig.state.objects().is_empty(),
        "nothing saved: the alert is owed"
    );
    rig.run_at(at(15)).await;
    assert_eq!(
        rig.changes(),
        [(Metric::Storage, Change::Raised, Level::Critical)]
    );
}

#[tokio::test]
async fn reporting_changes_nothing() {
    let rig = rig(&["SNOWCAST"]);
    rig.usage
        .set("SNOWCAST", vec![table("T", 1.95 * TB, Some(1))], vec![]);
    let (reports, _) = rig.monitor.run(&["SNOWCAST".into()], at(0), false).await;
    assert_eq!(
        reports[0].metric(Metric::Storage).unwrap().level,
        Some(Level::Critical)
    );
    assert!(reports[0].alerts.is_empty());
    assert!(rig.state.objects().is_empty());
    assert!(rig.alerts.published().is_empty());
}

#[tokio::test]
async fn custom_input_narrows_the_run() {
    let rig = rig(&["A", "B"]);
    let summary = rig
        .monitor
        .handle(serde_json::json!({"databases": ["b"]}))
        .await
        .unwrap();
    let databases: Vec<&str> = summary["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    assert_eq!(databases, ["B"]);
}

#[tokio::test]
async fn daily_growth_in_the_history_is_projected_to_a_date() {
    let rig = rig(&["SNOWCAST"]);
    // 20 GB a day from 1.0 TB, one run a day for 20 days.
    for day in 0..20 {
        let used = 1.0 * TB + day as f64 * 20e9;
        rig.usage
            .set("SNOWCAST", vec![table("T", used, None)], vec![]);
        rig.run_at(at(day * 24 * 60)).await;
    }
    let (reports, _) = rig
        .monitor
        .run(&["SNOWCAST".into()], at(19 * 24 * 60), false)
        .await;
    let storage = reports[0].metric(Metric::Storage).unwrap();
    match storage.projection {
        Some(Projection::Within { days, per_day, .. }) => {
            assert!((per_day - 20e9).abs() < 1e6, "{per_day}");
            // 2 TB - 1.38 TB = 620 GB at 20 GB/day.
            assert!((days - 31.0).abs() < 0.01, "{days}");
        }
        other => panic!("{other:?}"),
    }
    let record = reports[0].metric_records()[0].to_json(0);
    assert!((record["DaysToStorageQuota"].as_f64().unwrap() - 31.0).abs() < 0.01);
}

/// Found by the adversarial review: custom input that names no database is an error, not
/// a successful run that checked nothing.
#[tokio::test]
async fn custom_input_naming_no_database_fails() {
    let rig = rig(&["A"]);
    for named in [
        serde_json::json!([]),
        serde_json::json!([1, 2]),
        serde_json::json!([null]),
        serde_json::json!("notalist"),
    ] {
        let error = rig
            .monitor
            .handle(serde_json::json!({ "databases": named }))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "Event", "{named}: {error}");
    }
}

/// Found by the adversarial review: a state object that is an array is corrupt, not an
/// empty history (which would raise every alert again).
#[tokio::test]
async fn a_state_that_is_not_an_object_is_refused() {
    let rig = rig(&["SNOWCAST"]);
    rig.state
        .put(
            "quota-monitor/SNOWCAST.json",
            bytes::Bytes::from_static(b"[]"),
        )
        .await
        .unwrap();
    let error = rig
        .monitor
        .handle(scheduler_event(at(0)))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("expected an object"), "{error}");
    assert!(rig.alerts.published().is_empty());
}

/// Found by the adversarial review: a window reaching before the start of time is an
/// error, not a panic.
#[tokio::test]
async fn a_window_before_time_is_an_error() {
    let usage = MemoryUsage::default();
    let monitor = QuotaMonitor::new(
        Arc::new(usage),
        Arc::new(MemorySink::default()),
        None,
        Settings {
            databases: vec!["SNOWCAST".into()],
            quotas: Quotas::default(),
            window: RequestWindow::default(),
        },
    );
    let (reports, failures) = monitor
        .run(&["SNOWCAST".into()], DateTime::<Utc>::MIN_UTC, false)
        .await;
    assert!(reports.is_empty());
    assert!(
        failures[0].1.to_string().contains("before time"),
        "{}",
        failures[0].1
    );
}
