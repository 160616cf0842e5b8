//! SQL API v2: `POST /api/v2/statements` with positional bindings, 202s polled to the end,
//! result partitions fetched concurrently and decoded by `rowType`.
//!
//! Every user-supplied value travels as a binding, never spliced into the statement text.
//! A resent request carries the same `requestId` and `retry=true`, so Snowflake runs it at
//! most once.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, NaiveTime};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{
    retry::RetryPolicy,
    session::Session,
    transport::{Call, Transport, json},
};
use crate::error::{Error, Result};

/// Result partitions fetched at once.
const PARTITION_CONCURRENCY: usize = 4;

/// A bound value: Snowflake type name and its text (`None` binds NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    /// Snowflake type of the value (`TEXT`, `FIXED`, `DATE`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value as text; `None` binds NULL.
    pub value: Option<String>,
}

impl Binding {
    /// A `TEXT` value.
    pub fn text(value: impl Into<String>) -> Self {
        Binding::value("TEXT", value.into())
    }
    /// A `FIXED` (integer) value.
    pub fn fixed(value: i64) -> Self {
        Binding::value("FIXED", value.to_string())
    }
    /// A `REAL` value.
    pub fn real(value: f64) -> Self {
        Binding::value("REAL", value.to_string())
    }
    /// A `BOOLEAN` value.
    pub fn boolean(value: bool) -> Self {
        Binding::value("BOOLEAN", value.to_string())
    }
    /// A `DATE` value.
    pub fn date(value: NaiveDate) -> Self {
        Binding::value("DATE", value.format("%Y-%m-%d").to_string())
    }
    /// NULL of type `kind`.
    pub fn null(kind: &str) -> Self {
        Binding {
            kind: kind.to_ascii_uppercase(),
            value: None,
        }
    }

    /// Parses the CLI's `TYPE:VALUE` (`TEXT:acme`, `FIXED:42`, `DATE:2024-03-01`, `TEXT:`
    /// for an empty string, `NULL:TEXT` for NULL).
    pub fn parse(spec: &str) -> Result<Self> {
        let (kind, value) = spec
            .split_once(':')
            .ok_or_else(|| Error::invalid("binding", format!("{spec:?} is not TYPE:VALUE")))?;
        const TYPES: [&str; 9] = [
            "TEXT",
            "FIXED",
            "REAL",
            "BOOLEAN",
            "DATE",
            "TIME",
            "TIMESTAMP_NTZ",
            "TIMESTAMP_LTZ",
            "TIMESTAMP_TZ",
        ];
        let kind = kind.to_ascii_uppercase();
        if kind == "NULL" {
            return Ok(Binding::null(value));
        }
        if !TYPES.contains(&kind.as_str()) {
            return Err(Error::invalid(
                "binding",
                format!("unknown type {kind:?} (one of {})", TYPES.join(", ")),
            ));
        }
        Ok(Binding::value(&kind, value.to_string()))
    }

    /// A non-NULL value of type `kind`, in Snowflake's text form.
    fn value(kind: &str, text: String) -> Self {
        Binding {
            kind: kind.to_string(),
            value: Some(text),
        }
    }
}

#[derive(Debug, Serialize)]
struct SubmitRequest<'a> {
    statement: &'a str,
    timeout: u64,
    database: &'a str,
    schema: &'a str,
    warehouse: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Map::is_empty")]
    bindings: Map<String, Value>,
    parameters: Value,
}

/// A column of a result, as `resultSetMetaData.rowType` describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Column {
    /// Column name, as Snowflake gives it (upper case unless quoted).
    pub name: String,
    /// Snowflake type (`text`, `fixed`, `date`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Scale of a `fixed` column.
    #[serde(default)]
    pub scale: Option<i64>,
    /// Whether NULL can appear.
    #[serde(default)]
    pub nullable: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultSetMetaData {
    /// Rows in all partitions, when Snowflake says.
    #[serde(default)]
    num_rows: Option<u64>,
    #[serde(default)]
    row_type: Vec<Column>,
    #[serde(default)]
    partition_info: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultSet {
    statement_handle: Option<String>,
    statement_status_url: Option<String>,
    result_set_meta_data: Option<ResultSetMetaData>,
    #[serde(default)]
    data: Vec<Vec<Value>>,
}

/// A finished statement: its columns and every row, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The statement, for follow-up requests.
    pub statement_handle: Option<String>,
    /// The result's columns, in order.
    pub columns: Vec<Column>,
    /// One JSON object per row, column name -> typed value.
    pub rows: Vec<Map<String, Value>>,
}

impl QueryResult {
    /// Fails unless the result has every column in `names`: an answer without them (no
    /// result set, another statement's) must not read as "no rows".
    pub fn require_columns(&self, names: &[&str]) -> Result<()> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| !self.columns.iter().any(|c| c.name == *name))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Snowflake {
            status: 200,
            code: None,
            sql_state: None,
            message: format!("the result has no column {}", missing.join(", ")),
        })
    }
}

/// A SQL API v2 client for one account.
pub struct SqlClient {
    transport: Transport,
    query_tag: String,
    /// Longest wait for a statement, polling included.
    pub deadline: Duration,
}

enum Answer {
    Done(ResultSet),
    Running(String),
}

impl SqlClient {
    /// `query_tag` marks every statement (one per function: `snowcast-edit-api`, ...).
    pub fn new(
        http: reqwest::Client,
        session: Arc<Session>,
        base_url: Option<String>,
        query_tag: impl Into<String>,
    ) -> Self {
        SqlClient {
            transport: Transport::new(http, session, base_url),
            query_tag: query_tag.into(),
            deadline: Duration::from_secs(300),
        }
    }

    /// Retries with `retry` instead of the default policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.transport.retry = retry;
        self
    }

    /// Gives up waiting on a statement (and cancels it) after `deadline`.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Runs one statement with positional bindings (`?` is binding 1, 2, ...).
    pub async fn execute(&self, statement: &str, bindings: &[Binding]) -> Result<QueryResult> {
        let started = Instant::now();
        let c = self.transport.session().identity().await;
        let body = SubmitRequest {
            statement,
            timeout: self.deadline.as_secs(),
            database: &c.database,
            schema: &c.schema,
            warehouse: &c.warehouse,
            role: &c.role,
            bindings: bindings
                .iter()
                .enumerate()
                .map(|(i, b)| Ok(((i + 1).to_string(), serde_json::to_value(b)?)))
                .collect::<Result<_>>()?,
            parameters: json!({ "query_tag": self.query_tag }),
        };
        let body = serde_json::to_vec(&body)?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut answer = self
            .send(
                reqwest::Method::POST,
                "/api/v2/statements",
                Some(&request_id),
                Some(body),
                started,
            )
            .await?;
        let mut poll = 0u32;
        let first = loop {
            match answer {
                Answer::Done(result) => break result,
                Answer::Running(status_url) => {
                    poll += 1;
                    let delay =
                        Duration::from_millis(100 * (1 << poll.min(6))).min(Duration::from_secs(5));
                    if started.elapsed() + delay >= self.deadline {
                        self.cancel(&status_url, started).await;
                        return Err(Error::Deadline(format!(
                            "statement still running after {:?}; cancelled",
                            self.deadline
                        )));
                    }
                    tokio::time::sleep(delay).await;
                    answer = self
                        .send(reqwest::Method::GET, &status_url, None, None, started)
                        .await?;
                }
            }
        };
        self.collect(first, started).await
    }

    /// Decodes the first partition and fetches the others.
    async fn collect(&self, first: ResultSet, started: Instant) -> Result<QueryResult> {
        let meta = first.result_set_meta_data.unwrap_or(ResultSetMetaData {
            num_rows: None,
            row_type: Vec::new(),
            partition_info: Vec::new(),
        });
        let handle = first.statement_handle.clone();
        let status_url = first
            .statement_status_url
            .clone()
            .or_else(|| handle.as_ref().map(|h| format!("/api/v2/statements/{h}")));
        let mut data = first.data;
        if meta.partition_info.len() > 1 {
            let url = status_url.ok_or_else(|| Error::Snowflake {
                status: 200,
                code: None,
                sql_state: None,
                message: "a multi-partition result without a statement handle".into(),
            })?;
            let partitions: Vec<Vec<Vec<Value>>> = stream::iter(1..meta.partition_info.len())
                .map(|partition| {
                    let path = with_query(&url, "partition", &partition.to_string());
                    async move {
                        match self
                            .send(reqwest::Method::GET, &path, None, None, started)
                            .await?
                        {
                            Answer::Done(result) => Ok(result.data),
                            Answer::Running(_) => Err(Error::Snowflake {
                                status: 202,
                                code: None,
                                sql_state: None,
                                message: format!("partition {partition} not ready"),
                            }),
                        }
                    }
                })
                .buffered(PARTITION_CONCURRENCY)
                .try_collect()
                .await?;
            data.extend(partitions.into_iter().flatten());
        }
        if let Some(announced) = meta.num_rows.filter(|&n| n != data.len() as u64) {
            return Err(Error::Snowflake {
                status: 200,
                code: None,
                sql_state: None,
                message: format!("a result of {announced} rows came with {}", data.len()),
            });
        }
        let rows = data
            .into_iter()
            .map(|row| decode_row(&meta.row_type, row))
            .collect::<Result<_>>()?;
        Ok(QueryResult {
            statement_handle: handle,
            columns: meta.row_type,
            rows,
        })
    }

    /// Best effort: a statement we stop waiting for should not keep a warehouse busy.
    async fn cancel(&self, status_url: &str, started: Instant) {
        let path = format!(
            "{}/cancel",
            status_url.split('?').next().unwrap_or(status_url)
        );
        if let Err(error) = self
            .send(reqwest::Method::POST, &path, None, None, started)
            .await
        {
            tracing::warn!(%error, "cancelling the statement failed");
        }
    }

    /// One request through the shared transport. `request_id` marks a submission: resends
    /// carry it again with `retry=true`. Other calls get a request id of their own.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: Option<&str>,
        body: Option<Vec<u8>>,
        started: Instant,
    ) -> Result<Answer> {
        // Every call carries a request id; only a submission's resends say `retry=true`.
        let fresh = uuid::Uuid::new_v4().to_string();
        let query = [("requestId", request_id.unwrap_or(&fresh))];
        let call = Call {
            method,
            path,
            query: &query,
            body: body.as_deref(),
            mark_resends: request_id.is_some(),
        };
        let answer = self.transport.send(&call, started).await?;
        if answer.response.status() == reqwest::StatusCode::ACCEPTED {
            let status: Value = json(answer.response, path).await?;
            let url = status["statementStatusUrl"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    status["statementHandle"]
                        .as_str()
                        .map(|h| format!("/api/v2/statements/{h}"))
                });
            return url.map(Answer::Running).ok_or_else(|| Error::Snowflake {
                status: 202,
                code: None,
                sql_state: None,
                message: "202 without a statement handle".into(),
            });
        }
        Ok(Answer::Done(json(answer.response, path).await?))
    }
}

/// `url` with `key=value` in its query, replacing any value `key` had: a status URL may
/// already carry a query (`?requestId=...`, even `?partition=0`).
fn with_query(url: &str, key: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(key))
        .collect();
    let added = format!("{key}={value}");
    pairs.push(&added);
    format!("{path}?{}", pairs.join("&"))
}

/// Decodes one row by the column types: numbers, booleans, dates and timestamps become
/// JSON values; decimals with a scale stay strings (exact); VARIANT, OBJECT and ARRAY are
/// parsed JSON.
pub fn decode_row(columns: &[Column], row: Vec<Value>) -> Result<Map<String, Value>> {
    if row.len() != columns.len() {
        return Err(Error::Snowflake {
            status: 200,
            code: None,
            sql_state: None,
            message: format!(
                "a row of {} values for {} columns",
                row.len(),
                columns.len()
            ),
        });
    }
    columns
        .iter()
        .zip(row)
        .map(|(column, value)| Ok((column.name.clone(), decode_value(column, value)?)))
        .collect()
}

/// A `time` or `timestamp_*` value as ISO 8601 text (`None` when it does not parse).
fn decode_time(kind: &str, text: &str) -> Option<String> {
    if kind == "timestamp_tz" {
        // "seconds.nanos offset", the offset in minutes plus 1440.
        let (instant, offset) = text.split_once(' ')?;
        let (secs, nanos) = seconds_nanos(instant)?;
        let minutes = offset.parse::<i32>().ok()?.checked_sub(1440)?;
        let zone = chrono::FixedOffset::east_opt(minutes.checked_mul(60)?)?;
        let at = DateTime::from_timestamp(secs, nanos)?;
        return Some(at.with_timezone(&zone).to_rfc3339());
    }
    let (secs, nanos) = seconds_nanos(text)?;
    Some(match kind {
        "time" => NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(secs).ok()?, nanos)?
            .format("%H:%M:%S%.f")
            .to_string(),
        "timestamp_ntz" => DateTime::from_timestamp(secs, nanos)?
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.f")
            .to_string(),
        _ => DateTime::from_timestamp(secs, nanos)?.to_rfc3339(),
    })
}

fn decode_value(column: &Column, value: Value) -> Result<Value> {
    let Value::String(text) = value else {
        return Ok(value);
    };
    let bad = || Error::Snowflake {
        status: 200,
        code: None,
        sql_state: None,
        message: format!(
            "column {}: {text:?} is not a {} value",
            column.name, column.kind
        ),
    };
    let kind = column.kind.to_ascii_lowercase();
    Ok(match kind.as_str() {
        "fixed" if column.scale.unwrap_or(0) == 0 => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text.clone())),
        "fixed" => Value::String(text.clone()),
        "real" => json!(text.parse::<f64>().map_err(|_| bad())?),
        "boolean" => Value::Bool(matches!(text.as_str(), "true" | "TRUE" | "1")),
        "date" => {
            let days: i64 = text.parse().map_err(|_| bad())?;
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::try_days(days)?))
                .ok_or_else(bad)?;
            Value::String(date.to_string())
        }
        "time" | "timestamp_ntz" | "timestamp_ltz" | "timestamp_tz" => {
            Value::String(decode_time(&kind, &text).ok_or_else(bad)?)
        }
        "variant" | "object" | "array" => serde_json::from_str(&text).map_err(|_| bad())?,
        _ => Value::String(text.clone()),
    })
}

/// `"1700000000.123456789"` -> (1700000000, 123456789); negative times keep the sign on
/// the seconds.
fn seconds_nanos(text: &str) -> Option<(i64, u32)> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let negative = secs.starts_with('-');
    let secs: i64 = secs.parse().ok()?;
    let digits = fraction.len().min(9);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = fraction.get(..digits)?.parse::<u32>().ok()? * 10u32.pow(9 - digits as u32);
    if negative && nanos > 0 {
        // "-1.5" is 1.5 s before the epoch: -2 s + 0.5 s ("-0.5": -1 s + 0.5 s).
        Some((secs.checked_sub(1)?, 1_000_000_000 - nanos))
    } else {
        Some((secs, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: &str, scale: i64) -> Column {
        Column {
            name: "c".into(),
            kind: kind.into(),
            scale: Some(scale),
            nullable: Some(true),
        }
    }

    #[test]
    fn values_decode_by_row_type() {
        let cases = [
            (column("fixed", 0), json!("42"), json!(42)),
            (column("fixed", 2), json!("12.50"), json!("12.50")),
            (column("real", 0), json!("1.5"), json!(1.5)),
            (column("boolean", 0), json!("true"), json!(true)),
            (column("text", 0), json!("x"), json!("x")),
            (column("date", 0), json!("19783"), json!("2024-03-01")),
            (column("time", 9), json!("3723.5"), json!("01:02:03.500")),
            (
                column("timestamp_ntz", 9),
                json!("1709251200.000000001"),
                json!("2024-03-01T00:00:00.000000001"),
            ),
            (
                column("timestamp_ltz", 9),
                json!("1709251200.5"),
                json!("2024-03-01T00:00:00.500+00:00"),
            ),
            (
                column("timestamp_tz", 9),
                json!("1709251200.0 1560"),
                json!("2024-03-01T02:00:00+02:00"),
            ),
            (
                column("variant", 0),
                json!("{\"a\":[1,2]}"),
                json!({"a": [1, 2]}),
            ),
            (column("text", 0), Value::Null, Value::Null),
        ];
        for (column, raw, expected) in cases {
            assert_eq!(
                decode_value(&column, raw.clone()).unwrap(),
                expected,
                "{} {raw}",
                column.kind
            );
        }
        assert!(decode_value(&column("date", 0), json!("soon")).is_err());
        assert_eq!(seconds_nanos("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(seconds_nanos("-0.5"), Some((-1, 500_000_000)));
    }

    /// Found by the quota monitor's adversarial review: values at the ends of their types
    /// are errors, never a panic.
    #[test]
    fn extreme_values_are_errors_not_panics() {
        assert_eq!(seconds_nanos("-9223372036854775808.5"), None);
        assert_eq!(seconds_nanos("1.-5"), None);
        assert_eq!(
            decode_time("timestamp_tz", "1795330994.0 -2147483648"),
            None
        );
        assert_eq!(decode_time("timestamp_tz", "1795330994.0 2147483647"), None);
        for days in ["9223372036854775807", "-9223372036854775808"] {
            assert!(
                decode_value(&column("date", 0), json!(days)).is_err(),
                "{days}"
            );
        }
    }

    #[test]
    fn query_parameters_are_added_to_any_url() {
        assert_eq!(
            with_query("/api/v2/statements/h", "partition", "2"),
            "/api/v2/statements/h?partition=2"
        );
        assert_eq!(
            with_query(
                "/api/v2/statements/h?requestId=r&partition=0",
                "partition",
                "3"
            ),
            "/api/v2/statements/h?requestId=r&partition=3"
        );
    }

    #[test]
    fn bindings_parse_from_the_cli() {
        assert_eq!(Binding::parse("TEXT:a:b").unwrap(), Binding::text("a:b"));
        assert_eq!(Binding::parse("fixed:42").unwrap(), Binding::fixed(42));
        assert_eq!(Binding::parse("NULL:text").unwrap(), Binding::null("TEXT"));
        assert!(Binding::parse("BLOB:1").is_err());
        assert!(Binding::parse("42").is_err());
    }
}
