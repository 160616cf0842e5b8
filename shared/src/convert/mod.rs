//! CSV -> Parquet conversion: the core of the csv-to-parquet Lambda and `snowcast convert`.
//!
//! An async byte stream goes in (any size; it is never held whole), Parquet objects and a
//! reject log come out through an [`ObjectSink`], and a [`Manifest`] accounts for every row.
//! No AWS types appear here: the Lambda and the CLI bring the stream and the sink.
//!
//! Steps: detect compression and encoding, sample the first MiB to find the delimiter and
//! header (and types, for a dataset without contract), then split records incrementally,
//! validate each row into typed Arrow columns, and write silver Parquet. Parquet is
//! committed only after the whole file is judged: above the contract's reject threshold,
//! nothing but the reject log and the manifest is written.

mod columns;
mod input;
mod output;
mod records;
mod values;

use std::{path::PathBuf, time::Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use columns::{INGESTED_AT, SOURCE_KEY, SOURCE_ROW, TENANT_ID};
pub use input::{ByteSource, Compression, DetectedEncoding};

use self::{
    columns::{FieldRules, Lineage, NullTokens, RowBatcher},
    input::TextReader,
    output::{ParquetSeries, PartitionedWriter, Partitioner, RejectLog, SilverWriter},
    records::{Record, RecordSplitter},
};
use crate::{
    contract::{self, ColumnSpec, Contract, TextEncoding},
    error::{Error, Result},
    manifest::{MANIFEST_VERSION, Manifest, ManifestFile, SourceSummary, Status, Timings},
    naming,
    storage::ObjectSink,
};

/// Text sampled before conversion starts, to sniff the delimiter, header and types.
const SAMPLE_BYTES: usize = 1 << 20;
/// Rows used to sniff column types of a dataset without a contract.
const SNIFF_ROWS: usize = 1000;
/// Rows between checks of a batch's byte size.
const SIZE_CHECK_ROWS: usize = 1024;

/// Resource limits and output tuning.
#[derive(Debug, Clone)]
pub struct ConvertSettings {
    /// Bytes the conversion may hold in memory (buffers, row groups, upload parts).
    pub memory_budget: usize,
    /// A Parquet file is closed and a new one started past this size (Snowflake loads
    /// 100-250 MB compressed files best).
    pub target_file_bytes: usize,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Bytes per Arrow batch (whichever limit comes first).
    pub batch_bytes: usize,
    pub zstd_level: i32,
    /// Where partitioned data spills when it outgrows the budget (Lambda: /tmp).
    pub spill_dir: PathBuf,
    /// Bytes handed to an upload at a time (S3 parts must be at least 5 MiB).
    pub upload_chunk_bytes: usize,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        ConvertSettings {
            memory_budget: 256 << 20,
            target_file_bytes: 200 << 20,
            batch_rows: 32 * 1024,
            batch_bytes: 4 << 20,
            zstd_level: 3,
            spill_dir: std::env::temp_dir(),
            upload_chunk_bytes: 8 << 20,
        }
    }
}

impl ConvertSettings {
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = dir.into();
        self
    }

    pub fn with_target_file_bytes(mut self, bytes: usize) -> Self {
        self.target_file_bytes = bytes;
        self
    }

    /// Bytes of partitioned batches held before spilling.
    pub fn buffer_limit(&self) -> usize {
        self.memory_budget / 3
    }

    /// Encoded bytes of a row group before it is flushed. The flush briefly holds it twice.
    pub fn row_group_bytes(&self) -> usize {
        (self.memory_budget / 8).clamp(4 << 20, 128 << 20)
    }
}

/// The source object being converted.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Where it lives (`s3://bucket/key` or a path); written to `_source_key`.
    pub key: String,
    /// Short hash of the object's identity; see [`fingerprint`].
    pub fingerprint: String,
}

impl SourceInfo {
    /// An S3 object, identified by bucket, key, ETag and version (the same for the Lambda
    /// and the CLI, so both write the same keys for the same object).
    pub fn s3(bucket: &str, key: &str, etag: &str, version_id: Option<&str>) -> Self {
        SourceInfo {
            key: format!("s3://{bucket}/{key}"),
            fingerprint: fingerprint(&[
                bucket,
                key,
                etag.trim_matches('"'),
                version_id.unwrap_or(""),
            ]),
        }
    }
}

/// Fingerprint of a source object from its identity (bucket, key, ETag or version; or path,
/// size, mtime): the same object always gets the same output keys.
pub fn fingerprint(identity: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in identity {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Object keys of one conversion, all derived from tenant, dataset and source.
#[derive(Debug, Clone)]
pub struct OutputKeys {
    /// `<dataset>/tenant_id=<t>/`
    pub data_prefix: String,
    /// `<name>-<fingerprint>`
    pub stem: String,
    pub rejects: String,
    pub manifest: String,
    /// Record that the manifest was sent to the load queue (written by the Lambda).
    pub announcement: String,
}

impl OutputKeys {
    pub fn new(tenant: &str, dataset: &str, source: &SourceInfo) -> Self {
        let stem = format!(
            "{}-{}",
            naming::source_stem(&source.key),
            source.fingerprint
        );
        let scope = format!("{dataset}/tenant_id={tenant}");
        OutputKeys {
            data_prefix: format!("{scope}/"),
            rejects: format!("_rejects/{scope}/{stem}.jsonl"),
            manifest: format!("_manifests/{scope}/{stem}.json"),
            announcement: format!("_announced/{scope}/{stem}.json"),
            stem,
        }
    }
}

/// Converts one CSV object of one tenant's dataset.
#[derive(Debug, Clone)]
pub struct Converter {
    tenant: String,
    dataset: String,
    contract: Option<Contract>,
    strict: bool,
    source: SourceInfo,
    ingested_at: DateTime<Utc>,
    settings: ConvertSettings,
}

/// Why a conversion stopped before the end of the input.
enum Stop {
    /// The file as a whole is unacceptable.
    Reject(String),
    /// An operational failure.
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        match error {
            Error::MalformedText { message } => Stop::Reject(message),
            other => Stop::Fail(other),
        }
    }
}

/// What the first MiB told us.
struct Plan {
    delimiter: u8,
    columns: Vec<ColumnSpec>,
    sources: Vec<Option<usize>>,
    header_width: usize,
    missing: Vec<String>,
    extra: Vec<String>,
}

impl Converter {
    /// A converter for `tenant`'s `dataset`, with the dataset's built-in contract if any.
    pub fn try_new(tenant: &str, dataset: &str, source: SourceInfo) -> Result<Self> {
        naming::validate_tenant(tenant)?;
        naming::validate_dataset(dataset)?;
        Ok(Converter {
            tenant: tenant.to_string(),
            dataset: dataset.to_string(),
            contract: contract::builtin(dataset).transpose()?,
            strict: false,
            source,
            ingested_at: to_micros(Utc::now()),
            settings: ConvertSettings::default(),
        })
    }

    /// Uses this contract instead of the built-in one.
    pub fn with_contract(mut self, contract: Contract) -> Self {
        self.contract = Some(contract);
        self
    }

    /// Refuses files of datasets without a contract instead of sniffing their types.
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The `_ingested_at` value. The Lambda passes the object's Last-Modified time, so a
    /// redelivered event produces identical files.
    pub fn with_ingested_at(mut self, at: DateTime<Utc>) -> Self {
        self.ingested_at = to_micros(at);
        self
    }

    pub fn with_settings(mut self, settings: ConvertSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn keys(&self) -> OutputKeys {
        OutputKeys::new(&self.tenant, &self.dataset, &self.source)
    }

    /// Converts `input`, writes silver files, rejects and the manifest to `sink`, and returns
    /// the manifest. `Err` means an operational failure (nothing committed but what the
    /// sink already had); a bad file is an `Ok` manifest with status `rejected`.
    pub async fn run(&self, input: ByteSource, sink: &dyn ObjectSink) -> Result<Manifest> {
        let started = Instant::now();
        let keys = self.keys();
        let mut manifest = self.empty_manifest();
        let (decompressed, compression) = input::decompress(input).await?;
        manifest.source.compression = Some(compression.as_str().to_string());
        let declared = self
            .contract
            .as_ref()
            .map_or(TextEncoding::default(), |c| c.encoding);
        let mut text = TextReader::new(decompressed, declared);
        let mut rejects = RejectLog::new(keys.rejects.clone());

        let outcome = self
            .convert(&mut text, sink, &keys, &mut manifest, &mut rejects)
            .await;
        manifest.source.encoding = Some(text.encoding().as_str().to_string());
        manifest.source.text_bytes = text.text_bytes();
        manifest.timings.convert_ms = started.elapsed().as_millis() as u64;

        let finalize_started = Instant::now();
        let files = match outcome {
            Ok(writer) => {
                self.judge(writer, sink, &keys, &mut manifest, &rejects)
                    .await?
            }
            Err(Stop::Reject(reason)) => {
                manifest.status = Status::Rejected;
                manifest.reason = Some(reason);
                Vec::new()
            }
            Err(Stop::Fail(error)) => return Err(error),
        };
        manifest.files = files;
        manifest.rows_invalid = rejects.count();
        manifest.rejects = rejects.commit(sink).await?;
        manifest.rows_written = manifest.files.iter().map(|f| f.rows).sum();
        manifest.rows_rejected = manifest.rows_read - manifest.rows_written;
        manifest.partitions = manifest
            .files
            .iter()
            .filter_map(|f| f.partition.clone())
            .collect();
        manifest.partitions.dedup();
        manifest.timings.finalize_ms = finalize_started.elapsed().as_millis() as u64;
        manifest.timings.total_ms = started.elapsed().as_millis() as u64;
        sink.put(&keys.manifest, serde_json::to_vec_pretty(&manifest)?.into())
            .await?;
        tracing::info!(
            status = ?manifest.status,
            rows_read = manifest.rows_read,
            rows_written = manifest.rows_written,
            rows_rejected = manifest.rows_rejected,
            files = manifest.files.len(),
            "converted"
        );
        Ok(manifest)
    }

    fn empty_manifest(&self) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            status: Status::Accepted,
            reason: None,
            tenant_id: self.tenant.clone(),
            dataset: self.dataset.clone(),
            contract: self.contract.as_ref().map(|c| c.dataset.clone()),
            source: SourceSummary {
                key: self.source.key.clone(),
                fingerprint: self.source.fingerprint.clone(),
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
            files: Vec::new(),
            rejects: None,
            partitions: Vec::new(),
            ingested_at: self.ingested_at,
            spilled_bytes: 0,
            timings: Timings::default(),
        }
    }

    /// Reads the whole input into silver writers; rows are counted in `manifest`.
    async fn convert(
        &self,
        text: &mut TextReader,
        sink: &dyn ObjectSink,
        keys: &OutputKeys,
        manifest: &mut Manifest,
        rejects: &mut RejectLog,
    ) -> Result<SilverWriter, Stop> {
        if self.contract.is_none() && self.strict {
            return Err(Stop::Reject(format!(
                "dataset {:?} has no contract and strict mode is on",
                self.dataset
            )));
        }
        let mut sample = Vec::with_capacity(SAMPLE_BYTES);
        let mut chunk = Vec::new();
        let mut eof = false;
        while sample.len() < SAMPLE_BYTES {
            text.next_chunk(&mut chunk).await?;
            if chunk.is_empty() {
                eof = true;
                break;
            }
            sample.extend_from_slice(&chunk);
        }
        if sample.is_empty() {
            return Err(Stop::Reject("the file is empty (no header row)".into()));
        }
        let plan = self.plan(&sample, eof, text.needs_validation())?;
        manifest.source.delimiter = Some((plan.delimiter as char).to_string());
        manifest.columns = plan.columns.clone();
        manifest.missing_columns = plan.missing.clone();
        manifest.extra_columns = plan.extra.clone();

        let mut writer = self.writer(&plan, keys)?;
        let rules = self.field_rules();
        let lineage = Lineage {
            tenant_id: self.tenant.clone(),
            source_key: self.source.key.clone(),
            ingested_at_micros: self.ingested_at.timestamp_micros(),
        };
        let batcher = RowBatcher::new(
            &plan.columns,
            plan.sources.clone(),
            plan.header_width,
            &rules,
            &lineage,
            self.settings.batch_rows,
        );
        let mut rows = RowSink {
            batcher,
            rejects,
            ready: Vec::new(),
            rows_read: 0,
            header_seen: false,
            validate_utf8: text.needs_validation(),
            settings: &self.settings,
        };
        let mut splitter = RecordSplitter::new(plan.delimiter);
        let mut pending = sample;
        let result = loop {
            let fed = splitter.feed(&pending, eof, |record| rows.on_record(record));
            if let Err(stop) = fed {
                break Err(stop);
            }
            if eof && rows.batcher.rows() > 0 {
                match rows.batcher.finish_batch() {
                    Ok(batch) => rows.ready.push(batch),
                    Err(e) => break Err(Stop::Fail(e)),
                }
            }
            if let Err(e) = rows.drain(&mut writer, sink, eof).await {
                break Err(Stop::Fail(e));
            }
            if eof {
                break Ok(());
            }
            if let Err(stop) = text.next_chunk(&mut chunk).await {
                break Err(stop.into());
            }
            eof = chunk.is_empty();
            std::mem::swap(&mut pending, &mut chunk);
        };
        manifest.rows_read = rows.rows_read;
        manifest.spilled_bytes = writer.spilled_bytes();
        match result {
            Ok(()) => Ok(writer),
            Err(stop) => {
                writer.abort().await.map_err(Stop::Fail)?;
                Err(stop)
            }
        }
    }

    /// Decides the delimiter and the column mapping from the sample.
    fn plan(&self, sample: &[u8], complete: bool, validate_utf8: bool) -> Result<Plan, Stop> {
        let delimiter = match self.contract.as_ref().and_then(|c| c.delimiter) {
            Some(delimiter) => delimiter as u8,
            None => records::sniff_delimiter(sample, complete),
        };
        let sampled = records::sample_records(sample, complete, delimiter, SNIFF_ROWS + 1);
        let Some(header) = sampled.first() else {
            return Err(Stop::Reject(format!(
                "no complete header row in the first {} KiB",
                SAMPLE_BYTES >> 10
            )));
        };
        if validate_utf8
            && header
                .iter()
                .any(|f| simdutf8::basic::from_utf8(f).is_err())
        {
            return Err(Stop::Reject(not_utf8("the header row")));
        }
        let names =
            naming::normalise_headers(header.iter().map(|f| std::str::from_utf8(f).unwrap_or("")));
        let header_width = names.len();
        let Some(contract) = &self.contract else {
            let rules = self.field_rules();
            let types = records::sniff_types(&sampled[1..], header_width, |v| {
                rules.null_tokens.is_null(v)
            });
            let columns = names
                .iter()
                .zip(types)
                .map(|(name, column_type)| ColumnSpec {
                    name: name.clone(),
                    column_type,
                    nullable: true,
                    format: None,
                })
                .collect();
            return Ok(Plan {
                delimiter,
                columns,
                sources: (0..header_width).map(Some).collect(),
                header_width,
                missing: Vec::new(),
                extra: Vec::new(),
            });
        };
        let position = |name: &str| names.iter().position(|n| n == name);
        let missing: Vec<String> = contract
            .columns
            .iter()
            .filter(|c| position(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        let missing_required: Vec<&str> = contract
            .columns
            .iter()
            .filter(|c| !c.nullable && missing.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !missing_required.is_empty() {
            return Err(Stop::Reject(format!(
                "required column(s) missing from the header: {} (header has: {})",
                missing_required.join(", "),
                names.join(", ")
            )));
        }
        let mut columns = contract.columns.clone();
        let mut sources: Vec<Option<usize>> = columns.iter().map(|c| position(&c.name)).collect();
        let mut extra = Vec::new();
        for (index, name) in names.iter().enumerate() {
            if contract.column(name).is_none() && name != TENANT_ID {
                extra.push(name.clone());
                columns.push(ColumnSpec {
                    name: name.clone(),
                    column_type: crate::contract::ColumnType::String,
                    nullable: true,
                    format: None,
                });
                sources.push(Some(index));
            }
        }
        Ok(Plan {
            delimiter,
            columns,
            sources,
            header_width,
            missing,
            extra,
        })
    }

    fn field_rules(&self) -> FieldRules {
        match &self.contract {
            Some(contract) => FieldRules {
                null_tokens: NullTokens::new(&contract.null_tokens),
                decimal_separator: contract.decimal_separator,
            },
            None => FieldRules {
                null_tokens: NullTokens::new(&[String::new(), "NULL".into(), "null".into()]),
                decimal_separator: '.',
            },
        }
    }

    fn writer(&self, plan: &Plan, keys: &OutputKeys) -> Result<SilverWriter> {
        let schema = columns::silver_schema(&plan.columns);
        let properties = output::writer_properties(&self.settings, &schema)?;
        let partitioning = self.contract.as_ref().and_then(Contract::partitioning);
        Ok(match partitioning {
            None => SilverWriter::Single(Box::new(ParquetSeries::new(
                schema,
                properties,
                keys.data_prefix.clone(),
                keys.stem.clone(),
                None,
                &self.settings,
            ))),
            Some(spec) => {
                let index = plan
                    .columns
                    .iter()
                    .position(|c| c.name == spec.column)
                    .ok_or_else(|| Error::invalid("partition column", spec.column.clone()))?;
                let partitioner = Partitioner {
                    column: index + 1, // after tenant_id
                    name: spec.column.clone(),
                    column_type: plan.columns[index].column_type,
                    granularity: spec.granularity,
                };
                SilverWriter::Partitioned(PartitionedWriter::new(
                    partitioner,
                    schema,
                    &self.settings,
                ))
            }
        })
    }

    /// Applies the reject threshold; on acceptance, writes and commits every silver file.
    async fn judge(
        &self,
        writer: SilverWriter,
        sink: &dyn ObjectSink,
        keys: &OutputKeys,
        manifest: &mut Manifest,
        rejects: &RejectLog,
    ) -> Result<Vec<ManifestFile>> {
        let invalid = rejects.count();
        let limit = self.contract.as_ref().map_or(0.05, |c| c.max_reject_ratio);
        if invalid > 0 && invalid as f64 > limit * manifest.rows_read as f64 {
            manifest.status = Status::Rejected;
            manifest.reason = Some(format!(
                "{invalid} of {} rows ({:.2}%) are invalid, above the limit of {:.2}%",
                manifest.rows_read,
                100.0 * invalid as f64 / manifest.rows_read as f64,
                100.0 * limit
            ));
            writer.abort().await?;
            return Ok(Vec::new());
        }
        match writer {
            SilverWriter::Single(series) => output::commit_all(series.finish().await?).await,
            SilverWriter::Partitioned(partitioned) => {
                let schema = partitioned.schema().clone();
                let properties = output::writer_properties(&self.settings, &schema)?;
                partitioned
                    .finish(sink, |directory| {
                        ParquetSeries::new(
                            schema.clone(),
                            properties.clone(),
                            format!("{}{directory}/", keys.data_prefix),
                            keys.stem.clone(),
                            Some(directory),
                            &self.settings,
                        )
                    })
                    .await
            }
        }
    }
}

/// Parquet keeps microseconds; the manifest must show the same instant.
fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

fn not_utf8(what: &str) -> String {
    format!(
        "{what} is not valid UTF-8; if the file is a Windows export, declare \
         encoding = \"windows-1252\" in the dataset's contract"
    )
}

/// Receives records from the splitter: validates them into batches or the reject log.
struct RowSink<'a> {
    batcher: RowBatcher,
    rejects: &'a mut RejectLog,
    ready: Vec<arrow_array::RecordBatch>,
    rows_read: u64,
    header_seen: bool,
    validate_utf8: bool,
    settings: &'a ConvertSettings,
}

impl RowSink<'_> {
    fn on_record(&mut self, record: Record<'_>) -> Result<(), Stop> {
        if !self.header_seen {
            self.header_seen = true;
            return Ok(());
        }
        self.rows_read += 1;
        let row = self.rows_read as i64;
        if self.validate_utf8 && simdutf8::basic::from_utf8(record.bytes()).is_err() {
            return Err(Stop::Reject(not_utf8(&format!("row {row}"))));
        }
        match self
            .batcher
            .push_record(row, record.len(), |i| record.field(i))
        {
            Ok(()) => {
                let rows = self.batcher.rows();
                let full = rows >= self.settings.batch_rows
                    || (rows.is_multiple_of(SIZE_CHECK_ROWS)
                        && self.batcher.buffered_bytes() >= self.settings.batch_bytes);
                if full {
                    self.ready.push(self.batcher.finish_batch()?);
                }
            }
            Err(error) => {
                self.rejects
                    .push(row, error.column.as_deref(), &error.reason, record.fields())?;
            }
        }
        Ok(())
    }

    async fn drain(
        &mut self,
        writer: &mut SilverWriter,
        sink: &dyn ObjectSink,
        force: bool,
    ) -> Result<()> {
        for batch in self.ready.drain(..) {
            writer.push(sink, batch).await?;
        }
        self.rejects
            .drain(sink, self.settings.upload_chunk_bytes, force)
            .await
    }
}
