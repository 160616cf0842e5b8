//! The quota monitor's configuration, read once at start-up (the Lambda and `snowcast
//! quota` read the same variables).

use std::ops::RangeInclusive;

use chrono::Duration;

use crate::{
    domain::quota::{Quota, Quotas, parse_whole},
    error::{Error, Result},
    lambda::env,
};

/// Longest request window or view lag: a week (the view lags hours, not days).
const MAX_MINUTES: i64 = 7 * 24 * 60;

/// What the monitor watches, against which quotas, over which window.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SNOWCAST_SNOWFLAKE_SECRET`: ARN or name of the Secrets Manager secret (the Lambda;
    /// the CLI takes `--secret`).
    pub secret_id: Option<String>,
    /// `SNOWCAST_SNOWFLAKE_BASE_URL`: overrides the account URL (private link, tests).
    pub base_url: Option<String>,
    /// `SNOWCAST_QUOTA_DATABASES`: comma-separated databases to watch (default: the
    /// secret's database).
    pub databases: Vec<String>,
    /// Quotas: `SNOWCAST_QUOTA_STORAGE_BYTES` (default 2 TB), `..._OPERATIONS_PER_SECOND`
    /// (8,000), `..._WRITES_PER_SECOND` (1,000), and per database
    /// `SNOWCAST_QUOTA_OVERRIDES` (JSON: `{"DB": {"storage_bytes": ..}}`).
    pub quotas: Quotas,
    /// `SNOWCAST_QUOTA_WINDOW_MINUTES` (default 60) and `SNOWCAST_QUOTA_VIEW_LAG_MINUTES`
    /// (default 180, ACCOUNT_USAGE's documented latency).
    pub window: RequestWindow,
    /// `SNOWCAST_QUOTA_STATE`: where history and alert levels are kept, `s3://bucket/prefix`
    /// or a directory.
    pub state: Option<String>,
    /// `SNOWCAST_QUOTA_ALERT_TOPIC`: the SNS topic alerts go to (without it, alerts are
    /// only logged).
    pub alert_topic: Option<String>,
}

/// The request history read on each run: `[at - lag - window, at)`. The view lags by up to
/// `lag`, so the window reaches back far enough to hold `window` minutes of data even when
/// it does; whatever newer data the view already has is read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestWindow {
    /// Minutes of data wanted.
    pub window: Duration,
    /// How far behind the view may be.
    pub lag: Duration,
}

impl Default for RequestWindow {
    fn default() -> Self {
        RequestWindow {
            window: Duration::minutes(60),
            lag: Duration::minutes(180),
        }
    }
}

impl Config {
    /// Reads the variables above.
    pub fn from_env() -> Result<Self> {
        let defaults = Quota::default();
        let storage_bytes = match env::number::<f64>("SNOWCAST_QUOTA_STORAGE_BYTES")? {
            None => defaults.storage_bytes,
            Some(bytes) => parse_whole(bytes).ok_or_else(|| {
                Error::invalid(
                    "SNOWCAST_QUOTA_STORAGE_BYTES",
                    format!("{bytes}: not a whole number"),
                )
            })?,
        };
        let default = Quota {
            storage_bytes,
            operations_per_second: env::number("SNOWCAST_QUOTA_OPERATIONS_PER_SECOND")?
                .unwrap_or(defaults.operations_per_second),
            writes_per_second: env::number("SNOWCAST_QUOTA_WRITES_PER_SECOND")?
                .unwrap_or(defaults.writes_per_second),
        };
        let quotas = Quotas::parse(
            default,
            &env::var("SNOWCAST_QUOTA_OVERRIDES").unwrap_or_default(),
        )?;
        let minutes = |name: &'static str, default: i64, range: RangeInclusive<i64>| {
            match env::number::<i64>(name)? {
                Some(m) if range.contains(&m) => Ok(Duration::minutes(m)),
                Some(m) => Err(Error::invalid(
                    name,
                    format!("{m} minutes: must be {} to {}", range.start(), range.end()),
                )),
                None => Ok(Duration::minutes(default)),
            }
        };
        Ok(Config {
            secret_id: env::var("SNOWCAST_SNOWFLAKE_SECRET"),
            base_url: env::var("SNOWCAST_SNOWFLAKE_BASE_URL"),
            databases: parse_databases(&env::var("SNOWCAST_QUOTA_DATABASES").unwrap_or_default()),
            quotas,
            window: RequestWindow {
                window: minutes("SNOWCAST_QUOTA_WINDOW_MINUTES", 60, 1..=MAX_MINUTES)?,
                lag: minutes("SNOWCAST_QUOTA_VIEW_LAG_MINUTES", 180, 0..=MAX_MINUTES)?,
            },
            state: env::var("SNOWCAST_QUOTA_STATE"),
            alert_topic: env::var("SNOWCAST_QUOTA_ALERT_TOPIC"),
        })
    }
}

impl Config {
    /// The databases to watch: those configured, else `secret_database` (the one the
    /// monitor's credentials name).
    pub fn databases_or(&self, secret_database: &str) -> Vec<String> {
        match self.databases.is_empty() {
            true => parse_databases(secret_database),
            false => self.databases.clone(),
        }
    }
}

/// `"a, B,,c"` -> `["A", "B", "C"]`.
pub fn parse_databases(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}
