//! The manifest: one per source object, the converter's account of what it did.
//!
//! The converter writes it to `_manifests/...`; `snowcast load` reads it back. What goes on
//! the load queue is a [`LoadMessage`]: the manifest's files (a manifest can be any size,
//! with 20,000 partitions or columns; a queue message cannot), split so that every message
//! fits. One module defines both sides of the message, so the contract cannot drift. The
//! invariant `rows_read == rows_written + rows_rejected` holds for every manifest: nothing
//! is dropped silently.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::contract::ColumnSpec;

/// Current manifest layout version.
pub const MANIFEST_VERSION: u32 = 1;
/// Largest serialised load message: SQS takes 1 MiB today, 256 KiB by default on queues
/// created before 2025; a message stays below both.
pub const MAX_LOAD_MESSAGE_BYTES: usize = 200 << 10;

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
    /// Compression detected (`none`, `gzip`, `zstd`).
    pub compression: Option<String>,
    /// Text encoding detected.
    pub encoding: Option<String>,
    /// Field delimiter used.
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
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// Milliseconds spent per phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Reading, parsing and encoding (and spilling).
    pub convert_ms: u64,
    /// Writing buffered partitions, committing objects.
    pub finalize_ms: u64,
    /// The whole conversion.
    pub total_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The converter's report for one source object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Accepted or rejected.
    pub status: Status,
    /// Why the file was rejected, or `None`.
    pub reason: Option<String>,
    /// The tenant.
    pub tenant_id: String,
    /// The dataset.
    pub dataset: String,
    /// The contract applied, or `None` when column types were sniffed.
    pub contract: Option<String>,
    /// What was read.
    pub source: SourceSummary,
    /// Columns of the silver files (before the lineage columns).
    pub columns: Vec<ColumnSpec>,
    /// Contract columns absent from the header (filled with NULL).
    pub missing_columns: Vec<String>,
    /// Header columns the contract does not name (kept as strings).
    pub extra_columns: Vec<String>,
    /// Data rows read (the header is not a row).
    pub rows_read: u64,
    /// Rows written to silver.
    pub rows_written: u64,
    /// Rows not written: the invalid rows, or every row when the file was rejected.
    pub rows_rejected: u64,
    /// Rows that failed validation (each one is in the reject file).
    pub rows_invalid: u64,
    /// The silver files written.
    pub files: Vec<ManifestFile>,
    /// Location of the reject file, or `None` when no row was invalid.
    pub rejects: Option<String>,
    /// Rejected rows counted but not listed in the reject file (it reached its size limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejects_omitted: u64,
    /// Hive partitions written.
    pub partitions: Vec<String>,
    /// Value of `_ingested_at` in every row.
    pub ingested_at: DateTime<Utc>,
    /// Bytes partitioning spilled to disk.
    pub spilled_bytes: u64,
    /// Where the time went.
    pub timings: Timings,
}

impl Manifest {
    /// The manifest of a conversion about to start: accepted, nothing read yet.
    pub fn new(
        tenant_id: &str,
        dataset: &str,
        contract: Option<&str>,
        source_key: &str,
        fingerprint: &str,
        ingested_at: DateTime<Utc>,
    ) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            status: Status::Accepted,
            reason: None,
            tenant_id: tenant_id.to_string(),
            dataset: dataset.to_string(),
            contract: contract.map(str::to_string),
            source: SourceSummary {
                key: source_key.to_string(),
                fingerprint: fingerprint.to_string(),
                compression: None,
                encoding: None,
                delimiter: None,
                text_bytes: 0,
            },
            columns: Vec::new(),
            missing_columns: Vec::new(),
            extra_columns: Vec::new(),
            rows_read: 0,
            rows_written: 0,
            rows_rejected: 0,
            rows_invalid: 0,
            rejects_omitted: 0,
            files: Vec::new(),
            rejects: None,
            partitions: Vec::new(),
            ingested_at,
            spilled_bytes: 0,
            timings: Timings::default(),
        }
    }

    /// Whether rows went to silver.
    pub fn is_accepted(&self) -> bool {
        self.status == Status::Accepted
    }

    /// Records the committed silver files and derives the counts and partitions from them.
    pub fn record_files(&mut self, files: Vec<ManifestFile>) {
        self.rows_written = files.iter().map(|f| f.rows).sum();
        self.rows_rejected = self.rows_read.saturating_sub(self.rows_written);
        self.partitions = files.iter().filter_map(|f| f.partition.clone()).collect();
        self.partitions.dedup();
        self.files = files;
    }

    /// Bytes of Parquet written.
    pub fn bytes_written(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// A silver file to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFile {
    /// Key relative to the silver root (the stage).
    pub key: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// What the load queue carries: the files of an accepted manifest, or a part of them.
///
/// A manifest sent whole (the message of earlier versions) reads as a one-part message, so
/// messages queued before an upgrade still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadMessage {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The tenant.
    pub tenant_id: String,
    /// The dataset.
    pub dataset: String,
    /// Where the whole manifest is, relative to the silver root.
    #[serde(default)]
    pub manifest_key: Option<String>,
    /// This message's number (0-based) among `parts`.
    #[serde(default)]
    pub part: u32,
    /// How many messages announce the manifest.
    #[serde(default = "one")]
    pub parts: u32,
    /// The files to load.
    pub files: Vec<LoadFile>,
}

fn one() -> u32 {
    1
}

impl Manifest {
    /// The load messages announcing this manifest's files, each under
    /// [`MAX_LOAD_MESSAGE_BYTES`] serialised; none for a rejected or empty manifest.
    pub fn load_messages(&self, manifest_key: &str) -> Vec<LoadMessage> {
        if !self.is_accepted() || self.files.is_empty() {
            return Vec::new();
        }
        let message = |files: Vec<LoadFile>| LoadMessage {
            version: MANIFEST_VERSION,
            tenant_id: self.tenant_id.clone(),
            dataset: self.dataset.clone(),
            manifest_key: Some(manifest_key.to_string()),
            part: 0,
            parts: 1,
            files,
        };
        // The envelope, plus a margin for the part numbers filled in below.
        let envelope = serde_json::to_vec(&message(Vec::new())).map_or(1024, |v| v.len()) + 64;
        let mut groups: Vec<Vec<LoadFile>> = vec![Vec::new()];
        let mut size = envelope;
        for file in &self.files {
            let entry = LoadFile {
                key: file.key.clone(),
                bytes: file.bytes,
            };
            // The key as JSON text, quotes and escapes included, plus the field names.
            let entry_size = serde_json::to_vec(&entry).map_or(file.key.len() * 6, |v| v.len()) + 1;
            let current = groups.last().map_or(0, Vec::len);
            if current > 0 && size + entry_size > MAX_LOAD_MESSAGE_BYTES {
                groups.push(Vec::new());
                size = envelope;
            }
            size += entry_size;
            if let Some(group) = groups.last_mut() {
                group.push(entry);
            }
        }
        let parts = groups.len() as u32;
        groups
            .into_iter()
            .enumerate()
            .map(|(part, files)| LoadMessage {
                part: part as u32,
                parts,
                ..message(files)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: usize, key_len: usize) -> Manifest {
        let file = |i: usize| ManifestFile {
            key: format!(
                "sales/tenant_id=acme/date={i:05}/{}-{i}.parquet",
                "x".repeat(key_len)
            ),
            uri: String::new(),
            partition: Some(format!("date={i}")),
            rows: 1,
            bytes: 1000,
        };
        let mut manifest = Manifest::new(
            "acme",
            "sales",
            None,
            "s3://b/k",
            "f",
            DateTime::from_timestamp(0, 0).unwrap_or_default(),
        );
        manifest.rows_read = files as u64;
        manifest.record_files((0..files).map(file).collect());
        manifest
    }

    /// Finding 6: ~3,700 partitions made one manifest message too large for SQS.
    #[test]
    fn manifest_over_sqs_limit_is_announced_in_parts_that_fit() {
        for (files, key_len) in [(1, 10), (20_000, 10), (3_000, 900)] {
            let manifest = manifest(files, key_len);
            let messages = manifest.load_messages("_manifests/m.json");
            let sizes: Vec<usize> = messages
                .iter()
                .map(|m| serde_json::to_vec(m).unwrap().len())
                .collect();
            assert!(
                sizes.iter().all(|&s| s <= MAX_LOAD_MESSAGE_BYTES),
                "{files} files: {:?}",
                sizes.iter().max()
            );
            let keys: Vec<&str> = messages
                .iter()
                .flat_map(|m| m.files.iter().map(|f| f.key.as_str()))
                .collect();
            let expected: Vec<&str> = manifest.files.iter().map(|f| f.key.as_str()).collect();
            assert_eq!(keys, expected, "every file once, in order");
            assert!(
                messages
                    .iter()
                    .enumerate()
                    .all(|(i, m)| m.part == i as u32 && m.parts == messages.len() as u32)
            );
        }
    }

    #[test]
    fn a_whole_manifest_reads_as_a_one_part_message() {
        let manifest = manifest(2, 4);
        let message: LoadMessage =
            serde_json::from_slice(&serde_json::to_vec(&manifest).unwrap()).unwrap();
        assert_eq!(
            (message.part, message.parts, message.files.len()),
            (0, 1, 2)
        );
        assert_eq!(message.manifest_key, None);
    }
}
