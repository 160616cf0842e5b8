//! Loading port: hands silver files of a dataset to the warehouse, and reports how their
//! loads ended. Adapters: Snowpipe (`adapters::snowflake::snowpipe`), memory
//! (`adapters::memory`).
//!
//! Adapters split what they are handed into the requests their warehouse takes, and stop
//! at the first request that fails: the files before it were accepted, none after it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::manifest::LoadFile,
    error::{Error, Result},
};

/// What handing files to the warehouse took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Files accepted.
    pub files: usize,
    /// Requests made.
    pub calls: usize,
    /// Requests resent after a throttle or a fault.
    pub retries: usize,
}

/// A load that stopped: the first `summary.files` files were accepted, the others not.
#[derive(Debug)]
pub struct LoadFailure {
    /// What was done before the failure (the failed request and its retries included).
    pub summary: LoadSummary,
    /// Why it stopped.
    pub error: Error,
}

/// How one file's load ended, as the warehouse recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileLoad {
    /// The dataset whose table it was loaded into.
    pub dataset: String,
    /// Path relative to the silver root (the stage).
    pub path: String,
    /// `LOADED`, `LOAD_FAILED`, `PARTIALLY_LOADED`, ...
    pub status: String,
    /// The warehouse's first error, if any.
    pub first_error: Option<String>,
    /// Rows the warehouse parsed from the file.
    pub rows_parsed: Option<u64>,
    /// Rows it inserted.
    pub rows_inserted: Option<u64>,
    /// When the warehouse recorded the attempt (with the path, it names the attempt).
    pub last_insert_time: Option<String>,
}

impl FileLoad {
    /// Whether the file's rows are all in the table.
    pub fn loaded(&self) -> bool {
        self.status == "LOADED"
    }

    /// Whether the load ended without all the rows (a failure to act on).
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "LOAD_FAILED" | "PARTIALLY_LOADED")
    }
}

/// Hands silver files to the warehouse.
#[async_trait]
pub trait Loader: Send + Sync {
    /// Whether `dataset` has somewhere to load into.
    fn accepts(&self, dataset: &str) -> bool;

    /// Loads `files` (keys relative to the silver root) into `dataset`'s table.
    async fn load(&self, dataset: &str, files: &[LoadFile]) -> Result<LoadSummary, LoadFailure>;

    /// How the loads that ended in `[from, to)` went, for every dataset.
    async fn history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<FileLoad>>;
}
