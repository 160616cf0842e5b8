//! Where split records go: into typed batches, into the reject log, or, once the file's
//! fate is sealed, only into the count.
//!
//! Every physical record is counted in every mode, so `rows_read` is the whole file even
//! when it is rejected half-way (invalid UTF-8 at row 5,001) or read a second time.

use arrow_array::RecordBatch;

use super::{
    columns::{Pushed, RowBatcher},
    input::not_utf8,
    output::{RejectLog, Rejected},
    records::{Malformed, Record},
};
use crate::error::Result;

/// What is done with the records still to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Rows are validated into batches or the reject log.
    Converting,
    /// A sniffed column had to widen: what was converted is void, and the rest of the
    /// file is read for its column types only.
    Widening,
    /// The whole file is rejected for this reason; the rest is read to count it.
    Counting(String),
}

/// Receives records from the splitter.
pub struct RowSink<'a> {
    /// `None` when no plan could be made (the file is being counted).
    pub batcher: Option<RowBatcher>,
    pub rejects: &'a mut RejectLog,
    /// Finished batches waiting for the writer.
    pub ready: Vec<RecordBatch>,
    pub rows_read: u64,
    mode: Mode,
    /// The mode changed since [`RowSink::take_change`] last looked.
    changed: bool,
    header_seen: bool,
    validate_utf8: bool,
    /// Normalised CSV header names, to name the field of a malformed record.
    header: Vec<String>,
    batch_rows: usize,
    batch_bytes: usize,
    buffered_bytes: usize,
}

impl<'a> RowSink<'a> {
    /// `batch` is (rows, bytes): a batch is finished when it reaches either.
    pub fn new(
        batcher: Option<RowBatcher>,
        rejects: &'a mut RejectLog,
        mode: Mode,
        header: Vec<String>,
        validate_utf8: bool,
        (batch_rows, batch_bytes): (usize, usize),
    ) -> Self {
        RowSink {
            batcher,
            rejects,
            ready: Vec::new(),
            rows_read: 0,
            mode,
            changed: false,
            header_seen: false,
            validate_utf8,
            header,
            batch_rows,
            batch_bytes,
            buffered_bytes: 0,
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Moves to `mode`; outputs made so far are void, so pending batches are dropped.
    pub fn switch(&mut self, mode: Mode) {
        if matches!(self.mode, Mode::Counting(_)) {
            return;
        }
        self.mode = mode;
        self.changed = true;
        self.ready.clear();
    }

    /// Whether the mode changed since the last call.
    pub fn take_change(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Takes one record (the first is the header).
    pub fn on_record(&mut self, record: Record<'_>) -> Result<()> {
        if !self.header_seen {
            self.header_seen = true;
            return Ok(());
        }
        let row = self.rows_read as i64 + 1;
        self.rows_read += record.rows();
        if matches!(self.mode, Mode::Counting(_)) {
            return Ok(());
        }
        if self.validate_utf8 && simdutf8::basic::from_utf8(record.bytes()).is_err() {
            self.switch(Mode::Counting(not_utf8(&format!("row {row}"))));
            return Ok(());
        }
        let Some(batcher) = &mut self.batcher else {
            return Ok(());
        };
        let field = |i| record.field(i);
        if self.mode == Mode::Widening {
            if record.malformed().is_none() {
                batcher.observe(record.field_count(), &field);
            }
            return Ok(());
        }
        if let Some(malformed) = record.malformed() {
            return self.reject_malformed(row, &record, malformed);
        }
        match batcher.push_record(row, record.field_count(), field) {
            Ok(Pushed::Added) => {
                self.buffered_bytes += record.bytes().len() + batcher.fixed_row_bytes();
                if batcher.rows() >= self.batch_rows || self.buffered_bytes >= self.batch_bytes {
                    self.ready.push(batcher.finish_batch()?);
                    self.buffered_bytes = 0;
                }
                Ok(())
            }
            Ok(Pushed::Widened) => {
                self.switch(Mode::Widening);
                Ok(())
            }
            Err(error) => self.rejects.push(Rejected {
                row,
                rows: 1,
                column: error.column.as_deref(),
                reason: &error.reason,
                fields: record.fields(),
                preview: false,
            }),
        }
    }

    /// Logs a malformed record with a preview of its fields and the physical records it
    /// stands for.
    fn reject_malformed(
        &mut self,
        row: i64,
        record: &Record<'_>,
        malformed: Malformed,
    ) -> Result<()> {
        let column = malformed
            .field()
            .and_then(|i| self.header.get(i))
            .map(String::as_str);
        self.rejects.push(Rejected {
            row,
            rows: record.rows(),
            column,
            reason: &malformed.reason(record.rows()),
            fields: record.fields(),
            preview: true,
        })
    }

    /// Finishes the batch in progress at the end of the input.
    pub fn finish(&mut self) -> Result<()> {
        if let (Mode::Converting, Some(batcher)) = (&self.mode, &mut self.batcher)
            && batcher.rows() > 0
        {
            self.ready.push(batcher.finish_batch()?);
        }
        Ok(())
    }
}
