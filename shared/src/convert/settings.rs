//! The converter's resource limits and output tuning, from code or from the environment.

use std::{path::PathBuf, sync::Arc};

use tokio::time::Instant;

use super::{progress::Progress, records::RecordLimits};
use crate::{
    domain::contract::Limits,
    error::{Error, Result},
    lambda::env,
};

/// Share of a Lambda's memory the converter budgets for its own buffers; the rest is the
/// runtime, the binary and allocator slack.
const LAMBDA_MEMORY_SHARE: f64 = 0.6;

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
    /// zstd level of the Parquet pages.
    pub zstd_level: i32,
    /// Where partitioned data spills when it outgrows the budget (Lambda: /tmp).
    pub spill_dir: PathBuf,
    /// Bytes handed to an upload at a time (S3 parts must be at least 5 MiB).
    pub upload_chunk_bytes: usize,
    /// Most bytes partitioning may spill; a file that needs more is rejected.
    pub max_spill_bytes: u64,
    /// Most bytes of reject log; rows rejected past it are counted, not listed (the bronze
    /// file keeps them), so a small compressed file of garbage cannot write gigabytes.
    pub max_reject_bytes: u64,
    /// When to give up (the Lambda's deadline margin): the conversion stops between
    /// chunks and partitions and aborts its uploads itself.
    pub deadline: Option<Instant>,
    /// Cores to use: with more than one, Parquet encoding runs on its own thread while
    /// the next rows are parsed (a Lambda above 1,769 MB has a second vCPU).
    pub threads: usize,
    /// Where a running conversion reports its counters (a progress display).
    pub progress: Option<Arc<Progress>>,
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
            max_reject_bytes: 64 << 20,
            deadline: None,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            progress: None,
        }
    }
}

impl ConvertSettings {
    /// Budgets `bytes` of memory.
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Spills to `dir`.
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = dir.into();
        self
    }

    /// Rolls Parquet files at about `bytes`.
    pub fn with_target_file_bytes(mut self, bytes: usize) -> Self {
        self.target_file_bytes = bytes;
        self
    }

    /// The record limits in force: the contract's, with records capped at an eighth of the
    /// memory budget (a record is held by the splitter, its batch and its page at once), and
    /// columns at what half the budget plus half the fixed allowance hold: every Parquet
    /// column keeps its own encoder, page buffers and zstd context, about
    /// [`COLUMN_OVERHEAD_BYTES`] whatever the data.
    pub fn record_limits(&self, limits: Limits) -> RecordLimits {
        let record = limits.max_record_bytes.min(self.memory_budget / 8).max(1);
        let columns = (self.memory_budget / 2 + COLUMN_ALLOWANCE_BYTES) / COLUMN_OVERHEAD_BYTES;
        RecordLimits {
            max_field_bytes: limits.max_field_bytes.min(record),
            max_record_bytes: record,
            max_fields: limits.max_columns.min(columns),
        }
    }

    /// Bytes of partitioned batches held before spilling: a third of the budget, less what
    /// may wait for the partitioning thread.
    pub fn buffer_limit(&self) -> usize {
        (self.memory_budget / 3).saturating_sub(self.partition_queue_bytes())
    }

    /// Bytes of batches that may wait for the partitioning thread (with more than one
    /// core): an eighth of the budget. A spill keeps that thread from taking batches; with
    /// room for one batch parsing stopped as long, and two cores did the work of 1.2. The
    /// smaller buffer also makes each spill shorter, so the queue covers it. Budgets too
    /// small for two batches keep room for one.
    pub fn partition_queue_bytes(&self) -> usize {
        let queue = self.memory_budget / 8;
        if self.threads > 1 && queue >= 2 * self.batch_bytes {
            queue
        } else {
            0
        }
    }

    /// Partition files committed at once while later partitions are written: each holds
    /// up to an upload chunk until its commit, and together they get an eighth of the
    /// budget (4 at the default 256 MiB, 16 at most).
    pub fn commits_in_flight(&self) -> usize {
        (self.memory_budget / 8 / self.upload_chunk_bytes.max(1)).clamp(1, 16)
    }

    /// Encoded bytes of a row group before it is flushed. The flush briefly holds it twice.
    pub fn row_group_bytes(&self) -> usize {
        (self.memory_budget / 8).clamp(4 << 20, 128 << 20)
    }
}

/// Memory one Parquet column costs while a file is written, measured with 2,000 short
/// string columns (about 250 KiB each), rounded up.
pub const COLUMN_OVERHEAD_BYTES: usize = 320 << 10;
/// Part of the fixed 64 MiB over the budget that columns may use, so small budgets still
/// take ordinary files (a 1 MiB budget: 104 columns).
const COLUMN_ALLOWANCE_BYTES: usize = 32 << 20;

impl ConvertSettings {
    /// `SNOWCAST_MEMORY_BUDGET_MB` if set, else 60% of the Lambda's memory
    /// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), else 256 MiB; `SNOWCAST_SPILL_DIR` (default the
    /// system temp dir, /tmp on Lambda); `SNOWCAST_MAX_SPILL_MB` (default 4096; set it below
    /// the function's ephemeral storage); `SNOWCAST_MAX_REJECT_MB` (default 64);
    /// `SNOWCAST_ZSTD_LEVEL` (default 3); `SNOWCAST_THREADS` (default the cores this
    /// process may use).
    pub fn from_env() -> Result<Self> {
        let mut settings = ConvertSettings::default();
        if let Some(mb) = env::number::<usize>("SNOWCAST_MEMORY_BUDGET_MB")? {
            settings.memory_budget = mb << 20;
        } else if let Some(mb) = env::number::<f64>("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")? {
            settings.memory_budget = (mb * LAMBDA_MEMORY_SHARE) as usize * (1 << 20);
        }
        if let Some(dir) = env::var("SNOWCAST_SPILL_DIR") {
            settings.spill_dir = dir.into();
        }
        if let Some(mb) = env::number::<u64>("SNOWCAST_MAX_SPILL_MB")? {
            settings.max_spill_bytes = mb << 20;
        }
        if let Some(mb) = env::number::<u64>("SNOWCAST_MAX_REJECT_MB")? {
            settings.max_reject_bytes = mb << 20;
        }
        if let Some(level) = env::number("SNOWCAST_ZSTD_LEVEL")? {
            settings.zstd_level = level;
        }
        if let Some(threads) = env::number("SNOWCAST_THREADS")? {
            settings.threads = threads;
        }
        Ok(settings)
    }
}

/// [`Error::Deadline`] once `deadline` has passed.
pub fn check_deadline(deadline: Option<Instant>, doing: &str) -> Result<()> {
    match deadline {
        Some(at) if Instant::now() >= at => Err(Error::Deadline(format!(
            "stopped {doing} at the deadline margin; every upload was aborted"
        ))),
        _ => Ok(()),
    }
}
