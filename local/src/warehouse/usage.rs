//! What the quota monitor reads locally: the hybrid tables' storage in the warehouse, and
//! the API's requests per minute (Snowflake counts them in `AGGREGATE_QUERY_HISTORY`; here
//! the API records them as it answers). Alerts go to `alerts.jsonl` in the data directory
//! and to the log.

use std::{collections::BTreeMap, io::Write, path::PathBuf, sync::Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use snowcast::{
    domain::quota::{RequestInterval, TableUsage},
    error::{Error, Result},
    ports::quota::{Alert, AlertSink, UsageSource},
};

use super::{Shared, blocking, failed, hybrid_tables};

/// The warehouse's database, as the monitor names it.
pub const DATABASE: &str = "SNOWCAST";
/// How long request counts are kept (the monitor reads the last hour or so).
const KEPT: Duration = Duration::hours(6);

/// The API's requests per minute.
#[derive(Debug, Default)]
pub struct RequestLog {
    minutes: Mutex<BTreeMap<DateTime<Utc>, RequestInterval>>,
}

impl RequestLog {
    /// Counts one answered request: a write unless it only read, throttled if it was
    /// refused for the rate limit.
    pub fn record(&self, at: DateTime<Utc>, write: bool, throttled: bool) {
        let start = at.duration_trunc(Duration::minutes(1)).unwrap_or(at);
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let interval = minutes.entry(start).or_insert(RequestInterval {
            start,
            calls: 0,
            writes: 0,
            throttled: 0,
        });
        interval.calls += 1;
        interval.writes += u64::from(write);
        interval.throttled += u64::from(throttled);
        let oldest = start - KEPT;
        minutes.retain(|minute, _| *minute >= oldest);
    }

    fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<RequestInterval> {
        let minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        minutes
            .range(from..to)
            .map(|(_, interval)| *interval)
            .collect()
    }
}

/// Usage of the local warehouse.
pub struct LocalUsage {
    connection: Shared,
    requests: std::sync::Arc<RequestLog>,
}

impl LocalUsage {
    /// Storage read on `connection`, requests from `requests`.
    pub fn new(connection: Shared, requests: std::sync::Arc<RequestLog>) -> Self {
        LocalUsage {
            connection,
            requests,
        }
    }
}

#[async_trait]
impl UsageSource for LocalUsage {
    async fn storage(&self, database: &str) -> Result<Vec<TableUsage>> {
        if !database.eq_ignore_ascii_case(DATABASE) {
            return Ok(Vec::new());
        }
        blocking(
            &self.connection,
            "measuring the hybrid tables",
            |connection| {
                hybrid_tables()
                    .into_iter()
                    .map(|(schema, name)| {
                        // The rows' text size: what a row store holds, near enough for a
                        // quota measured in gigabytes.
                        let sql = format!(
                            "SELECT count(*), COALESCE(sum(strlen(CAST(t AS VARCHAR))), 0) \
                         FROM SNOWCAST.{schema}.{name} t"
                        );
                        let (rows, bytes): (i64, i64) = connection
                            .query_row(&sql, [], |row| Ok((row.get(0)?, row.get(1)?)))
                            .map_err(failed(format!("measuring {schema}.{name}")))?;
                        Ok(TableUsage {
                            schema,
                            name,
                            bytes: bytes.max(0) as u64,
                            row_count: Some(rows.max(0) as u64),
                        })
                    })
                    .collect()
            },
        )
        .await
    }

    async fn requests(
        &self,
        database: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RequestInterval>> {
        if !database.eq_ignore_ascii_case(DATABASE) {
            return Ok(Vec::new());
        }
        Ok(self.requests.between(from, to))
    }
}

/// Alerts appended to a JSON-lines file and logged.
pub struct FileAlerts {
    path: PathBuf,
}

impl FileAlerts {
    /// Alerts appended to `path`.
    pub fn new(path: PathBuf) -> Self {
        FileAlerts { path }
    }
}

#[async_trait]
impl AlertSink for FileAlerts {
    async fn publish(&self, alert: &Alert) -> Result<()> {
        tracing::warn!(subject = alert.subject, "quota alert");
        eprintln!("snowcast up: quota alert: {}", alert.subject);
        let line = format!("{}\n", serde_json::to_string(alert)?);
        let io = |e| Error::io(format!("appending to {}", self.path.display()), e);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::warehouse::Warehouse;

    #[tokio::test]
    async fn storage_counts_the_hybrid_tables_and_requests_come_by_the_minute() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path()).unwrap();
        warehouse
            .api()
            .lock()
            .unwrap()
            .execute_batch(
                "INSERT INTO SNOWCAST.APP.USER_PREFS_HT VALUES \
                 ('acme', 'ann', 'theme', '\"dark\"', CURRENT_TIMESTAMP)",
            )
            .unwrap();
        let log = Arc::new(RequestLog::default());
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        log.record(at, false, false);
        log.record(at, true, false);
        log.record(at + Duration::minutes(1), true, true);
        let usage = LocalUsage::new(warehouse.api(), log);
        let tables = usage.storage("snowcast").await.unwrap();
        let prefs = tables.iter().find(|t| t.name == "USER_PREFS_HT").unwrap();
        assert_eq!(prefs.row_count, Some(1));
        assert!(prefs.bytes > 20, "{prefs:?}");
        assert!(tables.iter().any(|t| t.name == "MANUAL_EDITS_HT"));
        assert!(usage.storage("OTHER").await.unwrap().is_empty());
        let minutes = usage
            .requests(DATABASE, at - Duration::hours(1), at + Duration::hours(1))
            .await
            .unwrap();
        let counts: Vec<(u64, u64, u64)> = minutes
            .iter()
            .map(|m| (m.calls, m.writes, m.throttled))
            .collect();
        assert_eq!(counts, [(2, 1, 0), (1, 1, 1)]);
    }
}
