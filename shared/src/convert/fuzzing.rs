//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the record splitter
//! and the value parsers, with the properties they must keep asserted, so a violation is
//! a crash the fuzzer reports.

use super::{
    records::{RecordLimits, RecordSplitter},
    sniff::ColumnSniffer,
    values,
};
use crate::domain::contract::ColumnType;

/// One record as the splitter delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub fields: Vec<Vec<u8>>,
    pub field_count: usize,
    pub rows: u64,
    pub malformed: bool,
}

/// Splits `text` fed in pieces of the given sizes (the rest in one piece).
pub fn split(text: &[u8], pieces: &[usize], delimiter: u8, limits: RecordLimits) -> Vec<Split> {
    let mut splitter = RecordSplitter::new(delimiter, limits);
    let mut out = Vec::new();
    let mut push = |record: super::records::Record<'_>| -> Result<(), ()> {
        let stored: usize = record.fields().map(<[u8]>::len).sum();
        assert!(
            stored <= limits.max_record_bytes,
            "record stored past its limit"
        );
        assert!(record.fields().all(|f| f.len() <= limits.max_field_bytes));
        assert!(record.len() <= limits.max_fields);
        out.push(Split {
            fields: record.fields().map(<[u8]>::to_vec).collect(),
            field_count: record.field_count(),
            rows: record.rows(),
            malformed: record.malformed().is_some(),
        });
        Ok(())
    };
    let mut rest = text;
    for &size in pieces {
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        let _ = splitter.feed(piece, false, &mut push);
        rest = tail;
    }
    let _ = splitter.feed(rest, true, &mut push);
    out
}

/// Splits `text` whole and in `pieces`, and checks that the records are the same and that
/// every non-blank line is counted by some record.
pub fn check_splitting(text: &[u8], pieces: &[usize], delimiter: u8, limits: RecordLimits) {
    let whole = split(text, &[], delimiter, limits);
    let chunked = split(text, pieces, delimiter, limits);
    assert_eq!(whole, chunked, "records depend on how the text was chunked");
    let rows: u64 = whole.iter().map(|r| r.rows).sum();
    let lines = text
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|line| !line.is_empty())
        .count() as u64;
    assert!(rows <= lines.max(1), "{rows} rows from {lines} lines");
    if !whole.iter().any(|r| r.malformed) {
        assert!(whole.iter().all(|r| r.rows == 1));
    }
}

/// Runs every value parser on `value`: none may panic, and a value a sniffed type takes
/// must come back as exactly the same text.
pub fn check_values(value: &[u8]) {
    let _ = values::parse_int(value);
    let _ = values::parse_bool(value);
    let _ = values::parse_date(value, &values::TemporalFormat::Iso);
    let _ = values::parse_timestamp(value, &values::TemporalFormat::Iso);
    let _ = values::parse_timestamp(value, &values::TemporalFormat::new(Some("%d/%m/%Y %H:%M")));
    let _ = values::parse_decimal(value, 38, 10, b'.');
    let _ = values::parse_decimal(value, 5, 2, b',');
    if let Ok(float) = values::parse_float(value, false) {
        let text = std::str::from_utf8(value)
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(float.is_finite() || text.contains("inf") || text.contains("nan"));
    }
    let mut sniffer = ColumnSniffer::default();
    sniffer.observe(value);
    let text = std::str::from_utf8(value).ok();
    match (sniffer.column_type(), text) {
        (ColumnType::Int, Some(text)) => {
            let parsed = values::parse_int(value).expect("a sniffed int parses");
            assert_eq!(
                parsed.to_string(),
                text,
                "a sniffed int comes back as written"
            );
        }
        (ColumnType::Decimal { precision, scale }, Some(text)) => {
            let unscaled = values::parse_decimal(value, precision, scale, b'.')
                .expect("a sniffed decimal parses");
            assert_eq!(render_decimal(unscaled, scale as u32), text);
        }
        (ColumnType::Date, Some(text)) => {
            let days = values::iso_date(value).expect("a sniffed date parses");
            assert_eq!(values::format_date(days), text);
        }
        _ => {}
    }
}

/// A decimal's text at its own scale (the scale a sniffed value was given).
fn render_decimal(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale as usize + 1);
    let (integer, fraction) = padded.split_at(padded.len() - scale as usize);
    format!("{sign}{integer}.{fraction}")
}
