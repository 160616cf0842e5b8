//! The snowpipe-notifier's configuration, read once at start-up.

use chrono::Duration;

use super::DEFAULT_AUDIT_PERIOD;
use crate::{error::Result, lambda::env};

/// Where the notifier's credentials are, which pipes load what, and the audit's period.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SNOWCAST_SNOWFLAKE_SECRET`: ARN or name of the Secrets Manager secret.
    pub secret_id: String,
    /// `SNOWCAST_PIPES`: `dataset=DB.SCHEMA.PIPE,...` for pipes not named `<DATASET>_PIPE`.
    pub pipes: String,
    /// `SNOWCAST_PIPE_SCOPE`: `DB.SCHEMA` of the `<DATASET>_PIPE` pipes.
    pub pipe_scope: Option<String>,
    /// `SNOWCAST_PIPE_DATASETS`: the datasets with such a pipe (default: those with a
    /// built-in contract).
    pub pipe_datasets: Option<String>,
    /// `SNOWCAST_SNOWFLAKE_BASE_URL`: overrides the account URL (private link, tests).
    pub base_url: Option<String>,
    /// `SNOWCAST_LOAD_AUDIT_MINUTES`: the load audit's schedule period (default 15).
    pub audit_period: Duration,
}

impl Config {
    /// Reads the variables above.
    pub fn from_env() -> Result<Self> {
        Ok(Config {
            secret_id: env::required("SNOWCAST_SNOWFLAKE_SECRET")?,
            pipes: env::var("SNOWCAST_PIPES").unwrap_or_default(),
            pipe_scope: env::var("SNOWCAST_PIPE_SCOPE"),
            pipe_datasets: env::var("SNOWCAST_PIPE_DATASETS"),
            base_url: env::var("SNOWCAST_SNOWFLAKE_BASE_URL"),
            audit_period: env::number("SNOWCAST_LOAD_AUDIT_MINUTES")?
                .map_or(DEFAULT_AUDIT_PERIOD, Duration::minutes),
        })
    }
}
