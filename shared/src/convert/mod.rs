//! CSV -> Parquet conversion: the core of the csv-to-parquet Lambda and `snowcast convert`.
//!
//! An async byte stream goes in (any size; it is never held whole), Parquet objects and a
//! reject log come out through an [`ObjectSink`], and a [`Manifest`] accounts for every row.
//! No AWS types appear here: the Lambda and the CLI bring the stream and the sink.
//!
//! Steps: detect compression and encoding, sample the first MiB to find the delimiter and
//! header (and a first guess at the types, for a dataset without contract), then split
//! records incrementally, validate each row into typed Arrow columns, and write silver
//! Parquet. Parquet is committed only after the whole file is judged: above the contract's
//! reject threshold, nothing but the reject log and the manifest is written.
//!
//! Nothing is lost or altered without a trace, whatever the bytes: every physical record
//! is counted (`rows_read = rows_written + rows_rejected`, also for a file rejected
//! half-way); malformed records (unclosed or misplaced quotes, past the size limits) are
//! rejected with their reason; a sniffed type that a later value does not fit widens and
//! the file is read again, so no value is reparsed into something else. Memory is bounded
//! by the budget and the record limits, spill by its own limit, and every upload is
//! committed or aborted explicitly on every path.

mod columns;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod input;
mod output;
mod plan;
mod records;
mod rows;
mod sniff;
mod values;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

pub use columns::{INGESTED_AT, SOURCE_KEY, SOURCE_ROW, TENANT_ID};
pub use input::{ByteSource, Compression, DetectedEncoding, FileInput, Input, OpenedInput};
pub use records::RecordLimits;

use self::{
    columns::{FieldRules, Lineage, NullTokens, RowBatcher},
    input::TextReader,
    output::{
        ParquetSeries, PartitionedWriter, Partitioner, RejectLog, SilverWriter, abort_quietly,
    },
    plan::{Plan, SAMPLE_BYTES, Sample},
    records::RecordSplitter,
    rows::{Mode, RowSink},
    sniff::ColumnSniffer,
};
use crate::{
    contract::{self, Contract, Limits, TextEncoding},
    error::{Error, Result},
    manifest::{Manifest, ManifestFile, Status},
    naming,
    storage::ObjectSink,
};

/// Column names the silver schema keeps for itself; a CSV column with one of them is
/// renamed (`_csv_tenant_id`), so a file can never shadow the tenant or the lineage.
pub const RESERVED_COLUMNS: [&str; 4] = [TENANT_ID, SOURCE_KEY, SOURCE_ROW, INGESTED_AT];

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
    /// Most bytes partitioning may spill; a file that needs more is rejected.
    pub max_spill_bytes: u64,
    /// When to give up (the Lambda's deadline margin): the conversion stops between
    /// chunks and partitions and aborts its uploads itself.
    pub deadline: Option<Instant>,
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
            max_spill_bytes: 4 << 30,
            deadline: None,
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

    /// The record limits in force: the contract's, with records capped at an eighth of the
    /// memory budget (a record is held by the splitter, its batch and its page at once).
    pub fn record_limits(&self, limits: Limits) -> RecordLimits {
        let record = limits.max_record_bytes.min(self.memory_budget / 8).max(1);
        RecordLimits {
            max_field_bytes: limits.max_field_bytes.min(record),
            max_record_bytes: record,
            max_fields: limits.max_columns,
        }
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
    /// An S3 object, identified by bucket, key and ETag (the same for the Lambda and the
    /// CLI, so both write the same keys for the same object). The version id is left out:
    /// on a versioned bucket the same bytes uploaded again are a new version with the same
    /// ETag, and must not be loaded twice. (The empty fourth part keeps the fingerprints of
    /// objects converted before this rule unchanged.)
    pub fn s3(bucket: &str, key: &str, etag: &str) -> Self {
        SourceInfo {
            key: format!("s3://{bucket}/{key}"),
            fingerprint: fingerprint(&[bucket, key, etag.trim_matches('"'), ""]),
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

/// Why a read of the input stopped short of silver files.
enum Stop {
    /// The file as a whole is unacceptable.
    Reject(String),
    /// A sniffed column had to widen: read again with these types.
    Widen(Vec<ColumnSniffer>),
    /// An operational failure.
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Fail(error)
    }
}

/// How one read of the input ended.
enum Pass {
    // Boxed: a manifest is large, and passes move through async frames.
    Finished(Box<Manifest>),
    Widened(Vec<ColumnSniffer>),
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

    /// Stops the conversion cleanly (uploads aborted, an [`Error::Deadline`]) at `at`.
    pub fn with_deadline(mut self, at: Instant) -> Self {
        self.settings.deadline = Some(at);
        self
    }

    pub fn keys(&self) -> OutputKeys {
        OutputKeys::new(&self.tenant, &self.dataset, &self.source)
    }

    /// Converts `input`, writes silver files, rejects and the manifest to `sink`, and returns
    /// the manifest. `Err` means an operational failure (every upload aborted; nothing
    /// committed but what the sink already had); a bad file is an `Ok` manifest with status
    /// `rejected`. A file without a contract whose sniffed types widen is read twice.
    pub async fn run(&self, input: &dyn Input, sink: &dyn ObjectSink) -> Result<Manifest> {
        let started = std::time::Instant::now();
        let mut manifest = *match self.pass(input.open().await?, sink, None).await? {
            Pass::Finished(manifest) => manifest,
            Pass::Widened(sniffers) => {
                tracing::info!("a sniffed column type widened; reading the file again");
                match self.pass(input.open().await?, sink, Some(sniffers)).await? {
                    Pass::Finished(manifest) => manifest,
                    Pass::Widened(_) => {
                        return Err(Error::invalid(
                            "input",
                            "its column types changed between two reads of the same object",
                        ));
                    }
                }
            }
        };
        manifest.timings.total_ms = started.elapsed().as_millis() as u64;
        sink.put(
            &self.keys().manifest,
            serde_json::to_vec_pretty(&manifest)?.into(),
        )
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

    /// One read of the input, to silver files and a manifest, or to wider types.
    async fn pass(
        &self,
        raw: ByteSource,
        sink: &dyn ObjectSink,
        widened: Option<Vec<ColumnSniffer>>,
    ) -> Result<Pass> {
        let started = std::time::Instant::now();
        let keys = self.keys();
        let mut manifest = self.empty_manifest();
        let decompressed = input::decompress(raw).await?;
        manifest.source.compression = Some(decompressed.compression.as_str().to_string());
        let declared = self
            .contract
            .as_ref()
            .map_or(TextEncoding::default(), |c| c.encoding);
        let mut text = TextReader::new(decompressed, declared);
        let mut rejects = RejectLog::new(keys.rejects.clone());
        let outcome = self
            .convert(&mut text, sink, &keys, &mut manifest, &mut rejects, widened)
            .await;
        manifest.source.encoding = Some(text.encoding().as_str().to_string());
        manifest.source.text_bytes = text.text_bytes();
        manifest.timings.convert_ms = started.elapsed().as_millis() as u64;
        let finalize_started = std::time::Instant::now();
        let files = match outcome {
            Ok(writer) => {
                self.judge(writer, sink, &keys, &mut manifest, &rejects)
                    .await
            }
            Err(Stop::Reject(reason)) => {
                manifest.status = Status::Rejected;
                manifest.reason = Some(reason);
                Ok(Vec::new())
            }
            Err(Stop::Widen(sniffers)) => {
                rejects.abort().await;
                return Ok(Pass::Widened(sniffers));
            }
            Err(Stop::Fail(error)) => Err(error),
        };
        let files = match files {
            Ok(files) => files,
            Err(error) => {
                rejects.abort().await;
                return Err(error);
            }
        };
        manifest.rows_invalid = rejects.count();
        manifest.rejects = rejects.commit(sink).await?;
        manifest.record_files(files);
        manifest.timings.finalize_ms = finalize_started.elapsed().as_millis() as u64;
        Ok(Pass::Finished(Box::new(manifest)))
    }

    fn empty_manifest(&self) -> Manifest {
        Manifest::new(
            &self.tenant,
            &self.dataset,
            self.contract.as_ref().map(|c| c.dataset.as_str()),
            &self.source.key,
            &self.source.fingerprint,
            self.ingested_at,
        )
    }

    /// Reads the whole input into a silver writer; rows are counted in `manifest` however
    /// the read ends.
    async fn convert(
        &self,
        text: &mut TextReader,
        sink: &dyn ObjectSink,
        keys: &OutputKeys,
        manifest: &mut Manifest,
        rejects: &mut RejectLog,
        widened: Option<Vec<ColumnSniffer>>,
    ) -> Result<SilverWriter, Stop> {
        let (sample, mut eof) = read_sample(text).await?;
        if sample.is_empty() {
            let reason = text
                .malformed()
                .unwrap_or("the file is empty (no header row)");
            return Err(Stop::Reject(reason.to_string()));
        }
        let limits = self.record_limits();
        let view = Sample {
            text: &sample,
            complete: eof,
            validate_utf8: text.needs_validation(),
        };
        let delimiter = plan::delimiter(self.contract.as_ref(), &view, limits);
        manifest.source.delimiter = Some((delimiter as char).to_string());
        let (mut writer, mut rows) = match self.plan(&view, delimiter, limits, widened) {
            Ok(plan) => {
                manifest.columns = plan.columns.clone();
                manifest.missing_columns = plan.missing.clone();
                manifest.extra_columns = plan.extra.clone();
                let writer = self.writer(&plan, keys)?;
                (
                    Some(writer),
                    self.row_sink(Some(plan), rejects, view.validate_utf8),
                )
            }
            Err(reason) => {
                let mut rows = self.row_sink(None, rejects, false);
                rows.switch(Mode::Counting(reason));
                (None, rows)
            }
        };
        let mut splitter = RecordSplitter::new(delimiter, limits);
        let mut spilled = 0;
        let mut pending = sample;
        let mut chunk = Vec::new();
        let read = async {
            loop {
                if let Some(reason) = text.malformed() {
                    rows.switch(Mode::Counting(reason.to_string()));
                }
                splitter.feed(&pending, eof, |record| rows.on_record(record))?;
                if eof {
                    rows.finish()?;
                }
                self.settle(&mut rows, &mut writer, sink, eof, &mut spilled)
                    .await?;
                if eof {
                    return Ok::<_, Error>(());
                }
                check_deadline(self.settings.deadline, "reading the file")?;
                text.next_chunk(&mut chunk).await?;
                eof = chunk.is_empty();
                std::mem::swap(&mut pending, &mut chunk);
            }
        }
        .await;
        manifest.rows_read = rows.rows_read;
        manifest.spilled_bytes = writer.as_ref().map_or(spilled, SilverWriter::spilled_bytes);
        if let Err(error) = read {
            if let Some(writer) = writer {
                abort_quietly(writer.abort().await);
            }
            return Err(Stop::Fail(error));
        }
        match (rows.mode().clone(), writer) {
            (Mode::Converting, Some(writer)) => Ok(writer),
            (Mode::Widening, _) => Err(Stop::Widen(
                rows.batcher
                    .as_ref()
                    .map(RowBatcher::sniffers)
                    .unwrap_or_default(),
            )),
            (Mode::Counting(reason), _) => Err(Stop::Reject(reason)),
            (Mode::Converting, None) => Err(Stop::Fail(Error::invalid(
                "conversion",
                "rows were converted without a writer",
            ))),
        }
    }

    /// The plan for this file, or why it cannot be converted.
    fn plan(
        &self,
        sample: &Sample<'_>,
        delimiter: u8,
        limits: RecordLimits,
        widened: Option<Vec<ColumnSniffer>>,
    ) -> Result<Plan, String> {
        if self.contract.is_none() && self.strict {
            return Err(format!(
                "dataset {:?} has no contract and strict mode is on",
                self.dataset
            ));
        }
        let rules = self.field_rules();
        plan::plan(
            self.contract.as_ref(),
            sample,
            delimiter,
            limits,
            &rules,
            widened,
        )
    }

    /// The row sink for a plan (or for counting only, without one).
    fn row_sink<'r>(
        &self,
        plan: Option<Plan>,
        rejects: &'r mut RejectLog,
        validate_utf8: bool,
    ) -> RowSink<'r> {
        let batch = (self.settings.batch_rows, self.settings.batch_bytes);
        let Some(plan) = plan else {
            return RowSink::new(None, rejects, Mode::Converting, Vec::new(), false, batch);
        };
        let lineage = Lineage {
            tenant_id: self.tenant.clone(),
            source_key: self.source.key.clone(),
            ingested_at_micros: self.ingested_at.timestamp_micros(),
        };
        let batcher = RowBatcher::new(
            &plan.columns,
            plan.sources,
            plan.header.len(),
            &self.field_rules(),
            &lineage,
            plan.sniffers,
            batch,
        );
        RowSink::new(
            Some(batcher),
            rejects,
            Mode::Converting,
            plan.header,
            validate_utf8,
            batch,
        )
    }

    /// After each chunk: drops the outputs of a mode change (keeping in `spilled` what they
    /// had spilled), hands finished batches to the writer (a spill past its limit rejects
    /// the file) and uploads reject lines.
    async fn settle(
        &self,
        rows: &mut RowSink<'_>,
        writer: &mut Option<SilverWriter>,
        sink: &dyn ObjectSink,
        eof: bool,
        spilled: &mut u64,
    ) -> Result<()> {
        if let Some(active) = writer.as_mut() {
            for batch in std::mem::take(&mut rows.ready) {
                match active.push(sink, batch).await {
                    Ok(()) => {}
                    Err(Error::Limit(reason)) => {
                        rows.switch(Mode::Counting(reason));
                        break;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        if rows.take_change() {
            if let Some(void) = writer.take() {
                *spilled = void.spilled_bytes();
                void.abort().await?;
            }
            if *rows.mode() == Mode::Widening {
                rows.rejects.abort().await;
            }
        }
        rows.rejects
            .drain(sink, self.settings.upload_chunk_bytes, eof)
            .await
    }

    fn record_limits(&self) -> RecordLimits {
        let limits = self
            .contract
            .as_ref()
            .map_or_else(Limits::default, |c| c.limits);
        self.settings.record_limits(limits)
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

/// Reads up to [`SAMPLE_BYTES`] of text; true when that was the whole input.
async fn read_sample(text: &mut TextReader) -> Result<(Vec<u8>, bool)> {
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    let mut chunk = Vec::new();
    while sample.len() < SAMPLE_BYTES {
        text.next_chunk(&mut chunk).await?;
        if chunk.is_empty() {
            return Ok((sample, true));
        }
        sample.extend_from_slice(&chunk);
    }
    Ok((sample, false))
}

/// [`Error::Deadline`] once `deadline` has passed.
fn check_deadline(deadline: Option<Instant>, doing: &str) -> Result<()> {
    match deadline {
        Some(at) if Instant::now() >= at => Err(Error::Deadline(format!(
            "stopped {doing} at the deadline margin; every upload was aborted"
        ))),
        _ => Ok(()),
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
