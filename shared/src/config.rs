//! Configuration read from the environment, in one place, once at start-up.
//!
//! Lambdas and the CLI read their settings here so that a bad value fails at init with a
//! clear message rather than on the first event.

use crate::{
    convert::ConvertSettings,
    error::{Error, Result},
};

/// Share of a Lambda's memory the converter budgets for its own buffers; the rest is the
/// runtime, the binary and allocator slack.
const LAMBDA_MEMORY_SHARE: f64 = 0.6;

/// Reads one environment variable; unset and empty are the same.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(name, format!("{value:?} is not a number")))
}

/// Converter settings: `SNOWCAST_MEMORY_BUDGET_MB` if set, else 60% of the Lambda's
/// memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), else 256 MiB; `SNOWCAST_SPILL_DIR` (default
/// the system temp dir, /tmp on Lambda); `SNOWCAST_ZSTD_LEVEL` (default 3).
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
    if let Some(level) = var("SNOWCAST_ZSTD_LEVEL") {
        settings.zstd_level = parse_number("SNOWCAST_ZSTD_LEVEL", &level)?;
    }
    Ok(settings)
}
