//! One read of the input: sample, plan, then every record split, validated into batches and
//! handed to the silver writer, until the end of the input or the deadline.
//!
//! However the read ends, every physical record is counted. A refusal (no usable header, a
//! missing column, bad text, spill past its limit) turns the rest of the read into
//! counting; a sniffed column that widens turns it into watching the types.

use super::{
    columns::{FieldRules, Lineage, RowBatcher},
    input::TextReader,
    output::{RejectLog, SilverWriter, abort_quietly},
    plan::{self, Plan, SAMPLE_BYTES, Sample},
    records::{RecordLimits, RecordSplitter},
    rows::{Mode, RowSink},
    settings::{ConvertSettings, check_deadline},
    sniff::ColumnSniffer,
};
use crate::{
    domain::{contract::Contract, keys::SilverKeys, manifest::Manifest},
    error::{Error, Result},
    ports::storage::ObjectSink,
};

/// Why a read of the input stopped short of silver files.
pub enum Stop {
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

/// What a read needs to know of the conversion.
pub struct Job<'a> {
    pub contract: Option<&'a Contract>,
    /// Refuse a dataset without a contract.
    pub strict: bool,
    pub dataset: &'a str,
    pub settings: &'a ConvertSettings,
    pub lineage: Lineage,
    pub keys: &'a SilverKeys,
}

/// The splitter, the row sink and the writer a read feeds.
struct Reading<'r> {
    splitter: RecordSplitter,
    rows: RowSink<'r>,
    writer: Option<SilverWriter>,
    /// What a writer dropped by a mode change had spilled.
    spilled: u64,
}

impl Job<'_> {
    /// Reads the whole input into a silver writer; rows are counted in `manifest` however
    /// the read ends.
    pub async fn read(
        &self,
        text: &mut TextReader,
        sink: &dyn ObjectSink,
        manifest: &mut Manifest,
        rejects: &mut RejectLog,
        widened: Option<Vec<ColumnSniffer>>,
    ) -> Result<SilverWriter, Stop> {
        let (sample, eof) = read_sample(text).await?;
        if sample.is_empty() {
            let reason = text
                .malformed()
                .unwrap_or("the file is empty (no header row)");
            return Err(Stop::Reject(reason.to_string()));
        }
        let mut reading = self.start(&sample, eof, text, manifest, rejects, widened)?;
        let read = self.feed(&mut reading, text, sink, sample, eof).await;
        manifest.rows_read = reading.rows.rows_read;
        manifest.spilled_bytes = reading
            .writer
            .as_ref()
            .map_or(reading.spilled, SilverWriter::spilled_bytes);
        if let Err(error) = read {
            if let Some(writer) = reading.writer {
                abort_quietly(writer.abort().await);
            }
            return Err(Stop::Fail(error));
        }
        match (reading.rows.mode().clone(), reading.writer) {
            (Mode::Converting, Some(writer)) => Ok(writer),
            (Mode::Widening, _) => Err(Stop::Widen(
                reading
                    .rows
                    .batcher
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

    /// Makes the plan from the sample, and the writer and row sink it calls for (a sink
    /// that only counts, when no plan can be made).
    fn start<'r>(
        &self,
        sample: &[u8],
        eof: bool,
        text: &TextReader,
        manifest: &mut Manifest,
        rejects: &'r mut RejectLog,
        widened: Option<Vec<ColumnSniffer>>,
    ) -> Result<Reading<'r>> {
        let limits = self.record_limits();
        let view = Sample {
            text: sample,
            complete: eof,
            validate_utf8: text.needs_validation(),
        };
        let delimiter = plan::delimiter(self.contract, &view, limits);
        manifest.source.delimiter = Some((delimiter as char).to_string());
        let (writer, rows) = match self.plan(&view, delimiter, limits, widened) {
            Ok(plan) => {
                manifest.columns = plan.columns.clone();
                manifest.missing_columns = plan.missing.clone();
                manifest.extra_columns = plan.extra.clone();
                let partitioning = self.contract.and_then(Contract::partitioning);
                let writer = SilverWriter::new(&plan, partitioning, self.keys, self.settings)?;
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
        Ok(Reading {
            splitter: RecordSplitter::new(delimiter, limits),
            rows,
            writer,
            spilled: 0,
        })
    }

    /// Feeds the sample, then every chunk, to the splitter and settles after each.
    async fn feed(
        &self,
        reading: &mut Reading<'_>,
        text: &mut TextReader,
        sink: &dyn ObjectSink,
        sample: Vec<u8>,
        mut eof: bool,
    ) -> Result<()> {
        let mut pending = sample;
        let mut chunk = Vec::new();
        loop {
            if let Some(reason) = text.malformed() {
                reading.rows.switch(Mode::Counting(reason.to_string()));
            }
            let rows = &mut reading.rows;
            reading
                .splitter
                .feed(&pending, eof, |record| rows.on_record(record))?;
            if eof {
                reading.rows.finish()?;
            }
            self.settle(reading, sink, eof).await?;
            if let Some(progress) = &self.settings.progress {
                progress.set_rows(reading.rows.rows_read);
            }
            if eof {
                return Ok(());
            }
            check_deadline(self.settings.deadline, "reading the file")?;
            text.next_chunk(&mut chunk).await?;
            eof = chunk.is_empty();
            std::mem::swap(&mut pending, &mut chunk);
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
        let rules = FieldRules::for_contract(self.contract);
        plan::plan(self.contract, sample, delimiter, limits, &rules, widened)
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
        let batcher = RowBatcher::new(
            &plan.columns,
            plan.sources,
            plan.header.len(),
            &FieldRules::for_contract(self.contract),
            &self.lineage,
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

    /// After each chunk: drops the outputs of a mode change (keeping what they had
    /// spilled), hands finished batches to the writer (a spill past its limit rejects the
    /// file) and uploads reject lines.
    async fn settle(
        &self,
        reading: &mut Reading<'_>,
        sink: &dyn ObjectSink,
        eof: bool,
    ) -> Result<()> {
        if let Some(active) = reading.writer.as_mut() {
            let mut pushed = Ok(());
            for batch in std::mem::take(&mut reading.rows.ready) {
                pushed = active.push(sink, batch).await;
                if pushed.is_err() {
                    break;
                }
            }
            if pushed.is_ok() && eof {
                pushed = active.settle().await;
            }
            match pushed {
                Ok(()) => {}
                Err(Error::Limit(reason)) => reading.rows.switch(Mode::Counting(reason)),
                Err(error) => return Err(error),
            }
        }
        if reading.rows.take_change() {
            if let Some(void) = reading.writer.take() {
                reading.spilled = void.spilled_bytes();
                void.abort().await?;
            }
            if *reading.rows.mode() == Mode::Widening {
                reading.rows.rejects.abort().await;
            }
        }
        reading
            .rows
            .rejects
            .drain(sink, self.settings.upload_chunk_bytes, eof)
            .await
    }

    fn record_limits(&self) -> RecordLimits {
        let limits = self.contract.map(|c| c.limits).unwrap_or_default();
        self.settings.record_limits(limits)
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
