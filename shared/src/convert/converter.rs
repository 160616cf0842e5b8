//! The converter: one CSV object of one tenant's dataset to silver files, rejects and a
//! manifest. A file without a contract whose sniffed types widen is read twice.

use chrono::{DateTime, Utc};

use super::{
    columns::Lineage,
    input::{self, TextReader},
    output::{RejectLog, SilverWriter, bound_allocator_retention},
    progress,
    read::{Job, Stop},
    settings::ConvertSettings,
    sniff::ColumnSniffer,
};
use crate::{
    domain::{
        contract::{self, Contract, TextEncoding},
        keys::{Scope, SilverKeys, SourceId},
        manifest::{Manifest, ManifestFile, Status},
    },
    error::{Error, Result},
    ports::storage::{ByteSource, Input, ObjectSink},
};

/// Converts one CSV object of one tenant's dataset.
#[derive(Debug, Clone)]
pub struct Converter {
    scope: Scope,
    contract: Option<Contract>,
    strict: bool,
    source: SourceId,
    ingested_at: DateTime<Utc>,
    settings: ConvertSettings,
}

/// How one read of the input ended.
enum Pass {
    // Boxed: a manifest is large, and passes move through async frames.
    Finished(Box<Manifest>),
    Widened(Vec<ColumnSniffer>),
}

impl Converter {
    /// A converter for `scope`'s dataset, with the dataset's built-in contract if any
    /// (an error only if a built-in contract is broken).
    pub fn new(scope: Scope, source: SourceId) -> Result<Self> {
        Ok(Converter {
            contract: contract::builtin(scope.dataset()).transpose()?,
            scope,
            strict: false,
            source,
            ingested_at: to_micros(Utc::now()),
            settings: ConvertSettings::default(),
        })
    }

    /// [`Converter::new`] from a tenant and dataset not validated yet.
    pub fn try_new(tenant: &str, dataset: &str, source: SourceId) -> Result<Self> {
        Converter::new(Scope::new(tenant, dataset)?, source)
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

    /// Resource limits and output tuning.
    pub fn with_settings(mut self, settings: ConvertSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Stops the conversion cleanly (uploads aborted, an [`Error::Deadline`]) at `at`.
    pub fn with_deadline(mut self, at: tokio::time::Instant) -> Self {
        self.settings.deadline = Some(at);
        self
    }

    /// The silver keys this conversion writes.
    pub fn keys(&self) -> SilverKeys {
        SilverKeys::new(&self.scope, &self.source)
    }

    /// Converts `input`, writes silver files, rejects and the manifest to `sink`, and returns
    /// the manifest. `Err` means an operational failure (every upload aborted; nothing
    /// committed but what the sink already had); a bad file is an `Ok` manifest with status
    /// `rejected`. A file without a contract whose sniffed types widen is read twice.
    pub async fn run(&self, input: &dyn Input, sink: &dyn ObjectSink) -> Result<Manifest> {
        bound_allocator_retention();
        let started = std::time::Instant::now();
        let keys = self.keys();
        let mut manifest = *match self.pass(input.open().await?, sink, &keys, None).await? {
            Pass::Finished(manifest) => manifest,
            Pass::Widened(sniffers) => {
                tracing::info!("a sniffed column type widened; reading the file again");
                let again = input.open().await?;
                match self.pass(again, sink, &keys, Some(sniffers)).await? {
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

    /// One read of the input, to silver files and a manifest, or to wider types.
    async fn pass(
        &self,
        raw: ByteSource,
        sink: &dyn ObjectSink,
        keys: &SilverKeys,
        widened: Option<Vec<ColumnSniffer>>,
    ) -> Result<Pass> {
        let started = std::time::Instant::now();
        let mut manifest = self.empty_manifest();
        let raw = self.counted(raw);
        let window = input::zstd_window_log_max(self.settings.memory_budget);
        let decompressed = input::decompress(raw, window).await?;
        manifest.source.compression = Some(decompressed.compression.as_str().to_string());
        let declared = self
            .contract
            .as_ref()
            .map_or(TextEncoding::default(), |c| c.encoding);
        let mut text = TextReader::new(decompressed, declared);
        let mut rejects = RejectLog::new(keys.rejects.clone(), self.settings.max_reject_bytes);
        let outcome = self
            .job(keys)
            .read(&mut text, sink, &mut manifest, &mut rejects, widened)
            .await;
        manifest.source.encoding = Some(text.encoding().as_str().to_string());
        manifest.source.text_bytes = text.text_bytes();
        manifest.timings.convert_ms = started.elapsed().as_millis() as u64;
        let finalize_started = std::time::Instant::now();
        let files = match outcome {
            Ok(writer) => {
                self.judge(writer, sink, keys, &mut manifest, &rejects)
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
        manifest.rejects_omitted = rejects.omitted();
        manifest.rejects = rejects.commit(sink).await?;
        manifest.record_files(files);
        manifest.timings.finalize_ms = finalize_started.elapsed().as_millis() as u64;
        Ok(Pass::Finished(Box::new(manifest)))
    }

    /// The input, its bytes counted when progress is reported.
    fn counted(&self, raw: ByteSource) -> ByteSource {
        match &self.settings.progress {
            Some(progress) => {
                progress.start_read();
                progress::counted(raw, progress.clone())
            }
            None => raw,
        }
    }

    /// What a read of the input needs to know.
    fn job<'a>(&'a self, keys: &'a SilverKeys) -> Job<'a> {
        Job {
            contract: self.contract.as_ref(),
            strict: self.strict,
            dataset: self.scope.dataset(),
            settings: &self.settings,
            lineage: Lineage {
                tenant_id: self.scope.tenant().to_string(),
                source_key: self.source.uri.clone(),
                ingested_at_micros: self.ingested_at.timestamp_micros(),
            },
            keys,
        }
    }

    fn empty_manifest(&self) -> Manifest {
        Manifest::new(
            self.scope.tenant(),
            self.scope.dataset(),
            self.contract.as_ref().map(|c| c.dataset.as_str()),
            &self.source.uri,
            &self.source.fingerprint,
            self.ingested_at,
        )
    }

    /// Applies the reject threshold; on acceptance, writes and commits every silver file.
    async fn judge(
        &self,
        writer: SilverWriter,
        sink: &dyn ObjectSink,
        keys: &SilverKeys,
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
        writer.commit(sink, keys, &self.settings).await
    }
}

/// Parquet keeps microseconds; the manifest must show the same instant.
fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}
