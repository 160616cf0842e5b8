//! Quota port: what the quota monitor reads and writes. Adapters: usage from Snowflake
//! (`adapters::snowflake::quota`); state in S3 (`adapters::aws::s3`), a directory
//! (`adapters::local`) or memory; alerts to SNS (`adapters::aws::sns`) or memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::quota::{Change, Level, Metric, QuotaState, RequestInterval, TableUsage},
    error::Result,
};

/// Where a database's Hybrid Table usage is read.
#[async_trait]
pub trait UsageSource: Send + Sync {
    /// Storage of each hybrid table of `database` (none: the database has no hybrid table).
    async fn storage(&self, database: &str) -> Result<Vec<TableUsage>>;

    /// Requests against `database` in the 1-minute intervals starting in `[from, to)`.
    async fn requests(
        &self,
        database: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RequestInterval>>;
}

/// Where the monitor keeps each database's history and alert levels between runs.
#[async_trait]
pub trait QuotaStateStore: Send + Sync {
    /// The state of `database`; the default state when there is none yet.
    async fn load(&self, database: &str) -> Result<QuotaState>;

    /// Replaces the state of `database`.
    async fn save(&self, database: &str, state: &QuotaState) -> Result<()>;
}

/// One alert: a metric of a database changed level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The database.
    pub database: String,
    /// What was measured.
    pub metric: Metric,
    /// The level now.
    pub level: Level,
    /// The level alerted before, if any.
    pub previous: Option<Level>,
    /// What kind of change this is.
    pub change: Change,
    /// When it was observed.
    pub at: DateTime<Utc>,
    /// One-line subject: printable ASCII, fewer than 100 characters (SNS's limit).
    pub subject: String,
    /// The full text, guidance included.
    pub message: String,
}

impl Alert {
    /// The key alerts are deduplicated on: (database, metric, level).
    pub fn dedup_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.database,
            self.metric.as_str(),
            self.level.as_str()
        )
    }
}

/// Where alerts go.
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Publishes one alert.
    async fn publish(&self, alert: &Alert) -> Result<()>;
}
