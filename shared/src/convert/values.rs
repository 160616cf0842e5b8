//! Parsers from CSV field bytes to typed values.
//!
//! The common formats (`123`, `-4.50`, `2024-03-01`, ISO timestamps) take hand-written fast
//! paths: they run once per field of every row. Anything else falls back to chrono with the
//! contract's format. Errors are short reasons that end up in the reject file.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

/// Why a field did not parse. Rendered into the reject reason with the column name.
pub type ParseError = &'static str;

pub fn parse_int(field: &[u8]) -> Result<i64, ParseError> {
    let (negative, digits) = match field {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, field),
    };
    if digits.is_empty() {
        return Err("not an integer");
    }
    let mut value: i64 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err("not an integer");
        }
        // Accumulate negatively so that i64::MIN parses.
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_sub(digit as i64))
            .ok_or("integer out of range")?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or("integer out of range")
    }
}

/// Parses a float. Infinity and NaN are accepted only when written as such (`inf`, `NaN`):
/// a finite number too large for a double (`1e999`) is out of range, not infinite.
pub fn parse_float(field: &[u8], decimal_comma: bool) -> Result<f64, ParseError> {
    let text = std::str::from_utf8(field).map_err(|_| "not a number")?;
    let parsed = if decimal_comma && text.contains(',') {
        text.replacen(',', ".", 1).parse::<f64>()
    } else {
        text.parse::<f64>()
    };
    let value = parsed.map_err(|_| "not a number")?;
    let written_as_non_finite = text
        .trim_start_matches(['+', '-'])
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic());
    if value.is_finite() || written_as_non_finite {
        Ok(value)
    } else {
        Err("number out of range")
    }
}

/// Parses a decimal into its unscaled integer at `scale`. Digits beyond `scale` must be
/// zeros: `10.005` in a scale-2 column is rejected, never rounded (Snowflake would round
/// it on load; the converter does not change values).
pub fn parse_decimal(
    field: &[u8],
    precision: u8,
    scale: i8,
    decimal_separator: u8,
) -> Result<i128, ParseError> {
    let (negative, body) = match field {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, field),
    };
    let scale = scale as usize;
    let digits = DecimalDigits::read(body, scale, decimal_separator)?;
    let precision = usize::from(precision).min(MAX_DECIMAL_DIGITS);
    if digits.integer_digits + scale > precision {
        return Err(OUT_OF_RANGE);
    }
    // At most `precision` digits after the padding: no overflow.
    let unscaled = digits.unscaled * POW10[scale - digits.fraction_digits.min(scale)];
    if unscaled >= POW10[precision] {
        return Err(OUT_OF_RANGE);
    }
    Ok(if negative { -unscaled } else { unscaled })
}

const OUT_OF_RANGE: ParseError = "decimal out of range for its precision";

/// Digits of the widest decimal (Snowflake's NUMBER(38, s)).
const MAX_DECIMAL_DIGITS: usize = 38;

/// Powers of ten up to 10^38.
const POW10: [i128; MAX_DECIMAL_DIGITS + 1] = {
    let mut powers = [1i128; MAX_DECIMAL_DIGITS + 1];
    let mut i = 1;
    while i < powers.len() {
        powers[i] = powers[i - 1] * 10;
        i += 1;
    }
    powers
};

/// Digits that always fit a `u64` accumulator.
const U64_DIGITS: usize = 18;

/// The digits of a decimal read up to `scale` fraction digits.
struct DecimalDigits {
    /// The digits kept, as an integer.
    unscaled: i128,
    /// Integer digits, leading zeros left out (they do not count toward precision).
    integer_digits: usize,
    /// Fraction digits, kept or (zeros past the scale) dropped.
    fraction_digits: usize,
}

impl DecimalDigits {
    #[inline]
    fn read(body: &[u8], scale: usize, separator: u8) -> Result<Self, ParseError> {
        match Self::read_short(body, scale, separator) {
            Some(digits) => Ok(digits),
            None => Self::read_any(body, scale, separator),
        }
    }

    /// The common case (at most 18 characters, no more fraction digits than the scale)
    /// without the per-digit bookkeeping of [`Self::read_any`], which takes everything
    /// else and words the errors. It was a twentieth of a sales file's conversion.
    #[inline]
    fn read_short(body: &[u8], scale: usize, separator: u8) -> Option<Self> {
        if body.len() > U64_DIGITS {
            return None;
        }
        let (integer, fraction) = match body.iter().position(|&b| b == separator) {
            Some(at) => (&body[..at], &body[at + 1..]),
            None => (body, &[][..]),
        };
        if fraction.len() > scale || integer.len() + fraction.len() == 0 {
            return None;
        }
        let mut unscaled = 0u64;
        for part in [integer, fraction] {
            for &b in part {
                let digit = b.wrapping_sub(b'0');
                if digit > 9 {
                    return None;
                }
                unscaled = unscaled * 10 + u64::from(digit);
            }
        }
        let leading_zeros = integer.iter().take_while(|&&b| b == b'0').count();
        Some(DecimalDigits {
            unscaled: i128::from(unscaled),
            integer_digits: integer.len() - leading_zeros,
            fraction_digits: fraction.len(),
        })
    }

    /// Reads the digits into a `u64` while they fit (every column up to precision 18), then
    /// into an `i128`; past 38 kept digits no precision can hold the value.
    fn read_any(body: &[u8], scale: usize, separator: u8) -> Result<Self, ParseError> {
        let (mut integer_digits, mut fraction_digits, mut kept) = (0usize, 0usize, 0usize);
        let (mut narrow, mut wide) = (0u64, 0i128);
        let (mut seen_separator, mut any_digit) = (false, false);
        for &b in body {
            if b == separator && !seen_separator {
                seen_separator = true;
                continue;
            }
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return Err("not a decimal");
            }
            any_digit = true;
            if seen_separator {
                fraction_digits += 1;
                if fraction_digits > scale {
                    if digit != 0 {
                        return Err("more decimal places than the column's scale");
                    }
                    continue;
                }
            } else if integer_digits == 0 && digit == 0 {
                continue;
            } else {
                integer_digits += 1;
            }
            kept += 1;
            if kept <= U64_DIGITS {
                narrow = narrow * 10 + u64::from(digit);
            } else if kept <= MAX_DECIMAL_DIGITS {
                if kept == U64_DIGITS + 1 {
                    wide = i128::from(narrow);
                }
                wide = wide * 10 + i128::from(digit);
            } else {
                return Err(OUT_OF_RANGE);
            }
        }
        if !any_digit {
            return Err("not a decimal");
        }
        Ok(DecimalDigits {
            unscaled: if kept <= U64_DIGITS {
                i128::from(narrow)
            } else {
                wide
            },
            integer_digits,
            fraction_digits,
        })
    }
}

pub fn parse_bool(field: &[u8]) -> Result<bool, ParseError> {
    match field.len() {
        1 => match field[0].to_ascii_lowercase() {
            b't' | b'y' | b'1' => Ok(true),
            b'f' | b'n' | b'0' => Ok(false),
            _ => Err("not a boolean"),
        },
        2 if field.eq_ignore_ascii_case(b"no") => Ok(false),
        3 if field.eq_ignore_ascii_case(b"yes") => Ok(true),
        4 if field.eq_ignore_ascii_case(b"true") => Ok(true),
        5 if field.eq_ignore_ascii_case(b"false") => Ok(false),
        _ => Err("not a boolean"),
    }
}

/// A date or timestamp format: the ISO fast path or a chrono format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemporalFormat {
    Iso,
    Chrono { format: String, has_offset: bool },
}

impl TemporalFormat {
    pub fn new(format: Option<&str>) -> Self {
        match format {
            None | Some("%Y-%m-%d") => TemporalFormat::Iso,
            Some(format) => TemporalFormat::Chrono {
                format: format.to_string(),
                has_offset: format.contains("%z")
                    || format.contains("%:z")
                    || format.contains("%#z"),
            },
        }
    }
}

/// Days since 1970-01-01.
pub fn parse_date(field: &[u8], format: &TemporalFormat) -> Result<i32, ParseError> {
    match format {
        TemporalFormat::Iso => iso_date(field).ok_or("not a date (expected YYYY-MM-DD)"),
        TemporalFormat::Chrono { format, .. } => {
            let text = std::str::from_utf8(field).map_err(|_| "not a date")?;
            NaiveDate::parse_from_str(text, format)
                .map(days_since_epoch)
                .map_err(|_| "not a date in the contract's format")
        }
    }
}

/// Microseconds since the Unix epoch, UTC. A value a microsecond timestamp cannot hold
/// exactly (digits below the microsecond, a leap second `:60`) is an error, not rounded.
pub fn parse_timestamp(field: &[u8], format: &TemporalFormat) -> Result<i64, ParseError> {
    let text = std::str::from_utf8(field).map_err(|_| "not a timestamp")?;
    let parsed = match format {
        TemporalFormat::Iso => iso_timestamp(text),
        TemporalFormat::Chrono {
            format,
            has_offset: true,
        } => DateTime::parse_from_str(text, format)
            .ok()
            .map(|t| (t.timestamp_micros(), t.nanosecond())),
        TemporalFormat::Chrono {
            format,
            has_offset: false,
        } => NaiveDateTime::parse_from_str(text, format)
            .ok()
            .map(|t| (t.and_utc().timestamp_micros(), t.nanosecond())),
    };
    match parsed {
        None => Err("not a timestamp"),
        Some((_, nanos)) if nanos >= 1_000_000_000 => Err("a leap second cannot be stored"),
        Some((_, nanos)) if nanos % 1_000 != 0 => Err("more precision than microseconds"),
        Some((micros, _)) => Ok(micros),
    }
}

/// `YYYY-MM-DD`, checked for calendar validity.
pub fn iso_date(field: &[u8]) -> Option<i32> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *field else {
        return None;
    };
    let digit = |b: u8| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then_some(d as u32)
    };
    let year = digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?;
    let month = digit(m0)? * 10 + digit(m1)?;
    let day = digit(d0)? * 10 + digit(d1)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year as i32, month, day))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era =
        year_of_era as u32 * 365 + year_of_era as u32 / 4 - year_of_era as u32 / 100 + day_of_year;
    era * 146_097 + day_of_era as i32 - 719_468
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&date) - UNIX_EPOCH_FROM_CE
}

/// RFC 3339 with offset, or `YYYY-MM-DD[T ]HH:MM:SS[.fff]` read as UTC, or a bare date:
/// microseconds and the nanosecond field (to check exactness).
fn iso_timestamp(text: &str) -> Option<(i64, u32)> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some((t.timestamp_micros(), t.nanosecond()));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some((t.and_utc().timestamp_micros(), t.nanosecond()));
        }
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some((t.timestamp_micros(), t.nanosecond()));
    }
    iso_date(text.as_bytes()).map(|days| (days as i64 * 86_400_000_000, 0))
}

/// `YYYY-MM-DD` of a day number, for partition values.
pub fn format_date(days: i32) -> String {
    let date =
        NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_FROM_CE).unwrap_or(NaiveDate::MIN);
    date.format("%Y-%m-%d").to_string()
}

/// Months since January of year 0 of a day number (for monthly partitions).
pub fn month_index(days: i32) -> i32 {
    use chrono::Datelike;
    let date =
        NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_FROM_CE).unwrap_or(NaiveDate::MIN);
    date.year() * 12 + date.month0() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_to_the_edges_of_i64() {
        assert_eq!(parse_int(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int(b"+42"), Ok(42));
        assert_eq!(
            parse_int(b"9223372036854775808"),
            Err("integer out of range")
        );
        assert!(parse_int(b"1.0").is_err());
        assert!(parse_int(b"-").is_err());
    }

    #[test]
    fn floats_never_overflow_into_infinity() {
        assert_eq!(parse_float(b"1e999", false), Err("number out of range"));
        assert_eq!(parse_float(b"-1e999", false), Err("number out of range"));
        assert_eq!(parse_float(b"-inf", false), Ok(f64::NEG_INFINITY));
        assert!(parse_float(b"NaN", false).unwrap().is_nan());
        assert_eq!(parse_float(b"1,5", true), Ok(1.5));
    }

    #[test]
    fn decimals_scale_check_precision_and_never_round() {
        assert_eq!(parse_decimal(b"12.3", 5, 2, b'.'), Ok(1230));
        assert_eq!(
            parse_decimal(b"12.300", 5, 2, b'.'),
            Ok(1230),
            "zeros past the scale"
        );
        assert!(parse_decimal(b"-0.005", 5, 2, b'.').is_err());
        assert!(
            parse_decimal(b"10.005", 14, 2, b'.').is_err(),
            "not rounded to 10.01"
        );
        assert!(
            parse_decimal(b"0.00001", 12, 4, b'.').is_err(),
            "not rounded to 0"
        );
        assert_eq!(parse_decimal(b"1,25", 5, 2, b','), Ok(125));
        assert_eq!(parse_decimal(b"007", 3, 0, b'.'), Ok(7));
        assert_eq!(parse_decimal(b"999.99", 5, 2, b'.'), Ok(99999));
        assert!(parse_decimal(b"999.995", 5, 2, b'.').is_err());
        assert!(parse_decimal(b"1000", 5, 2, b'.').is_err());
        assert!(parse_decimal(b"1.2.3", 5, 2, b'.').is_err());
        assert!(parse_decimal(b".", 5, 2, b'.').is_err());
    }

    #[test]
    fn the_short_decimal_path_agrees_with_the_general_one() {
        // Every string of up to six characters over digits, separators and a stray byte.
        let alphabet = b"0159.,x";
        let mut length = vec![Vec::new()];
        let mut strings = length.clone();
        for _ in 0..6 {
            length = length
                .iter()
                .flat_map(|s| alphabet.iter().map(move |&b| [s.as_slice(), &[b]].concat()))
                .collect();
            strings.extend_from_slice(&length);
        }
        strings.push(b"123456789012345678".to_vec());
        strings.push(b"12345678901234567.8".to_vec());
        let mut compared = 0;
        for body in &strings {
            for scale in 0..4 {
                for separator in [b'.', b','] {
                    let general = DecimalDigits::read_any(body, scale, separator);
                    let Some(short) = DecimalDigits::read_short(body, scale, separator) else {
                        continue;
                    };
                    let general = general.unwrap_or_else(|e| {
                        panic!("{:?} scale {scale}: short path accepted, general {e}", body)
                    });
                    assert_eq!(
                        (short.unscaled, short.integer_digits, short.fraction_digits),
                        (
                            general.unscaled,
                            general.integer_digits,
                            general.fraction_digits
                        ),
                        "{:?} scale {scale}",
                        String::from_utf8_lossy(body)
                    );
                    compared += 1;
                }
            }
        }
        assert!(
            compared > 10_000,
            "the short path took only {compared} strings"
        );
    }

    #[test]
    fn wide_decimals_keep_every_digit_and_longer_ones_are_out_of_range() {
        // Past 18 digits the value moves from a u64 to an i128 accumulator.
        let widest = "9".repeat(38);
        assert_eq!(
            parse_decimal(widest.as_bytes(), 38, 0, b'.'),
            Ok(widest.parse::<i128>().unwrap())
        );
        assert_eq!(
            parse_decimal(b"-1234567890123456789.0123456789", 38, 10, b'.'),
            Ok(-12_345_678_901_234_567_890_123_456_789)
        );
        assert_eq!(
            parse_decimal(b"123456789012345678", 18, 0, b'.'),
            Ok(123_456_789_012_345_678)
        );
        // Far more digits than any precision: an error, never an overflow.
        let long = format!("1{}", "0".repeat(60));
        assert_eq!(
            parse_decimal(long.as_bytes(), 38, 2, b'.'),
            Err("decimal out of range for its precision")
        );
        let fraction = format!("0.{}", "1".repeat(60));
        assert!(parse_decimal(fraction.as_bytes(), 38, 38, b'.').is_err());
    }

    #[test]
    fn iso_dates_match_chrono_and_reject_impossible_days() {
        let chrono_days =
            |s: &str| days_since_epoch(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        for s in [
            "1970-01-01",
            "2024-02-29",
            "1900-03-01",
            "0001-01-01",
            "9999-12-31",
        ] {
            assert_eq!(iso_date(s.as_bytes()), Some(chrono_days(s)), "{s}");
        }
        for s in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
        ] {
            assert_eq!(iso_date(s.as_bytes()), None, "{s}");
        }
        assert_eq!(format_date(chrono_days("2024-02-29")), "2024-02-29");
    }

    #[test]
    fn timestamps_are_converted_to_utc_micros() {
        let iso = TemporalFormat::Iso;
        assert_eq!(
            parse_timestamp(b"1970-01-01T00:00:01Z", &iso),
            Ok(1_000_000)
        );
        assert_eq!(parse_timestamp(b"1970-01-01T01:00:00+01:00", &iso), Ok(0));
        assert_eq!(parse_timestamp(b"1970-01-01 00:00:00.5", &iso), Ok(500_000));
        let custom = TemporalFormat::new(Some("%d/%m/%Y %H:%M"));
        assert_eq!(
            parse_timestamp(b"01/01/1970 00:01", &custom),
            Ok(60_000_000)
        );
        assert!(parse_timestamp(b"yesterday", &iso).is_err());
    }

    #[test]
    fn booleans_accept_common_spellings() {
        for (text, value) in [("TRUE", true), ("no", false), ("Y", true), ("0", false)] {
            assert_eq!(parse_bool(text.as_bytes()), Ok(value));
        }
        assert!(parse_bool(b"maybe").is_err());
    }
}
