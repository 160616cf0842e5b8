//! The snowpipe-notifier's logic: load messages from the queue in, their files handed to
//! the dataset's pipe, in as few calls as Snowpipe's limits allow.
//!
//! Files of every message in a batch are pooled per dataset and handed to the loader in one
//! go (the Snowpipe adapter splits them into requests of 5,000); when it stops part-way,
//! exactly the messages whose files it did not accept fail. Resending is safe: Snowpipe
//! skips a path it loaded in the last 14 days. A dataset without a pipe
//! (one converted with sniffed types, say) is not an error to retry: its messages are
//! acknowledged, logged with their manifest and counted (`MessagesWithoutPipe`), and can be
//! loaded later with `snowcast load` once a pipe exists.
//!
//! A file Snowpipe accepted can still fail to load (a COPY error). On a schedule the
//! notifier audits what the pipes loaded in a past window ([`Notifier::audit`]): failed
//! files are logged with Snowflake's first error and counted (`FilesLoadFailed`, alarmed
//! in the template); `snowcast loads` lists them and re-drives them.
//!
//! May import: `ports`, `domain`, `lambda`, `error`; never an adapter.

pub mod config;

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use crate::{
    domain::manifest::{LoadFile, LoadMessage},
    error::{Error, Result},
    lambda::{
        self, QueueMessage,
        metrics::{MetricRecord, Unit},
        scheduled_time,
    },
    ports::loader::{FileLoad, LoadFailure, Loader},
};

/// Name of the function in metrics.
const FUNCTION: &str = "snowpipe-notifier";
/// How often the load audit runs by default (the template's schedule).
pub const DEFAULT_AUDIT_PERIOD: Duration = Duration::minutes(15);

/// What the pipes loaded in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadAudit {
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// Files whose loads completed.
    pub loaded: usize,
    /// Files whose loads failed or completed in part.
    pub failed: Vec<FileLoad>,
}

/// The audit window for a run at `at`, every `period`: the whole period that ended one
/// period before the boundary at or before `at`. Runs one period apart audit adjacent
/// windows, and the period of delay lets Snowflake finish and record the loads.
pub fn audit_window(at: DateTime<Utc>, period: Duration) -> (DateTime<Utc>, DateTime<Utc>) {
    let boundary = at.duration_trunc(period).unwrap_or(at);
    let to = boundary - period;
    (to - period, to)
}

/// What one batch of load messages came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Ids (message ids, or manifest paths for the CLI) whose files were not all accepted.
    pub failed: Vec<String>,
    /// Ids of messages whose dataset has no pipe (acknowledged, not loaded).
    pub without_pipe: Vec<String>,
    /// Files accepted.
    pub files: usize,
    /// Requests made.
    pub calls: usize,
    /// Requests resent.
    pub retries: usize,
}

/// The notifier service.
pub struct Notifier {
    loader: Arc<dyn Loader>,
    audit_period: Duration,
}

impl Notifier {
    /// A notifier loading through `loader`, auditing every [`DEFAULT_AUDIT_PERIOD`].
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
        match scheduled_time(&event) {
            Some(at) => self.handle_schedule(at).await,
            None => self.handle_batch(&event).await,
        }
    }

    async fn handle_schedule(&self, at: DateTime<Utc>) -> Result<serde_json::Value> {
        let (from, to) = audit_window(at, self.audit_period);
        let audit = self.audit(from, to).await?;
        MetricRecord::new(FUNCTION)
            .metric("FilesLoadConfirmed", audit.loaded as f64, Unit::Count)
            .metric("FilesLoadFailed", audit.failed.len() as f64, Unit::Count)
            .property("window_start", from.to_rfc3339())
            .property("window_end", to.to_rfc3339())
            .emit();
        Ok(serde_json::to_value(audit)?)
    }

    async fn handle_batch(&self, event: &serde_json::Value) -> Result<serde_json::Value> {
        let messages = lambda::sqs_messages(event).ok_or_else(|| {
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
        for file in self.loader.history(from, to).await? {
            if file.loaded() {
                audit.loaded += 1;
            } else if file.failed() {
                tracing::error!(
                    dataset = %file.dataset,
                    path = %file.path,
                    status = %file.status,
                    first_error = file.first_error.as_deref().unwrap_or(""),
                    "a silver file did not load; re-drive it with `snowcast loads --redrive`"
                );
                audit.failed.push(file);
            }
        }
        Ok(audit)
    }

    /// Loads the files of `messages` (each with an id to report failures by), pooled per
    /// dataset; a dataset without a pipe is reported, not loaded.
    pub async fn load(&self, messages: Vec<(String, LoadMessage)>) -> LoadReport {
        let mut report = LoadReport::default();
        let mut by_dataset: BTreeMap<String, Vec<(String, LoadFile)>> = BTreeMap::new();
        for (id, message) in messages {
            if !self.loader.accepts(&message.dataset) {
                tracing::warn!(
                    message_id = %id,
                    dataset = %message.dataset,
                    tenant = %message.tenant_id,
                    manifest = message.manifest_key.as_deref().unwrap_or(""),
                    "no pipe loads this dataset; acknowledged without loading"
                );
                report.without_pipe.push(id);
                continue;
            }
            let entries = by_dataset.entry(message.dataset).or_default();
            entries.extend(message.files.into_iter().map(|f| (id.clone(), f)));
        }
        for (dataset, entries) in by_dataset {
            self.load_dataset(&dataset, &entries, &mut report).await;
        }
        report
    }

    /// Loads one dataset's files; the messages of the files not accepted fail.
    async fn load_dataset(
        &self,
        dataset: &str,
        entries: &[(String, LoadFile)],
        report: &mut LoadReport,
    ) {
        let files: Vec<LoadFile> = entries.iter().map(|(_, f)| f.clone()).collect();
        let summary = match self.loader.load(dataset, &files).await {
            Ok(summary) => summary,
            Err(LoadFailure { summary, error }) => {
                tracing::error!(%dataset, files = files.len(), accepted = summary.files, %error, "load failed");
                for (id, _) in &entries[summary.files.min(entries.len())..] {
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

    fn message(id: &str, dataset: &str, files: &[&str]) -> (String, LoadMessage) {
        let message = LoadMessage {
            version: 1,
            tenant_id: "acme".into(),
            dataset: dataset.into(),
            manifest_key: None,
            part: 0,
            parts: 1,
            files: files
                .iter()
                .map(|key| LoadFile {
                    key: key.to_string(),
                    bytes: 10,
                })
                .collect(),
        };
        (id.to_string(), message)
    }

    #[tokio::test]
    async fn a_load_that_stops_fails_exactly_the_messages_not_accepted() {
        // Given a loader that accepts two files and then fails, and one without a pipe
        let loader =
            Arc::new(crate::adapters::memory::MemoryLoader::new(&["sales"]).accepting_at_most(2));
        let notifier = Notifier::new(loader.clone());
        // When three messages of sales and one of weather are loaded
        let report = notifier
            .load(vec![
                message("m1", "sales", &["a", "b"]),
                message("m2", "sales", &["c"]),
                message("m3", "weather", &["w"]),
            ])
            .await;
        // Then the first message's files went through, the second failed, the third waits
        assert_eq!(report.failed, ["m2"]);
        assert_eq!(report.without_pipe, ["m3"]);
        assert_eq!(report.files, 2);
        assert_eq!(loader.loaded("sales"), ["a", "b"]);
    }

    #[tokio::test]
    async fn the_audit_reports_failed_and_partial_loads() {
        let loader = Arc::new(crate::adapters::memory::MemoryLoader::new(&["sales"]));
        for (path, status) in [
            ("a", "LOADED"),
            ("b", "LOAD_FAILED"),
            ("c", "PARTIALLY_LOADED"),
        ] {
            loader.record_history("sales", path, status);
        }
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let audit = Notifier::new(loader)
            .audit(at("2026-11-22T09:30:00Z"), at("2026-11-22T09:45:00Z"))
            .await
            .unwrap();
        assert_eq!(audit.loaded, 1);
        let failed: Vec<&str> = audit.failed.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(failed, ["b", "c"]);
    }
}
