//! The forecast store on Snowflake: `V_FORECAST` and the app tables through the SQL API v2,
//! one statement (one round trip) per request, every value bound. Writes call the
//! procedures of `infra/snowflake/07_app_procedures.sql`, which keep an edit and its
//! history entry in one transaction.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::{
    row::{bad_row, optional_text, text, timestamp},
    session::Session,
    sql::{Binding, QueryResult, SqlClient},
    statements,
};
use crate::{
    domain::forecast::{
        Cell, DailySales, DateRange, Edit, EditInput, EditsQuery, ForecastQuery, ForecastRow,
        HistoryEntry, HistoryQuery, Note, Op, Quantity, SalesQuery, SkuId, TenantId, Version,
    },
    error::{Error, Result},
    ports::{
        forecast::{EditStore, ForecastRead, Page, PrefsStore, PutOutcome, RevertOutcome},
        secrets::SecretSource,
    },
};

/// Builds the HTTP client on a blocking thread: loading the TLS roots reads and parses
/// certificate files, which can overlap the secret's round trip at init.
fn start_http_client() -> tokio::task::JoinHandle<Result<reqwest::Client>> {
    tokio::task::spawn_blocking(super::http_client)
}

/// SQL state class of integrity constraint violations (a primary key taken).
const INTEGRITY_VIOLATION: &str = "23";

/// The forecast store on one Snowflake account.
pub struct SnowflakeForecastStore {
    sql: SqlClient,
}

impl SnowflakeForecastStore {
    /// Over a SQL API client whose query tag names the function (`snowcast:edit-api`).
    pub fn new(sql: SqlClient) -> Self {
        SnowflakeForecastStore { sql }
    }

    /// Opens the session (the secret is read and its key parsed now, so a bad secret fails
    /// the caller's init) and a SQL API client tagged `query_tag` that gives up on a
    /// statement after `timeout`.
    pub async fn open(
        secret: Arc<dyn SecretSource>,
        base_url: Option<String>,
        query_tag: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let client = start_http_client();
        let session = Session::open(secret).await?;
        Self::assemble(client, session, base_url, query_tag, timeout).await
    }

    /// [`SnowflakeForecastStore::open`] on a Secrets Manager secret, as the API functions
    /// start: a bad secret fails the cold start with one clear log line.
    #[cfg(feature = "secrets-manager")]
    pub async fn open_from_secrets_manager(
        secret_id: &str,
        base_url: Option<String>,
        query_tag: &str,
        timeout: Duration,
    ) -> Result<Self> {
        use crate::adapters::aws::{self, secrets::SecretsManagerSecret};
        // First, so its TLS roots load while the SDK starts and the secret is fetched.
        let client = start_http_client();
        let opened = async {
            let sdk = aws::load_config(None).await;
            let secret = SecretsManagerSecret::new(aws::secrets_client(&sdk), secret_id);
            let session = Session::open(Arc::new(secret)).await?;
            Self::assemble(client, session, base_url, query_tag, timeout).await
        };
        opened.await.inspect_err(|error| {
            tracing::error!(%error, "cannot open the Snowflake session; check the secret");
        })
    }

    async fn assemble(
        client: tokio::task::JoinHandle<Result<reqwest::Client>>,
        session: Session,
        base_url: Option<String>,
        query_tag: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let client = client
            .await
            .map_err(|e| Error::invalid("HTTP client", e.to_string()))??;
        let sql =
            SqlClient::new(client, Arc::new(session), base_url, query_tag).with_deadline(timeout);
        Ok(SnowflakeForecastStore::new(sql))
    }

    /// Calls `APPLY_EDITS`; a first edit of a cell that raced another one's insert fails on
    /// the primary key and is retried once (it then takes the update path).
    async fn apply(
        &self,
        tenant: &TenantId,
        user: &str,
        edits: &[(EditInput, Option<Version>)],
    ) -> Result<Vec<Outcome>> {
        let payload: Vec<Value> = edits
            .iter()
            .map(|(edit, expected)| {
                json!({
                    "sku_id": edit.cell.sku_id.as_str(),
                    "date": edit.cell.date.to_string(),
                    "quantity": edit.quantity.to_string(),
                    "note": edit.note.as_ref().map(Note::as_str),
                    "expected": expected,
                })
            })
            .collect();
        let payload = Value::Array(payload).to_string();
        let mut attempt = 0;
        loop {
            let bindings = [
                Binding::text(tenant.as_str()),
                Binding::text(user),
                Binding::text(uuid::Uuid::new_v4().to_string()),
                Binding::text(payload.clone()),
            ];
            match self.sql.execute(statements::APPLY_EDITS, &bindings).await {
                Ok(result) => return outcomes(result, edits.len()),
                Err(error) if attempt == 0 && is_unique_violation(&error) => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }
}

fn is_unique_violation(error: &Error) -> bool {
    matches!(error, Error::Snowflake { sql_state: Some(state), .. } if state.starts_with(INTEGRITY_VIOLATION))
}

/// One input cell after `APPLY_EDITS`.
struct Outcome {
    edit: Option<Edit>,
    changed: bool,
}

fn outcomes(result: QueryResult, expected_rows: usize) -> Result<Vec<Outcome>> {
    if result.rows.len() != expected_rows {
        return Err(bad_row(format!(
            "APPLY_EDITS returned {} rows for {expected_rows} edits",
            result.rows.len()
        )));
    }
    result
        .rows
        .iter()
        .map(|row| {
            let edit = match row.get("VERSION") {
                Some(Value::Null) | None => None,
                Some(_) => Some(edit_of(row)?),
            };
            Ok(Outcome {
                edit,
                changed: row.get("CHANGED").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

fn number(row: &Map<String, Value>, column: &str) -> Result<i64> {
    match row.get(column) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad_row(format!("column {column} is missing or not an integer")))
}

fn quantity(row: &Map<String, Value>, column: &str) -> Result<Option<Quantity>> {
    match row.get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Quantity::parse(s).map(Some),
        Some(Value::Number(n)) => Quantity::parse(&n.to_string()).map(Some),
        Some(other) => Err(bad_row(format!(
            "column {column}: {other} is not a quantity"
        ))),
    }
}

fn date(row: &Map<String, Value>, column: &str) -> Result<NaiveDate> {
    text(row, column)?
        .parse()
        .map_err(|_| bad_row(format!("column {column} is not a date")))
}

fn cell_of(row: &Map<String, Value>) -> Result<Cell> {
    Ok(Cell {
        sku_id: SkuId::new(text(row, "SKU_ID")?)?,
        date: date(row, "DATE")?,
    })
}

fn note_of(row: &Map<String, Value>) -> Result<Option<Note>> {
    optional_text(row, "NOTE").map(Note::new).transpose()
}

fn edit_of(row: &Map<String, Value>) -> Result<Edit> {
    Ok(Edit {
        cell: cell_of(row)?,
        quantity: quantity(row, "QUANTITY")?
            .ok_or_else(|| bad_row("an edit without a quantity".into()))?,
        note: note_of(row)?,
        version: number(row, "VERSION")?,
        edited_by: text(row, "EDITED_BY")?.to_string(),
        edited_at: timestamp(row, "EDITED_AT")?
            .ok_or_else(|| bad_row("an edit without a time".into()))?,
    })
}

fn forecast_row_of(row: &Map<String, Value>) -> Result<ForecastRow> {
    Ok(ForecastRow {
        cell: cell_of(row)?,
        draft_quantity: quantity(row, "DRAFT_QUANTITY")?,
        manual_quantity: quantity(row, "MANUAL_QUANTITY")?,
        quantity: quantity(row, "QUANTITY")?,
        version: number(row, "VERSION")?,
        note: note_of(row)?,
        edited_by: optional_text(row, "EDITED_BY").map(str::to_string),
        edited_at: timestamp(row, "EDITED_AT")?,
    })
}

fn history_of(row: &Map<String, Value>) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        seq: number(row, "SEQ")?,
        cell: cell_of(row)?,
        op: Op::parse(text(row, "OP")?)?,
        old_quantity: quantity(row, "OLD_QUANTITY")?,
        new_quantity: quantity(row, "NEW_QUANTITY")?,
        note: note_of(row)?,
        edited_by: text(row, "EDITED_BY")?.to_string(),
        edited_at: timestamp(row, "EDITED_AT")?
            .ok_or_else(|| bad_row("a change without a time".into()))?,
    })
}

/// Binds an optional SKU filter (NULL: all).
fn sku_binding(sku: Option<&SkuId>) -> Binding {
    sku.map_or_else(|| Binding::null("TEXT"), |sku| Binding::text(sku.as_str()))
}

/// Tenant, days and SKU filter, as `EDITS` and `HISTORY` begin: tenant, from, to, sku, sku.
fn scope_bindings(tenant: &TenantId, range: &DateRange, sku: Option<&SkuId>) -> Vec<Binding> {
    let sku = sku_binding(sku);
    vec![
        Binding::text(tenant.as_str()),
        Binding::date(range.from),
        Binding::date(range.to),
        sku.clone(),
        sku,
    ]
}

/// A row limit, one more than the page so the store can tell whether more follow.
fn limit_binding(limit: usize) -> Binding {
    Binding::fixed(i64::try_from(limit).unwrap_or(i64::MAX))
}

#[async_trait]
impl ForecastRead for SnowflakeForecastStore {
    async fn forecast(
        &self,
        tenant: &TenantId,
        query: &ForecastQuery,
    ) -> Result<Page<ForecastRow>> {
        let sku = sku_binding(query.sku_id.as_ref());
        let after_sku = sku_binding(query.after.as_ref().map(|cell| &cell.sku_id));
        let after_date = query
            .after
            .as_ref()
            .map_or_else(|| Binding::null("DATE"), |cell| Binding::date(cell.date));
        let bindings = [
            Binding::boolean(query.show_manual),
            Binding::text(tenant.as_str()),
            Binding::date(query.range.from),
            Binding::date(query.range.to),
            sku.clone(),
            sku,
            after_sku.clone(),
            after_sku.clone(),
            after_sku,
            after_date,
            limit_binding(query.limit + 1),
        ];
        let result = self
            .sql
            .execute(statements::FORECAST_PAGE, &bindings)
            .await?;
        page(
            result,
            query.limit,
            &["SKU_ID", "DATE", "VERSION"],
            forecast_row_of,
        )
    }

    async fn sales(&self, tenant: &TenantId, query: &SalesQuery) -> Result<Vec<DailySales>> {
        let bindings = [
            Binding::text(tenant.as_str()),
            Binding::text(query.sku_id.as_str()),
            Binding::date(query.range.from),
            Binding::date(query.range.to),
        ];
        let result = self.sql.execute(statements::SALES_DAILY, &bindings).await?;
        result.require_columns(&["DATE", "UNITS"])?;
        result
            .rows
            .iter()
            .map(|row| {
                Ok(DailySales {
                    date: date(row, "DATE")?,
                    units: number(row, "UNITS")?,
                })
            })
            .collect()
    }
}

/// A keyset page of `result` (which must have `columns`: an answer without a result set
/// is an error, never an empty page that would then be cached).
fn page<T>(
    result: QueryResult,
    limit: usize,
    columns: &[&str],
    decode: fn(&Map<String, Value>) -> Result<T>,
) -> Result<Page<T>> {
    result.require_columns(columns)?;
    let more = result.rows.len() > limit;
    let items = result
        .rows
        .iter()
        .take(limit)
        .map(decode)
        .collect::<Result<_>>()?;
    Ok(Page { items, more })
}

#[async_trait]
impl EditStore for SnowflakeForecastStore {
    async fn put_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        edit: &EditInput,
        expected: Option<Version>,
    ) -> Result<PutOutcome> {
        let outcome = self
            .apply(tenant, user, &[(edit.clone(), expected)])
            .await?
            .pop()
            .ok_or_else(|| bad_row("APPLY_EDITS returned no row".into()))?;
        let current = outcome.edit.as_ref().map_or(0, |edit| edit.version);
        Ok(match outcome.edit {
            Some(edit) if outcome.changed => PutOutcome::Applied(edit),
            _ if expected.is_some_and(|expected| expected != current) => {
                PutOutcome::Stale { current }
            }
            Some(edit) => PutOutcome::Unchanged(edit),
            None => {
                return Err(bad_row(
                    "APPLY_EDITS left an unconditional edit unwritten".into(),
                ));
            }
        })
    }

    async fn put_edits(
        &self,
        tenant: &TenantId,
        user: &str,
        edits: &[EditInput],
    ) -> Result<Vec<PutOutcome>> {
        let inputs: Vec<(EditInput, Option<Version>)> =
            edits.iter().map(|edit| (edit.clone(), None)).collect();
        self.apply(tenant, user, &inputs)
            .await?
            .into_iter()
            .map(|outcome| match outcome.edit {
                Some(edit) if outcome.changed => Ok(PutOutcome::Applied(edit)),
                Some(edit) => Ok(PutOutcome::Unchanged(edit)),
                None => Err(bad_row(
                    "APPLY_EDITS left an unconditional edit unwritten".into(),
                )),
            })
            .collect()
    }

    async fn revert_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        cell: &Cell,
        expected: Option<Version>,
    ) -> Result<RevertOutcome> {
        let bindings = [
            Binding::text(tenant.as_str()),
            Binding::text(user),
            Binding::text(uuid::Uuid::new_v4().to_string()),
            Binding::text(cell.sku_id.as_str()),
            Binding::date(cell.date),
            expected.map_or_else(|| Binding::null("FIXED"), Binding::fixed),
        ];
        let result = self.sql.execute(statements::REVERT_EDIT, &bindings).await?;
        let row = result
            .rows
            .first()
            .ok_or_else(|| bad_row("REVERT_EDIT returned no row".into()))?;
        let current = number(row, "VERSION")?;
        Ok(
            if row
                .get("REVERTED")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                RevertOutcome::Reverted
            } else if expected.is_some_and(|expected| expected != current) {
                RevertOutcome::Stale { current }
            } else {
                RevertOutcome::NotFound
            },
        )
    }

    async fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Result<Vec<Edit>> {
        let mut bindings = scope_bindings(tenant, &query.range, query.sku_id.as_ref());
        bindings.push(limit_binding(query.limit));
        let result = self.sql.execute(statements::EDITS, &bindings).await?;
        result.require_columns(&["SKU_ID", "DATE", "VERSION"])?;
        result.rows.iter().map(edit_of).collect()
    }

    async fn history(&self, tenant: &TenantId, query: &HistoryQuery) -> Result<Page<HistoryEntry>> {
        let mut bindings = scope_bindings(tenant, &query.range, query.sku_id.as_ref());
        bindings.push(Binding::fixed(query.after.unwrap_or(0)));
        bindings.push(limit_binding(query.limit + 1));
        let result = self.sql.execute(statements::HISTORY, &bindings).await?;
        page(result, query.limit, &["SEQ", "SKU_ID", "DATE"], history_of)
    }
}

#[async_trait]
impl PrefsStore for SnowflakeForecastStore {
    async fn prefs(&self, tenant: &TenantId, user: &str) -> Result<BTreeMap<String, Value>> {
        let bindings = [Binding::text(tenant.as_str()), Binding::text(user)];
        let result = self.sql.execute(statements::PREFS, &bindings).await?;
        result.require_columns(&["KEY", "VALUE"])?;
        result
            .rows
            .iter()
            .map(|row| {
                let value = serde_json::from_str(text(row, "VALUE")?)?;
                Ok((text(row, "KEY")?.to_string(), value))
            })
            .collect()
    }

    /// Update by key, insert when no row changed, and update again if a concurrent insert
    /// won the key (Snowflake's advice for single-row upserts on hybrid tables).
    async fn put_pref(
        &self,
        tenant: &TenantId,
        user: &str,
        key: &str,
        value: &Value,
    ) -> Result<()> {
        let value = value.to_string();
        let update = [
            Binding::text(value.clone()),
            Binding::text(tenant.as_str()),
            Binding::text(user),
            Binding::text(key),
        ];
        if rows_changed(&self.sql.execute(statements::UPDATE_PREF, &update).await?) > 0 {
            return Ok(());
        }
        let insert = [
            Binding::text(tenant.as_str()),
            Binding::text(user),
            Binding::text(key),
            Binding::text(value),
        ];
        match self.sql.execute(statements::INSERT_PREF, &insert).await {
            Err(error) if is_unique_violation(&error) => self
                .sql
                .execute(statements::UPDATE_PREF, &update)
                .await
                .map(drop),
            other => other.map(drop),
        }
    }
}

/// The row count of a DML result (its first column).
fn rows_changed(result: &QueryResult) -> i64 {
    result
        .rows
        .first()
        .and_then(|row| {
            result
                .columns
                .first()
                .and_then(|column| row.get(&column.name))
        })
        .and_then(|value| {
            value
                .as_i64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}
