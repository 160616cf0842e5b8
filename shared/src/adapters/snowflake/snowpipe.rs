//! Snowpipe REST: `insertFiles` to hand staged files to a pipe, `insertReport` and
//! `loadHistoryScan` to see what was loaded. Same JWT, headers and retry policy as every
//! Snowflake call.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    retry::RetryPolicy,
    session::Session,
    transport::{Call, CallFailure, Transport, json},
};
use crate::{
    error::{Error, Result},
    ports::loader::{FileLoad, LoadFailure, LoadSummary},
};

/// Files per `insertFiles` request (Snowpipe's limit).
pub const MAX_FILES_PER_REQUEST: usize = 5000;
/// Files one `loadHistoryScan` answer holds at most; a full answer may have left some out.
pub const MAX_FILES_PER_HISTORY: usize = 10_000;

/// A file on the pipe's stage, by its path relative to the stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Path relative to the stage.
    pub path: String,
    /// Size in bytes, when known (it helps Snowpipe plan).
    pub size: Option<u64>,
}

#[derive(Debug, Serialize)]
struct InsertRequest<'a> {
    files: &'a [StagedFile],
}

/// Snowpipe's answer to `insertFiles`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsertResponse {
    /// The request id Snowpipe echoes.
    pub request_id: Option<String>,
    /// `SUCCESS`, or why the request was not taken.
    pub response_code: String,
}

/// One file in an `insertReport`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// Path relative to the stage.
    pub path: String,
    /// `LOADED`, `LOAD_FAILED`, `PARTIALLY_LOADED`, ...
    pub status: String,
    /// When the load was recorded.
    #[serde(default)]
    pub last_insert_time: Option<String>,
    /// Rows inserted into the table.
    #[serde(default)]
    pub rows_inserted: Option<u64>,
    /// Rows parsed from the file.
    #[serde(default)]
    pub rows_parsed: Option<u64>,
    /// Rows that failed.
    #[serde(default)]
    pub errors_seen: Option<u64>,
    /// The first error, as Snowflake words it.
    #[serde(default)]
    pub first_error: Option<String>,
    /// Whether the load is finished.
    #[serde(default)]
    pub complete: Option<bool>,
}

impl FileReport {
    /// The report as the loader port gives it, for `dataset`.
    pub fn into_file_load(self, dataset: &str) -> FileLoad {
        FileLoad {
            dataset: dataset.to_string(),
            path: self.path,
            status: self.status,
            first_error: self.first_error,
            rows_parsed: self.rows_parsed,
            rows_inserted: self.rows_inserted,
            last_insert_time: self.last_insert_time,
        }
    }
}

/// Snowpipe's answer to `insertReport`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsertReport {
    /// The pipe reported on.
    pub pipe: Option<String>,
    /// Whether every event of the range is in this answer.
    #[serde(default)]
    pub complete_result: Option<bool>,
    /// Where the next `insertReport` should begin.
    pub next_begin_mark: Option<String>,
    /// One entry per file.
    #[serde(default)]
    pub files: Vec<FileReport>,
}

/// A Snowpipe REST client for one account.
pub struct SnowpipeClient {
    transport: Transport,
}

impl SnowpipeClient {
    /// `base_url` overrides the account URL (tests, proxies).
    pub fn new(http: reqwest::Client, session: Arc<Session>, base_url: Option<String>) -> Self {
        SnowpipeClient {
            transport: Transport::new(http, session, base_url),
        }
    }

    /// Retries with `retry` instead of the default policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.transport.retry = retry;
        self
    }

    /// Hands `files` to `pipe` (fully qualified), in requests of at most
    /// [`MAX_FILES_PER_REQUEST`]. Stops at the first request that fails after retries;
    /// then some files may have been accepted (Snowpipe skips them when resent).
    pub async fn insert_files(
        &self,
        pipe: &str,
        files: &[StagedFile],
    ) -> Result<LoadSummary, LoadFailure> {
        let mut summary = LoadSummary::default();
        for chunk in files.chunks(MAX_FILES_PER_REQUEST) {
            let request_id = uuid::Uuid::new_v4().to_string();
            let path = format!("/v1/data/pipes/{pipe}/insertFiles");
            let sent = match serde_json::to_vec(&InsertRequest { files: chunk }) {
                Ok(body) => {
                    self.call::<InsertResponse>(
                        reqwest::Method::POST,
                        &path,
                        &[("requestId", &request_id)],
                        Some(&body),
                    )
                    .await
                }
                Err(error) => Err(CallFailure {
                    error: error.into(),
                    retries: 0,
                }),
            };
            summary.calls += 1;
            let response = match sent {
                Ok((response, retries)) => {
                    summary.retries += retries;
                    response
                }
                Err(failure) => {
                    summary.retries += failure.retries as usize;
                    return Err(LoadFailure {
                        summary,
                        error: failure.error,
                    });
                }
            };
            if response.response_code != "SUCCESS" {
                return Err(LoadFailure {
                    summary,
                    error: Error::Snowflake {
                        status: 200,
                        sql_state: None,
                        code: Some(response.response_code),
                        message: format!("insertFiles on {pipe} was not accepted"),
                    },
                });
            }
            summary.files += chunk.len();
        }
        Ok(summary)
    }

    /// Load results of `pipe` recorded in `[from, to)` (`loadHistoryScan`), at most
    /// [`MAX_FILES_PER_HISTORY`] files.
    pub async fn load_history(
        &self,
        pipe: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<InsertReport> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let path = format!("/v1/data/pipes/{pipe}/loadHistoryScan");
        let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (from, to) = (instant(from), instant(to));
        let query = [
            ("startTimeInclusive", from.as_str()),
            ("endTimeExclusive", to.as_str()),
            ("requestId", request_id.as_str()),
        ];
        let (report, _) = self.call(reqwest::Method::GET, &path, &query, None).await?;
        Ok(report)
    }

    /// Recent load results of `pipe`, from `begin_mark` (the previous report's
    /// `next_begin_mark`) on.
    pub async fn insert_report(
        &self,
        pipe: &str,
        begin_mark: Option<&str>,
    ) -> Result<InsertReport> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let path = format!("/v1/data/pipes/{pipe}/insertReport");
        let mut query = vec![("requestId", request_id.as_str())];
        if let Some(mark) = begin_mark {
            query.push(("beginMark", mark));
        }
        let (report, _) = self.call(reqwest::Method::GET, &path, &query, None).await?;
        Ok(report)
    }

    /// One request through the shared transport, its JSON answer and the retries it took.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(T, usize), CallFailure> {
        let call = Call {
            method,
            path,
            query,
            body,
            mark_resends: false,
        };
        let answer = self.transport.send(&call, Instant::now()).await?;
        let retries = answer.retries;
        json(answer.response, path)
            .await
            .map(|value| (value, retries as usize))
            .map_err(|error| CallFailure { error, retries })
    }
}
