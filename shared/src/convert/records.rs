//! Incremental RFC 4180 record splitting: strict about quotes, bounded in memory.
//!
//! Chunks are pushed in; records come out through a callback with their fields unquoted. A
//! record may span any number of chunks. Nothing is repaired silently: text after a
//! closing quote, a quote left open at the end of the input, and fields, records or field
//! counts past their limits are reported on the record ([`Malformed`]) so the converter can
//! reject it with a reason. Past a limit the splitter keeps delimiting the record but stops
//! storing its bytes, so memory is bounded by the limits whatever the input.
//!
//! Grammar: fields are separated by the delimiter, records by `\n`, `\r\n` or `\r`; blank
//! lines are skipped. A field that starts with `"` is quoted: it ends at a `"` followed by
//! a delimiter, a line end or the end of the input, and `""` inside it is one quote. A `"`
//! inside an unquoted field is an ordinary character (`5" screen`).

use memchr::{memchr, memchr2_iter, memchr3};

/// How large a record may be. The splitter delimits records past these limits but only
/// keeps their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest field in bytes.
    pub max_field_bytes: usize,
    /// Largest record in bytes (fields only).
    pub max_record_bytes: usize,
    /// Most fields in a record.
    pub max_fields: usize,
}

/// Why a record cannot be a row, whatever its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Text follows the closing quote of a field (`"abc"def`, or `\"` used as an escape).
    TextAfterQuote { field: usize },
    /// The input ends inside a quoted field: the quote opened there never closes.
    UnclosedQuote { field: usize },
    /// A field is larger than the limit.
    FieldTooLarge { field: usize, limit: usize },
    /// The record is larger than the limit.
    RecordTooLarge { limit: usize },
    /// The record has more fields than the limit.
    TooManyFields { limit: usize },
}

impl Malformed {
    /// The field at fault, if one is.
    pub fn field(&self) -> Option<usize> {
        match *self {
            Malformed::TextAfterQuote { field }
            | Malformed::UnclosedQuote { field }
            | Malformed::FieldTooLarge { field, .. } => Some(field),
            Malformed::RecordTooLarge { .. } | Malformed::TooManyFields { .. } => None,
        }
    }

    /// The reason written to the reject log.
    pub fn reason(&self, rows: u64) -> String {
        let reason = self.what(rows);
        match (self, rows) {
            (Malformed::UnclosedQuote { .. }, _) | (_, 0..=1) => reason,
            _ => format!("{reason}; its quotes span {rows} physical records, all rejected"),
        }
    }

    fn what(&self, rows: u64) -> String {
        match *self {
            Malformed::TextAfterQuote { .. } => "text after the closing quote of a quoted \
                field (a quote inside a quoted field is written \"\", not \\\")"
                .into(),
            Malformed::UnclosedQuote { .. } => format!(
                "a quoted field opened here never closes: the rest of the input \
                 ({rows} physical record(s)) was read as one field"
            ),
            Malformed::FieldTooLarge { limit, .. } => {
                format!("field larger than the limit of {limit} bytes")
            }
            Malformed::RecordTooLarge { limit } => {
                format!("record larger than the limit of {limit} bytes")
            }
            Malformed::TooManyFields { limit } => format!(
                "record has more than the limit of {limit} fields (the contract's \
                 limits.max_columns, or what the memory budget holds at ~320 KiB a column)"
            ),
        }
    }
}

/// One record: field bytes (unquoted) and their end offsets.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The fields back to back, or (`separated`) the line itself, delimiters included.
    data: &'a [u8],
    ends: &'a [usize],
    /// Each field is followed by one delimiter byte in `data`.
    separated: bool,
    field_count: usize,
    rows: u64,
    malformed: Option<Malformed>,
}

impl<'a> Record<'a> {
    /// Fields stored (at most the field limit).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Fields the record has, stored or not.
    pub fn field_count(&self) -> usize {
        self.field_count
    }

    pub fn field(&self, index: usize) -> &'a [u8] {
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] + usize::from(self.separated),
        };
        &self.data[start..self.ends[index]]
    }

    /// All stored field bytes (for validating the record at once), with the delimiters
    /// between them when the record came straight from the input.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(|i| self.field(i))
    }

    /// Physical records this record stands for: 1, or for a malformed record (an unclosed
    /// or stray quote), the record plus every non-blank line its quotes swallowed.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn malformed(&self) -> Option<Malformed> {
        self.malformed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records: line ends here are blank lines.
    RecordStart,
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field or, doubled, is a quote.
    QuoteInQuoted,
}

/// Splits pushed text into records.
pub struct RecordSplitter {
    delimiter: u8,
    limits: RecordLimits,
    state: State,
    data: Vec<u8>,
    ends: Vec<usize>,
    field_count: usize,
    /// Offset in `data` where the current field's stored bytes begin.
    field_start: usize,
    /// Bytes of the current field and record seen, stored or not.
    field_bytes: usize,
    record_bytes: usize,
    malformed: Option<Malformed>,
    /// Non-blank lines started inside the quoted fields of the current record.
    lines_in_quote: u64,
    /// Inside a quoted field, the last byte seen ended a line.
    at_line_end: bool,
}

impl RecordSplitter {
    pub fn new(delimiter: u8, limits: RecordLimits) -> Self {
        RecordSplitter {
            delimiter,
            limits,
            state: State::RecordStart,
            data: Vec::new(),
            ends: Vec::new(),
            field_count: 0,
            field_start: 0,
            field_bytes: 0,
            record_bytes: 0,
            malformed: None,
            lines_in_quote: 0,
            at_line_end: false,
        }
    }

    /// Splits `input`, calling `on_record` for every record it completes. With `last`, the
    /// input ends here and a final unterminated record is completed too.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        last: bool,
        mut on_record: impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            at += match self.state {
                State::RecordStart => self.record_start(rest, &mut on_record)?,
                State::FieldStart => self.field_start(rest[0]),
                State::Unquoted => self.unquoted(rest, &mut on_record)?,
                State::Quoted => self.quoted(rest),
                State::QuoteInQuoted => self.quote_in_quoted(rest[0], &mut on_record)?,
            };
        }
        if last {
            self.finish(&mut on_record)?;
        }
        Ok(())
    }

    /// Between records: skips blank lines, then takes a plain line whole or starts a
    /// record byte by byte. Returns the bytes used.
    fn record_start<E>(
        &mut self,
        rest: &[u8],
        on_record: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let blank = rest.iter().take_while(|&&b| is_line_end(b)).count();
        if blank == rest.len() {
            return Ok(blank);
        }
        match self.plain_line(&rest[blank..], on_record)? {
            Some(used) => Ok(blank + used),
            None => {
                self.state = State::FieldStart;
                Ok(blank)
            }
        }
    }

    /// The first byte of a field decides whether it is quoted.
    fn field_start(&mut self, byte: u8) -> usize {
        if byte == b'"' {
            self.at_line_end = false;
            self.state = State::Quoted;
            1
        } else {
            self.state = State::Unquoted;
            0
        }
    }

    /// An unquoted field runs to the next delimiter or line end.
    fn unquoted<E>(
        &mut self,
        rest: &[u8],
        on_record: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let end = memchr3(self.delimiter, b'\n', b'\r', rest).unwrap_or(rest.len());
        self.append(&rest[..end]);
        if end == rest.len() {
            return Ok(end);
        }
        self.end_field(rest[end], on_record)?;
        Ok(end + 1)
    }

    /// A quoted field runs to the next quote, line ends included.
    fn quoted(&mut self, rest: &[u8]) -> usize {
        let end = memchr(b'"', rest).unwrap_or(rest.len());
        self.count_lines(&rest[..end]);
        self.append(&rest[..end]);
        if end == rest.len() {
            return end;
        }
        self.state = State::QuoteInQuoted;
        end + 1
    }

    /// After a quote in a quoted field: a second quote is a quote, a delimiter or line
    /// end closes the field, anything else is text after the closing quote.
    fn quote_in_quoted<E>(
        &mut self,
        byte: u8,
        on_record: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        if byte == b'"' {
            self.append(b"\"");
            self.state = State::Quoted;
            return Ok(1);
        }
        if byte == self.delimiter || is_line_end(byte) {
            self.end_field(byte, on_record)?;
            return Ok(1);
        }
        // Keep the rest of the field as it stands, and say why it is wrong.
        self.flag(Malformed::TextAfterQuote {
            field: self.field_count,
        });
        self.state = State::Unquoted;
        Ok(0)
    }

    /// The fast path, for the common record: a whole line in the input, with no quote and
    /// within the limits, split in place (no copy). Returns the bytes used (the line and
    /// its terminator), or `None` to split the record byte by byte.
    fn plain_line<E>(
        &mut self,
        rest: &[u8],
        on_record: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<Option<usize>, E> {
        let Some(end) = memchr3(b'\n', b'\r', b'"', rest) else {
            return Ok(None);
        };
        let line = &rest[..end];
        if rest[end] == b'"' || line.len() > self.limits.max_record_bytes {
            return Ok(None);
        }
        let (mut start, mut widest) = (0, 0);
        for delimiter in memchr::memchr_iter(self.delimiter, line) {
            widest = widest.max(delimiter - start);
            self.ends.push(delimiter);
            start = delimiter + 1;
        }
        widest = widest.max(line.len() - start);
        self.ends.push(line.len());
        if widest > self.limits.max_field_bytes || self.ends.len() > self.limits.max_fields {
            self.ends.clear();
            return Ok(None);
        }
        let record = Record {
            data: line,
            ends: &self.ends,
            separated: true,
            field_count: self.ends.len(),
            rows: 1,
            malformed: None,
        };
        let outcome = on_record(record);
        self.ends.clear();
        outcome.map(|()| Some(end + 1))
    }

    /// Completes the record the input ended in, if any.
    fn finish<E>(
        &mut self,
        on_record: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.state {
            State::RecordStart => Ok(()),
            State::Quoted => {
                // The open quote is what made the record what it is (too large, say): it
                // is the reason given, and it decides how many records were swallowed.
                self.malformed = Some(Malformed::UnclosedQuote {
                    field: self.field_count,
                });
                self.end_field(b'\n', on_record)
            }
            State::FieldStart | State::Unquoted | State::QuoteInQuoted => {
                self.end_field(b'\n', on_record)
            }
        }
    }

    /// Closes the current field; `terminator` says whether the record goes on.
    fn end_field<E>(
        &mut self,
        terminator: u8,
        on_record: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.field_count < self.limits.max_fields {
            self.ends.push(self.data.len());
        } else {
            self.flag(Malformed::TooManyFields {
                limit: self.limits.max_fields,
            });
        }
        self.field_count += 1;
        self.field_start = self.data.len();
        self.field_bytes = 0;
        if terminator == self.delimiter {
            self.state = State::FieldStart;
            return Ok(());
        }
        // A malformed record stands for every physical record its quotes swallowed (a
        // stray quote closed 100,000 lines later is one bad record of 100,001 rows); a
        // well-formed record with line ends inside quotes is one row.
        let rows = match self.malformed {
            Some(_) => 1 + self.lines_in_quote,
            None => 1,
        };
        let record = Record {
            data: &self.data,
            ends: &self.ends,
            separated: false,
            field_count: self.field_count,
            rows,
            malformed: self.malformed,
        };
        let outcome = on_record(record);
        self.data.clear();
        self.ends.clear();
        self.field_count = 0;
        self.field_start = 0;
        self.record_bytes = 0;
        self.lines_in_quote = 0;
        self.malformed = None;
        self.state = State::RecordStart;
        outcome
    }

    /// Stores field bytes up to the limits; past them, only counts them.
    fn append(&mut self, bytes: &[u8]) {
        self.field_bytes += bytes.len();
        self.record_bytes += bytes.len();
        let stored = self.data.len() - self.field_start;
        let room = if self.field_count < self.limits.max_fields {
            (self.limits.max_field_bytes.saturating_sub(stored))
                .min(self.limits.max_record_bytes.saturating_sub(self.data.len()))
        } else {
            0
        };
        let kept = bytes.len().min(room);
        self.data.extend_from_slice(&bytes[..kept]);
        if self.field_bytes > self.limits.max_field_bytes {
            self.flag(Malformed::FieldTooLarge {
                field: self.field_count,
                limit: self.limits.max_field_bytes,
            });
        } else if self.record_bytes > self.limits.max_record_bytes {
            self.flag(Malformed::RecordTooLarge {
                limit: self.limits.max_record_bytes,
            });
        }
    }

    /// Counts the non-blank lines a quoted run starts, for an unclosed quote's accounting.
    fn count_lines(&mut self, run: &[u8]) {
        let mut start = 0;
        for end in memchr2_iter(b'\n', b'\r', run).chain(std::iter::once(run.len())) {
            if end > start {
                if self.at_line_end {
                    self.lines_in_quote += 1;
                }
                self.at_line_end = false;
            }
            if end < run.len() {
                self.at_line_end = true;
            }
            start = end + 1;
        }
    }

    /// Keeps the first thing wrong with the record.
    fn flag(&mut self, malformed: Malformed) {
        self.malformed.get_or_insert(malformed);
    }
}

fn is_line_end(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// Roomy limits for unit tests.
#[cfg(test)]
pub(super) const TEST_LIMITS: RecordLimits = RecordLimits {
    max_field_bytes: 1 << 20,
    max_record_bytes: 1 << 20,
    max_fields: 1000,
};

#[cfg(test)]
mod tests {
    use super::{TEST_LIMITS as LIMITS, *};

    #[derive(Debug, PartialEq)]
    struct Split {
        fields: Vec<String>,
        rows: u64,
        malformed: Option<Malformed>,
    }

    fn split_with(text: &[u8], chunk: usize, limits: RecordLimits) -> Vec<Split> {
        let mut splitter = RecordSplitter::new(b',', limits);
        let mut records = Vec::new();
        let mut push = |r: Record<'_>| -> Result<(), ()> {
            records.push(Split {
                fields: r
                    .fields()
                    .map(|f| String::from_utf8(f.to_vec()).unwrap())
                    .collect(),
                rows: r.rows(),
                malformed: r.malformed(),
            });
            Ok(())
        };
        for piece in text.chunks(chunk) {
            splitter.feed(piece, false, &mut push).unwrap();
        }
        splitter.feed(&[], true, &mut push).unwrap();
        records
    }

    fn split(text: &[u8], chunk: usize) -> Vec<Vec<String>> {
        split_with(text, chunk, LIMITS)
            .into_iter()
            .map(|s| {
                assert_eq!((s.rows, s.malformed), (1, None), "{:?}", s.fields);
                s.fields
            })
            .collect()
    }

    #[test]
    fn records_split_the_same_whatever_the_chunking() {
        let text = b"a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\"multi\nline\",2\rcr,only\n5\" screen,\nlast,no-newline";
        let expected = vec![
            vec!["a", "b"],
            vec!["x,1", "say \"hi\""],
            vec!["multi\nline", "2"],
            vec!["cr", "only"],
            vec!["5\" screen", ""],
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
    fn text_after_a_closing_quote_is_malformed_not_merged() {
        for (text, field) in [(&b"\"abc\"def,x\n"[..], 0), (b"x,\"say \\\"hi\\\"\"\n", 1)] {
            for chunk in [1, 3, 100] {
                let records = split_with(text, chunk, LIMITS);
                assert_eq!(records.len(), 1, "{text:?}");
                assert_eq!(
                    records[0].malformed,
                    Some(Malformed::TextAfterQuote { field }),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn an_unclosed_quote_counts_every_line_it_swallowed() {
        let text = b"a,b\n1,\"open\nx,y\n\nz,w\r\nlast";
        for chunk in [1, 5, 100] {
            let records = split_with(text, chunk, LIMITS);
            assert_eq!(records.len(), 2);
            assert_eq!(records[1].rows, 4, "the record, x,y, z,w and last");
            assert_eq!(
                records[1].malformed,
                Some(Malformed::UnclosedQuote { field: 1 })
            );
        }
        // A malformed record counts each physical line it spans once, the closed
        // multi-line field's included.
        let text = b"a,\"l1\nl2\",\"open\nx\n";
        assert_eq!(split_with(text, 2, LIMITS)[0].rows, 3);
        // Past the size limits, the open quote is still the reason and still counts.
        let small = RecordLimits {
            max_field_bytes: 4,
            max_record_bytes: 8,
            max_fields: 2,
        };
        let records = split_with(b"\"open\nline two\nline three\n", 3, small);
        assert_eq!(records[0].rows, 3);
        assert_eq!(
            records[0].malformed,
            Some(Malformed::UnclosedQuote { field: 0 })
        );
    }

    #[test]
    fn limits_bound_what_is_stored_but_not_the_delimiting() {
        let limits = RecordLimits {
            max_field_bytes: 4,
            max_record_bytes: 10,
            max_fields: 3,
        };
        let text = b"123456,a\n\"1234\"\"5\",b\n1234,1234,1234\na,b,c,d,e\nok,ok\n";
        let records = split_with(text, 3, limits);
        let malformed: Vec<_> = records.iter().map(|r| r.malformed).collect();
        assert_eq!(
            malformed,
            [
                Some(Malformed::FieldTooLarge { field: 0, limit: 4 }),
                Some(Malformed::FieldTooLarge { field: 0, limit: 4 }),
                Some(Malformed::RecordTooLarge { limit: 10 }),
                Some(Malformed::TooManyFields { limit: 3 }),
                None,
            ]
        );
        assert_eq!(records[0].fields, ["1234", "a"]);
        assert_eq!(records[3].fields.len(), 3);
        assert_eq!(records[4].fields, ["ok", "ok"]);
    }

    #[test]
    fn a_trailing_delimiter_is_an_empty_last_field() {
        assert_eq!(split(b"a,b,\n", 2), vec![vec!["a", "b", ""]]);
        assert_eq!(split(b"a,\"\"", 2), vec![vec!["a", ""]]);
    }
}
