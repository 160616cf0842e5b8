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
    collections::BTreeMap,
    fs::File,
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::Path,
};

use arrow_array::{
    Array, ArrayRef, Date32Array, RecordBatch, TimestampMicrosecondArray, UInt32Array,
};
use arrow_ipc::{
    CompressionType,
    reader::StreamReader,
    writer::{IpcWriteOptions, StreamWriter},
};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::{
    arrow::ArrowWriter,
    basic::{Compression, ZstdLevel},
    file::properties::{EnabledStatistics, WriterProperties},
    schema::types::ColumnPath,
};

use super::{
    columns,
    plan::Plan,
    settings::{ConvertSettings, check_deadline},
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
/// current one reaches the target size.
pub struct ParquetSeries {
    schema: SchemaRef,
    properties: WriterProperties,
    directory: String,
    stem: String,
    partition: Option<String>,
    target_file_bytes: usize,
    upload_chunk: usize,
    current: Option<OpenFile>,
    written: Vec<WrittenFile>,
}

struct OpenFile {
    writer: ArrowWriter<Vec<u8>>,
    upload: Box<dyn ObjectUpload>,
    rows: u64,
}

impl ParquetSeries {
    pub fn new(
        schema: SchemaRef,
        properties: WriterProperties,
        directory: String,
        stem: String,
        partition: Option<String>,
        settings: &ConvertSettings,
    ) -> Self {
        ParquetSeries {
            schema,
            properties,
            directory,
            stem,
            partition,
            target_file_bytes: settings.target_file_bytes,
            upload_chunk: settings.upload_chunk_bytes,
            current: None,
            written: Vec::new(),
        }
    }

    pub async fn write(&mut self, sink: &dyn ObjectSink, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let file = match &mut self.current {
            Some(file) => file,
            None => {
                let key = format!(
                    "{}{}-{}.parquet",
                    self.directory,
                    self.stem,
                    self.written.len()
                );
                let upload = sink.create(&key).await?;
                let writer = ArrowWriter::try_new(
                    Vec::with_capacity(self.upload_chunk),
                    self.schema.clone(),
                    Some(self.properties.clone()),
                )?;
                self.current.insert(OpenFile {
                    writer,
                    upload,
                    rows: 0,
                })
            }
        };
        file.writer.write(batch)?;
        file.rows += batch.num_rows() as u64;
        if file.writer.inner_mut().len() >= self.upload_chunk {
            // The writer only counts bytes; draining its buffer does not disturb offsets.
            let encoded = std::mem::take(file.writer.inner_mut());
            file.upload.write(Bytes::from(encoded)).await?;
        }
        if file.writer.bytes_written() + file.writer.in_progress_size() >= self.target_file_bytes {
            self.close_current().await?;
        }
        Ok(())
    }

    /// Closes the open file; if that fails, its upload is aborted.
    async fn close_current(&mut self) -> Result<()> {
        let Some(file) = self.current.take() else {
            return Ok(());
        };
        let mut upload = file.upload;
        let closed = match file.writer.into_inner() {
            Ok(rest) => upload.write(Bytes::from(rest)).await,
            Err(error) => Err(error.into()),
        };
        match closed {
            Ok(()) => {
                self.written.push(WrittenFile {
                    upload,
                    partition: self.partition.clone(),
                    rows: file.rows,
                });
                Ok(())
            }
            Err(error) => {
                abort_quietly(upload.abort().await);
                Err(error)
            }
        }
    }

    /// Closes the open file and hands over every file of the series (or, if closing
    /// fails, aborts them all).
    pub async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if let Err(error) = self.close_current().await {
            abort_quietly(abort_all(self.written).await);
            return Err(error);
        }
        Ok(self.written)
    }

    /// Discards everything written.
    pub async fn abort(mut self) -> Result<()> {
        if let Some(file) = self.current.take() {
            file.upload.abort().await?;
        }
        abort_all(self.written).await
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

/// Spilled IPC segments and in-memory batches of one partition, oldest first.
#[derive(Default)]
struct PartitionBuffer {
    segments: Vec<(u64, u64)>,
    batches: Vec<RecordBatch>,
}

/// Buffers batches per partition under a byte limit, spilling to a temporary file.
pub struct PartitionedWriter {
    partitioner: Partitioner,
    schema: SchemaRef,
    partitions: BTreeMap<i32, PartitionBuffer>,
    buffered_bytes: usize,
    limit: usize,
    spill: Option<SpillFile>,
    spill_dir: std::path::PathBuf,
    max_spill_bytes: u64,
    deadline: Option<tokio::time::Instant>,
}

impl PartitionedWriter {
    pub fn new(partitioner: Partitioner, schema: SchemaRef, settings: &ConvertSettings) -> Self {
        PartitionedWriter {
            partitioner,
            schema,
            partitions: BTreeMap::new(),
            buffered_bytes: 0,
            limit: settings.buffer_limit(),
            spill: None,
            spill_dir: settings.spill_dir.clone(),
            max_spill_bytes: settings.max_spill_bytes,
            deadline: settings.deadline,
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
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
        if keys.iter().all(|&k| k == first) {
            self.partitions
                .entry(first)
                .or_default()
                .batches
                .push(batch);
        } else {
            self.push_grouped(&batch, &keys)?;
        }
        if self.buffered_bytes > self.limit {
            self.spill_all()?;
        }
        Ok(())
    }

    /// Reorders a mixed batch by partition with one `take` (a counting sort), then hands
    /// each partition its slice.
    fn push_grouped(&mut self, batch: &RecordBatch, keys: &[i32]) -> Result<()> {
        let mut counts: BTreeMap<i32, u32> = BTreeMap::new();
        for &key in keys {
            *counts.entry(key).or_default() += 1;
        }
        let mut next: BTreeMap<i32, u32> = BTreeMap::new();
        let mut offset = 0;
        for (&key, &count) in &counts {
            next.insert(key, offset);
            offset += count;
        }
        let mut order = vec![0u32; keys.len()];
        for (row, key) in keys.iter().enumerate() {
            let slot = next.get_mut(key).expect("every key was counted");
            order[*slot as usize] = row as u32;
            *slot += 1;
        }
        let sorted = arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))?;
        let mut start = 0usize;
        for (key, count) in counts {
            let slice = sorted.slice(start, count as usize);
            self.partitions.entry(key).or_default().batches.push(slice);
            start += count as usize;
        }
        Ok(())
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
                let segment = spill.append(&self.schema, &buffer.batches)?;
                buffer.segments.push(segment);
                buffer.batches.clear();
            }
        }
        self.buffered_bytes = 0;
        if spill.len > self.max_spill_bytes {
            return Err(Error::Limit(format!(
                "partitioning the file needs more than the {} MiB of spill space allowed \
                 (SNOWCAST_MAX_SPILL_MB)",
                self.max_spill_bytes >> 20
            )));
        }
        Ok(())
    }

    /// Writes and commits every partition, one at a time, in partition order. Called only
    /// once the file is accepted, so nothing waits uncommitted (an upload waiting for its
    /// commit holds its buffer; hundreds of them would break the memory budget). A failure
    /// part-way leaves earlier partitions in place: a retry rewrites the same keys, and no
    /// manifest announces them until every partition is written.
    pub async fn finish(
        mut self,
        sink: &dyn ObjectSink,
        make_series: impl Fn(String) -> ParquetSeries,
    ) -> Result<Vec<ManifestFile>> {
        let mut files = Vec::new();
        let partitions = std::mem::take(&mut self.partitions);
        for (key, buffer) in partitions {
            check_deadline(self.deadline, "writing partitions")?;
            let mut series = make_series(self.partitioner.directory(key));
            match self.replay(sink, &mut series, buffer).await {
                Ok(()) => files.extend(commit_all(series.finish().await?).await?),
                Err(error) => {
                    series.abort().await?;
                    return Err(error);
                }
            }
        }
        Ok(files)
    }

    async fn replay(
        &mut self,
        sink: &dyn ObjectSink,
        series: &mut ParquetSeries,
        buffer: PartitionBuffer,
    ) -> Result<()> {
        for (offset, len) in buffer.segments {
            let spill = self
                .spill
                .as_mut()
                .ok_or_else(|| Error::invalid("spill", "segment recorded without a spill file"))?;
            for batch in spill.read(offset, len)? {
                series.write(sink, &batch?).await?;
            }
        }
        for batch in buffer.batches {
            series.write(sink, &batch).await?;
        }
        Ok(())
    }
}

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

    fn append(&mut self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(u64, u64)> {
        let start = self.len;
        let options =
            IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
        let mut out = BufWriter::with_capacity(1 << 20, &mut self.file);
        let mut writer = StreamWriter::try_new_with_options(&mut out, schema, options)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        drop(writer);
        out.flush()
            .map_err(|e| Error::io("writing the spill file", e))?;
        drop(out);
        self.len = self
            .file
            .stream_position()
            .map_err(|e| Error::io("writing the spill file", e))?;
        Ok((start, self.len - start))
    }

    fn read(
        &mut self,
        offset: u64,
        len: u64,
    ) -> Result<StreamReader<BufReader<std::io::Take<File>>>> {
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| Error::io("reading the spill file", e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("reading the spill file", e))?;
        Ok(StreamReader::try_new(
            BufReader::with_capacity(1 << 20, file.take(len)),
            None,
        )?)
    }
}

/// Either one streaming series or buffered partitions.
pub enum SilverWriter {
    // Boxed: the streaming series is large, and the enum moves through async frames.
    Single(Box<ParquetSeries>),
    Partitioned(PartitionedWriter),
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
            ))));
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
        Ok(SilverWriter::Partitioned(PartitionedWriter::new(
            partitioner,
            schema,
            settings,
        )))
    }

    /// Writes what is left and commits every silver file (the file was accepted).
    pub async fn commit(
        self,
        sink: &dyn ObjectSink,
        keys: &SilverKeys,
        settings: &ConvertSettings,
    ) -> Result<Vec<ManifestFile>> {
        match self {
            SilverWriter::Single(series) => commit_all(series.finish().await?).await,
            SilverWriter::Partitioned(partitioned) => {
                let schema = partitioned.schema().clone();
                let properties = writer_properties(settings, &schema)?;
                partitioned
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
        }
    }

    /// Hands one batch to the series or its partition.
    pub async fn push(&mut self, sink: &dyn ObjectSink, batch: RecordBatch) -> Result<()> {
        match self {
            SilverWriter::Single(series) => series.write(sink, &batch).await,
            SilverWriter::Partitioned(partitioned) => partitioned.push(batch),
        }
    }

    pub fn spilled_bytes(&self) -> u64 {
        match self {
            SilverWriter::Single(_) => 0,
            SilverWriter::Partitioned(p) => p.spilled_bytes(),
        }
    }

    /// Discards everything; partitioned data only ever lived in memory and the spill file.
    pub async fn abort(self) -> Result<()> {
        match self {
            SilverWriter::Single(series) => series.abort().await,
            SilverWriter::Partitioned(_) => Ok(()),
        }
    }
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
