//! Silver output: Parquet files (rolled by size), Hive partitions under a memory budget,
//! and the reject log.
//!
//! Unpartitioned data streams straight into one Parquet writer. Partitioned data cannot:
//! hundreds of open writers would each hold a row group (and, on S3, a 5 MiB part) in
//! memory. Instead batches are grouped by partition in memory, and when the buffered bytes
//! pass the budget every buffered partition is appended to one LZ4-compressed Arrow IPC
//! spill file (a list of segments per partition). At the end each partition is replayed
//! and written, one writer at a time, so memory is one batch plus one row group whatever
//! the number of partitions.

use std::{
    collections::{BTreeMap, VecDeque},
    fs::File,
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use arrow_array::{
    Array, ArrayRef, Date32Array, RecordBatch, TimestampMicrosecondArray, UInt32Array,
    cast::AsArray,
};
use arrow_ipc::{reader::StreamReader, writer::StreamWriter};
use arrow_schema::{DataType, SchemaRef};
use arrow_select::concat::concat_batches;
use bytes::Bytes;
use futures::{StreamExt, stream::FuturesOrdered};
use lz4_flex::frame::{FrameDecoder, FrameEncoder};
use parquet::{
    arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder},
    basic::{Compression, ZstdLevel},
    file::properties::{EnabledStatistics, WriterProperties},
    schema::types::ColumnPath,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{
    columns,
    plan::Plan,
    progress::Progress,
    settings::{COLUMN_OVERHEAD_BYTES, ConvertSettings, check_deadline},
    values::{format_date, month_index},
};
use crate::{
    domain::{
        contract::{ColumnType, Granularity, PartitionSpec},
        keys::{SOURCE_ROW, SilverKeys},
        manifest::ManifestFile,
    },
    error::{Error, Result},
    ports::storage::{ObjectSink, ObjectUpload},
};

/// A finished Parquet object, uploaded but not yet committed.
pub struct WrittenFile {
    pub upload: Box<dyn ObjectUpload>,
    pub partition: Option<String>,
    pub rows: u64,
}

/// Writer properties for silver files: zstd, chunk statistics, Parquet 1.0 pages (read by
/// every Snowflake version), row groups bounded by the memory budget.
///
/// Dictionary encoding is kept for text, integers, dates and booleans, where values repeat,
/// and turned off for row numbers, decimals, floats and timestamps: their values rarely
/// repeat, so the dictionary only fills up and falls back to plain on every page, which
/// profiling showed to be the converter's largest single cost.
pub fn writer_properties(
    settings: &ConvertSettings,
    schema: &SchemaRef,
) -> Result<WriterProperties> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(settings.zstd_level)?))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_bytes(Some(settings.row_group_bytes()))
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(concat!("snowcast ", env!("CARGO_PKG_VERSION")).to_string());
    for field in schema.fields() {
        let repeats = matches!(
            field.data_type(),
            DataType::Utf8
                | DataType::Dictionary(..)
                | DataType::Int64
                | DataType::Date32
                | DataType::Boolean
        ) && field.name() != SOURCE_ROW;
        if !repeats {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    Ok(builder.build())
}

/// Parquet files of one partition: `<dir>/<stem>-<n>.parquet`, a new file whenever the
/// current one reaches the target size. Encoding runs inline or, with more than one core,
/// on a thread of its own while this side parses the next batch and uploads what the
/// encoder produced.
pub struct ParquetSeries {
    encoder: Encoder,
    files: SeriesFiles,
}

impl ParquetSeries {
    pub fn new(
        schema: SchemaRef,
        properties: WriterProperties,
        directory: String,
        stem: String,
        partition: Option<String>,
        settings: &ConvertSettings,
    ) -> Result<Self> {
        let encoder = SeriesEncoder {
            schema,
            properties,
            target_file_bytes: settings.target_file_bytes,
            upload_chunk: settings.upload_chunk_bytes,
            file: None,
        };
        let encoder = match settings.threads {
            0 | 1 => Encoder::Inline(Box::new(encoder)),
            _ => Encoder::Threaded(EncoderThread::spawn(encoder)?),
        };
        Ok(ParquetSeries {
            encoder,
            files: SeriesFiles {
                directory,
                stem,
                partition,
                current: None,
                written: Vec::new(),
            },
        })
    }

    pub async fn write(&mut self, sink: &dyn ObjectSink, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match &mut self.encoder {
            Encoder::Inline(encoder) => {
                let mut events = Vec::new();
                encoder.write(batch, &mut collect(&mut events))?;
                self.files.apply_all(sink, events).await
            }
            Encoder::Threaded(thread) => thread.write(sink, &mut self.files, batch.clone()).await,
        }
    }

    /// Adds a file encoded elsewhere (with this series' schema and properties) as the
    /// series' next file. Only before any batch is written.
    pub async fn write_encoded(
        &mut self,
        sink: &dyn ObjectSink,
        image: Bytes,
        rows: u64,
    ) -> Result<()> {
        self.files.apply(sink, Encoded::Bytes(image)).await?;
        self.files.apply(sink, Encoded::FileEnd { rows }).await
    }

    /// Closes the open file and hands over every file of the series (or, if that fails,
    /// aborts them all).
    pub async fn finish(mut self, sink: &dyn ObjectSink) -> Result<Vec<WrittenFile>> {
        let closed = match &mut self.encoder {
            Encoder::Inline(encoder) => {
                let mut events = Vec::new();
                let closed = encoder.close(&mut collect(&mut events));
                match self.files.apply_all(sink, events).await {
                    Ok(()) => closed,
                    Err(error) => Err(error),
                }
            }
            Encoder::Threaded(thread) => thread.finish(sink, &mut self.files).await,
        };
        match closed {
            Ok(()) => Ok(self.files.written),
            Err(error) => {
                abort_quietly(self.files.abort().await);
                Err(error)
            }
        }
    }

    /// Discards everything written.
    pub async fn abort(self) -> Result<()> {
        // Dropping the encoder stops its thread at its next batch or event.
        drop(self.encoder);
        self.files.abort().await
    }
}

/// The uploads of a series: the file being encoded (its upload created with its first
/// bytes) and the finished ones.
struct SeriesFiles {
    directory: String,
    stem: String,
    partition: Option<String>,
    current: Option<Box<dyn ObjectUpload>>,
    written: Vec<WrittenFile>,
}

impl SeriesFiles {
    async fn apply(&mut self, sink: &dyn ObjectSink, event: Encoded) -> Result<()> {
        match event {
            Encoded::Bytes(bytes) => {
                let upload = match &mut self.current {
                    Some(upload) => upload,
                    None => {
                        let key = format!(
                            "{}{}-{}.parquet",
                            self.directory,
                            self.stem,
                            self.written.len()
                        );
                        self.current.insert(sink.create(&key).await?)
                    }
                };
                upload.write(bytes).await
            }
            Encoded::FileEnd { rows } => {
                let upload = self.current.take().ok_or_else(|| {
                    Error::invalid("Parquet encoder", "a file ended before its first bytes")
                })?;
                self.written.push(WrittenFile {
                    upload,
                    partition: self.partition.clone(),
                    rows,
                });
                Ok(())
            }
        }
    }

    async fn apply_all(&mut self, sink: &dyn ObjectSink, events: Vec<Encoded>) -> Result<()> {
        for event in events {
            self.apply(sink, event).await?;
        }
        Ok(())
    }

    async fn abort(self) -> Result<()> {
        if let Some(upload) = self.current {
            abort_quietly(upload.abort().await);
        }
        abort_all(self.written).await
    }
}

/// What encoding produces, in order: a file's bytes, then its end.
enum Encoded {
    Bytes(Bytes),
    FileEnd { rows: u64 },
}

fn collect(events: &mut Vec<Encoded>) -> impl FnMut(Encoded) -> Result<()> + '_ {
    |event| {
        events.push(event);
        Ok(())
    }
}

/// Batches to Parquet bytes, file after file, without I/O.
struct SeriesEncoder {
    schema: SchemaRef,
    properties: WriterProperties,
    target_file_bytes: usize,
    upload_chunk: usize,
    file: Option<(ArrowWriter<Vec<u8>>, u64)>,
}

impl SeriesEncoder {
    fn write(
        &mut self,
        batch: &RecordBatch,
        emit: &mut impl FnMut(Encoded) -> Result<()>,
    ) -> Result<()> {
        let (writer, rows) = match &mut self.file {
            Some(file) => file,
            None => {
                let writer = ArrowWriter::try_new(
                    Vec::new(),
                    self.schema.clone(),
                    Some(self.properties.clone()),
                )?;
                self.file.insert((writer, 0))
            }
        };
        writer.write(batch)?;
        *rows += batch.num_rows() as u64;
        if writer.inner_mut().len() >= self.upload_chunk {
            // The writer only counts bytes; draining its buffer does not disturb offsets.
            emit(Encoded::Bytes(Bytes::from(std::mem::take(
                writer.inner_mut(),
            ))))?;
        }
        if writer.bytes_written() + writer.in_progress_size() >= self.target_file_bytes {
            self.close(emit)?;
        }
        Ok(())
    }

    /// Finishes the open file, if any.
    fn close(&mut self, emit: &mut impl FnMut(Encoded) -> Result<()>) -> Result<()> {
        let Some((writer, rows)) = self.file.take() else {
            return Ok(());
        };
        emit(Encoded::Bytes(Bytes::from(writer.into_inner()?)))?;
        emit(Encoded::FileEnd { rows })
    }
}

enum Encoder {
    // Boxed: the encoder holds an open Arrow writer, the thread's side only channels.
    Inline(Box<SeriesEncoder>),
    Threaded(EncoderThread),
}

/// A [`SeriesEncoder`] on its own thread: batches go in through one bounded channel,
/// encoded bytes come back through another, so memory stays one batch and one upload
/// chunk beyond the encoder's own row group.
struct EncoderThread {
    batches: Option<mpsc::Sender<RecordBatch>>,
    events: mpsc::Receiver<Result<Encoded>>,
}

impl EncoderThread {
    fn spawn(encoder: SeriesEncoder) -> Result<Self> {
        let (batch_sender, batches) = mpsc::channel(1);
        let (event_sender, events) = mpsc::channel(1);
        std::thread::Builder::new()
            .name("parquet-encoder".into())
            .spawn(move || encode_on_thread(encoder, batches, event_sender))
            .map_err(|e| Error::io("starting the Parquet encoder thread", e))?;
        Ok(EncoderThread {
            batches: Some(batch_sender),
            events,
        })
    }

    /// Hands `batch` over, uploading what the encoder produced while waiting for room.
    async fn write(
        &mut self,
        sink: &dyn ObjectSink,
        files: &mut SeriesFiles,
        batch: RecordBatch,
    ) -> Result<()> {
        let sender = self.batches.clone().ok_or_else(encoder_stopped)?;
        let mut pending = Some(batch);
        while let Some(batch) = pending.take() {
            tokio::select! {
                biased;
                event = self.events.recv() => {
                    pending = Some(batch);
                    files.apply(sink, event.ok_or_else(encoder_stopped)??).await?;
                }
                permit = sender.reserve() => permit.map_err(|_| encoder_stopped())?.send(batch),
            }
        }
        while let Ok(event) = self.events.try_recv() {
            files.apply(sink, event?).await?;
        }
        Ok(())
    }

    /// Lets the encoder close its file and uploads everything it produced.
    async fn finish(&mut self, sink: &dyn ObjectSink, files: &mut SeriesFiles) -> Result<()> {
        self.batches = None;
        while let Some(event) = self.events.recv().await {
            files.apply(sink, event?).await?;
        }
        Ok(())
    }
}

fn encoder_stopped() -> Error {
    Error::invalid("Parquet encoder", "its thread stopped")
}

/// The encoder thread: encodes until the batch channel closes, then closes the file. An
/// error is the last event; a closed event channel (the series was aborted) ends it.
fn encode_on_thread(
    mut encoder: SeriesEncoder,
    mut batches: mpsc::Receiver<RecordBatch>,
    events: mpsc::Sender<Result<Encoded>>,
) {
    let mut emit = |event| {
        events
            .blocking_send(Ok(event))
            .map_err(|_| Error::invalid("Parquet encoder", "the series was dropped"))
    };
    let mut encode = || {
        while let Some(batch) = batches.blocking_recv() {
            encoder.write(&batch, &mut emit)?;
        }
        encoder.close(&mut emit)
    };
    if let Err(error) = encode() {
        let _ = events.blocking_send(Err(error));
    }
}

/// Aborts uploads that were written but not committed.
pub async fn abort_all(files: Vec<WrittenFile>) -> Result<()> {
    for file in files {
        file.upload.abort().await?;
    }
    Ok(())
}

/// Commits written files and describes them for the manifest. If one commit fails, the
/// files not yet committed are aborted before the error is returned.
pub async fn commit_all(files: Vec<WrittenFile>) -> Result<Vec<ManifestFile>> {
    let mut committed = Vec::with_capacity(files.len());
    let mut files = files.into_iter();
    while let Some(file) = files.next() {
        match file.upload.commit().await {
            Ok(stored) => committed.push(ManifestFile {
                key: stored.key,
                uri: stored.uri,
                partition: file.partition,
                rows: file.rows,
                bytes: stored.bytes,
            }),
            Err(error) => {
                abort_quietly(abort_all(files.collect()).await);
                return Err(error);
            }
        }
    }
    Ok(committed)
}

/// Logs a failed clean-up: the error that caused it is the one to report.
pub fn abort_quietly(outcome: Result<()>) {
    if let Err(error) = outcome {
        tracing::warn!(%error, "an upload could not be aborted; the bucket's lifecycle rule removes it");
    }
}

/// How rows map to Hive partitions.
#[derive(Debug, Clone)]
pub struct Partitioner {
    /// Index of the partition column in the silver schema.
    pub column: usize,
    pub name: String,
    pub column_type: ColumnType,
    pub granularity: Granularity,
}

impl Partitioner {
    /// Partition number of every row: days since epoch, or months since year 0.
    fn keys(&self, array: &ArrayRef) -> Result<Vec<i32>> {
        let days: Vec<i32> = if let Some(dates) = array.as_any().downcast_ref::<Date32Array>() {
            dates.values().to_vec()
        } else if let Some(stamps) = array.as_any().downcast_ref::<TimestampMicrosecondArray>() {
            stamps
                .values()
                .iter()
                .map(|micros| micros.div_euclid(86_400_000_000) as i32)
                .collect()
        } else {
            return Err(Error::invalid(
                "partition column",
                "must be a date or timestamp",
            ));
        };
        Ok(match self.granularity {
            Granularity::Month => days.into_iter().map(month_index).collect(),
            _ => days,
        })
    }

    /// The Hive directory of a partition number: `date=2024-03-01`, `date_month=2024-03`.
    pub fn directory(&self, key: i32) -> String {
        match (self.granularity, self.column_type) {
            (Granularity::Month, _) => format!(
                "{}_month={:04}-{:02}",
                self.name,
                key.div_euclid(12),
                key.rem_euclid(12) + 1
            ),
            (_, ColumnType::Date) => format!("{}={}", self.name, format_date(key)),
            _ => format!("{}_date={}", self.name, format_date(key)),
        }
    }
}

/// Spilled segments and in-memory batches of one partition, oldest first.
#[derive(Default)]
struct PartitionBuffer {
    segments: Vec<Segment>,
    batches: Vec<RecordBatch>,
    rows: usize,
}

/// Memory a partition's slice of a batch takes beyond the rows it shares with its parent:
/// the batch and an array object per column. With a row or two per partition in each input
/// batch (tens of thousands of days, shuffled), these outweighed the rows themselves and
/// took the process past its budget when they were not counted.
const SLICE_BYTES_PER_COLUMN: usize = 192;

impl PartitionBuffer {
    /// About how many bytes the partition's rows take in memory: its buffered slices, and
    /// its spilled segments as large as they were before they were spilled (LZ4 shrinks
    /// repetitive rows a hundredfold, so their spilled size says nothing of it).
    fn approximate_bytes(&self) -> usize {
        let spilled: usize = self.segments.iter().map(|s| s.memory_bytes).sum();
        let buffered: usize = self.batches.iter().map(sliced_bytes).sum();
        buffered.saturating_add(spilled)
    }
}

/// A stretch of the spill file and how many bytes its rows took in memory.
#[derive(Debug, Clone, Copy)]
struct Segment {
    place: SpillPlace,
    memory_bytes: usize,
}

/// Where a segment's rows are in the spill file, and how they are stored.
#[derive(Debug, Clone, Copy)]
enum SpillPlace {
    /// LZ4 Arrow IPC batches: cheap to write and read back.
    Arrow { offset: u64, len: u64 },
    /// A finished Parquet file image. A partition spilled once as a whole (rows in date
    /// order, partitioned by day) is encoded once and copied out at the end; one that
    /// gets more rows later is read back and encoded again with them.
    Parquet { offset: u64, len: u64, rows: u64 },
}

/// Buffers batches per partition under a byte limit, spilling to a temporary file.
pub struct PartitionedWriter {
    partitioner: Partitioner,
    schema: SchemaRef,
    properties: WriterProperties,
    partitions: BTreeMap<i32, PartitionBuffer>,
    buffered_bytes: usize,
    buffered_rows: usize,
    limit: usize,
    spill: Option<SpillFile>,
    spill_dir: std::path::PathBuf,
    max_spill_bytes: u64,
    deadline: Option<tokio::time::Instant>,
    batch_rows: usize,
    batch_bytes: usize,
    commits_in_flight: usize,
    progress: Option<Arc<Progress>>,
    threads: usize,
    row_group_bytes: usize,
}

impl PartitionedWriter {
    pub fn new(
        partitioner: Partitioner,
        schema: SchemaRef,
        properties: WriterProperties,
        settings: &ConvertSettings,
    ) -> Self {
        PartitionedWriter {
            partitioner,
            schema,
            properties,
            partitions: BTreeMap::new(),
            buffered_bytes: 0,
            buffered_rows: 0,
            limit: settings.buffer_limit(),
            spill: None,
            spill_dir: settings.spill_dir.clone(),
            max_spill_bytes: settings.max_spill_bytes,
            deadline: settings.deadline,
            batch_rows: settings.batch_rows,
            batch_bytes: settings.batch_bytes,
            commits_in_flight: settings.commits_in_flight(),
            progress: settings.progress.clone(),
            threads: settings.threads,
            row_group_bytes: settings.row_group_bytes(),
        }
    }

    /// The schema and writer properties of its files.
    pub fn format(&self) -> (SchemaRef, WriterProperties) {
        (self.schema.clone(), self.properties.clone())
    }

    /// Bytes written to the spill file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.len)
    }

    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let keys = self
            .partitioner
            .keys(batch.column(self.partitioner.column))?;
        let Some(&first) = keys.first() else {
            return Ok(());
        };
        self.buffered_bytes += batch.get_array_memory_size();
        self.buffered_rows += batch.num_rows();
        if keys.iter().all(|&k| k == first) {
            let buffer = self.partitions.entry(first).or_default();
            buffer.rows += batch.num_rows();
            buffer.batches.push(batch);
        } else {
            self.push_grouped(&batch, &keys)?;
        }
        if let Some(progress) = &self.progress {
            progress.set_partitions(self.partitions.len());
        }
        if self.buffered_bytes > self.limit {
            self.spill_all()?;
        }
        Ok(())
    }

    /// Reorders a mixed batch by partition with one `take` (a counting sort over the
    /// batch's range of keys: days or months, so dense), then hands each partition its
    /// slice.
    fn push_grouped(&mut self, batch: &RecordBatch, keys: &[i32]) -> Result<()> {
        let (low, high) = keys
            .iter()
            .fold((i32::MAX, i32::MIN), |(lo, hi), &k| (lo.min(k), hi.max(k)));
        let span = (i64::from(high) - i64::from(low) + 1) as usize;
        if span > 4 * keys.len() + 1024 {
            // Keys far apart (timestamps decades apart): a sparse sort.
            return self.push_sorted_sparse(batch, keys);
        }
        let slot = |key: i32| (key - low) as usize;
        let mut starts = vec![0u32; span + 1];
        for &key in keys {
            starts[slot(key) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; keys.len()];
        for (row, &key) in keys.iter().enumerate() {
            let at = &mut next[slot(key)];
            order[*at as usize] = row as u32;
            *at += 1;
        }
        let sorted = arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))?;
        for (index, window) in starts.windows(2).enumerate() {
            let (start, end) = (window[0] as usize, window[1] as usize);
            if end > start {
                let key = low + index as i32;
                self.hand(key, sorted.slice(start, end - start));
            }
        }
        Ok(())
    }

    /// [`PartitionedWriter::push_grouped`] for keys too far apart to count densely.
    fn push_sorted_sparse(&mut self, batch: &RecordBatch, keys: &[i32]) -> Result<()> {
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_by_key(|&row| keys[row as usize]);
        let sorted_keys: Vec<i32> = order.iter().map(|&row| keys[row as usize]).collect();
        let sorted = arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))?;
        let mut start = 0;
        while start < sorted_keys.len() {
            let key = sorted_keys[start];
            let end = start + sorted_keys[start..].partition_point(|&k| k == key);
            self.hand(key, sorted.slice(start, end - start));
            start = end;
        }
        Ok(())
    }

    fn hand(&mut self, key: i32, rows: RecordBatch) {
        self.buffered_bytes += (rows.num_columns() + 1) * SLICE_BYTES_PER_COLUMN;
        let buffer = self.partitions.entry(key).or_default();
        buffer.rows += rows.num_rows();
        buffer.batches.push(rows);
    }

    /// Moves every buffered batch to the spill file. Past the spill limit the file is
    /// refused ([`Error::Limit`]): a small compressed file can expand without bound, the
    /// disk cannot.
    fn spill_all(&mut self) -> Result<()> {
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(SpillFile::create(&self.spill_dir)?),
        };
        for buffer in self.partitions.values_mut() {
            if !buffer.batches.is_empty() {
                // Full batches per partition and spill: in random row order a partition
                // gets a few rows of every input batch, and tiny IPC batches compress badly.
                let mut pending =
                    Coalescer::new(self.schema.clone(), self.batch_rows, self.batch_bytes);
                let mut merged = Vec::new();
                for batch in buffer.batches.drain(..) {
                    merged.extend(pending.push(batch)?);
                }
                merged.extend(pending.finish()?);
                // A partition seen whole for the first time, and large in the buffer (rows
                // in date order), is encoded now: later it is only copied.
                let whole = buffer.segments.is_empty()
                    && buffer.rows * WHOLE_PARTITION_SHARE >= self.buffered_rows;
                let place = if whole {
                    let image = encode_file(&self.schema, &self.properties, &merged)?;
                    let (offset, len) = spill.append_bytes(&image)?;
                    SpillPlace::Parquet {
                        offset,
                        len,
                        rows: buffer.rows as u64,
                    }
                } else {
                    let (offset, len) = spill.append(&self.schema, &merged)?;
                    SpillPlace::Arrow { offset, len }
                };
                let memory_bytes = merged.iter().map(sliced_bytes).sum();
                buffer.segments.push(Segment {
                    place,
                    memory_bytes,
                });
            }
            buffer.rows = 0;
        }
        self.buffered_bytes = 0;
        self.buffered_rows = 0;
        if spill.len > self.max_spill_bytes {
            return Err(Error::Limit(format!(
                "partitioning the file needs more than the {} MiB of spill space allowed \
                 (SNOWCAST_MAX_SPILL_MB)",
                self.max_spill_bytes >> 20
            )));
        }
        Ok(())
    }

    /// Writes every partition in partition order, and commits each while the next ones are
    /// written. Called only once the file is accepted. A written file waiting for its
    /// commit holds its last part (a small partition: all of it), so at most
    /// `commits_in_flight` wait at once; on S3 each commit is a round trip, which for
    /// hundreds of daily partitions outweighs their encoding. A failure part-way leaves
    /// earlier partitions in place: a retry rewrites the same keys, and no manifest
    /// announces them until every partition is written.
    ///
    /// With more than one core each partition is encoded on a thread of its own, and small
    /// partitions close their files (where their pages are compressed) while the next one
    /// is read back from the spill and fed to its encoder: one closing per core, three at
    /// most, so the cores close files side by side. A partition is small when its rows and
    /// its encoder's fixed cost (every column's encoder, page buffers and zstd context) fit
    /// in a quarter of a row group; a larger one is written alone, so the memory held stays
    /// one row group and one batch. Small budgets never overlap: at 24 MiB a second encoder
    /// for 14 columns would be 4.4 MiB over it.
    pub async fn finish(
        mut self,
        sink: &dyn ObjectSink,
        make_series: impl Fn(String) -> Result<ParquetSeries>,
    ) -> Result<Vec<ManifestFile>> {
        release_freed_memory();
        let mut commits = Commits::new(self.commits_in_flight);
        let written = self
            .write_partitions(sink, &make_series, &mut commits)
            .await;
        match written {
            Ok(()) => commits.finish().await,
            Err(error) => {
                // The commits already started end as they end; none is left waiting.
                abort_quietly(commits.finish().await.map(drop));
                Err(error)
            }
        }
    }

    /// Fills and finishes every partition's series, handing each one's files to `commits`.
    async fn write_partitions(
        &mut self,
        sink: &dyn ObjectSink,
        make_series: &impl Fn(String) -> Result<ParquetSeries>,
        commits: &mut Commits,
    ) -> Result<()> {
        let small = self.row_group_bytes / 4;
        let encoder_bytes = self.schema.fields().len() * COLUMN_OVERHEAD_BYTES;
        let closing_at_most = (self.threads + 1).min(3);
        // Small partitions filled and closing on their encoders' threads, oldest first.
        let mut closing = FuturesOrdered::new();
        let outcome = async {
            for (key, buffer) in std::mem::take(&mut self.partitions) {
                let alongside = self.threads > 1
                    && encoder_bytes.saturating_add(buffer.approximate_bytes()) <= small;
                if !alongside {
                    while let Some(written) = closing.next().await {
                        commits.start(written?).await?;
                    }
                }
                let series = self
                    .fill_beside(sink, make_series, (key, buffer), &mut closing, commits)
                    .await?;
                if alongside {
                    closing.push_back(series.finish(sink));
                    if closing.len() > closing_at_most
                        && let Some(written) = closing.next().await
                    {
                        commits.start(written?).await?;
                    }
                } else {
                    commits.start(series.finish(sink).await?).await?;
                }
            }
            while let Some(written) = closing.next().await {
                commits.start(written?).await?;
            }
            Ok(())
        }
        .await;
        if outcome.is_err() {
            // The files still closing end as they end and are aborted; none is left open.
            while let Some(written) = closing.next().await {
                if let Ok(written) = written {
                    abort_quietly(abort_all(written).await);
                }
            }
        }
        outcome
    }

    /// [`PartitionedWriter::fill_partition`] while the files in `closing` end and are
    /// committed. A failed commit is returned once the partition is filled (and aborted).
    async fn fill_beside<F: Future<Output = Result<Vec<WrittenFile>>>>(
        &self,
        sink: &dyn ObjectSink,
        make_series: &impl Fn(String) -> Result<ParquetSeries>,
        (key, buffer): (i32, PartitionBuffer),
        closing: &mut FuturesOrdered<F>,
        commits: &mut Commits,
    ) -> Result<ParquetSeries> {
        let fill = self.fill_partition(sink, make_series, key, buffer);
        tokio::pin!(fill);
        let mut failed = None;
        let filled = loop {
            tokio::select! {
                biased;
                filled = &mut fill => break filled,
                Some(written) = closing.next(), if !closing.is_empty() => {
                    if let Err(error) = async { commits.start(written?).await }.await {
                        failed.get_or_insert(error);
                    }
                }
            }
        };
        match (filled, failed) {
            (Ok(series), None) => Ok(series),
            (Ok(series), Some(error)) => {
                series.abort().await?;
                Err(error)
            }
            (Err(error), _) => Err(error),
        }
    }

    /// A partition's series with all its rows handed to the encoder (or, if that fails,
    /// aborted).
    async fn fill_partition(
        &self,
        sink: &dyn ObjectSink,
        make_series: &impl Fn(String) -> Result<ParquetSeries>,
        key: i32,
        buffer: PartitionBuffer,
    ) -> Result<ParquetSeries> {
        check_deadline(self.deadline, "writing partitions")?;
        let mut series = make_series(self.partitioner.directory(key))?;
        let filled = match (buffer.segments.as_slice(), buffer.batches.as_slice()) {
            // Encoded whole when it was spilled: copied out as it is.
            (
                [
                    Segment {
                        place: SpillPlace::Parquet { offset, len, rows },
                        ..
                    },
                ],
                [],
            ) => {
                match self
                    .spill_file()
                    .and_then(|spill| spill.bytes(*offset, *len))
                {
                    Ok(image) => series.write_encoded(sink, image, *rows).await,
                    Err(error) => Err(error),
                }
            }
            _ => self.replay(sink, &mut series, buffer).await,
        };
        match filled {
            Ok(()) => Ok(series),
            Err(error) => {
                series.abort().await?;
                Err(error)
            }
        }
    }

    fn spill_file(&self) -> Result<&SpillFile> {
        self.spill
            .as_ref()
            .ok_or_else(|| Error::invalid("spill", "segment recorded without a spill file"))
    }

    /// The batches of a spilled segment.
    fn read_segment(
        &self,
        segment: Segment,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>>>> {
        let spill = self.spill_file()?;
        Ok(match segment.place {
            SpillPlace::Arrow { offset, len } => {
                Box::new(spill.read(offset, len)?.map(|b| b.map_err(Error::from)))
            }
            SpillPlace::Parquet { offset, len, .. } => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(spill.bytes(offset, len)?)?
                    .with_batch_size(self.batch_rows)
                    .build()?;
                Box::new(reader.map(|b| b.map_err(Error::from)))
            }
        })
    }

    async fn replay(
        &self,
        sink: &dyn ObjectSink,
        series: &mut ParquetSeries,
        buffer: PartitionBuffer,
    ) -> Result<()> {
        // Segments and buffered slices are written as full batches: the Parquet writer's
        // cost per batch is high for the few rows a partition gets from each spill.
        let mut pending = Coalescer::new(self.schema.clone(), self.batch_rows, self.batch_bytes);
        for segment in buffer.segments {
            for batch in self.read_segment(segment)? {
                if let Some(full) = pending.push(batch?)? {
                    series.write(sink, &full).await?;
                }
            }
        }
        for batch in buffer.batches {
            if let Some(full) = pending.push(batch)? {
                series.write(sink, &full).await?;
            }
        }
        match pending.finish()? {
            Some(last) => series.write(sink, &last).await,
            None => Ok(()),
        }
    }
}

/// Hands the memory the reading phase freed back to the system before the partitions are
/// written. With two cores the rows were grouped on other threads, whose glibc heaps keep
/// what they free for their own use: the encoders could not reuse it, and the peak was the
/// two phases' peaks added up (390-490 MiB for a 511-column file by day under 256 MiB).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns the allocator's free pages to the kernel; no live
    // allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Keeps glibc from holding on to large freed blocks. By default it raises its mmap
/// threshold to the largest block freed so far (up to 32 MiB), after which rows of
/// megabyte cells come from the heaps of the threads that allocate them, and each heap
/// keeps what is freed: with two cores a by-day file of 15 MiB cells peaked 30 MiB above
/// the same file on one core (177 -> 160 MiB under a 128 MiB budget with this). Blocks of
/// 8 MiB and more are mapped and unmapped; the heap is trimmed past 64 MiB of free top.
/// Once per conversion; the settings are the process's.
pub fn bound_allocator_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds for later calls.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Gathers small batches into one of about `rows` rows or `bytes` bytes, whichever comes
/// first (a batch of large cells is bounded by its bytes, not its rows).
struct Coalescer {
    schema: SchemaRef,
    rows: usize,
    bytes: usize,
    batches: Vec<RecordBatch>,
    held_rows: usize,
    held_bytes: usize,
}

impl Coalescer {
    fn new(schema: SchemaRef, rows: usize, bytes: usize) -> Self {
        Coalescer {
            schema,
            rows,
            bytes,
            batches: Vec::new(),
            held_rows: 0,
            held_bytes: 0,
        }
    }

    /// Takes `batch`; returns the gathered batch once it is full.
    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        self.held_rows += batch.num_rows();
        self.held_bytes += sliced_bytes(&batch);
        self.batches.push(batch);
        if self.held_rows >= self.rows || self.held_bytes >= self.bytes {
            return self.finish();
        }
        Ok(None)
    }

    /// The batch gathered so far, if any.
    fn finish(&mut self) -> Result<Option<RecordBatch>> {
        let gathered = match self.batches.len() {
            0 => None,
            1 => self.batches.pop(),
            _ => Some(concat_batches(&self.schema, &self.batches)?),
        };
        self.batches.clear();
        (self.held_rows, self.held_bytes) = (0, 0);
        Ok(gathered)
    }
}

/// A partition holding at least 1/this of the buffered rows when first spilled is encoded
/// to Parquet there and then (rows in date order: each day is spilled once, whole); smaller
/// shares (rows in any other order) spill as Arrow and are encoded once, at the end.
const WHOLE_PARTITION_SHARE: usize = 64;

/// One Parquet file image of `batches`.
fn encode_file(
    schema: &SchemaRef,
    properties: &WriterProperties,
    batches: &[RecordBatch],
) -> Result<Vec<u8>> {
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties.clone()))?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?)
}

/// Bytes of `batch`'s own rows. A partition's rows are slices of a shared batch, and
/// `get_array_memory_size` would count the whole shared buffers for each slice. Computed
/// from the types and offsets: `ArrayData::get_slice_memory_size` builds an `ArrayData`
/// per column, which cost 5% of a shuffled by-day conversion.
fn sliced_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| sliced_array_bytes(column.as_ref()))
        .sum()
}

fn sliced_array_bytes(array: &dyn Array) -> usize {
    let rows = array.len();
    let validity = array.nulls().map_or(0, |_| rows.div_ceil(8));
    let values = match array.data_type() {
        DataType::Utf8 => {
            let offsets = array.as_string::<i32>().value_offsets();
            (offsets[rows] - offsets[0]) as usize + 4 * rows
        }
        DataType::Boolean => rows.div_ceil(8),
        // The silver schema's dictionaries hold one constant value, shared by every slice.
        DataType::Dictionary(key, _) => key.primitive_width().unwrap_or(4) * rows,
        other => match other.primitive_width() {
            Some(width) => width * rows,
            None => array.get_array_memory_size(),
        },
    };
    validity + values
}

/// Commits running beside the writing of later partitions, at most `limit` at once. Their
/// files come out in the order they were started.
struct Commits {
    running: VecDeque<tokio::task::JoinHandle<Result<Vec<ManifestFile>>>>,
    limit: usize,
    files: Vec<ManifestFile>,
    failed: Option<Error>,
}

impl Commits {
    fn new(limit: usize) -> Self {
        Commits {
            running: VecDeque::new(),
            limit: limit.max(1),
            files: Vec::new(),
            failed: None,
        }
    }

    /// Starts committing `written` in a task of its own, so the round trip overlaps the
    /// next partition's encoding; first waits for the oldest commit if `limit` run. After
    /// a failed commit nothing more is committed: `written` is aborted and the error
    /// returned once every commit started has ended.
    async fn start(&mut self, written: Vec<WrittenFile>) -> Result<()> {
        while self.running.len() >= self.limit {
            self.wait_oldest().await;
        }
        if self.failed.is_some() {
            abort_quietly(abort_all(written).await);
            return self.finish().await.map(drop);
        }
        self.running.push_back(tokio::spawn(commit_all(written)));
        // Lets the new task send its request before this one goes back to encoding.
        tokio::task::yield_now().await;
        Ok(())
    }

    async fn wait_oldest(&mut self) {
        let Some(oldest) = self.running.pop_front() else {
            return;
        };
        let outcome = oldest.await.unwrap_or_else(|_| {
            Err(Error::invalid(
                "partition commit",
                "its task stopped before it ended",
            ))
        });
        match outcome {
            Ok(files) => self.files.extend(files),
            Err(error) => {
                self.failed.get_or_insert(error);
            }
        }
    }

    /// Waits for every commit; the files in order, or the first error.
    async fn finish(&mut self) -> Result<Vec<ManifestFile>> {
        while !self.running.is_empty() {
            self.wait_oldest().await;
        }
        match self.failed.take() {
            Some(error) => Err(error),
            None => Ok(std::mem::take(&mut self.files)),
        }
    }
}

/// The decompressed bytes of one spilled Arrow segment.
type SegmentReader = FrameDecoder<BufReader<std::io::Take<File>>>;

/// An anonymous temporary file of IPC stream segments, deleted when dropped.
struct SpillFile {
    file: File,
    len: u64,
}

impl SpillFile {
    fn create(dir: &Path) -> Result<Self> {
        let file = tempfile::tempfile_in(dir)
            .map_err(|e| Error::io(format!("creating a spill file in {}", dir.display()), e))?;
        Ok(SpillFile { file, len: 0 })
    }

    /// Appends `batches` as one LZ4 frame around an uncompressed IPC stream. (IPC's own
    /// compression starts a frame, with its buffers and hash table, for every buffer of
    /// every batch: for the few rows a partition gets per spill, that set-up cost more
    /// than the compression.)
    fn append(&mut self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(u64, u64)> {
        let start = self.len;
        let out = BufWriter::with_capacity(1 << 20, &mut self.file);
        let mut frame = FrameEncoder::new(out);
        let mut writer = StreamWriter::try_new(&mut frame, schema)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        drop(writer);
        frame
            .finish()
            .map_err(|e| Error::io("writing the spill file", std::io::Error::other(e)))?
            .flush()
            .map_err(|e| Error::io("writing the spill file", e))?;
        self.len = self
            .file
            .stream_position()
            .map_err(|e| Error::io("writing the spill file", e))?;
        Ok((start, self.len - start))
    }

    fn append_bytes(&mut self, bytes: &[u8]) -> Result<(u64, u64)> {
        let start = self.len;
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io("writing the spill file", e))?;
        self.len += bytes.len() as u64;
        Ok((start, bytes.len() as u64))
    }

    /// A handle of its own on the file, at `offset`.
    fn at(&self, offset: u64) -> Result<File> {
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| Error::io("reading the spill file", e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("reading the spill file", e))?;
        Ok(file)
    }

    /// The bytes of a segment, read into memory (a Parquet image: compressed, and at most
    /// one buffer's worth of rows).
    fn bytes(&self, offset: u64, len: u64) -> Result<Bytes> {
        let mut image = vec![0; len as usize];
        self.at(offset)?
            .read_exact(&mut image)
            .map_err(|e| Error::io("reading the spill file", e))?;
        Ok(Bytes::from(image))
    }

    fn read(&self, offset: u64, len: u64) -> Result<StreamReader<SegmentReader>> {
        let file = self.at(offset)?;
        Ok(StreamReader::try_new(
            FrameDecoder::new(BufReader::with_capacity(1 << 20, file.take(len))),
            None,
        )?)
    }
}

/// Either one streaming series or buffered partitions.
pub enum SilverWriter {
    // Boxed: the streaming series is large, and the enum moves through async frames.
    Single(Box<ParquetSeries>),
    Partitioned(Box<PartitionedWriter>),
    /// Partitioned, with the grouping and spilling on a thread of its own while the next
    /// rows are parsed (more than one core).
    PartitionedThread(PartitionThread),
}

impl SilverWriter {
    /// The writer a plan calls for: one streaming series, or buffered partitions.
    pub fn new(
        plan: &Plan,
        partitioning: Option<&PartitionSpec>,
        keys: &SilverKeys,
        settings: &ConvertSettings,
    ) -> Result<Self> {
        let schema = columns::silver_schema(&plan.columns);
        let properties = writer_properties(settings, &schema)?;
        let Some(spec) = partitioning else {
            return Ok(SilverWriter::Single(Box::new(ParquetSeries::new(
                schema,
                properties,
                keys.data_prefix.clone(),
                keys.stem.clone(),
                None,
                settings,
            )?)));
        };
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
        let writer = PartitionedWriter::new(partitioner, schema, properties, settings);
        Ok(match settings.threads {
            0 | 1 => SilverWriter::Partitioned(Box::new(writer)),
            _ => SilverWriter::PartitionedThread(PartitionThread::spawn(
                writer,
                settings.partition_queue_bytes(),
            )?),
        })
    }

    /// Writes what is left and commits every silver file (the file was accepted).
    pub async fn commit(
        mut self,
        sink: &dyn ObjectSink,
        keys: &SilverKeys,
        settings: &ConvertSettings,
    ) -> Result<Vec<ManifestFile>> {
        self.settle().await?;
        match self {
            SilverWriter::Single(series) => commit_all(series.finish(sink).await?).await,
            SilverWriter::Partitioned(partitioned) => {
                // The properties its spilled Parquet images were written with.
                let (schema, properties) = partitioned.format();
                (*partitioned)
                    .finish(sink, |directory| {
                        ParquetSeries::new(
                            schema.clone(),
                            properties.clone(),
                            format!("{}{directory}/", keys.data_prefix),
                            keys.stem.clone(),
                            Some(directory),
                            settings,
                        )
                    })
                    .await
            }
            SilverWriter::PartitionedThread(_) => Err(Error::invalid(
                "partitioning",
                "its thread was still running at commit",
            )),
        }
    }

    /// Hands one batch to the series or its partition.
    pub async fn push(&mut self, sink: &dyn ObjectSink, batch: RecordBatch) -> Result<()> {
        match self {
            SilverWriter::Single(series) => series.write(sink, &batch).await,
            SilverWriter::Partitioned(partitioned) => partitioned.push(batch),
            SilverWriter::PartitionedThread(thread) => thread.push(batch).await,
        }
    }

    /// Waits for work handed to a thread, and reports its error ([`Error::Limit`]: the
    /// spill outgrew its limit). Called once every batch is pushed.
    pub async fn settle(&mut self) -> Result<()> {
        if let SilverWriter::PartitionedThread(thread) = self {
            let (writer, outcome) = thread.join().await?;
            *self = SilverWriter::Partitioned(Box::new(writer));
            outcome?;
        }
        Ok(())
    }

    pub fn spilled_bytes(&self) -> u64 {
        match self {
            SilverWriter::Single(_) => 0,
            SilverWriter::Partitioned(p) => p.spilled_bytes(),
            SilverWriter::PartitionedThread(thread) => thread.spilled.load(Ordering::Relaxed),
        }
    }

    /// Discards everything; partitioned data only ever lived in memory and the spill file
    /// (a partitioning thread stops when its channel closes).
    pub async fn abort(self) -> Result<()> {
        match self {
            SilverWriter::Single(series) => series.abort().await,
            SilverWriter::Partitioned(_) | SilverWriter::PartitionedThread(_) => Ok(()),
        }
    }
}

/// A [`PartitionedWriter`] on its own thread. After an error the thread drops what it is
/// sent (so the reader never waits on it) and returns the error when joined.
pub struct PartitionThread {
    batches: Option<mpsc::Sender<(RecordBatch, OwnedSemaphorePermit)>>,
    /// Bytes the queued batches may take: a batch holds its size in permits until the
    /// thread has taken it (a batch larger than the queue waits for it to empty).
    room: Arc<Semaphore>,
    room_bytes: u32,
    thread: Option<std::thread::JoinHandle<(PartitionedWriter, Result<()>)>>,
    /// The writer's spilled bytes, as of its last batch.
    spilled: Arc<AtomicU64>,
}

/// Most batches that wait for the partitioning thread, whatever their bytes.
const PARTITION_QUEUE_BATCHES: usize = 8;

impl PartitionThread {
    fn spawn(mut writer: PartitionedWriter, queue_bytes: usize) -> Result<Self> {
        let room_bytes = u32::try_from(queue_bytes).unwrap_or(u32::MAX).max(1);
        let (sender, mut batches) =
            mpsc::channel::<(RecordBatch, OwnedSemaphorePermit)>(PARTITION_QUEUE_BATCHES);
        let spilled = Arc::new(AtomicU64::new(0));
        let seen = spilled.clone();
        let thread = std::thread::Builder::new()
            .name("partitioner".into())
            .spawn(move || {
                let mut outcome = Ok(());
                while let Some((batch, _room)) = batches.blocking_recv() {
                    if outcome.is_ok() {
                        outcome = writer.push(batch);
                        seen.store(writer.spilled_bytes(), Ordering::Relaxed);
                    }
                }
                (writer, outcome)
            })
            .map_err(|e| Error::io("starting the partitioning thread", e))?;
        Ok(PartitionThread {
            batches: Some(sender),
            room: Arc::new(Semaphore::new(room_bytes as usize)),
            room_bytes,
            thread: Some(thread),
            spilled,
        })
    }

    async fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let sender = self.batches.as_ref().ok_or_else(partitioner_stopped)?;
        let bytes = u32::try_from(batch.get_array_memory_size())
            .unwrap_or(u32::MAX)
            .clamp(1, self.room_bytes);
        let room = self
            .room
            .clone()
            .acquire_many_owned(bytes)
            .await
            .map_err(|_| partitioner_stopped())?;
        sender
            .send((batch, room))
            .await
            .map_err(|_| partitioner_stopped())
    }

    /// Closes the channel and waits for the thread to finish what it was sent.
    async fn join(&mut self) -> Result<(PartitionedWriter, Result<()>)> {
        self.batches = None;
        let thread = self.thread.take().ok_or_else(partitioner_stopped)?;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|_| partitioner_stopped())?
            .map_err(|_| partitioner_stopped())
    }
}

fn partitioner_stopped() -> Error {
    Error::invalid("partitioning", "its thread stopped")
}

/// Bad rows with their reasons, as JSON lines:
/// `{"row": 12, "column": "units", "reason": "...", "fields": ["...", ...]}`.
/// The fields are the record as parsed, so a fixed file can be rebuilt from the log. A
/// record that is malformed (an unclosed quote, past a size limit) keeps only a preview of
/// its fields (`"truncated": true`), and one that stands for several physical records (an
/// unclosed quote swallows the lines after it) says which with `"last_row"`.
pub struct RejectLog {
    key: String,
    upload: Option<Box<dyn ObjectUpload>>,
    buffer: Vec<u8>,
    count: u64,
    /// Lines past this many bytes are counted in `omitted`, not written.
    max_bytes: u64,
    logged_bytes: u64,
    omitted: u64,
}

/// One rejected record.
pub struct Rejected<'a, F> {
    /// Row number of the record (1 = first data row).
    pub row: i64,
    /// Physical records it stands for (usually 1).
    pub rows: u64,
    pub column: Option<&'a str>,
    pub reason: &'a str,
    pub fields: F,
    /// Keep only a preview of the fields.
    pub preview: bool,
}

/// Fields and bytes per field kept in a preview.
const PREVIEW_FIELDS: usize = 32;
const PREVIEW_BYTES: usize = 1024;

#[derive(serde::Serialize)]
struct RejectLine<'a> {
    row: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_row: Option<i64>,
    column: Option<&'a str>,
    reason: &'a str,
    fields: Vec<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl RejectLog {
    /// A log of at most `max_bytes`; the rows rejected after it is full are only counted.
    pub fn new(key: String, max_bytes: u64) -> Self {
        RejectLog {
            key,
            upload: None,
            buffer: Vec::new(),
            count: 0,
            max_bytes,
            logged_bytes: 0,
            omitted: 0,
        }
    }

    /// Rows rejected so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Rejected rows counted but not listed, the log being full.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    /// Records one bad record (in memory until the next [`RejectLog::drain`]).
    pub fn push<'f>(
        &mut self,
        rejected: Rejected<'_, impl Iterator<Item = &'f [u8]>>,
    ) -> Result<()> {
        let fields: Vec<_> = if rejected.preview {
            rejected
                .fields
                .take(PREVIEW_FIELDS)
                .map(|f| String::from_utf8_lossy(&f[..f.len().min(PREVIEW_BYTES)]))
                .collect()
        } else {
            rejected.fields.map(String::from_utf8_lossy).collect()
        };
        let line = RejectLine {
            row: rejected.row,
            last_row: (rejected.rows > 1).then(|| rejected.row + rejected.rows as i64 - 1),
            column: rejected.column,
            reason: rejected.reason,
            fields,
            truncated: rejected.preview,
        };
        let start = self.buffer.len();
        serde_json::to_writer(&mut self.buffer, &line)?;
        self.buffer.push(b'\n');
        self.count += rejected.rows;
        let size = (self.buffer.len() - start) as u64;
        if self.logged_bytes + size > self.max_bytes {
            self.buffer.truncate(start);
            self.omitted += rejected.rows;
        } else {
            self.logged_bytes += size;
        }
        Ok(())
    }

    /// Uploads buffered lines once there are enough of them (or with `force`).
    pub async fn drain(
        &mut self,
        sink: &dyn ObjectSink,
        threshold: usize,
        force: bool,
    ) -> Result<()> {
        if self.buffer.is_empty() || (!force && self.buffer.len() < threshold) {
            return Ok(());
        }
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => self.upload.insert(sink.create(&self.key).await?),
        };
        upload
            .write(Bytes::from(std::mem::take(&mut self.buffer)))
            .await
    }

    /// Commits the log if any row was rejected; returns its location. A full log ends with
    /// a line saying how many rows it leaves out.
    pub async fn commit(mut self, sink: &dyn ObjectSink) -> Result<Option<String>> {
        if self.omitted > 0 {
            let note = serde_json::json!({
                "omitted_rows": self.omitted,
                "reason": format!(
                    "the reject log reached its limit of {} bytes; later rejected rows are \
                     counted, not listed (the source file keeps them)",
                    self.max_bytes
                ),
            });
            serde_json::to_writer(&mut self.buffer, &note)?;
            self.buffer.push(b'\n');
        }
        if let Err(error) = self.drain(sink, 0, true).await {
            self.abort().await;
            return Err(error);
        }
        match self.upload {
            Some(upload) => Ok(Some(upload.commit().await?.uri)),
            None => Ok(None),
        }
    }

    /// Forgets every line and aborts the upload, if one started.
    pub async fn abort(&mut self) {
        self.buffer.clear();
        self.count = 0;
        if let Some(upload) = self.upload.take() {
            abort_quietly(upload.abort().await);
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::StringArray;
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn a_spilled_partition_counts_the_memory_its_rows_took_not_their_compressed_size() {
        // 2,000 rows of a repeated kilobyte: 2 MB in memory, a few kilobytes of LZ4. Taken
        // by its spill, such a partition looked small enough to be written beside others,
        // and three of them (70 MB each, rows of 10 MB cells) were read back at once.
        let schema = Arc::new(Schema::new(vec![
            Field::new("date", DataType::Date32, false),
            Field::new("notes", DataType::Utf8, false),
        ]));
        let rows = 2_000;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Date32Array::from(vec![19_000; rows])),
                Arc::new(StringArray::from(vec!["a".repeat(1_000); rows])),
            ],
        )
        .unwrap();
        let spill_dir = tempfile::tempdir().unwrap();
        let partitioner = Partitioner {
            column: 0,
            name: "date".into(),
            column_type: ColumnType::Date,
            granularity: Granularity::Day,
        };
        let settings = ConvertSettings::default().with_spill_dir(spill_dir.path());
        let mut writer = PartitionedWriter::new(
            partitioner,
            schema,
            WriterProperties::builder().build(),
            &settings,
        );
        writer.push(batch).unwrap();
        writer.spill_all().unwrap();
        let spilled = writer.spilled_bytes() as usize;
        let partition = &writer.partitions[&19_000];
        assert!(partition.batches.is_empty(), "everything was spilled");
        assert!(spilled < 100_000, "spilled {spilled} bytes");
        assert!(
            partition.approximate_bytes() >= rows * 1_000,
            "taken for {} bytes",
            partition.approximate_bytes()
        );
    }
}
