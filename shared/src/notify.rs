//! The snowpipe-notifier's logic: load messages from the queue in, their files handed to
//! the dataset's pipe, in as few calls as Snowpipe's limits allow.
//!
//! Files of every message in a batch are pooled per dataset and sent in requests of up to
//! 5,000; a request that fails fails exactly the messages whose files it carried. Resending
//! is safe: Snowpipe skips a path it loaded in the last 14 days. A dataset without a pipe
//! (one converted with sniffed types, say) is not an error to retry: its messages are
//! acknowledged, logged with their manifest and counted (`MessagesWithoutPipe`), and can be
//! loaded later with `snowcast load` once a pipe exists.
//!
//! A file Snowpipe accepted can still fail to load (a COPY error). On a schedule the
//! notifier audits what the pipes loaded in a past window ([`Notifier::audit`]): failed
//! files are logged with Snowflake's first error and counted (`FilesLoadFailed`, alarmed
//! in the template); `snowcast loads` lists them and re-drives them.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use crate::{
    error::{Error, Result},
    lambda::{self, QueueMessage},
    manifest::LoadMessage,
    metrics::{MetricRecord, Unit},
    snowflake::snowpipe::{
        FileReport, InsertFailure, InsertSummary, MAX_FILES_PER_HISTORY, MAX_FILES_PER_REQUEST,
        SnowpipeClient, StagedFile,
    },
};

/// How far a history window is split when one answer may have left files out.
const MIN_HISTORY_WINDOW: Duration = Duration::seconds(1);

const FUNCTION: &str = "snowpipe-notifier";

/// Loading port: hands silver files of a dataset to the warehouse.
#[async_trait]
pub trait Loader: Send + Sync {
    /// Whether `dataset` has somewhere to load into.
    fn accepts(&self, dataset: &str) -> bool;

    /// Loads `files` (paths relative to the silver root) into `dataset`'s table.
    async fn load(
        &self,
        dataset: &str,
        files: &[StagedFile],
    ) -> Result<InsertSummary, InsertFailure>;

    /// What every dataset's loads came to in `[from, to)`: (dataset, file report) pairs.
    async fn history(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, FileReport)>>;
}

/// Which pipe loads which dataset.
#[derive(Debug, Clone, Default)]
pub struct PipeMap {
    explicit: BTreeMap<String, String>,
    /// `DATABASE.SCHEMA` of the pipes not named explicitly (`<DATASET>_PIPE` there).
    default_scope: Option<String>,
    /// Datasets that have a `<DATASET>_PIPE` in the default scope.
    default_datasets: BTreeSet<String>,
}

impl PipeMap {
    /// Parses `dataset=DB.SCHEMA.PIPE,dataset2=...` (from `SNOWCAST_PIPES`). The datasets
    /// with a `<DATASET>_PIPE` in `default_scope` are `datasets` (`SNOWCAST_PIPE_DATASETS`,
    /// comma-separated), by default those with a built-in contract: the pipes
    /// `infra/snowflake` creates.
    pub fn parse(
        spec: &str,
        default_scope: Option<String>,
        datasets: Option<&str>,
    ) -> Result<Self> {
        let mut explicit = BTreeMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (dataset, pipe) = entry.split_once('=').ok_or_else(|| {
                Error::invalid(
                    "SNOWCAST_PIPES",
                    format!("{entry:?} is not dataset=DB.SCHEMA.PIPE"),
                )
            })?;
            if pipe.split('.').count() != 3 || pipe.split('.').any(str::is_empty) {
                return Err(Error::invalid(
                    "SNOWCAST_PIPES",
                    format!("{pipe:?} is not a fully qualified pipe name"),
                ));
            }
            explicit.insert(dataset.trim().to_string(), pipe.trim().to_string());
        }
        let default_datasets = match datasets {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect(),
            None => crate::contract::builtin_datasets()
                .map(str::to_string)
                .collect(),
        };
        Ok(PipeMap {
            explicit,
            default_scope,
            default_datasets,
        })
    }

    /// Every dataset that has a pipe, with its pipe.
    pub fn all(&self) -> Vec<(String, String)> {
        let mut datasets: BTreeSet<&String> = self.explicit.keys().collect();
        if self.default_scope.is_some() {
            datasets.extend(&self.default_datasets);
        }
        datasets
            .into_iter()
            .filter_map(|d| self.pipe(d).map(|pipe| (d.clone(), pipe)))
            .collect()
    }

    /// The pipe for `dataset`, or `None` when it has none.
    pub fn pipe(&self, dataset: &str) -> Option<String> {
        if let Some(pipe) = self.explicit.get(dataset) {
            return Some(pipe.clone());
        }
        let scope = self.default_scope.as_ref()?;
        self.default_datasets
            .contains(dataset)
            .then(|| format!("{scope}.{}_PIPE", dataset.to_ascii_uppercase()))
    }
}

/// Snowpipe as the loader.
pub struct SnowpipeLoader {
    client: SnowpipeClient,
    pipes: PipeMap,
}

impl SnowpipeLoader {
    pub fn new(client: SnowpipeClient, pipes: PipeMap) -> Self {
        SnowpipeLoader { client, pipes }
    }
}

#[async_trait]
impl Loader for SnowpipeLoader {
    fn accepts(&self, dataset: &str) -> bool {
        self.pipes.pipe(dataset).is_some()
    }

    async fn load(
        &self,
        dataset: &str,
        files: &[StagedFile],
    ) -> Result<InsertSummary, InsertFailure> {
        match self.pipes.pipe(dataset) {
            Some(pipe) => self.client.insert_files(&pipe, files).await,
            None => Err(InsertFailure {
                summary: InsertSummary::default(),
                error: Error::invalid("dataset", format!("no pipe loads {dataset:?}")),
            }),
        }
    }

    async fn history(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, FileReport)>> {
        let mut found = Vec::new();
        for (dataset, pipe) in self.pipes.all() {
            let mut windows = vec![(from, to)];
            while let Some((start, end)) = windows.pop() {
                let report = self.client.load_history(&pipe, start, end).await?;
                let full = report.files.len() >= MAX_FILES_PER_HISTORY;
                if full && end - start > MIN_HISTORY_WINDOW {
                    // The answer may have left files out: ask for each half instead.
                    let middle = start + (end - start) / 2;
                    windows.extend([(start, middle), (middle, end)]);
                    continue;
                }
                found.extend(report.files.into_iter().map(|f| (dataset.clone(), f)));
            }
        }
        Ok(found)
    }
}

/// A silver file whose load did not complete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedLoad {
    pub dataset: String,
    /// Path relative to the stage (the silver key).
    pub path: String,
    /// `LOAD_FAILED` or `PARTIALLY_LOADED`.
    pub status: String,
    pub first_error: Option<String>,
    pub rows_parsed: Option<u64>,
    pub rows_inserted: Option<u64>,
    /// When Snowflake recorded the attempt (with the path, it names the failure).
    pub last_insert_time: Option<String>,
}

/// What the pipes loaded in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadAudit {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub loaded: usize,
    pub failed: Vec<FailedLoad>,
}

/// The audit window for a run at `at`, every `period`: the whole period that ended one
/// period before the boundary at or before `at`. Runs one period apart audit adjacent
/// windows, and the period of delay lets Snowflake finish and record the loads.
pub fn audit_window(at: DateTime<Utc>, period: Duration) -> (DateTime<Utc>, DateTime<Utc>) {
    let boundary = at.duration_trunc(period).unwrap_or(at);
    let to = boundary - period;
    (to - period, to)
}

/// The files of a load message, as a pipe wants them.
pub fn staged_files(message: &LoadMessage) -> Vec<StagedFile> {
    message
        .files
        .iter()
        .map(|f| StagedFile {
            path: f.key.clone(),
            size: Some(f.bytes),
        })
        .collect()
}

/// What one batch of load messages came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Ids (message ids, or manifest paths for the CLI) whose files were not all accepted.
    pub failed: Vec<String>,
    /// Ids of messages whose dataset has no pipe (acknowledged, not loaded).
    pub without_pipe: Vec<String>,
    pub files: usize,
    pub calls: usize,
    pub retries: usize,
}

/// The notifier service.
pub struct Notifier {
    loader: Arc<dyn Loader>,
    audit_period: Duration,
}

/// How often the load audit runs by default (the template's schedule).
pub const DEFAULT_AUDIT_PERIOD: Duration = Duration::minutes(15);

impl Notifier {
    pub fn new(loader: Arc<dyn Loader>) -> Self {
        Notifier {
            loader,
            audit_period: DEFAULT_AUDIT_PERIOD,
        }
    }

    /// The schedule's period: each scheduled run audits one period of loads.
    pub fn with_audit_period(mut self, period: Duration) -> Self {
        self.audit_period = period;
        self
    }

    /// Handles an SQS batch of load messages (the response names the messages to retry), or
    /// a scheduled event: then audits the window before it (see [`audit_window`]).
    pub async fn handle(&self, event: serde_json::Value) -> Result<serde_json::Value> {
        if let Some(at) = scheduled_time(&event) {
            let (from, to) = audit_window(at, self.audit_period);
            let audit = self.audit(from, to).await?;
            MetricRecord::new(FUNCTION)
                .metric("FilesLoadConfirmed", audit.loaded as f64, Unit::Count)
                .metric("FilesLoadFailed", audit.failed.len() as f64, Unit::Count)
                .property("window_start", from.to_rfc3339())
                .property("window_end", to.to_rfc3339())
                .emit();
            return Ok(serde_json::to_value(audit)?);
        }
        let messages = lambda::sqs_messages(&event).ok_or_else(|| {
            Error::Event("snowpipe-notifier expects an SQS batch or a scheduled event".into())
        })?;
        let mut failed = Vec::new();
        let mut loads = Vec::new();
        for QueueMessage { id, body } in messages {
            match serde_json::from_str::<LoadMessage>(&body) {
                Ok(message) => loads.push((id, message)),
                Err(error) => {
                    tracing::error!(message_id = %id, %error, "not a load message; it will be retried, then dead-lettered");
                    failed.push(id);
                }
            }
        }
        let report = self.load(loads).await;
        MetricRecord::new(FUNCTION)
            .metric("FilesLoaded", report.files as f64, Unit::Count)
            .metric("InsertCalls", report.calls as f64, Unit::Count)
            .metric("Retries", report.retries as f64, Unit::Count)
            .metric(
                "MessagesFailed",
                (report.failed.len() + failed.len()) as f64,
                Unit::Count,
            )
            .metric(
                "MessagesWithoutPipe",
                report.without_pipe.len() as f64,
                Unit::Count,
            )
            .emit();
        failed.extend(report.failed);
        Ok(serde_json::to_value(lambda::batch_response(failed))?)
    }

    /// What the pipes loaded in `[from, to)`; failed files are logged with their first
    /// error (the scheduled handler counts them in `FilesLoadFailed`).
    pub async fn audit(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<LoadAudit> {
        let mut audit = LoadAudit {
            from,
            to,
            loaded: 0,
            failed: Vec::new(),
        };
        for (dataset, file) in self.loader.history(from, to).await? {
            if file.status == "LOADED" {
                audit.loaded += 1;
                continue;
            }
            if !matches!(file.status.as_str(), "LOAD_FAILED" | "PARTIALLY_LOADED") {
                continue;
            }
            let failed = FailedLoad {
                dataset,
                path: file.path,
                status: file.status,
                first_error: file.first_error,
                rows_parsed: file.rows_parsed,
                rows_inserted: file.rows_inserted,
                last_insert_time: file.last_insert_time,
            };
            tracing::error!(
                dataset = %failed.dataset,
                path = %failed.path,
                status = %failed.status,
                first_error = failed.first_error.as_deref().unwrap_or(""),
                "a silver file did not load; re-drive it with `snowcast loads --redrive`"
            );
            audit.failed.push(failed);
        }
        Ok(audit)
    }

    /// Loads the files of `messages` (each with an id to report failures by), pooled per
    /// dataset into requests of at most [`MAX_FILES_PER_REQUEST`] files.
    pub async fn load(&self, messages: Vec<(String, LoadMessage)>) -> LoadReport {
        let mut report = LoadReport::default();
        let mut by_dataset: BTreeMap<String, Vec<(String, StagedFile)>> = BTreeMap::new();
        for (id, message) in &messages {
            if !self.loader.accepts(&message.dataset) {
                tracing::warn!(
                    message_id = %id,
                    dataset = %message.dataset,
                    tenant = %message.tenant_id,
                    manifest = message.manifest_key.as_deref().unwrap_or(""),
                    "no pipe loads this dataset; acknowledged without loading"
                );
                report.without_pipe.push(id.clone());
                continue;
            }
            for file in staged_files(message) {
                by_dataset
                    .entry(message.dataset.clone())
                    .or_default()
                    .push((id.clone(), file));
            }
        }
        for (dataset, entries) in by_dataset {
            for chunk in entries.chunks(MAX_FILES_PER_REQUEST) {
                let files: Vec<StagedFile> = chunk.iter().map(|(_, f)| f.clone()).collect();
                let summary = match self.loader.load(&dataset, &files).await {
                    Ok(summary) => summary,
                    Err(InsertFailure { summary, error }) => {
                        tracing::error!(%dataset, files = files.len(), %error, "load request failed");
                        for (id, _) in chunk {
                            if !report.failed.contains(id) {
                                report.failed.push(id.clone());
                            }
                        }
                        summary
                    }
                };
                report.files += summary.files;
                report.calls += summary.calls;
                report.retries += summary.retries;
            }
        }
        report
    }
}

/// The time of a scheduled event: an EventBridge rule's `Scheduled Event`, or EventBridge
/// Scheduler's default input (`{}` with the scheduled time in a `time` field, or none:
/// now).
fn scheduled_time(event: &serde_json::Value) -> Option<DateTime<Utc>> {
    let scheduled = event.get("detail-type").and_then(|d| d.as_str()) == Some("Scheduled Event")
        || event
            .as_object()
            .is_some_and(|o| !o.contains_key("Records"));
    if !scheduled {
        return None;
    }
    let time = event.get("time").and_then(|t| t.as_str());
    Some(
        time.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_windows_are_adjacent_and_settled() {
        let period = Duration::minutes(15);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (from, to) = audit_window(at("2026-11-22T10:07:31Z"), period);
        assert_eq!(
            (from, to),
            (at("2026-11-22T09:30:00Z"), at("2026-11-22T09:45:00Z"))
        );
        let (next, _) = audit_window(at("2026-11-22T10:22:00Z"), period);
        assert_eq!(next, to, "the next run starts where this one ended");
    }

    #[test]
    fn scheduled_events_are_told_from_sqs_batches() {
        let rule = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events",
                                      "time": "2026-11-22T10:07:31Z", "detail": {}});
        assert!(scheduled_time(&rule).is_some());
        assert!(scheduled_time(&serde_json::json!({})).is_some());
        let sqs = serde_json::json!({"Records": [{"eventSource": "aws:sqs"}]});
        assert_eq!(scheduled_time(&sqs), None);
    }

    #[test]
    fn pipes_come_from_the_map_or_the_default_scope() {
        let pipes = PipeMap::parse(
            "sales=RAW.PUBLIC.SALES_P, stores=RAW.X.STORES",
            Some("DB.RAW".into()),
            None,
        )
        .unwrap();
        assert_eq!(pipes.pipe("sales").unwrap(), "RAW.PUBLIC.SALES_P");
        assert_eq!(pipes.pipe("stores").unwrap(), "RAW.X.STORES");
        assert_eq!(pipes.pipe("products").unwrap(), "DB.RAW.PRODUCTS_PIPE");
        assert_eq!(pipes.pipe("weather"), None, "no contract, no pipe");
        let listed = PipeMap::parse("", Some("DB.RAW".into()), Some("weather, sales")).unwrap();
        assert_eq!(listed.pipe("weather").unwrap(), "DB.RAW.WEATHER_PIPE");
        assert_eq!(listed.pipe("products"), None);
        assert!(PipeMap::parse("sales", None, None).is_err());
        assert!(PipeMap::parse("sales=PIPE", None, None).is_err());
        assert_eq!(PipeMap::parse("", None, None).unwrap().pipe("sales"), None);
    }
}
