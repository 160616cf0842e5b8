//! Services: one module per function, the logic its Lambda (and the CLI) runs, over ports.
//!
//! - [`api`]: the forecast HTTP API of edit-api and forecast-reader (feature `http`).
//! - [`csv_to_parquet`]: S3 notifications in, silver Parquet out, load messages announced
//!   (feature `convert`).
//! - [`quota_monitor`]: Hybrid Table usage against quotas: metrics, projections, alerts.
//! - [`snowpipe_notifier`]: load messages to the loader, and the load audit.
//!
//! Each has its own `config` read from the environment. May import: `convert`, `ports`,
//! `domain`, `lambda`, `error`; never an adapter (the function's `main` wires adapters in).

#[cfg(feature = "http")]
pub mod api;
#[cfg(feature = "convert")]
pub mod csv_to_parquet;
pub mod quota_monitor;
pub mod snowpipe_notifier;
