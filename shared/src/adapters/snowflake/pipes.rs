//! Which pipe loads which dataset, and Snowpipe as the loader port: files handed to
//! `insertFiles`, load results read with `loadHistoryScan`.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::snowpipe::{MAX_FILES_PER_HISTORY, SnowpipeClient, StagedFile};
use crate::{
    domain::{contract, manifest::LoadFile},
    error::{Error, Result},
    ports::loader::{FileLoad, LoadFailure, LoadSummary, Loader},
};

/// How far a history window is split when one answer may have left files out.
const MIN_HISTORY_WINDOW: Duration = Duration::seconds(1);

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
            None => contract::builtin_datasets().map(str::to_string).collect(),
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
    /// Loads through `client` into the pipes of `pipes`.
    pub fn new(client: SnowpipeClient, pipes: PipeMap) -> Self {
        SnowpipeLoader { client, pipes }
    }
}

#[async_trait]
impl Loader for SnowpipeLoader {
    fn accepts(&self, dataset: &str) -> bool {
        self.pipes.pipe(dataset).is_some()
    }

    async fn load(&self, dataset: &str, files: &[LoadFile]) -> Result<LoadSummary, LoadFailure> {
        let Some(pipe) = self.pipes.pipe(dataset) else {
            return Err(LoadFailure {
                summary: LoadSummary::default(),
                error: Error::invalid("dataset", format!("no pipe loads {dataset:?}")),
            });
        };
        let staged: Vec<StagedFile> = files
            .iter()
            .map(|f| StagedFile {
                path: f.key.clone(),
                size: Some(f.bytes),
            })
            .collect();
        self.client.insert_files(&pipe, &staged).await
    }

    async fn history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<FileLoad>> {
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
                found.extend(report.files.into_iter().map(|f| f.into_file_load(&dataset)));
            }
        }
        Ok(found)
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
