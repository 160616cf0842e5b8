//! The csv-to-parquet function's configuration, read once at start-up.

use std::time::Duration;

use super::IngestSettings;
use crate::{convert::ConvertSettings, error::Result, lambda::env};

/// What csv-to-parquet is wired to and how it converts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Silver root: `SNOWCAST_SILVER_BUCKET` (a bucket name, or `s3://bucket/prefix`).
    pub silver: String,
    /// `SNOWCAST_LOAD_QUEUE_URL`: where load messages are announced.
    pub load_queue_url: String,
    /// How objects are converted.
    pub ingest: IngestSettings,
}

impl Config {
    /// The two variables above, [`ConvertSettings::from_env`], `SNOWCAST_STRICT_CONTRACTS`
    /// (default false) and `SNOWCAST_DEADLINE_MARGIN_SECS` (default 10).
    pub fn from_env() -> Result<Self> {
        let mut ingest = IngestSettings {
            convert: ConvertSettings::from_env()?,
            ..IngestSettings::default()
        };
        if let Some(strict) = env::boolean("SNOWCAST_STRICT_CONTRACTS")? {
            ingest.strict_contracts = strict;
        }
        if let Some(secs) = env::number("SNOWCAST_DEADLINE_MARGIN_SECS")? {
            ingest.deadline_margin = Duration::from_secs(secs);
        }
        Ok(Config {
            silver: env::required("SNOWCAST_SILVER_BUCKET")?,
            load_queue_url: env::required("SNOWCAST_LOAD_QUEUE_URL")?,
            ingest,
        })
    }
}
