//! Configuration read from the environment, in one place, once at start-up.
//!
//! Lambdas and the CLI read their settings here so that a bad value fails at init with a
//! clear message rather than on the first event.

use std::time::Duration;

use crate::{
    aws::s3::S3Uri,
    convert::ConvertSettings,
    error::{Error, Result},
    ingest::IngestSettings,
    notify::PipeMap,
};

/// Share of a Lambda's memory the converter budgets for its own buffers; the rest is the
/// runtime, the binary and allocator slack.
const LAMBDA_MEMORY_SHARE: f64 = 0.6;

/// Reads one environment variable; unset and empty are the same.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads a variable that must be set.
pub fn required(name: &'static str) -> Result<String> {
    var(name).ok_or_else(|| Error::invalid(name, "is not set"))
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(name, format!("{value:?} is not a boolean"))),
    }
}

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(name, format!("{value:?} is not a number")))
}

/// Converter settings: `SNOWCAST_MEMORY_BUDGET_MB` if set, else 60% of the Lambda's
/// memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), else 256 MiB; `SNOWCAST_SPILL_DIR` (default
/// the system temp dir, /tmp on Lambda); `SNOWCAST_MAX_SPILL_MB` (default 4096; set it
/// below the function's ephemeral storage); `SNOWCAST_ZSTD_LEVEL` (default 3).
pub fn convert_settings() -> Result<ConvertSettings> {
    let mut settings = ConvertSettings::default();
    if let Some(mb) = var("SNOWCAST_MEMORY_BUDGET_MB") {
        settings.memory_budget = parse_number::<usize>("SNOWCAST_MEMORY_BUDGET_MB", &mb)? << 20;
    } else if let Some(mb) = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        let mb: f64 = parse_number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &mb)?;
        settings.memory_budget = (mb * LAMBDA_MEMORY_SHARE) as usize * (1 << 20);
    }
    if let Some(dir) = var("SNOWCAST_SPILL_DIR") {
        settings.spill_dir = dir.into();
    }
    if let Some(mb) = var("SNOWCAST_MAX_SPILL_MB") {
        settings.max_spill_bytes = parse_number::<u64>("SNOWCAST_MAX_SPILL_MB", &mb)? << 20;
    }
    if let Some(level) = var("SNOWCAST_ZSTD_LEVEL") {
        settings.zstd_level = parse_number("SNOWCAST_ZSTD_LEVEL", &level)?;
    }
    Ok(settings)
}

/// The csv-to-parquet function's configuration.
#[derive(Debug, Clone)]
pub struct CsvToParquetConfig {
    /// Silver root: `SNOWCAST_SILVER_BUCKET` (a bucket name, or `s3://bucket/prefix`).
    pub silver: S3Uri,
    /// `SNOWCAST_LOAD_QUEUE_URL`: where manifests are announced.
    pub load_queue_url: String,
    pub ingest: IngestSettings,
}

/// Reads [`CsvToParquetConfig`]: the two variables above, [`convert_settings`],
/// `SNOWCAST_STRICT_CONTRACTS` (default false) and `SNOWCAST_DEADLINE_MARGIN_SECS`
/// (default 10).
pub fn csv_to_parquet() -> Result<CsvToParquetConfig> {
    let silver = required("SNOWCAST_SILVER_BUCKET")?;
    let silver = match S3Uri::parse(&silver) {
        Some(uri) => uri?,
        None => S3Uri {
            bucket: silver,
            key: String::new(),
        },
    };
    let mut ingest = IngestSettings {
        convert: convert_settings()?,
        ..IngestSettings::default()
    };
    if let Some(strict) = var("SNOWCAST_STRICT_CONTRACTS") {
        ingest.strict_contracts = parse_bool("SNOWCAST_STRICT_CONTRACTS", &strict)?;
    }
    if let Some(secs) = var("SNOWCAST_DEADLINE_MARGIN_SECS") {
        ingest.deadline_margin =
            Duration::from_secs(parse_number("SNOWCAST_DEADLINE_MARGIN_SECS", &secs)?);
    }
    Ok(CsvToParquetConfig {
        silver,
        load_queue_url: required("SNOWCAST_LOAD_QUEUE_URL")?,
        ingest,
    })
}

/// The snowpipe-notifier's configuration.
#[derive(Debug, Clone)]
pub struct SnowpipeNotifierConfig {
    /// `SNOWCAST_SNOWFLAKE_SECRET`: ARN or name of the Secrets Manager secret.
    pub secret_id: String,
    /// `SNOWCAST_PIPES` (`dataset=DB.SCHEMA.PIPE,...`), `SNOWCAST_PIPE_SCOPE` (`DB.SCHEMA`
    /// of `<DATASET>_PIPE` for datasets not listed) and `SNOWCAST_PIPE_DATASETS` (which
    /// datasets have such a pipe; default: those with a built-in contract).
    pub pipes: PipeMap,
    /// `SNOWCAST_SNOWFLAKE_BASE_URL`: overrides the account URL (private link, tests).
    pub base_url: Option<String>,
    /// `SNOWCAST_LOAD_AUDIT_MINUTES`: the load audit's schedule period (default 15).
    pub audit_period: chrono::Duration,
}

/// Reads [`SnowpipeNotifierConfig`].
pub fn snowpipe_notifier() -> Result<SnowpipeNotifierConfig> {
    Ok(SnowpipeNotifierConfig {
        secret_id: required("SNOWCAST_SNOWFLAKE_SECRET")?,
        pipes: PipeMap::parse(
            &var("SNOWCAST_PIPES").unwrap_or_default(),
            var("SNOWCAST_PIPE_SCOPE"),
            var("SNOWCAST_PIPE_DATASETS").as_deref(),
        )?,
        base_url: var("SNOWCAST_SNOWFLAKE_BASE_URL"),
        audit_period: match var("SNOWCAST_LOAD_AUDIT_MINUTES") {
            Some(minutes) => {
                chrono::Duration::minutes(parse_number("SNOWCAST_LOAD_AUDIT_MINUTES", &minutes)?)
            }
            None => crate::notify::DEFAULT_AUDIT_PERIOD,
        },
    })
}
