//! The snowpipe-notifier's logic: manifests from the load queue in, their files handed to
//! the dataset's pipe, in as few calls as Snowpipe's limits allow.
//!
//! Files of every message in a batch are pooled per dataset and sent in requests of up to
//! 5,000; a request that fails fails exactly the messages whose files it carried. Resending
//! is safe: Snowpipe skips a path it loaded in the last 14 days.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;

use crate::{
    error::{Error, Result},
    lambda::{self, QueueMessage, SqsBatchResponse},
    manifest::Manifest,
    metrics::{MetricRecord, Unit},
    snowflake::snowpipe::{InsertSummary, MAX_FILES_PER_REQUEST, SnowpipeClient, StagedFile},
};

const FUNCTION: &str = "snowpipe-notifier";

/// Loading port: hands silver files of a dataset to the warehouse.
#[async_trait]
pub trait Loader: Send + Sync {
    /// Loads `files` (paths relative to the silver root) into `dataset`'s table.
    async fn load(&self, dataset: &str, files: &[StagedFile]) -> Result<InsertSummary>;
}

/// Which pipe loads which dataset.
#[derive(Debug, Clone, Default)]
pub struct PipeMap {
    explicit: BTreeMap<String, String>,
    /// `DATABASE.SCHEMA` of the pipes not named explicitly (`<DATASET>_PIPE` there).
    default_scope: Option<String>,
}

impl PipeMap {
    /// Parses `dataset=DB.SCHEMA.PIPE,dataset2=...` (from `SNOWCAST_PIPES`).
    pub fn parse(spec: &str, default_scope: Option<String>) -> Result<Self> {
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
        Ok(PipeMap {
            explicit,
            default_scope,
        })
    }

    /// The pipe for `dataset`.
    pub fn pipe(&self, dataset: &str) -> Result<String> {
        if let Some(pipe) = self.explicit.get(dataset) {
            return Ok(pipe.clone());
        }
        match &self.default_scope {
            Some(scope) => Ok(format!("{scope}.{}_PIPE", dataset.to_ascii_uppercase())),
            None => Err(Error::invalid(
                "dataset",
                format!("no pipe is configured for {dataset:?}"),
            )),
        }
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
    async fn load(&self, dataset: &str, files: &[StagedFile]) -> Result<InsertSummary> {
        let pipe = self.pipes.pipe(dataset)?;
        self.client.insert_files(&pipe, files).await
    }
}

/// The files of accepted manifests, as a pipe wants them.
pub fn staged_files(manifest: &Manifest) -> Vec<StagedFile> {
    if !manifest.is_accepted() {
        return Vec::new();
    }
    manifest
        .files
        .iter()
        .map(|f| StagedFile {
            path: f.key.clone(),
            size: Some(f.bytes),
        })
        .collect()
}

/// What one batch of manifests came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Ids (message ids, or manifest paths for the CLI) whose files were not all accepted.
    pub failed: Vec<String>,
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

    /// Handles an SQS batch of manifests; the response names the messages to retry.
    pub async fn handle(&self, event: serde_json::Value) -> Result<SqsBatchResponse> {
        let messages = lambda::sqs_messages(&event)
            .ok_or_else(|| Error::Event("snowpipe-notifier expects an SQS event".into()))?;
        let mut failed = Vec::new();
        let mut manifests = Vec::new();
        for QueueMessage { id, body } in messages {
            match serde_json::from_str::<Manifest>(&body) {
                Ok(manifest) => manifests.push((id, manifest)),
                Err(error) => {
                    tracing::error!(message_id = %id, %error, "not a manifest; it will be retried, then dead-lettered");
                    failed.push(id);
                }
            }
        }
        let report = self.load(manifests).await;
        MetricRecord::new(FUNCTION)
            .metric("FilesLoaded", report.files as f64, Unit::Count)
            .metric("InsertCalls", report.calls as f64, Unit::Count)
            .metric("Retries", report.retries as f64, Unit::Count)
            .metric(
                "MessagesFailed",
                (report.failed.len() + failed.len()) as f64,
                Unit::Count,
            )
            .emit();
        failed.extend(report.failed);
        Ok(lambda::batch_response(failed))
    }

    /// Loads the files of `manifests` (each with an id to report failures by), pooled per
    /// dataset into requests of at most [`MAX_FILES_PER_REQUEST`] files.
    pub async fn load(&self, manifests: Vec<(String, Manifest)>) -> LoadReport {
        let mut by_dataset: BTreeMap<String, Vec<(String, StagedFile)>> = BTreeMap::new();
        for (id, manifest) in &manifests {
            for file in staged_files(manifest) {
                by_dataset
                    .entry(manifest.dataset.clone())
                    .or_default()
                    .push((id.clone(), file));
            }
        }
        let mut report = LoadReport::default();
        for (dataset, entries) in by_dataset {
            for chunk in entries.chunks(MAX_FILES_PER_REQUEST) {
                let files: Vec<StagedFile> = chunk.iter().map(|(_, f)| f.clone()).collect();
                match self.loader.load(&dataset, &files).await {
                    Ok(summary) => {
                        report.files += summary.files;
                        report.calls += summary.calls;
                        report.retries += summary.retries;
                    }
                    Err(error) => {
                        tracing::error!(%dataset, files = files.len(), %error, "load request failed");
                        report.calls += 1;
                        for (id, _) in chunk {
                            if !report.failed.contains(id) {
                                report.failed.push(id.clone());
                            }
                        }
                    }
                }
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
            "sales=RAW.PUBLIC.SALES_P, inventory=RAW.X.INV",
            Some("DB.RAW".into()),
        )
        .unwrap();
        assert_eq!(pipes.pipe("sales").unwrap(), "RAW.PUBLIC.SALES_P");
        assert_eq!(pipes.pipe("products").unwrap(), "DB.RAW.PRODUCTS_PIPE");
        assert!(PipeMap::parse("sales", None).is_err());
        assert!(PipeMap::parse("sales=PIPE", None).is_err());
        assert!(PipeMap::parse("", None).unwrap().pipe("sales").is_err());
    }
}
