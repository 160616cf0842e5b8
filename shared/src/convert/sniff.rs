//! What a file without a contract is guessed to be: its delimiter, from a sample, and its
//! column types, from every value.
//!
//! Types are exact or nothing: a column gets a type only if every value is written in a
//! form that type holds without loss (`007`, `+1415`, `1e999`, `2.0e3`, 20-digit ids and
//! offsets other than UTC keep a column a string). Numbers with a fraction become decimals
//! with the widest scale seen, never binary floats. The first rows give a first guess so
//! conversion can start; [`ColumnSniffer`] keeps watching, and when a later value does not
//! fit, the column widens (to a decimal, or to a string) and the converter starts again with
//! the widened types: a sniffed type never rejects a row.

use crate::domain::contract::ColumnType;

use super::{
    records::{RecordLimits, RecordSplitter},
    values,
};

/// Delimiters tried when a contract does not fix one, in order of preference on a tie.
/// `;` comes before `,`: where both split every record alike, the commas are decimal
/// commas (`A1;4,50`), as in the locales that use `;` because `,` is taken.
pub const CANDIDATE_DELIMITERS: [u8; 4] = [b';', b',', b'\t', b'|'];
/// Records compared when sniffing the delimiter.
const DELIMITER_SAMPLE_RECORDS: usize = 200;
/// Digits a decimal can hold (Snowflake's NUMBER and Parquet's DECIMAL both stop at 38).
const MAX_DECIMAL_DIGITS: usize = 38;

/// Collects up to `limit` complete records of a sample as owned fields.
pub fn sample_records(
    sample: &[u8],
    complete: bool,
    delimiter: u8,
    limits: RecordLimits,
    limit: usize,
) -> Vec<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    let mut splitter = RecordSplitter::new(delimiter, limits);
    let _ = splitter.feed::<()>(sample, complete, |record| {
        if records.len() < limit {
            records.push(record.fields().map(<[u8]>::to_vec).collect());
        }
        Ok(())
    });
    records
}

/// How well one delimiter explains the sample.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DelimiterScore {
    width: usize,
    /// Records with the header's field count, per thousand.
    agreement: usize,
    /// Fields a real delimiter rarely produces (negated, so fewer is better).
    oddities: std::cmp::Reverse<usize>,
}

/// Picks the delimiter that splits the sample into the most columns, with at least nine in
/// ten records agreeing on the count. Ties go to the delimiter whose records agree more
/// often, then to the one leaving fewer odd fields: a field that starts or ends with a
/// space (`Preis (EUR, netto)` split at the comma) or has unbalanced brackets.
pub fn sniff_delimiter(sample: &[u8], complete: bool, limits: RecordLimits) -> u8 {
    let mut best: Option<(DelimiterScore, u8)> = None;
    for delimiter in CANDIDATE_DELIMITERS {
        let records = sample_records(
            sample,
            complete,
            delimiter,
            limits,
            DELIMITER_SAMPLE_RECORDS,
        );
        let Some(header) = records.first() else {
            continue;
        };
        let width = header.len();
        let agreeing = records.iter().filter(|r| r.len() == width).count();
        if width < 2 || agreeing * 10 < records.len() * 9 {
            continue;
        }
        let oddities = records.iter().flatten().filter(|f| is_odd_field(f)).count();
        let score = DelimiterScore {
            width,
            agreement: agreeing * 1000 / records.len(),
            oddities: std::cmp::Reverse(oddities),
        };
        if best.as_ref().is_none_or(|(top, _)| score > *top) {
            best = Some((score, delimiter));
        }
    }
    best.map_or(b',', |(_, delimiter)| delimiter)
}

fn is_odd_field(field: &[u8]) -> bool {
    let spaced = field.first() == Some(&b' ') || field.last() == Some(&b' ');
    let balance = |open: u8, close: u8| {
        field.iter().filter(|&&b| b == open).count()
            != field.iter().filter(|&&b| b == close).count()
    };
    spaced || balance(b'(', b')') || balance(b'[', b']')
}

/// The types a column can be sniffed as, from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    /// Only NULLs so far.
    Unseen,
    Bool,
    /// Integer digits of the widest value seen.
    Int {
        digits: usize,
    },
    /// Integer digits and fraction digits of the widest values seen.
    Decimal {
        integer_digits: usize,
        scale: usize,
    },
    Date,
    Timestamp,
    String,
}

/// Follows one column's values and the narrowest exact type that holds them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSniffer {
    state: Sniffed,
}

impl Default for ColumnSniffer {
    fn default() -> Self {
        ColumnSniffer {
            state: Sniffed::Unseen,
        }
    }
}

impl ColumnSniffer {
    /// A sniffer for a column whose values can be anything.
    pub fn string() -> Self {
        ColumnSniffer {
            state: Sniffed::String,
        }
    }

    /// Takes in one non-NULL value; returns true when the column's type had to change.
    pub fn observe(&mut self, value: &[u8]) -> bool {
        if self.state == Sniffed::String {
            return false;
        }
        let widened = join(self.state, classify(value));
        let changed = widened != self.state;
        self.state = widened;
        changed
    }

    /// The guess made final: a column with no value is a string.
    pub fn settled(self) -> Self {
        match self.state {
            Sniffed::Unseen => Self::string(),
            _ => self,
        }
    }

    /// The column type for what was seen (string when nothing was).
    pub fn column_type(&self) -> ColumnType {
        match self.state {
            Sniffed::Bool => ColumnType::Bool,
            Sniffed::Int { .. } => ColumnType::Int,
            Sniffed::Decimal {
                integer_digits,
                scale,
            } => ColumnType::Decimal {
                precision: (integer_digits + scale).max(1) as u8,
                scale: scale as i8,
            },
            Sniffed::Date => ColumnType::Date,
            Sniffed::Timestamp => ColumnType::Timestamp,
            Sniffed::Unseen | Sniffed::String => ColumnType::String,
        }
    }
}

/// Sniffs column types from sampled rows: the first guess, settled.
pub fn sniff_columns(
    rows: &[Vec<Vec<u8>>],
    width: usize,
    is_null: impl Fn(&[u8]) -> bool,
) -> Vec<ColumnSniffer> {
    let mut columns = vec![ColumnSniffer::default(); width];
    for row in rows {
        for (sniffer, value) in columns.iter_mut().zip(row) {
            if !is_null(value) {
                sniffer.observe(value);
            }
        }
    }
    columns.into_iter().map(ColumnSniffer::settled).collect()
}

/// The narrowest exact type of one value.
fn classify(value: &[u8]) -> Sniffed {
    if value.eq_ignore_ascii_case(b"true") || value.eq_ignore_ascii_case(b"false") {
        return Sniffed::Bool;
    }
    if let Some((integer_digits, scale)) = plain_number(value) {
        return if scale == 0 && values::parse_int(value).is_ok() {
            Sniffed::Int {
                digits: integer_digits,
            }
        } else if scale > 0 && integer_digits + scale <= MAX_DECIMAL_DIGITS {
            Sniffed::Decimal {
                integer_digits,
                scale,
            }
        } else {
            // Integers beyond i64 are identifiers more often than amounts: kept as text.
            Sniffed::String
        };
    }
    if values::iso_date(value).is_some() {
        return Sniffed::Date;
    }
    if exact_timestamp(value) {
        return Sniffed::Timestamp;
    }
    Sniffed::String
}

/// The narrowest type holding both.
fn join(a: Sniffed, b: Sniffed) -> Sniffed {
    use Sniffed::*;
    let digits = |s: Sniffed| match s {
        Int { digits } => Some((digits, 0)),
        Decimal {
            integer_digits,
            scale,
        } => Some((integer_digits, scale)),
        _ => None,
    };
    match (a, b) {
        (Unseen, other) | (other, Unseen) => other,
        (Int { digits: x }, Int { digits: y }) => Int { digits: x.max(y) },
        (a, b) if a == b => a,
        _ => match (digits(a), digits(b)) {
            (Some(x), Some(y)) => {
                let (integer_digits, scale) = (x.0.max(y.0), x.1.max(y.1));
                if integer_digits + scale <= MAX_DECIMAL_DIGITS {
                    Decimal {
                        integer_digits,
                        scale,
                    }
                } else {
                    String
                }
            }
            _ => String,
        },
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, not negative zero: a number whose text its value gives
/// back. Returns its integer digits and fraction digits.
fn plain_number(value: &[u8]) -> Option<(usize, usize)> {
    let body = value.strip_prefix(b"-").unwrap_or(value);
    let (integer, fraction) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
        None => (body, None),
    };
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !all_digits(integer) || (integer.len() > 1 && integer[0] == b'0') {
        return None;
    }
    if let Some(fraction) = fraction
        && !all_digits(fraction)
    {
        return None;
    }
    let negative = body.len() < value.len();
    if negative && body.iter().all(|&b| b == b'0' || b == b'.') {
        return None;
    }
    let integer_digits = if integer == b"0" { 0 } else { integer.len() };
    Some((integer_digits, fraction.map_or(0, <[u8]>::len)))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z]`: a UTC wall-clock time that microseconds hold.
fn exact_timestamp(value: &[u8]) -> bool {
    if value.len() < 19 || !matches!(value[10], b'T' | b' ') {
        return false;
    }
    let time = &value[11..];
    let time = time.strip_suffix(b"Z").unwrap_or(time);
    let (clock, fraction) = time.split_at(time.len().min(8));
    let clock_ok = clock.len() == 8
        && clock.iter().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    let fraction_ok = match fraction {
        [] => true,
        [b'.', digits @ ..] => {
            (1..=6).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    clock_ok
        && fraction_ok
        && values::iso_date(&value[..10]).is_some()
        && values::parse_timestamp(value, &values::TemporalFormat::Iso).is_ok()
}

#[cfg(test)]
mod tests {
    use super::{super::records::TEST_LIMITS as LIMITS, *};

    #[test]
    fn delimiters_are_sniffed() {
        let sniff = |text: &[u8]| sniff_delimiter(text, true, LIMITS) as char;
        assert_eq!(sniff(b"a;b;c\n1;2,5;3\n"), ';');
        assert_eq!(sniff(b"a\tb\n\"x\ty\"\t2\n"), '\t');
        assert_eq!(sniff(b"a|b\n1|2\n"), '|');
        // A full tie goes to `;`: the commas are read as decimal commas.
        assert_eq!(sniff(b"a,b;c\n1,2;3\n"), ';');
        assert_eq!(sniff(b"a,b\nx;y,2\n"), ',');
        assert_eq!(sniff(b"only\n1\n"), ',');
    }

    #[test]
    fn delimiter_ties_go_to_the_split_without_odd_fields() {
        let sniff = |text: &[u8]| sniff_delimiter(text, true, LIMITS) as char;
        assert_eq!(
            sniff("Artikel;Preis (EUR, netto)\nA1;4,50\n".as_bytes()),
            ';'
        );
        assert_eq!(sniff(b"name,note\nx,\"a; b\"\ny,c\n"), ',');
        // Agreement first: the comma split leaves one record short.
        assert_eq!(sniff(b"a;b\n1,5;2\n3;4\n"), ';');
    }

    fn sniffed(values: &[&str]) -> ColumnType {
        let rows: Vec<Vec<Vec<u8>>> = values.iter().map(|v| vec![v.as_bytes().to_vec()]).collect();
        sniff_columns(&rows, 1, |v| v.is_empty())[0].column_type()
    }

    #[test]
    fn only_exact_types_are_sniffed() {
        assert_eq!(sniffed(&["1", "-2", ""]), ColumnType::Int);
        assert_eq!(
            sniffed(&["1.5", "12.25", "3"]),
            ColumnType::Decimal {
                precision: 4,
                scale: 2
            }
        );
        assert_eq!(
            sniffed(&["4.50", "0.1"]),
            ColumnType::Decimal {
                precision: 3,
                scale: 2
            }
        );
        assert_eq!(sniffed(&["2024-01-01"]), ColumnType::Date);
        assert_eq!(sniffed(&["TRUE", "false"]), ColumnType::Bool);
        assert_eq!(
            sniffed(&["2024-01-01T10:00:00Z", "2024-01-01 11:00:00.123456"]),
            ColumnType::Timestamp
        );
        for strings in [
            &["007"][..],
            &["+7"],
            &["+14155552671"],
            &["1e999"],
            &["1e3"],
            &["12345678901234567890"],
            &["-0"],
            &["inf"],
            &["NaN"],
            &[" 12"],
            &["2024-01-01T10:00:00+01:00"],
            &["2024-01-01T10:00:00.1234567"],
            &["1", "x"],
            &["2024-01-01", "2024-01-01 10:00:00"],
            &[""],
        ] {
            assert_eq!(sniffed(strings), ColumnType::String, "{strings:?}");
        }
    }

    #[test]
    fn later_values_widen_and_say_so() {
        let mut column = sniff_columns(&[vec![b"42".to_vec()]], 1, |_| false)[0];
        assert!(!column.observe(b"7"));
        assert!(column.observe(b"4.5"));
        assert_eq!(
            column.column_type(),
            ColumnType::Decimal {
                precision: 3,
                scale: 1
            }
        );
        assert!(column.observe(b"01234"));
        assert_eq!(column.column_type(), ColumnType::String);
        assert!(!column.observe(b"anything"));
        let mut unseen = sniff_columns(&[vec![b"".to_vec()]], 1, |v| v.is_empty())[0];
        assert!(
            !unseen.observe(b"5"),
            "a column sniffed as string stays one"
        );
    }
}
