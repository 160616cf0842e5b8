//! The snowpipe-notifier's logic: load messages from the queue in, their files handed to
//! the dataset's pipe, in as few calls as Snowpipe's limits allow.
//!
//! Files of every message in a batch are pooled per dataset and sent in requests of up to
//! 5,000; a request that fails fails exactly the messages whose files it carried. Resending
//! is safe: Snowpipe skips a path it loaded in the last 14 days. A dataset without a pipe
//! (one converted with sniffed types, say) is not an error to retry: its messages are
//! acknowledged, logged with their manifest and counted (`MessagesWithoutPipe`), and can be
//! loaded later with `snowcast load` once a pipe exists.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use async_trait::async_trait;

use crate::{
    error::{Error, Result},
    lambda::{self, QueueMessage, SqsBatchResponse},
    manifest::LoadMessage,
    metrics::{MetricRecord, Unit},
    snowflake::snowpipe::{
        InsertFailure, InsertSummary, MAX_FILES_PER_REQUEST, SnowpipeClient, StagedFile,
    },
};

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
}

impl Notifier {
    pub fn new(loader: Arc<dyn Loader>) -> Self {
        Notifier { loader }
    }

    /// Handles an SQS batch of load messages; the response names the messages to retry.
    pub async fn handle(&self, event: serde_json::Value) -> Result<SqsBatchResponse> {
        let messages = lambda::sqs_messages(&event)
            .ok_or_else(|| Error::Event("snowpipe-notifier expects an SQS event".into()))?;
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
        Ok(lambda::batch_response(failed))
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

#[cfg(test)]
mod tests {
    use super::*;

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
