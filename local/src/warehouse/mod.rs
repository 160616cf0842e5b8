//! The local stack's warehouse: DuckDB in one file under the data directory, standing in
//! for Snowflake with the same tables and views.
//!
//! The schema is `infra/snowflake` itself, translated to DuckDB's dialect at start-up
//! ([`duckdb_dialect`]): the RAW tables the pipes load, the gold `FORECAST_DRAFT`, the app
//! layer (edits, history, preferences, `V_FORECAST`) and the model view `FORECAST_MODEL`.
//! Snowflake-only objects get stand-ins in code: the pipes and their load history
//! ([`loader`]), the stream and the refresh task ([`loader::refresh_drafts`]), the
//! procedures ([`store`]). The database file is named `snowcast.duckdb`, so its catalog is
//! `SNOWCAST` and the fully qualified names of the DDL resolve unchanged.
//!
//! DuckDB is synchronous: every call runs on tokio's blocking pool, holding one of two
//! connections: one for loads, model refreshes and the quota monitor's scans (long), one
//! for the API (short), so a large load never queues an edit behind it. Edits reach the
//! API's connection through the store's journal ([`journal`]), which the store writes
//! under its own lock: that lock is what makes its version checks atomic.

pub mod journal;
pub mod loader;
pub mod store;
pub mod usage;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use duckdb::Connection;
use snowcast::{
    adapters::snowflake::script,
    error::{Error, Result},
};

/// The Snowflake scripts whose schemas, tables and views the warehouse has, in order.
const INFRA: [&str; 4] = [
    include_str!("../../../infra/snowflake/01_database.sql"),
    include_str!("../../../infra/snowflake/03_tables.sql"),
    include_str!("../../../infra/snowflake/06_app_tables.sql"),
    include_str!("../../../infra/snowflake/10_forecast_model.sql"),
];

/// What Snowpipe's load history records: the loader skips a path found here, loaded or
/// failed, as a pipe does.
const LOAD_HISTORY: &str = "CREATE TABLE IF NOT EXISTS SNOWCAST.RAW.LOAD_HISTORY (
  PATH VARCHAR PRIMARY KEY,
  DATASET VARCHAR NOT NULL,
  STATUS VARCHAR NOT NULL,
  FIRST_ERROR VARCHAR,
  ROWS_LOADED BIGINT NOT NULL,
  LOADED_AT TIMESTAMPTZ NOT NULL
)";

/// One connection, shared by the calls that take turns on it.
pub type Shared = Arc<Mutex<Connection>>;

/// The warehouse: its two connections to one database file, in its directory.
#[derive(Clone)]
pub struct Warehouse {
    loads: Shared,
    api: Shared,
    dir: PathBuf,
}

impl Warehouse {
    /// Opens (creating if needed) `dir/snowcast.duckdb` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("snowcast.duckdb");
        let loads = Connection::open(&path).map_err(failed("opening the warehouse"))?;
        for statement in schema() {
            loads
                .execute_batch(&statement)
                .map_err(failed(format!("creating the schema: {statement}")))?;
        }
        // The loader hands silver to DuckDB as Arrow batches.
        loads
            .register_table_function::<duckdb::vtab::arrow::ArrowVTab>("arrow")
            .map_err(failed("registering the arrow table function"))?;
        let api = loads
            .try_clone()
            .map_err(failed("opening the API's connection"))?;
        Ok(Warehouse {
            loads: Arc::new(Mutex::new(loads)),
            api: Arc::new(Mutex::new(api)),
            dir: dir.to_path_buf(),
        })
    }

    /// The connection loads, model refreshes and the quota monitor take turns on.
    pub fn loads(&self) -> Shared {
        self.loads.clone()
    }

    /// The connection the API's reads and writes take turns on.
    pub fn api(&self) -> Shared {
        self.api.clone()
    }

    /// The forecast store's edit journal, beside the database file.
    pub fn edit_journal(&self) -> PathBuf {
        self.dir.join("edits.journal")
    }
}

/// Runs `work` on `connection` on the blocking pool; DuckDB's errors become
/// [`Error::Warehouse`] naming `context`.
pub async fn blocking<T, F>(connection: &Shared, context: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let connection = connection.clone();
    tokio::task::spawn_blocking(move || {
        // A panic mid-call leaves DuckDB's own state consistent (an open transaction is
        // rolled back when its guard drops), so a poisoned lock is still usable.
        let mut connection = connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut connection)
    })
    .await
    .map_err(|e| Error::Warehouse {
        context: context.into(),
        message: e.to_string(),
    })?
}

/// Maps a DuckDB error to [`Error::Warehouse`].
pub fn failed(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> Error {
    let context = context.into();
    move |error| Error::Warehouse {
        context,
        message: error.to_string(),
    }
}

/// The schema's statements: the schemas, tables and views of [`INFRA`] in DuckDB's
/// dialect, then the load history.
fn schema() -> Vec<String> {
    let mut statements: Vec<String> = INFRA
        .iter()
        .flat_map(|script| script::statements(script))
        .filter_map(|statement| duckdb_dialect(&statement))
        .collect();
    statements.push(LOAD_HISTORY.to_string());
    statements
}

/// The (schema, table) of every hybrid table in [`INFRA`]: what the quota monitor measures.
pub fn hybrid_tables() -> Vec<(String, String)> {
    INFRA
        .iter()
        .flat_map(|script| script::statements(script))
        .filter_map(|statement| {
            let body = strip_comments(&statement);
            let rest = body.strip_prefix("CREATE HYBRID TABLE IF NOT EXISTS SNOWCAST.")?;
            let name = rest.split_whitespace().next()?;
            let (schema, table) = name.split_once('.')?;
            Some((schema.to_string(), table.to_string()))
        })
        .collect()
}

/// A Snowflake DDL statement as DuckDB runs it, or `None` for objects DuckDB has no
/// equivalent of (the database itself, stages, pipes, streams, tasks, procedures, roles).
///
/// Hybrid tables become plain ones (DuckDB enforces primary keys on every table),
/// `NUMBER` is `DECIMAL`, `TIMESTAMP_TZ` is `TIMESTAMPTZ`; clustering keys and schema
/// comments are dropped; `AUTOINCREMENT` is dropped because the local store numbers the
/// history itself, in journal order (`store::DuckDbForecastStore`).
pub fn duckdb_dialect(statement: &str) -> Option<String> {
    let body = strip_comments(statement);
    let kept = [
        "CREATE SCHEMA ",
        "CREATE TABLE ",
        "CREATE HYBRID TABLE ",
        "CREATE OR REPLACE VIEW ",
    ];
    if !kept.iter().any(|prefix| body.starts_with(prefix)) {
        return None;
    }
    let mut body = body
        .replacen("CREATE HYBRID TABLE ", "CREATE TABLE ", 1)
        // The type, not ROW_NUMBER().
        .replace(" NUMBER(", " DECIMAL(")
        .replace("TIMESTAMP_TZ", "TIMESTAMPTZ")
        .replace(" AUTOINCREMENT START 1 INCREMENT 1 ORDER", "");
    for clause in ["\nCLUSTER BY (", "\n  COMMENT = '"] {
        if let Some(at) = body.find(clause) {
            body.truncate(at);
        }
    }
    Some(body)
}

/// The statement without its leading `--` comment lines.
fn strip_comments(statement: &str) -> String {
    statement
        .lines()
        .skip_while(|line| line.trim_start().starts_with("--") || line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_tables_become_plain_and_snowflake_only_objects_are_left_out() {
        let hybrid = "-- edits\nCREATE HYBRID TABLE IF NOT EXISTS SNOWCAST.APP.T (\n  Q NUMBER(15, 4),\n  AT TIMESTAMP_TZ\n)\nCLUSTER BY (Q)";
        assert_eq!(
            duckdb_dialect(hybrid).unwrap(),
            "CREATE TABLE IF NOT EXISTS SNOWCAST.APP.T (\n  Q DECIMAL(15, 4),\n  AT TIMESTAMPTZ\n)"
        );
        assert!(
            duckdb_dialect("CREATE OR REPLACE VIEW V AS SELECT ROW_NUMBER() OVER () AS N")
                .unwrap()
                .contains("ROW_NUMBER()")
        );
        assert_eq!(
            hybrid_tables(),
            [
                ("APP".to_string(), "MANUAL_EDITS_HT".to_string()),
                ("APP".to_string(), "USER_PREFS_HT".to_string())
            ]
        );
        assert_eq!(
            duckdb_dialect("CREATE SCHEMA IF NOT EXISTS SNOWCAST.RAW\n  COMMENT = 'x'").unwrap(),
            "CREATE SCHEMA IF NOT EXISTS SNOWCAST.RAW"
        );
        for other in [
            "CREATE DATABASE IF NOT EXISTS SNOWCAST",
            "CREATE PIPE IF NOT EXISTS P AS COPY INTO T FROM @S",
            "CREATE STREAM IF NOT EXISTS S ON TABLE T",
            "ALTER TASK T RESUME",
        ] {
            assert_eq!(duckdb_dialect(other), None, "{other}");
        }
    }

    #[test]
    fn the_schema_builds_on_duckdb_with_every_table_the_stack_uses() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path()).unwrap();
        // Opening again is a no-op: every statement is idempotent.
        drop(warehouse);
        let warehouse = Warehouse::open(dir.path()).unwrap();
        let connection = warehouse.loads.lock().unwrap();
        let mut tables: Vec<String> = connection
            .prepare(
                "SELECT lower(schema_name || '.' || table_name) FROM duckdb_tables() \
                 UNION ALL SELECT lower(schema_name || '.' || view_name) FROM duckdb_views() \
                 WHERE NOT internal",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<duckdb::Result<_>>()
            .unwrap();
        tables.sort();
        assert_eq!(
            tables,
            [
                "analytics.forecast_draft",
                "analytics.forecast_model",
                "analytics.forecast_refresh_tenants",
                "analytics.sales_daily",
                "app.edit_history",
                "app.manual_edits_ht",
                "app.user_prefs_ht",
                "app.v_forecast",
                "raw.inventory",
                "raw.load_history",
                "raw.products",
                "raw.sales",
            ]
        );
    }
}
