//! The pipes' stand-in: loads silver Parquet into the RAW tables as Snowpipe's
//! `COPY ... MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE` does, with its load history; and the
//! refresh task's stand-in, which rebuilds the draft of the tenants with new sales. The
//! files are read with the `parquet` crate and handed to DuckDB as Arrow batches (its
//! `arrow` table function), which casts them to the tables' types by column name.
//!
//! Each file is one transaction: its rows, its load-history entry and (for sales) its
//! tenants' refresh marks commit together. A process killed mid-load leaves the file not
//! loaded at all, and the retried message loads it once; a path already in the history is
//! skipped, as a pipe skips a path it loaded in the last 14 days.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow_array::{Array, RecordBatch, RecordBatchReader, StringArray, StructArray};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use duckdb::{
    Connection, Transaction,
    arrow::{
        compute::cast,
        datatypes::{DataType, Schema},
        error::ArrowError,
    },
    vtab::ArrowBatchRegistration,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use snowcast::{
    adapters::snowflake::script,
    domain::{forecast::TenantId, manifest::LoadFile},
    error::{Error, Result},
    ports::loader::{FileLoad, LoadFailure, LoadSummary, Loader},
};

use super::{Shared, blocking, failed};

/// The dataset the model reads (`RAW.SALES`).
const MODEL_INPUT: &str = "sales";

/// The refresh procedure of the model's script, whose statements the local refresh runs.
const MODEL_SCRIPT: &str = include_str!("../../../infra/snowflake/10_forecast_model.sql");

/// Loads silver files from a directory (the silver bucket of the local S3 endpoint).
pub struct DuckDbLoader {
    connection: Shared,
    silver: PathBuf,
    datasets: Vec<String>,
}

impl DuckDbLoader {
    /// A loader reading silver keys under `silver`, into the RAW tables found in the
    /// warehouse.
    pub async fn new(connection: Shared, silver: PathBuf) -> Result<Self> {
        let datasets = blocking(&connection, "listing the RAW tables", |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT lower(table_name) FROM duckdb_tables() \
                     WHERE lower(schema_name) = 'raw' AND lower(table_name) <> 'load_history'",
                )
                .map_err(failed("listing the RAW tables"))?;
            let names = statement
                .query_map([], |row| row.get(0))
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<String>>>())
                .map_err(failed("listing the RAW tables"))?;
            Ok(names)
        })
        .await?;
        Ok(DuckDbLoader {
            connection,
            silver,
            datasets,
        })
    }
}

#[async_trait]
impl Loader for DuckDbLoader {
    fn accepts(&self, dataset: &str) -> bool {
        self.datasets.iter().any(|known| known == dataset)
    }

    async fn load(&self, dataset: &str, files: &[LoadFile]) -> Result<LoadSummary, LoadFailure> {
        if !self.accepts(dataset) {
            return Err(LoadFailure {
                summary: LoadSummary::default(),
                error: Error::invalid("dataset", format!("no RAW table for {dataset}")),
            });
        }
        let (dataset, files, silver) = (dataset.to_string(), files.to_vec(), self.silver.clone());
        let outcome = blocking(
            &self.connection,
            "loading silver files",
            move |connection| {
                let mut summary = LoadSummary::default();
                for file in &files {
                    summary.calls += 1;
                    if let Err(error) = load_file(connection, &dataset, &silver, &file.key) {
                        return Ok(Err(LoadFailure { summary, error }));
                    }
                    summary.files += 1;
                }
                Ok(Ok(summary))
            },
        )
        .await;
        match outcome {
            Ok(outcome) => outcome,
            Err(error) => Err(LoadFailure {
                summary: LoadSummary::default(),
                error,
            }),
        }
    }

    async fn history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<FileLoad>> {
        blocking(&self.connection, "reading the load history", move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT lower(DATASET), PATH, STATUS, FIRST_ERROR, ROWS_LOADED, \
                     strftime(LOADED_AT AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') \
                     FROM SNOWCAST.RAW.LOAD_HISTORY \
                     WHERE LOADED_AT >= CAST(? AS TIMESTAMPTZ) AND LOADED_AT < CAST(? AS TIMESTAMPTZ) \
                     ORDER BY LOADED_AT, PATH",
                )
                .map_err(failed("reading the load history"))?;
            let loads = statement
                .query_map([from.to_rfc3339(), to.to_rfc3339()], |row| {
                    let rows: i64 = row.get(4)?;
                    Ok(FileLoad {
                        dataset: row.get(0)?,
                        path: row.get(1)?,
                        status: row.get(2)?,
                        first_error: row.get(3)?,
                        rows_parsed: Some(rows as u64),
                        rows_inserted: Some(rows as u64),
                        last_insert_time: Some(row.get(5)?),
                    })
                })
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(failed("reading the load history"))?;
            Ok(loads)
        })
        .await
    }
}

/// Loads one file in one transaction, unless its path is in the history. A file DuckDB
/// cannot load (a value that does not fit its column, say) is recorded `LOAD_FAILED` with
/// the error, as a pipe records it, and not retried; a fault of the warehouse itself (the
/// file missing or unreadable, the disk full) is returned, so the message is retried.
fn load_file(connection: &mut Connection, dataset: &str, silver: &Path, key: &str) -> Result<()> {
    let context = || format!("loading {key}");
    let transaction = connection.transaction().map_err(failed(context()))?;
    let seen: bool = transaction
        .query_row(
            "SELECT count(*) > 0 FROM SNOWCAST.RAW.LOAD_HISTORY WHERE PATH = ?",
            [key],
            |row| row.get(0),
        )
        .map_err(failed(context()))?;
    if seen {
        return Ok(());
    }
    let path = silver.join(key);
    let file = std::fs::File::open(&path).map_err(|e| Error::io(context(), e))?;
    let batches = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|e| Error::invalid("silver file", format!("{key}: {e}")))?;
    let columns =
        shared_columns(&transaction, dataset, &batches.schema()).map_err(failed(context()))?;
    let list = columns.join(", ");
    let insert = format!("INSERT INTO SNOWCAST.RAW.{dataset} ({list}) SELECT {list} FROM arrow(?)");
    let mut tenants = BTreeSet::new();
    let mut rows = 0;
    let mut first_error = None;
    for batch in batches {
        let batch = batch.map_err(|e| Error::invalid("silver file", format!("{key}: {e}")))?;
        if let Some(tenant) = batch.column_by_name("tenant_id") {
            tenants.extend(distinct_text(tenant.as_ref()));
        }
        let batch =
            plain(batch).map_err(|e| Error::invalid("silver file", format!("{key}: {e}")))?;
        let registered =
            ArrowBatchRegistration::from_array_data(StructArray::from(batch).to_data())
                .map_err(|e| Error::invalid("silver file", format!("{key}: {e}")))?;
        match transaction.execute(&insert, [&registered]) {
            Ok(inserted) => rows += inserted as i64,
            Err(error) => {
                first_error = Some(error.to_string());
                break;
            }
        }
    }
    // A failed statement aborts DuckDB's transaction: the failure is recorded in a new one,
    // without the file's rows.
    let transaction = match &first_error {
        Some(error) => {
            tracing::warn!(key, %error, "silver file failed to load");
            drop(transaction);
            rows = 0;
            connection.transaction().map_err(failed(context()))?
        }
        None => {
            if dataset == MODEL_INPUT {
                for tenant in &tenants {
                    transaction
                        .execute(
                            "INSERT INTO SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS (TENANT_ID) \
                             VALUES (?)",
                            [tenant],
                        )
                        .map_err(failed(context()))?;
                }
            }
            transaction
        }
    };
    let status = if first_error.is_some() {
        "LOAD_FAILED"
    } else {
        "LOADED"
    };
    transaction
        .execute(
            "INSERT INTO SNOWCAST.RAW.LOAD_HISTORY \
             (PATH, DATASET, STATUS, FIRST_ERROR, ROWS_LOADED, LOADED_AT) \
             VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP)",
            duckdb::params![key, dataset, status, first_error, rows],
        )
        .map_err(failed(context()))?;
    transaction.commit().map_err(failed(context()))
}

/// The batch with dictionary-encoded columns (the tenant, low-cardinality text) decoded:
/// DuckDB's Arrow scan takes plain arrays only.
fn plain(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|field| matches!(field.data_type(), DataType::Dictionary(..)))
    {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Dictionary(_, values) => {
                columns.push(cast(column, values)?);
                fields.push(
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(values.as_ref().clone()),
                );
            }
            _ => {
                columns.push(column.clone());
                fields.push(field.as_ref().clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// The distinct values of a text column (the tenant of a silver batch: one value).
fn distinct_text(column: &dyn Array) -> BTreeSet<String> {
    let Ok(text) = cast(column, &DataType::Utf8) else {
        return BTreeSet::new();
    };
    let Some(text) = text.as_any().downcast_ref::<StringArray>() else {
        return BTreeSet::new();
    };
    text.iter().flatten().map(str::to_string).collect()
}

/// The quoted names of the table's columns that the file has, matched case-insensitively
/// (a column of the file the table lacks is ignored, one the table has and the file lacks
/// stays NULL), as `MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE` does.
fn shared_columns(
    transaction: &Transaction<'_>,
    dataset: &str,
    file: &Schema,
) -> duckdb::Result<Vec<String>> {
    let in_file: Vec<String> = file
        .fields()
        .iter()
        .map(|field| field.name().to_lowercase())
        .collect();
    let mut table = transaction.prepare(
        "SELECT column_name FROM duckdb_columns() \
         WHERE lower(schema_name) = 'raw' AND lower(table_name) = ? ORDER BY column_index",
    )?;
    let in_table = table
        .query_map([dataset], |row| row.get::<_, String>(0))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    Ok(in_table
        .into_iter()
        .filter(|column| in_file.contains(&column.to_lowercase()))
        .map(|column| format!("\"{}\"", column.replace('"', "\"\"")))
        .collect())
}

/// Rebuilds the draft of every tenant marked since the last refresh, in one transaction,
/// with the statements of the refresh procedure (`REFRESH_FORECAST_DRAFT`). Returns the
/// tenants refreshed, whose cached pages are then stale.
pub async fn refresh_drafts(connection: &Shared) -> Result<Vec<TenantId>> {
    blocking(connection, "refreshing the draft", |connection| {
        let context = "refreshing the draft";
        let transaction = connection.transaction().map_err(failed(context))?;
        let tenants: Vec<String> = transaction
            .prepare("SELECT DISTINCT TENANT_ID FROM SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS ORDER BY 1")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get(0))?
                    .collect::<duckdb::Result<Vec<_>>>()
            })
            .map_err(failed(context))?;
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        for statement in refresh_statements()? {
            transaction
                .execute_batch(&statement)
                .map_err(failed(format!("{context}: {statement}")))?;
        }
        transaction.commit().map_err(failed(context))?;
        tenants.iter().map(|tenant| TenantId::new(tenant)).collect()
    })
    .await
}

/// The refresh procedure's statements that rebuild the draft of the marked tenants and
/// clear the marks (the stream's part, marking, is the loader's here).
fn refresh_statements() -> Result<Vec<String>> {
    let body = MODEL_SCRIPT
        .split("$$")
        .nth(1)
        .ok_or_else(|| Error::invalid("model script", "no procedure body"))?;
    let picked: Vec<String> = script::statements(body)
        .into_iter()
        .filter(|statement| {
            statement.starts_with("DELETE FROM SNOWCAST.ANALYTICS.")
                || statement.starts_with("INSERT INTO SNOWCAST.ANALYTICS.FORECAST_DRAFT")
        })
        .collect();
    match picked.len() {
        3 => Ok(picked),
        n => Err(Error::invalid(
            "model script",
            format!("expected the draft's DELETE and INSERT and the marks' DELETE, found {n}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_runs_the_procedures_statements_in_order() {
        let statements = refresh_statements().unwrap();
        assert!(statements[0].starts_with("DELETE FROM SNOWCAST.ANALYTICS.FORECAST_DRAFT"));
        assert!(statements[1].starts_with("INSERT INTO SNOWCAST.ANALYTICS.FORECAST_DRAFT"));
        assert_eq!(
            statements[2],
            "DELETE FROM SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS"
        );
    }
}
