//! snowcast's library: the domain, ports and adapters every Lambda and the CLI share.
//!
//! - [`convert`]: CSV -> silver Parquet with contracts, rejects and a manifest.
//! - [`contract`]: dataset contracts kept in the repo.
//! - [`storage`]: the object-storage port and its local adapter.
//! - [`manifest`]: the converter's report, also the load queue's message.
//! - [`ingest`]: the csv-to-parquet function (S3 events in, silver and manifests out).
//! - [`aws`]: S3 and SQS adapters; [`queue`]: the load-queue port.
//! - [`lambda`], [`metrics`], [`telemetry`]: what every function's handler shares.

pub mod aws;
pub mod config;
pub mod contract;
pub mod convert;
pub mod error;
pub mod ingest;
pub mod lambda;
pub mod manifest;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod queue;
pub mod snowflake;
pub mod storage;
pub mod telemetry;

pub use error::{Error, Result};
