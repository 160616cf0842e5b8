//! The quota monitor: on a schedule, each watched database's Hybrid Table storage and
//! request rates against its quotas, a sample added to its history, the date each quota
//! will be reached projected from that history, EMF metrics, and an alert for every change
//! of level (deduplicated per database, metric and level by the levels kept with the
//! history). `snowcast quota` runs the same checks read-only.
//!
//! A run publishes its alerts before it saves the state, so an alert is never lost: if
//! publishing fails, the run fails, the state is not saved and the next run (or the
//! scheduler's retry) raises the alert again. One database failing does not stop the
//! others; the run then fails after reporting them.
//!
//! May import: `ports`, `domain`, `lambda`, `error`; never an adapter.

pub mod config;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use self::config::RequestWindow;
use crate::{
    domain::quota::{
        Change, GUIDANCE, Level, Metric, Projection, Quota, QuotaState, Quotas, RequestSummary,
        Sample, TableUsage, change, project,
    },
    error::{Error, Result},
    lambda::{
        metrics::{MetricRecord, Unit},
        scheduled_time,
    },
    ports::{
        quota::{Alert, AlertSink, UsageSource},
        storage::ObjectSink,
    },
};

/// Name of the function in metrics.
const FUNCTION: &str = "quota-monitor";
/// SNS subjects must be shorter than this.
const SUBJECT_LIMIT: usize = 100;
/// Folder of the state objects in the state store.
const STATE_PREFIX: &str = "quota-monitor";

/// One metric of a database, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricStatus {
    /// What was measured.
    pub metric: Metric,
    /// The value (bytes, operations/s, writes/s, throttled requests); `None` when the view
    /// had no data for the window.
    pub value: Option<f64>,
    /// The quota (none for throttling).
    pub quota: Option<f64>,
    /// Value over quota, in percent.
    pub percent: Option<f64>,
    /// The level; `None` without a value.
    pub level: Option<Level>,
    /// When the quota will be reached (storage, operations, writes).
    pub projection: Option<Projection>,
}

/// What one run found for one database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseReport {
    /// The database.
    pub database: String,
    /// When the run looked.
    pub at: DateTime<Utc>,
    /// Its quotas.
    pub quota: Quota,
    /// Its hybrid tables (none is a fine answer: usage 0).
    pub tables: Vec<TableUsage>,
    /// Start of the request window read.
    pub requests_from: DateTime<Utc>,
    /// The window's requests; `None` when the view had nothing in it yet.
    pub requests: Option<RequestSummary>,
    /// Every metric, in [`Metric::ALL`] order.
    pub metrics: Vec<MetricStatus>,
    /// Samples in the history, this one included.
    pub samples: usize,
    /// Alerts this run raised (none when only reporting).
    pub alerts: Vec<Alert>,
}

impl DatabaseReport {
    /// The status of `metric`.
    pub fn metric(&self, metric: Metric) -> Option<&MetricStatus> {
        self.metrics.iter().find(|m| m.metric == metric)
    }

    /// The run's EMF records: one for the database, one per table.
    pub fn metric_records(&self) -> Vec<MetricRecord> {
        let mut database = MetricRecord::new(FUNCTION)
            .dimension("Database", &self.database)
            .metric("HybridTables", self.tables.len() as f64, Unit::Count);
        let names = |metric| match metric {
            Metric::Storage => ("StorageBytes", Unit::Bytes, "StoragePercent"),
            Metric::Operations => (
                "OperationsPerSecond",
                Unit::CountPerSecond,
                "OperationsPercent",
            ),
            Metric::Writes => ("WritesPerSecond", Unit::CountPerSecond, "WritesPercent"),
            Metric::Throttling => ("ThrottledRequests", Unit::Count, ""),
        };
        for status in &self.metrics {
            let (value_name, unit, percent_name) = names(status.metric);
            if let Some(value) = status.value {
                database = database.metric(value_name, value, unit);
            }
            if let Some(percent) = status.percent {
                database = database.metric(percent_name, percent, Unit::Percent);
            }
            if let Some(days) = status.projection.as_ref().and_then(Projection::days) {
                let name = match status.metric {
                    Metric::Storage => "DaysToStorageQuota",
                    Metric::Operations => "DaysToOperationsQuota",
                    _ => "DaysToWritesQuota",
                };
                database = database.metric(name, days, Unit::None);
            }
        }
        if let Some(requests) = &self.requests {
            let lag = (self.at - requests.through).num_seconds() as f64 / 60.0;
            database = database.metric("RequestDataLagMinutes", lag, Unit::None);
        }
        let tables = self.tables.iter().map(|table| {
            let record = MetricRecord::new(FUNCTION)
                .dimension("Database", &self.database)
                .dimension("Table", format!("{}.{}", table.schema, table.name))
                .metric("TableBytes", table.bytes as f64, Unit::Bytes);
            match table.row_count {
                Some(rows) => record.metric("TableRows", rows as f64, Unit::Count),
                None => record,
            }
        });
        std::iter::once(database).chain(tables).collect()
    }
}

/// What the monitor watches and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The databases, upper case.
    pub databases: Vec<String>,
    /// Their quotas.
    pub quotas: Quotas,
    /// The request window.
    pub window: RequestWindow,
}

/// The quota monitor service.
pub struct QuotaMonitor {
    usage: Arc<dyn UsageSource>,
    state: Arc<dyn ObjectSink>,
    alerts: Option<Arc<dyn AlertSink>>,
    settings: Settings,
}

impl QuotaMonitor {
    /// Reads usage from `usage` and keeps history in `state`; alerts go to `alerts` (none:
    /// logged only).
    pub fn new(
        usage: Arc<dyn UsageSource>,
        state: Arc<dyn ObjectSink>,
        alerts: Option<Arc<dyn AlertSink>>,
        settings: Settings,
    ) -> Self {
        QuotaMonitor {
            usage,
            state,
            alerts,
            settings,
        }
    }

    /// Handles a scheduled invocation: an EventBridge Scheduler input, a scheduled rule's
    /// event, or a rule's custom input (`{"databases": [..]}` narrows the run). Emits the
    /// metrics, answers a summary; fails when any database could not be checked.
    pub async fn handle(&self, event: serde_json::Value) -> Result<serde_json::Value> {
        let at = scheduled_time(&event).unwrap_or_else(Utc::now);
        let databases = match event.get("databases") {
            None => self.settings.databases.clone(),
            Some(named) => databases_named(named)?,
        };
        let (reports, failures) = self.run(&databases, at, true).await;
        for record in reports.iter().flat_map(DatabaseReport::metric_records) {
            record.emit();
        }
        let summary = serde_json::json!({
            "at": at,
            "databases": reports.iter().map(|r| serde_json::json!({
                "database": r.database,
                "levels": r.metrics.iter().map(|m| (m.metric.as_str(), m.level)).collect::<std::collections::BTreeMap<_, _>>(),
                "alerts": r.alerts.len(),
            })).collect::<Vec<_>>(),
        });
        match failures.into_iter().next() {
            None => Ok(summary),
            Some((_, error)) => Err(error),
        }
    }

    /// Checks `databases` at `at`. With `record`, samples and levels are saved and alerts
    /// published; without (`snowcast quota`), nothing is changed. Failures are logged and
    /// returned beside the reports of the databases that worked.
    pub async fn run(
        &self,
        databases: &[String],
        at: DateTime<Utc>,
        record: bool,
    ) -> (Vec<DatabaseReport>, Vec<(String, Error)>) {
        let mut reports = Vec::new();
        let mut failures = Vec::new();
        for database in databases {
            match self.check(database, at, record).await {
                Ok(report) => reports.push(report),
                Err(error) => {
                    tracing::error!(database, %error, "cannot check the database's quotas");
                    failures.push((database.clone(), error));
                }
            }
        }
        (reports, failures)
    }

    async fn check(
        &self,
        database: &str,
        at: DateTime<Utc>,
        record: bool,
    ) -> Result<DatabaseReport> {
        let quota = self.settings.quotas.of(database);
        let from = at
            .checked_sub_signed(self.settings.window.lag + self.settings.window.window)
            .ok_or_else(|| {
                Error::invalid("time", format!("{at}: the window starts before time"))
            })?;
        let (tables, intervals, mut state) = tokio::try_join!(
            self.usage.storage(database),
            self.usage.requests(database, from, at),
            self.load(database),
        )?;
        let requests = RequestSummary::of(&intervals);
        let storage_bytes = tables
            .iter()
            .fold(0u64, |sum, t| sum.saturating_add(t.bytes));
        state.record(Sample {
            at,
            storage_bytes,
            peak_operations_per_second: requests.map(|r| r.peak_operations_per_second),
            peak_writes_per_second: requests.map(|r| r.peak_writes_per_second),
        });
        let metrics: Vec<MetricStatus> = Metric::ALL
            .iter()
            .map(|&metric| measure(metric, &quota, storage_bytes, requests.as_ref(), &state, at))
            .collect();
        let mut alerts = changes(database, &metrics, &mut state, at);
        if record {
            self.publish_and_save(database, &alerts, &state).await?;
        } else {
            alerts.clear();
        }
        Ok(DatabaseReport {
            database: database.to_string(),
            at,
            quota,
            tables,
            requests_from: from,
            requests,
            metrics,
            samples: state.samples.len(),
            alerts,
        })
    }

    /// Publishes the alerts, then saves the state that records them: a failed publish
    /// leaves the old state, so the next run raises the alert again.
    async fn publish_and_save(
        &self,
        database: &str,
        alerts: &[Alert],
        state: &QuotaState,
    ) -> Result<()> {
        for alert in alerts {
            tracing::warn!(database, alert = %alert.subject, "quota alert");
            if let Some(sink) = &self.alerts {
                sink.publish(alert).await?;
            }
        }
        self.save(database, state).await
    }

    fn state_key(database: &str) -> String {
        format!("{STATE_PREFIX}/{database}.json")
    }

    async fn load(&self, database: &str) -> Result<QuotaState> {
        let Some(bytes) = self.state.get(&Self::state_key(database)).await? else {
            return Ok(QuotaState::default());
        };
        let invalid =
            |message: String| Error::invalid("quota state", format!("{database}: {message}"));
        // An object only: serde would also read a struct from an array (`[]`: no history).
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(state @ serde_json::Value::Object(_)) => {
                serde_json::from_value(state).map_err(|e| invalid(e.to_string()))
            }
            Ok(other) => Err(invalid(format!("expected an object, found {other}"))),
            Err(e) => Err(invalid(e.to_string())),
        }
    }

    async fn save(&self, database: &str, state: &QuotaState) -> Result<()> {
        let body = Bytes::from(serde_json::to_vec(state)?);
        self.state.put(&Self::state_key(database), body).await?;
        Ok(())
    }
}

/// The databases a custom input names: a non-empty list of names (a run that checks
/// nothing must fail, not succeed silently).
fn databases_named(named: &serde_json::Value) -> Result<Vec<String>> {
    let invalid = || {
        Error::Event(format!(
            "\"databases\" must be a non-empty list of names, found {named}"
        ))
    };
    let list = named
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(invalid)?;
    list.iter()
        .map(|d| d.as_str().map(str::to_ascii_uppercase).ok_or_else(invalid))
        .collect()
}

/// The alerts the metrics' levels deserve against the levels in `state`, which then
/// records the new levels.
fn changes(
    database: &str,
    metrics: &[MetricStatus],
    state: &mut QuotaState,
    at: DateTime<Utc>,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for status in metrics {
        let previous = state.levels.get(&status.metric).copied();
        if let Some(change) = change(previous, status.level) {
            alerts.push(alert(database, status, previous, change, at));
        }
        if let Some(level) = status.level {
            state.levels.insert(status.metric, level);
        }
    }
    alerts
}

/// One metric's value, share of quota, level and projection.
fn measure(
    metric: Metric,
    quota: &Quota,
    storage_bytes: u64,
    requests: Option<&RequestSummary>,
    state: &QuotaState,
    at: DateTime<Utc>,
) -> MetricStatus {
    let value = match metric {
        Metric::Storage => Some(storage_bytes as f64),
        Metric::Operations => requests.map(|r| r.peak_operations_per_second),
        Metric::Writes => requests.map(|r| r.peak_writes_per_second),
        Metric::Throttling => requests.map(|r| r.throttled as f64),
    };
    let limit = quota.limit(metric);
    let level = match (metric, value, limit) {
        (Metric::Throttling, Some(throttled), _) => Some(Level::of_throttled(throttled as u64)),
        (_, Some(value), Some(limit)) => Some(Level::of(value, limit)),
        _ => None,
    };
    MetricStatus {
        metric,
        value,
        quota: limit,
        percent: value.zip(limit).map(|(v, l)| 100.0 * v / l),
        level,
        projection: value
            .zip(limit)
            .map(|(v, l)| project(&state.samples, metric, v, l, at)),
    }
}

/// The alert for `status` moving from `previous` by `change`.
fn alert(
    database: &str,
    status: &MetricStatus,
    previous: Option<Level>,
    change: Change,
    at: DateTime<Utc>,
) -> Alert {
    let level = status.level.unwrap_or(Level::Ok);
    let measured = describe_value(status);
    let headline = match change {
        Change::Recovered => format!("{database} {} back to OK", status.metric.as_str()),
        _ => format!(
            "{database} {} {}",
            status.metric.as_str(),
            level.as_str().to_uppercase()
        ),
    };
    let subject = sns_subject(&format!("[snowcast] {headline}: {measured}"));
    let mut message = format!(
        "Hybrid Table quota, database {database}, {}: {measured}.\nLevel: {} (was {}); warning \
         at 70% of the quota, critical at 90% or on any throttled request.\n",
        status.metric.as_str(),
        level.as_str(),
        previous.map_or("unknown", Level::as_str),
    );
    if let Some(projection) = &status.projection {
        message.push_str(&format!("Projection: {}.\n", projection.describe()));
    }
    if change != Change::Recovered {
        message.push_str(GUIDANCE);
        message.push('\n');
    }
    Alert {
        database: database.to_string(),
        metric: status.metric,
        level,
        previous,
        change,
        at,
        subject,
        message,
    }
}

/// `text` as SNS takes a subject: printable ASCII (others become `?`), fewer than 100
/// characters (cut with `...`).
fn sns_subject(text: &str) -> String {
    let printable: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if printable.len() < SUBJECT_LIMIT {
        return printable;
    }
    format!("{}...", &printable[..SUBJECT_LIMIT - 4])
}

/// `"1.46 TB of 2.00 TB (73.0%)"`, `"6100 operations/s of 8000 (76.2%)"`, `"3 throttled"`.
pub fn describe_value(status: &MetricStatus) -> String {
    let Some(value) = status.value else {
        return "no data in the window yet".into();
    };
    let percent = status
        .percent
        .map(|p| format!(" ({p:.1}%)"))
        .unwrap_or_default();
    match (status.metric, status.quota) {
        (Metric::Storage, Some(quota)) => {
            format!("{:.2} TB of {:.2} TB{percent}", value / 1e12, quota / 1e12)
        }
        (Metric::Operations, Some(quota)) => {
            format!("{value:.0} operations/s of {quota:.0}{percent}")
        }
        (Metric::Writes, Some(quota)) => format!("{value:.0} writes/s of {quota:.0}{percent}"),
        _ => format!("{value:.0} throttled request(s)"),
    }
}

#[cfg(test)]
mod tests;
