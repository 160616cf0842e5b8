//! Incremental RFC 4180 record splitting on top of `csv-core`, plus delimiter and type
//! sniffing from a sample.
//!
//! Chunks are pushed in; complete records come out through a callback with their fields
//! unquoted. A record may span any number of chunks.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

use crate::contract::ColumnType;

use super::values;

/// Delimiters tried when a contract does not fix one, in order of preference on a tie.
pub const CANDIDATE_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// One parsed record: field bytes (unquoted) and their end offsets.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn field(&self, index: usize) -> &'a [u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.data[start..self.ends[index]]
    }

    /// All field bytes back to back (for validating the record at once).
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(|i| self.field(i))
    }
}

/// Splits pushed text into records.
pub struct RecordSplitter {
    reader: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    out_len: usize,
    ends_len: usize,
}

impl RecordSplitter {
    pub fn new(delimiter: u8) -> Self {
        RecordSplitter {
            reader: ReaderBuilder::new().delimiter(delimiter).build(),
            out: vec![0; 64 * 1024],
            ends: vec![0; 64],
            out_len: 0,
            ends_len: 0,
        }
    }

    /// Splits `input`, calling `on_record` for every record it completes. With `last`, the
    /// input ends here and a final unterminated record is completed too.
    pub fn feed<E>(
        &mut self,
        mut input: &[u8],
        last: bool,
        mut on_record: impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            // csv-core takes an empty input as end of file, so only send one when it is.
            if input.is_empty() && !last {
                return Ok(());
            }
            let (result, read, written, ended) = self.reader.read_record(
                input,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            input = &input[read..];
            self.out_len += written;
            self.ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let grown = self.out.len() * 2;
                    self.out.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    let record = Record {
                        data: &self.out[..self.out_len],
                        ends: &self.ends[..self.ends_len],
                    };
                    self.out_len = 0;
                    self.ends_len = 0;
                    on_record(record)?;
                }
                ReadRecordResult::End => return Ok(()),
            }
        }
    }
}

/// Collects up to `limit` complete records of a sample as owned fields.
pub fn sample_records(
    sample: &[u8],
    complete: bool,
    delimiter: u8,
    limit: usize,
) -> Vec<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    let mut splitter = RecordSplitter::new(delimiter);
    let _ = splitter.feed::<()>(sample, complete, |record| {
        if records.len() < limit {
            records.push(record.fields().map(<[u8]>::to_vec).collect());
        }
        Ok(())
    });
    records
}

/// Picks the delimiter whose records agree on the most fields. A delimiter only counts
/// when at least nine in ten sampled records have the header's field count.
pub fn sniff_delimiter(sample: &[u8], complete: bool) -> u8 {
    let mut best = (b',', 1usize);
    for delimiter in CANDIDATE_DELIMITERS {
        let records = sample_records(sample, complete, delimiter, 200);
        let Some(header) = records.first() else {
            continue;
        };
        let width = header.len();
        let agreeing = records.iter().filter(|r| r.len() == width).count();
        if width > best.1 && agreeing * 10 >= records.len() * 9 {
            best = (delimiter, width);
        }
    }
    best.0
}

/// Guesses column types from sampled values: conservative, `string` when in doubt.
/// Integers with leading zeros stay strings (codes such as `007`), and a column with no
/// non-null sample is a string.
pub fn sniff_types(
    rows: &[Vec<Vec<u8>>],
    width: usize,
    is_null: impl Fn(&[u8]) -> bool,
) -> Vec<ColumnType> {
    (0..width)
        .map(|column| {
            let mut candidates = [
                ColumnType::Bool,
                ColumnType::Int,
                ColumnType::Float,
                ColumnType::Date,
                ColumnType::Timestamp,
            ]
            .to_vec();
            let mut seen = false;
            for row in rows {
                let Some(value) = row.get(column) else {
                    continue;
                };
                let value = value.trim_ascii();
                if is_null(value) {
                    continue;
                }
                seen = true;
                candidates.retain(|candidate| fits(*candidate, value));
                if candidates.is_empty() {
                    break;
                }
            }
            match candidates.first() {
                Some(found) if seen => *found,
                _ => ColumnType::String,
            }
        })
        .collect()
}

fn fits(candidate: ColumnType, value: &[u8]) -> bool {
    let iso = values::TemporalFormat::Iso;
    match candidate {
        ColumnType::Bool => {
            let lower = value.to_ascii_lowercase();
            lower == b"true" || lower == b"false"
        }
        ColumnType::Int => {
            let digits = value.strip_prefix(b"-").unwrap_or(value);
            !(digits.len() > 1 && digits[0] == b'0') && values::parse_int(value).is_ok()
        }
        ColumnType::Float => {
            let digits = value.strip_prefix(b"-").unwrap_or(value);
            value
                .iter()
                .all(|b| b.is_ascii_digit() || b".-+eE".contains(b))
                && !(digits.len() > 1 && digits[0] == b'0' && digits[1] != b'.')
                && values::parse_float(value, false).is_ok()
        }
        ColumnType::Date => values::iso_date(value).is_some(),
        ColumnType::Timestamp => value.len() > 10 && values::parse_timestamp(value, &iso).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &[u8], chunk: usize) -> Vec<Vec<String>> {
        let mut splitter = RecordSplitter::new(b',');
        let mut records = Vec::new();
        let mut push = |r: Record<'_>| -> Result<(), ()> {
            records.push(
                r.fields()
                    .map(|f| String::from_utf8(f.to_vec()).unwrap())
                    .collect(),
            );
            Ok(())
        };
        for piece in text.chunks(chunk) {
            splitter.feed(piece, false, &mut push).unwrap();
        }
        splitter.feed(&[], true, &mut push).unwrap();
        records
    }

    #[test]
    fn records_split_the_same_whatever_the_chunking() {
        let text = b"a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\"multi\nline\",2\nlast,no-newline";
        let expected = vec![
            vec!["a", "b"],
            vec!["x,1", "say \"hi\""],
            vec!["multi\nline", "2"],
            vec!["last", "no-newline"],
        ];
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(split(text, chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn blank_lines_are_skipped() {
        assert_eq!(
            split(b"a,b\n\n1,2\n\r\n", 4),
            vec![vec!["a", "b"], vec!["1", "2"]]
        );
    }

    #[test]
    fn delimiters_are_sniffed() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2,5;3\n", true), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n\"x\ty\"\t2\n", true), b'\t');
        assert_eq!(sniff_delimiter(b"a|b\n1|2\n", true), b'|');
        assert_eq!(sniff_delimiter(b"a,b;c\n1,2;3\n", true), b',');
        assert_eq!(sniff_delimiter(b"only\n1\n", true), b',');
    }

    #[test]
    fn types_are_sniffed_conservatively() {
        let rows: Vec<Vec<Vec<u8>>> = [
            [
                "1",
                "007",
                "1.5",
                "2024-01-01",
                "true",
                "2024-01-01T10:00:00Z",
                "",
            ],
            [
                "-2",
                "008",
                "2",
                "2024-01-02",
                "FALSE",
                "2024-01-01 11:00:00",
                "",
            ],
        ]
        .iter()
        .map(|r| r.iter().map(|f| f.as_bytes().to_vec()).collect())
        .collect();
        assert_eq!(
            sniff_types(&rows, 7, |v| v.is_empty()),
            [
                ColumnType::Int,
                ColumnType::String,
                ColumnType::Float,
                ColumnType::Date,
                ColumnType::Bool,
                ColumnType::Timestamp,
                ColumnType::String
            ]
        );
    }
}
