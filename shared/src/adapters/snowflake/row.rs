//! Reading decoded result rows (column name -> JSON value, see [`super::sql::decode_row`]):
//! a missing or mistyped column is a typed error naming the column, never a panic.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A result Snowflake sent that does not have the shape asked for.
pub(super) fn bad_row(message: String) -> Error {
    Error::Snowflake {
        status: 200,
        code: None,
        sql_state: None,
        message,
    }
}

/// A text column that must be there.
pub(super) fn text<'a>(row: &'a Map<String, Value>, column: &str) -> Result<&'a str> {
    row.get(column)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_row(format!("column {column} is missing or not text")))
}

/// A text column that may be NULL.
pub(super) fn optional_text<'a>(row: &'a Map<String, Value>, column: &str) -> Option<&'a str> {
    row.get(column).and_then(Value::as_str)
}

/// A timestamp column that may be NULL: RFC 3339, or a zone-less time read as UTC.
pub(super) fn timestamp(row: &Map<String, Value>, column: &str) -> Result<Option<DateTime<Utc>>> {
    optional_text(row, column)
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .or_else(|_| text.parse::<NaiveDateTime>().map(|at| at.and_utc()))
                .map_err(|_| bad_row(format!("column {column} is not a timestamp")))
        })
        .transpose()
}

/// A non-negative count that may be NULL: an integer, a whole REAL (an aggregate on some
/// engines) or a numeric string (NUMBER(38,0) beyond u64 saturates). A missing column is
/// an error, not a NULL: a result without it is not the one asked for.
pub(super) fn count(row: &Map<String, Value>, column: &str) -> Result<Option<u64>> {
    let bad = || bad_row(format!("column {column} is missing or not a count"));
    let whole = |f: f64| (f >= 0.0 && f.fract() == 0.0).then(|| f.min(u64::MAX as f64) as u64);
    match row.get(column).ok_or_else(bad)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().and_then(whole))
            .map(Some)
            .ok_or_else(bad),
        Value::String(s) => s
            .parse::<u64>()
            .ok()
            .or_else(|| {
                let digits = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                s.parse::<f64>().ok().filter(|_| digits).and_then(whole)
            })
            .map(Some)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}
