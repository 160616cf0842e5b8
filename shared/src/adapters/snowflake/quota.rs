//! The quota monitor's usage source on Snowflake: `<DB>.INFORMATION_SCHEMA.HYBRID_TABLES`
//! for storage and `SNOWFLAKE.ACCOUNT_USAGE.AGGREGATE_QUERY_HISTORY` for requests, through
//! the SQL API v2 with every value bound (the view's name through `IDENTIFIER(?)`).

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    row::{bad_row, count, text, timestamp},
    sql::{Binding, SqlClient},
    statements,
};
use crate::{
    domain::quota::{RequestInterval, TableUsage},
    error::{Error, Result},
    ports::quota::UsageSource,
};

/// Hybrid Table usage read from one Snowflake account.
pub struct SnowflakeUsage {
    sql: SqlClient,
}

impl SnowflakeUsage {
    /// Over a SQL API client whose role may read both views (`infra/snowflake`'s monitor
    /// role).
    pub fn new(sql: SqlClient) -> Self {
        SnowflakeUsage { sql }
    }
}

/// A database name as an unquoted Snowflake identifier (upper-cased), or an error: it is
/// bound into `IDENTIFIER(?)`, so it must be a name, not an expression.
pub fn database_identifier(database: &str) -> Result<String> {
    let mut chars = database.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && database.len() <= 255;
    if valid {
        Ok(database.to_ascii_uppercase())
    } else {
        Err(Error::invalid(
            "database",
            format!("{database:?} is not an unquoted Snowflake identifier"),
        ))
    }
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[async_trait]
impl UsageSource for SnowflakeUsage {
    async fn storage(&self, database: &str) -> Result<Vec<TableUsage>> {
        let view = format!(
            "{}.INFORMATION_SCHEMA.HYBRID_TABLES",
            database_identifier(database)?
        );
        let result = self
            .sql
            .execute(statements::QUOTA_STORAGE, &[Binding::text(view)])
            .await?;
        result.require_columns(&["SCHEMA", "NAME", "ROW_COUNT", "BYTES"])?;
        result
            .rows
            .iter()
            .map(|row| {
                Ok(TableUsage {
                    schema: text(row, "SCHEMA")?.to_string(),
                    name: text(row, "NAME")?.to_string(),
                    // BYTES is approximate and, for a table being created, may be NULL.
                    bytes: count(row, "BYTES")?.unwrap_or(0),
                    row_count: count(row, "ROW_COUNT")?,
                })
            })
            .collect()
    }

    async fn requests(
        &self,
        database: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RequestInterval>> {
        let database = database_identifier(database)?;
        let bindings = [
            Binding::text(&database),
            Binding::text(&database),
            Binding::text(&database),
            Binding::text(iso(from)),
            Binding::text(iso(to)),
        ];
        let result = self
            .sql
            .execute(statements::QUOTA_REQUESTS, &bindings)
            .await?;
        result.require_columns(&["INTERVAL_START_TIME", "CALLS", "WRITES", "THROTTLED"])?;
        result
            .rows
            .iter()
            .map(|row| {
                Ok(RequestInterval {
                    start: timestamp(row, "INTERVAL_START_TIME")?
                        .ok_or_else(|| bad_row("column INTERVAL_START_TIME is NULL".to_string()))?,
                    calls: count(row, "CALLS")?.unwrap_or(0),
                    writes: count(row, "WRITES")?.unwrap_or(0),
                    throttled: count(row, "THROTTLED")?.unwrap_or(0),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_identifiers_or_refused() {
        assert_eq!(database_identifier("snowcast").unwrap(), "SNOWCAST");
        assert_eq!(
            database_identifier("SNOWCAST_EU_2").unwrap(),
            "SNOWCAST_EU_2"
        );
        for bad in ["", "1DB", "DB.X", "DB; DROP", "\"DB\"", "DB)--"] {
            assert!(database_identifier(bad).is_err(), "{bad}");
        }
    }
}
