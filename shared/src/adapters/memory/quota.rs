//! In-memory twins of the quota ports: usage set by the test, alerts recorded.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    domain::quota::{RequestInterval, TableUsage},
    error::{Error, Result},
    ports::quota::{Alert, AlertSink, UsageSource},
};

/// Usage per database, as a test sets it. A database that was never set has no hybrid
/// tables and no requests; one set to fail answers an error.
#[derive(Debug, Clone, Default)]
pub struct MemoryUsage {
    databases: Arc<Mutex<BTreeMap<String, Result<Usage, String>>>>,
}

#[derive(Debug, Clone, Default)]
struct Usage {
    tables: Vec<TableUsage>,
    requests: Vec<RequestInterval>,
}

impl MemoryUsage {
    /// Sets what `database` reports.
    pub fn set(&self, database: &str, tables: Vec<TableUsage>, requests: Vec<RequestInterval>) {
        self.lock()
            .insert(database.into(), Ok(Usage { tables, requests }));
    }

    /// Makes every read of `database` fail with `message`.
    pub fn fail(&self, database: &str, message: &str) {
        self.lock().insert(database.into(), Err(message.into()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Result<Usage, String>>> {
        self.databases.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn usage(&self, database: &str) -> Result<Usage> {
        match self.lock().get(database).cloned() {
            None => Ok(Usage::default()),
            Some(Ok(usage)) => Ok(usage),
            Some(Err(message)) => Err(Error::Snowflake {
                status: 422,
                code: None,
                sql_state: None,
                message,
            }),
        }
    }
}

#[async_trait]
impl UsageSource for MemoryUsage {
    async fn storage(&self, database: &str) -> Result<Vec<TableUsage>> {
        Ok(self.usage(database)?.tables)
    }

    async fn requests(
        &self,
        database: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RequestInterval>> {
        let mut requests = self.usage(database)?.requests;
        requests.retain(|r| r.start >= from && r.start < to);
        Ok(requests)
    }
}

/// Alerts kept in memory, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryAlerts {
    published: Arc<Mutex<Vec<Alert>>>,
}

impl MemoryAlerts {
    /// Every alert published so far.
    pub fn published(&self) -> Vec<Alert> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl AlertSink for MemoryAlerts {
    async fn publish(&self, alert: &Alert) -> Result<()> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(alert.clone());
        Ok(())
    }
}
