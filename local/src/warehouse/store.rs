//! The forecast store on the local warehouse: `V_FORECAST` and the app tables of
//! `infra/snowflake/06_app_tables.sql` in DuckDB, with the guarantees of the port (see
//! `snowcast::ports::forecast`). What the Snowflake procedures do in one transaction
//! (`07_app_procedures.sql`) is done here in one DuckDB transaction, on the API's
//! connection, whose lock makes a version check and its write one step.
//!
//! Values cross the boundary as text or integers, never spliced into SQL: dates as ISO
//! text, quantities as their exact decimal text, timestamps as RFC 3339 in and as
//! microseconds out.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use duckdb::{Connection, Row, params};
use snowcast::{
    domain::forecast::{
        Cell, DailySales, Edit, EditInput, EditsQuery, ForecastQuery, ForecastRow, HistoryEntry,
        HistoryQuery, Note, Op, Quantity, SalesQuery, SkuId, TenantId, Version,
    },
    error::{Error, Result},
    ports::forecast::{EditStore, ForecastRead, Page, PrefsStore, PutOutcome, RevertOutcome},
};

use super::{Shared, blocking, failed};

/// A page of `V_FORECAST`. Parameters: tenant, from, to, sku (NULL: all), cursor sku and
/// date (NULL: first page), limit.
const FORECAST_PAGE: &str = "\
SELECT SKU_ID, CAST(DATE AS VARCHAR), CAST(DRAFT_QUANTITY AS VARCHAR), \
CAST(MANUAL_QUANTITY AS VARCHAR), CAST(VERSION AS BIGINT), NOTE, EDITED_BY, \
epoch_us(EDITED_AT) \
FROM SNOWCAST.APP.V_FORECAST \
WHERE TENANT_ID = $1 AND DATE BETWEEN CAST($2 AS DATE) AND CAST($3 AS DATE) \
AND ($4 IS NULL OR SKU_ID = $4) \
AND ($5 IS NULL OR SKU_ID > $5 OR (SKU_ID = $5 AND DATE > CAST($6 AS DATE))) \
ORDER BY SKU_ID, DATE LIMIT $7";

/// The columns of an edit, in the order [`edit_of`] reads them.
const EDIT_COLUMNS: &str = "SKU_ID, CAST(DATE AS VARCHAR), CAST(QUANTITY AS VARCHAR), \
NOTE, CAST(VERSION AS BIGINT), EDITED_BY, epoch_us(EDITED_AT)";

/// Inserts a cell's first edit. Parameters: tenant, sku, date, quantity, note, version,
/// user, time, change id, previous quantity.
const INSERT_EDIT: &str = "\
INSERT INTO SNOWCAST.APP.MANUAL_EDITS_HT \
(TENANT_ID, SKU_ID, DATE, QUANTITY, NOTE, VERSION, EDITED_BY, EDITED_AT, CHANGE_ID, \
PREVIOUS_QUANTITY) \
VALUES ($1, $2, CAST($3 AS DATE), CAST($4 AS DECIMAL(15, 4)), $5, $6, $7, \
CAST($8 AS TIMESTAMPTZ), $9, CAST($10 AS DECIMAL(15, 4)))";

/// Replaces a cell's edit, with the parameters of [`INSERT_EDIT`]. The store has just read
/// the row under its write lock, so it knows which of the two applies: an UPDATE in place
/// costs DuckDB a third of `INSERT .. ON CONFLICT`, which deletes and reinserts the row.
const UPDATE_EDIT: &str = "\
UPDATE SNOWCAST.APP.MANUAL_EDITS_HT SET QUANTITY = CAST($4 AS DECIMAL(15, 4)), NOTE = $5, \
VERSION = $6, EDITED_BY = $7, EDITED_AT = CAST($8 AS TIMESTAMPTZ), CHANGE_ID = $9, \
PREVIOUS_QUANTITY = CAST($10 AS DECIMAL(15, 4)) \
WHERE TENANT_ID = $1 AND SKU_ID = $2 AND DATE = CAST($3 AS DATE)";

/// Appends a history entry, numbered by the history's sequence (`EDIT_HISTORY_SEQ`).
/// Parameters: tenant, sku, date, op, old quantity, new quantity, note, version, user,
/// time. Returns the number.
const RECORD_CHANGE: &str = "\
INSERT INTO SNOWCAST.APP.EDIT_HISTORY \
(SEQ, TENANT_ID, SKU_ID, DATE, OP, OLD_QUANTITY, NEW_QUANTITY, NOTE, VERSION, EDITED_BY, \
EDITED_AT, CHANGE_ID) \
SELECT numbered.SEQ, $1, $2, CAST($3 AS DATE), $4, CAST($5 AS DECIMAL(15, 4)), \
CAST($6 AS DECIMAL(15, 4)), $7, $8, $9, CAST($10 AS TIMESTAMPTZ), 'local-' || numbered.SEQ \
FROM (SELECT nextval('SNOWCAST.APP.EDIT_HISTORY_SEQ') AS SEQ) numbered \
RETURNING CAST(SEQ AS BIGINT)";

/// The forecast store on the warehouse's API connection.
pub struct DuckDbForecastStore {
    connection: Shared,
}

impl DuckDbForecastStore {
    /// Over `connection` (the warehouse's API connection).
    pub fn new(connection: Shared) -> Self {
        DuckDbForecastStore { connection }
    }
}

/// A row's date column (read as ISO text).
fn date_at(row: &Row<'_>, index: usize) -> duckdb::Result<NaiveDate> {
    let text: String = row.get(index)?;
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
        duckdb::Error::FromSqlConversionFailure(index, duckdb::types::Type::Text, Box::new(e))
    })
}

/// A row's quantity column (read as its exact decimal text).
fn quantity_at(row: &Row<'_>, index: usize) -> duckdb::Result<Option<Quantity>> {
    row.get::<_, Option<String>>(index)?
        .map(|text| stored(index, Quantity::parse(&text)))
        .transpose()
}

/// A row's time column (read in microseconds since the epoch).
fn time_at(row: &Row<'_>, index: usize) -> duckdb::Result<Option<DateTime<Utc>>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .and_then(DateTime::from_timestamp_micros))
}

/// A value of a NOT NULL column.
fn required<T>(index: usize, value: Option<T>) -> duckdb::Result<T> {
    value.ok_or_else(|| {
        duckdb::Error::FromSqlConversionFailure(
            index,
            duckdb::types::Type::Null,
            "NULL in a NOT NULL column".into(),
        )
    })
}

/// Converts a stored text back into its domain type (it was validated on the way in).
fn stored<T>(index: usize, parsed: Result<T>) -> duckdb::Result<T> {
    parsed.map_err(|e| {
        duckdb::Error::FromSqlConversionFailure(index, duckdb::types::Type::Text, Box::new(e))
    })
}

/// An edit from [`EDIT_COLUMNS`] starting at column `at`.
fn edit_of(row: &Row<'_>, at: usize) -> duckdb::Result<Edit> {
    let note: Option<String> = row.get(at + 3)?;
    Ok(Edit {
        cell: Cell {
            sku_id: stored(at, SkuId::new(&row.get::<_, String>(at)?))?,
            date: date_at(row, at + 1)?,
        },
        quantity: required(at + 2, quantity_at(row, at + 2)?)?,
        note: note
            .map(|note| stored(at + 3, Note::new(&note)))
            .transpose()?,
        version: row.get(at + 4)?,
        edited_by: row.get(at + 5)?,
        edited_at: required(at + 6, time_at(row, at + 6)?)?,
    })
}

/// The cell's edit, if it has one.
fn current_edit(
    connection: &Connection,
    tenant: &TenantId,
    cell: &Cell,
) -> duckdb::Result<Option<Edit>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {EDIT_COLUMNS} FROM SNOWCAST.APP.MANUAL_EDITS_HT \
         WHERE TENANT_ID = $1 AND SKU_ID = $2 AND DATE = CAST($3 AS DATE)"
    ))?;
    let mut rows = statement.query(params![
        tenant.as_str(),
        cell.sku_id.as_str(),
        cell.date.to_string()
    ])?;
    rows.next()?.map(|row| edit_of(row, 0)).transpose()
}

/// One history entry's values.
struct Change<'a> {
    tenant: &'a TenantId,
    cell: &'a Cell,
    op: Op,
    old: Option<Quantity>,
    new: Option<Quantity>,
    note: Option<&'a Note>,
    version: Version,
    user: &'a str,
    at: DateTime<Utc>,
}

/// Appends `change` to the history; returns its number.
fn record(connection: &Connection, change: &Change<'_>) -> duckdb::Result<i64> {
    connection.prepare_cached(RECORD_CHANGE)?.query_row(
        params![
            change.tenant.as_str(),
            change.cell.sku_id.as_str(),
            change.cell.date.to_string(),
            change.op.as_str(),
            change.old.map(|q| q.to_string()),
            change.new.map(|q| q.to_string()),
            change.note.map(Note::as_str),
            change.version,
            change.user,
            change.at.to_rfc3339(),
        ],
        |row| row.get(0),
    )
}

/// Applies one edit without a version check (the caller checked), as the memory twin
/// and the Snowflake procedure do: unchanged when quantity and note are the same.
fn apply(
    connection: &Connection,
    tenant: &TenantId,
    user: &str,
    input: &EditInput,
    now: DateTime<Utc>,
) -> duckdb::Result<PutOutcome> {
    let old = current_edit(connection, tenant, &input.cell)?;
    if let Some(old) = old.as_ref().filter(|old| old.same_as(input)) {
        return Ok(PutOutcome::Unchanged(old.clone()));
    }
    let edit = Edit {
        cell: input.cell.clone(),
        quantity: input.quantity,
        note: input.note.clone(),
        version: old.as_ref().map_or(0, |old| old.version) + 1,
        edited_by: user.to_string(),
        edited_at: now,
    };
    let old_quantity = old.map(|old| old.quantity);
    let seq = record(
        connection,
        &Change {
            tenant,
            cell: &input.cell,
            op: Op::Put,
            old: old_quantity,
            new: Some(input.quantity),
            note: input.note.as_ref(),
            version: edit.version,
            user,
            at: now,
        },
    )?;
    let write = if old_quantity.is_some() {
        UPDATE_EDIT
    } else {
        INSERT_EDIT
    };
    connection.prepare_cached(write)?.execute(params![
        tenant.as_str(),
        input.cell.sku_id.as_str(),
        input.cell.date.to_string(),
        input.quantity.to_string(),
        input.note.as_ref().map(Note::as_str),
        edit.version,
        user,
        now.to_rfc3339(),
        format!("local-{seq}"),
        old_quantity.map(|q| q.to_string()),
    ])?;
    Ok(PutOutcome::Applied(edit))
}

#[async_trait]
impl ForecastRead for DuckDbForecastStore {
    async fn forecast(
        &self,
        tenant: &TenantId,
        query: &ForecastQuery,
    ) -> Result<Page<ForecastRow>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        blocking(
            &self.connection,
            "reading the forecast",
            move |connection| {
                let mut statement = connection
                    .prepare_cached(FORECAST_PAGE)
                    .map_err(failed("reading the forecast"))?;
                let after = query.after.as_ref();
                let mut items = statement
                    .query_map(
                        params![
                            tenant.as_str(),
                            query.range.from.to_string(),
                            query.range.to.to_string(),
                            query.sku_id.as_ref().map(SkuId::as_str),
                            after.map(|cell| cell.sku_id.as_str()),
                            after.map(|cell| cell.date.to_string()),
                            (query.limit + 1) as i64,
                        ],
                        |row| {
                            let cell = Cell {
                                sku_id: stored(0, SkuId::new(&row.get::<_, String>(0)?))?,
                                date: date_at(row, 1)?,
                            };
                            let draft = quantity_at(row, 2)?;
                            let edit = match quantity_at(row, 3)? {
                                Some(quantity) => {
                                    let note: Option<String> = row.get(5)?;
                                    Some(Edit {
                                        cell: cell.clone(),
                                        quantity,
                                        note: note.map(|n| stored(5, Note::new(&n))).transpose()?,
                                        version: row.get(4)?,
                                        edited_by: required(6, row.get(6)?)?,
                                        edited_at: required(7, time_at(row, 7)?)?,
                                    })
                                }
                                None => None,
                            };
                            Ok(ForecastRow::join(
                                cell,
                                draft,
                                edit.as_ref(),
                                query.show_manual,
                            ))
                        },
                    )
                    .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                    .map_err(failed("reading the forecast"))?;
                let more = items.len() > query.limit;
                items.truncate(query.limit);
                Ok(Page { items, more })
            },
        )
        .await
    }

    async fn sales(&self, tenant: &TenantId, query: &SalesQuery) -> Result<Vec<DailySales>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        blocking(&self.connection, "reading sales", move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT CAST(DATE AS VARCHAR), CAST(UNITS AS BIGINT) \
                     FROM SNOWCAST.ANALYTICS.SALES_DAILY \
                     WHERE TENANT_ID = $1 AND SKU_ID = $2 \
                     AND DATE BETWEEN CAST($3 AS DATE) AND CAST($4 AS DATE) ORDER BY DATE",
                )
                .map_err(failed("reading sales"))?;
            let days = statement
                .query_map(
                    params![
                        tenant.as_str(),
                        query.sku_id.as_str(),
                        query.range.from.to_string(),
                        query.range.to.to_string(),
                    ],
                    |row| {
                        Ok(DailySales {
                            date: date_at(row, 0)?,
                            units: row.get(1)?,
                        })
                    },
                )
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(failed("reading sales"))?;
            Ok(days)
        })
        .await
    }
}

#[async_trait]
impl EditStore for DuckDbForecastStore {
    async fn put_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        edit: &EditInput,
        expected: Option<Version>,
    ) -> Result<PutOutcome> {
        let (tenant, user, edit) = (tenant.clone(), user.to_string(), edit.clone());
        blocking(&self.connection, "writing an edit", move |connection| {
            let context = "writing an edit";
            let transaction = connection.transaction().map_err(failed(context))?;
            let current = current_edit(&transaction, &tenant, &edit.cell)
                .map_err(failed(context))?
                .map_or(0, |edit| edit.version);
            if expected.is_some_and(|expected| expected != current) {
                return Ok(PutOutcome::Stale { current });
            }
            let outcome =
                apply(&transaction, &tenant, &user, &edit, Utc::now()).map_err(failed(context))?;
            transaction.commit().map_err(failed(context))?;
            Ok(outcome)
        })
        .await
    }

    async fn put_edits(
        &self,
        tenant: &TenantId,
        user: &str,
        edits: &[EditInput],
    ) -> Result<Vec<PutOutcome>> {
        let mut cells: Vec<&Cell> = edits.iter().map(|edit| &edit.cell).collect();
        cells.sort();
        if cells.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(Error::invalid("edits", "the batch names a cell twice"));
        }
        let (tenant, user, edits) = (tenant.clone(), user.to_string(), edits.to_vec());
        blocking(
            &self.connection,
            "writing a batch of edits",
            move |connection| {
                let context = "writing a batch of edits";
                let transaction = connection.transaction().map_err(failed(context))?;
                let now = Utc::now();
                let outcomes = edits
                    .iter()
                    .map(|edit| apply(&transaction, &tenant, &user, edit, now))
                    .collect::<duckdb::Result<Vec<_>>>()
                    .map_err(failed(context))?;
                transaction.commit().map_err(failed(context))?;
                Ok(outcomes)
            },
        )
        .await
    }

    async fn revert_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        cell: &Cell,
        expected: Option<Version>,
    ) -> Result<RevertOutcome> {
        let (tenant, user, cell) = (tenant.clone(), user.to_string(), cell.clone());
        blocking(&self.connection, "reverting an edit", move |connection| {
            let context = "reverting an edit";
            let transaction = connection.transaction().map_err(failed(context))?;
            let old = current_edit(&transaction, &tenant, &cell).map_err(failed(context))?;
            let current = old.as_ref().map_or(0, |edit| edit.version);
            if expected.is_some_and(|expected| expected != current) {
                return Ok(RevertOutcome::Stale { current });
            }
            let Some(old) = old else {
                return Ok(RevertOutcome::NotFound);
            };
            record(
                &transaction,
                &Change {
                    tenant: &tenant,
                    cell: &cell,
                    op: Op::Delete,
                    old: Some(old.quantity),
                    new: None,
                    note: None,
                    version: old.version,
                    user: &user,
                    at: Utc::now(),
                },
            )
            .map_err(failed(context))?;
            transaction
                .execute(
                    "DELETE FROM SNOWCAST.APP.MANUAL_EDITS_HT \
                     WHERE TENANT_ID = $1 AND SKU_ID = $2 AND DATE = CAST($3 AS DATE)",
                    params![tenant.as_str(), cell.sku_id.as_str(), cell.date.to_string()],
                )
                .map_err(failed(context))?;
            transaction.commit().map_err(failed(context))?;
            Ok(RevertOutcome::Reverted)
        })
        .await
    }

    async fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Result<Vec<Edit>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        blocking(&self.connection, "listing edits", move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {EDIT_COLUMNS} FROM SNOWCAST.APP.MANUAL_EDITS_HT \
                     WHERE TENANT_ID = $1 AND DATE BETWEEN CAST($2 AS DATE) AND CAST($3 AS DATE) \
                     AND ($4 IS NULL OR SKU_ID = $4) ORDER BY SKU_ID, DATE LIMIT $5"
                ))
                .map_err(failed("listing edits"))?;
            let edits = statement
                .query_map(
                    params![
                        tenant.as_str(),
                        query.range.from.to_string(),
                        query.range.to.to_string(),
                        query.sku_id.as_ref().map(SkuId::as_str),
                        query.limit as i64,
                    ],
                    |row| edit_of(row, 0),
                )
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(failed("listing edits"))?;
            Ok(edits)
        })
        .await
    }

    async fn history(&self, tenant: &TenantId, query: &HistoryQuery) -> Result<Page<HistoryEntry>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        blocking(&self.connection, "reading the history", move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT CAST(SEQ AS BIGINT), SKU_ID, CAST(DATE AS VARCHAR), OP, \
                     CAST(OLD_QUANTITY AS VARCHAR), CAST(NEW_QUANTITY AS VARCHAR), \
                     NOTE, EDITED_BY, epoch_us(EDITED_AT) \
                     FROM SNOWCAST.APP.EDIT_HISTORY \
                     WHERE TENANT_ID = $1 AND DATE BETWEEN CAST($2 AS DATE) AND CAST($3 AS DATE) \
                     AND ($4 IS NULL OR SKU_ID = $4) AND SEQ > $5 ORDER BY SEQ LIMIT $6",
                )
                .map_err(failed("reading the history"))?;
            let mut items = statement
                .query_map(
                    params![
                        tenant.as_str(),
                        query.range.from.to_string(),
                        query.range.to.to_string(),
                        query.sku_id.as_ref().map(SkuId::as_str),
                        query.after.unwrap_or(0),
                        (query.limit + 1) as i64,
                    ],
                    |row| {
                        let note: Option<String> = row.get(6)?;
                        Ok(HistoryEntry {
                            seq: row.get(0)?,
                            cell: Cell {
                                sku_id: stored(1, SkuId::new(&row.get::<_, String>(1)?))?,
                                date: date_at(row, 2)?,
                            },
                            op: stored(3, Op::parse(&row.get::<_, String>(3)?))?,
                            old_quantity: quantity_at(row, 4)?,
                            new_quantity: quantity_at(row, 5)?,
                            note: note.map(|n| stored(6, Note::new(&n))).transpose()?,
                            edited_by: row.get(7)?,
                            edited_at: required(8, time_at(row, 8)?)?,
                        })
                    },
                )
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(failed("reading the history"))?;
            let more = items.len() > query.limit;
            items.truncate(query.limit);
            Ok(Page { items, more })
        })
        .await
    }
}

#[async_trait]
impl PrefsStore for DuckDbForecastStore {
    async fn prefs(
        &self,
        tenant: &TenantId,
        user: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        let (tenant, user) = (tenant.clone(), user.to_string());
        let stored: Vec<(String, String)> =
            blocking(&self.connection, "reading preferences", move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT KEY, VALUE FROM SNOWCAST.APP.USER_PREFS_HT \
                         WHERE TENANT_ID = $1 AND USER_ID = $2 ORDER BY KEY",
                    )
                    .map_err(failed("reading preferences"))?;
                let rows = statement
                    .query_map(params![tenant.as_str(), user], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                    .map_err(failed("reading preferences"))?;
                Ok(rows)
            })
            .await?;
        stored
            .into_iter()
            .map(|(key, value)| Ok((key, serde_json::from_str(&value)?)))
            .collect()
    }

    async fn put_pref(
        &self,
        tenant: &TenantId,
        user: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        let (tenant, user, key, value) = (
            tenant.clone(),
            user.to_string(),
            key.to_string(),
            value.to_string(),
        );
        blocking(
            &self.connection,
            "writing a preference",
            move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO SNOWCAST.APP.USER_PREFS_HT \
                     (TENANT_ID, USER_ID, KEY, VALUE, UPDATED_AT) \
                     VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP) \
                     ON CONFLICT (TENANT_ID, USER_ID, KEY) DO UPDATE SET \
                     VALUE = EXCLUDED.VALUE, UPDATED_AT = EXCLUDED.UPDATED_AT",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![tenant.as_str(), user, key, value])
                    })
                    .map_err(failed("writing a preference"))?;
                Ok(())
            },
        )
        .await
    }
}

#[cfg(test)]
#[path = "../../../tests/support/forecast_scenario.rs"]
mod scenario;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{scenario, *};
    use crate::warehouse::Warehouse;

    /// A warehouse holding the scenario's drafts.
    fn seeded() -> (tempfile::TempDir, Warehouse) {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path()).unwrap();
        {
            let connection = warehouse.api();
            let connection = connection.lock().unwrap();
            for (tenant, sku, day, quantity) in scenario::DRAFTS {
                connection
                    .execute(
                        "INSERT INTO SNOWCAST.ANALYTICS.FORECAST_DRAFT \
                         (TENANT_ID, SKU_ID, DATE, DRAFT_QUANTITY, MODEL, GENERATED_AT) \
                         VALUES ($1, $2, CAST($3 AS DATE), CAST($4 AS DECIMAL(15, 4)), 'ets', \
                         CURRENT_TIMESTAMP)",
                        params![tenant, sku, scenario::day(day).to_string(), quantity],
                    )
                    .unwrap();
            }
        }
        (dir, warehouse)
    }

    #[tokio::test]
    async fn the_store_keeps_the_ports_promises_on_duckdb() {
        let (_dir, warehouse) = seeded();
        scenario::exercise(&DuckDbForecastStore::new(warehouse.api())).await;
    }

    #[tokio::test]
    async fn of_two_writers_holding_one_version_one_wins_on_duckdb() {
        let (_dir, warehouse) = seeded();
        scenario::one_version_one_winner(Arc::new(DuckDbForecastStore::new(warehouse.api()))).await;
    }

    #[tokio::test]
    async fn edits_and_history_survive_a_reopen() {
        let (dir, warehouse) = seeded();
        let store = DuckDbForecastStore::new(warehouse.api());
        let acme = TenantId::new("acme").unwrap();
        store
            .put_edit(&acme, "ann", &scenario::edit("SKU-1", 2, "7.5", None), None)
            .await
            .unwrap();
        drop((store, warehouse));
        let store = DuckDbForecastStore::new(Warehouse::open(dir.path()).unwrap().api());
        let query = HistoryQuery {
            sku_id: None,
            range: scenario::range(),
            limit: 10,
            after: None,
        };
        let history = store.history(&acme, &query).await.unwrap();
        assert_eq!(history.items.len(), 1);
        assert_eq!(history.items[0].new_quantity.unwrap().to_string(), "7.5");
    }

    #[tokio::test]
    async fn the_history_numbers_on_after_a_reopen_and_in_a_warehouse_older_than_its_sequence() {
        let (dir, warehouse) = seeded();
        let acme = TenantId::new("acme").unwrap();
        async fn put(warehouse: &Warehouse, quantity: &str) {
            let cell = scenario::edit("SKU-1", 2, quantity, None);
            let store = DuckDbForecastStore::new(warehouse.api());
            let acme = TenantId::new("acme").unwrap();
            store.put_edit(&acme, "ann", &cell, None).await.unwrap();
        }
        put(&warehouse, "1").await;
        put(&warehouse, "2").await;
        drop(warehouse);
        put(&Warehouse::open(dir.path()).unwrap(), "3").await;
        // A data directory from before the sequence existed: its history has numbers, the
        // sequence is made on open and must not hand them out again.
        let warehouse = Warehouse::open(dir.path()).unwrap();
        warehouse
            .api()
            .lock()
            .unwrap()
            .execute_batch("DROP SEQUENCE SNOWCAST.APP.EDIT_HISTORY_SEQ")
            .unwrap();
        drop(warehouse);
        let store = DuckDbForecastStore::new(Warehouse::open(dir.path()).unwrap().api());
        store
            .revert_edit(
                &acme,
                "ann",
                &scenario::edit("SKU-1", 2, "3", None).cell,
                None,
            )
            .await
            .unwrap();
        let query = HistoryQuery {
            sku_id: None,
            range: scenario::range(),
            limit: 10,
            after: None,
        };
        let numbers: Vec<i64> = store
            .history(&acme, &query)
            .await
            .unwrap()
            .items
            .iter()
            .map(|entry| entry.seq)
            .collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
    }
}
