//! The manifest: one per source object, the converter's account of what it did.
//!
//! The converter writes it to `_manifests/...` and sends it on the load queue; the
//! snowpipe-notifier and `snowcast load` read it back. One type serves both sides, so the
//! message contract cannot drift. The invariant `rows_read == rows_written + rows_rejected`
//! holds for every manifest: nothing is dropped silently.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::ColumnSpec;

/// Current manifest layout version.
pub const MANIFEST_VERSION: u32 = 1;

/// Whether the file's rows went to silver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Rows were written to silver (some may have been rejected individually).
    Accepted,
    /// The whole file was quarantined; no Parquet was written.
    Rejected,
}

/// What was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// Where the CSV came from (`s3://bucket/key` or a local path).
    pub key: String,
    /// Identity of the source object; part of every output key.
    pub fingerprint: String,
    pub compression: Option<String>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    /// Bytes of text after decompression and decoding.
    pub text_bytes: u64,
}

/// One silver Parquet object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Key relative to the silver root (Snowpipe paths are relative to the stage).
    pub key: String,
    /// Full location (path or `s3://` URI).
    pub uri: String,
    /// Hive partition directory, e.g. `date=2024-03-01`.
    pub partition: Option<String>,
    pub rows: u64,
    pub bytes: u64,
}

/// Milliseconds spent per phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Reading, parsing and encoding (and spilling).
    pub convert_ms: u64,
    /// Writing buffered partitions, committing objects.
    pub finalize_ms: u64,
    pub total_ms: u64,
}

/// The converter's report for one source object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub status: Status,
    /// Why the file was rejected, or `None`.
    pub reason: Option<String>,
    pub tenant_id: String,
    pub dataset: String,
    /// The contract applied, or `None` when column types were sniffed.
    pub contract: Option<String>,
    pub source: SourceSummary,
    /// Columns of the silver files (before the lineage columns).
    pub columns: Vec<ColumnSpec>,
    /// Contract columns absent from the header (filled with NULL).
    pub missing_columns: Vec<String>,
    /// Header columns the contract does not name (kept as strings).
    pub extra_columns: Vec<String>,
    /// Data rows read (the header is not a row).
    pub rows_read: u64,
    pub rows_written: u64,
    /// Rows not written: the invalid rows, or every row when the file was rejected.
    pub rows_rejected: u64,
    /// Rows that failed validation (each one is in the reject file).
    pub rows_invalid: u64,
    pub files: Vec<ManifestFile>,
    /// Location of the reject file, or `None` when no row was invalid.
    pub rejects: Option<String>,
    /// Hive partitions written.
    pub partitions: Vec<String>,
    /// Value of `_ingested_at` in every row.
    pub ingested_at: DateTime<Utc>,
    pub spilled_bytes: u64,
    pub timings: Timings,
}

impl Manifest {
    pub fn is_accepted(&self) -> bool {
        self.status == Status::Accepted
    }

    /// Bytes of Parquet written.
    pub fn bytes_written(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
