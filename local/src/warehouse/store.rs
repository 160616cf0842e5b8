//! The forecast store on the local warehouse: the app tables of
//! `infra/snowflake/06_app_tables.sql` in DuckDB, with the guarantees of the port (see
//! `snowcast::ports::forecast`). What the Snowflake procedures do in one transaction
//! (`07_app_procedures.sql`) is done here in one journal record and, after it, one DuckDB
//! transaction.
//!
//! A write is decided and acknowledged without DuckDB: under the store's writer lock, the
//! version check reads the cells in memory, the change is numbered in the history, its
//! record is appended to the edit journal and synced ([`super::journal`]), and the cells
//! take the change. The applier thread then writes the journal's records to the tables in
//! batches, in order, on the API's connection. DuckDB costs about 2 ms a statement and a
//! sync of its own log per commit, so an edit written there on the request's path took
//! 7-15 ms; this way an edit costs one sync, and is visible on the next read. A read of the
//! tables themselves (the history) first waits for the applier to catch up with every
//! record journaled before it, so it sees every acknowledged edit. At open, records a
//! crash left unapplied are applied before anything is read.
//!
//! Pages of `V_FORECAST` are read from a copy of the two tables it joins, held in memory
//! ([`ForecastCells`], the memory twin's own read): read at open, changed by every write
//! once its record is synced, and by [`DuckDbForecastStore::reload_drafts`] after a model
//! refresh. DuckDB spends milliseconds planning and running a join for one cell; the copy
//! answers in microseconds. It costs about 100 bytes a cell: 10,000 SKUs of 90 days are
//! about 90 MB. A test holds the copy's pages to the view's.
//!
//! Values cross the boundary as text or integers, never spliced into SQL: dates as ISO
//! text, quantities as their exact decimal text, timestamps as RFC 3339 in and as
//! microseconds out.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use duckdb::{Connection, Row, params};
use snowcast::{
    adapters::memory::cells::{Cells, ForecastCells},
    domain::forecast::{
        Cell, DailySales, Edit, EditInput, EditsQuery, ForecastQuery, ForecastRow, HistoryEntry,
        HistoryQuery, Note, Op, Quantity, SalesQuery, SkuId, TenantId, Version,
    },
    error::{Error, Result},
    ports::forecast::{EditStore, ForecastRead, Page, PrefsStore, PutOutcome, RevertOutcome},
};
use tokio::sync::watch;

use super::{
    Shared, Warehouse, blocking, failed,
    journal::{Entry, Journal, Record},
};

/// The drafts of one tenant (parameter: tenant) or, with NULL, of all.
const DRAFTS: &str = "\
SELECT TENANT_ID, SKU_ID, CAST(DATE AS VARCHAR), CAST(DRAFT_QUANTITY AS VARCHAR) \
FROM SNOWCAST.ANALYTICS.FORECAST_DRAFT WHERE $1 IS NULL OR TENANT_ID = $1";

/// The columns of an edit, in the order [`edit_of`] reads them.
const EDIT_COLUMNS: &str = "SKU_ID, CAST(DATE AS VARCHAR), CAST(QUANTITY AS VARCHAR), \
NOTE, CAST(VERSION AS BIGINT), EDITED_BY, epoch_us(EDITED_AT)";

/// Replaces a cell's edit. Parameters: tenant, sku, date, quantity, note, version, user,
/// time, change id, previous quantity. An UPDATE in place costs DuckDB a third of
/// `INSERT .. ON CONFLICT`, which deletes and reinserts the row; a cell's first edit
/// updates nothing and is inserted ([`INSERT_EDIT`]).
const UPDATE_EDIT: &str = "\
UPDATE SNOWCAST.APP.MANUAL_EDITS_HT SET QUANTITY = CAST($4 AS DECIMAL(15, 4)), NOTE = $5, \
VERSION = $6, EDITED_BY = $7, EDITED_AT = CAST($8 AS TIMESTAMPTZ), CHANGE_ID = $9, \
PREVIOUS_QUANTITY = CAST($10 AS DECIMAL(15, 4)) \
WHERE TENANT_ID = $1 AND SKU_ID = $2 AND DATE = CAST($3 AS DATE)";

/// Inserts a cell's first edit, with the parameters of [`UPDATE_EDIT`].
const INSERT_EDIT: &str = "\
INSERT INTO SNOWCAST.APP.MANUAL_EDITS_HT \
(TENANT_ID, SKU_ID, DATE, QUANTITY, NOTE, VERSION, EDITED_BY, EDITED_AT, CHANGE_ID, \
PREVIOUS_QUANTITY) \
VALUES ($1, $2, CAST($3 AS DATE), CAST($4 AS DECIMAL(15, 4)), $5, $6, $7, \
CAST($8 AS TIMESTAMPTZ), $9, CAST($10 AS DECIMAL(15, 4)))";

/// Removes a cell's edit. Parameters: tenant, sku, date.
const DELETE_EDIT: &str = "\
DELETE FROM SNOWCAST.APP.MANUAL_EDITS_HT \
WHERE TENANT_ID = $1 AND SKU_ID = $2 AND DATE = CAST($3 AS DATE)";

/// The history's columns, in the order [`apply_entries`] appends them.
const HISTORY_COLUMNS: [&str; 12] = [
    "SEQ",
    "TENANT_ID",
    "SKU_ID",
    "DATE",
    "OP",
    "OLD_QUANTITY",
    "NEW_QUANTITY",
    "NOTE",
    "VERSION",
    "EDITED_BY",
    "EDITED_AT",
    "CHANGE_ID",
];

/// Records the applier writes in one DuckDB transaction at most.
const APPLY_BATCH: usize = 512;
/// The journal is emptied once everything in it is applied and it has grown past this.
const JOURNAL_CLEAR_BYTES: u64 = 1 << 20;
/// How long a read of the tables waits for the applier before it fails.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// The forecast store on the warehouse's API connection.
pub struct DuckDbForecastStore {
    connection: Shared,
    state: Arc<State>,
    applier: Option<JoinHandle<()>>,
    /// Set when the store is dropped: the applier stops retrying a failing batch.
    closing: Arc<AtomicBool>,
}

/// What the store keeps beside the tables.
struct State {
    /// The drafts and edits `V_FORECAST` joins, with every synced record's changes.
    cells: Mutex<ForecastCells>,
    /// The journal and the history's numbering; writers take turns on it.
    writer: Mutex<Writer>,
    /// The last history number DuckDB holds (the applier's progress).
    applied: watch::Receiver<i64>,
}

/// The writers' side of the journal.
struct Writer {
    journal: Journal,
    /// The last history number handed out (numbers increase across tenants).
    last_seq: i64,
    /// Records on their way to the applier; `None` once the store is closing.
    applier: Option<mpsc::Sender<Record>>,
}

impl DuckDbForecastStore {
    /// Over `warehouse`'s API connection and edit journal: applies what the journal holds
    /// beyond the tables (a crash's unapplied records), reads the drafts and edits, and
    /// starts the applier.
    pub async fn open(warehouse: &Warehouse) -> Result<Self> {
        let connection = warehouse.api();
        let (mut journal, records) = Journal::open(&warehouse.edit_journal())?;
        let (cells, last_seq) = blocking(&connection, "reading the forecast", |connection| {
            let context = "reading the forecast";
            let applied = last_history_seq(connection).map_err(failed(context))?;
            let pending: Vec<Record> = records
                .into_iter()
                .filter(|record| record.first_seq() > applied)
                .collect();
            if !pending.is_empty() {
                tracing::info!(
                    records = pending.len(),
                    "applying the edit journal's records a stop left unapplied"
                );
                apply_records(connection, &pending).map_err(failed("applying the edit journal"))?;
            }
            let cells = read_cells(connection).map_err(failed(context))?;
            Ok((
                cells,
                last_history_seq(connection).map_err(failed(context))?,
            ))
        })
        .await?;
        journal.clear()?;
        let (progress, applied) = watch::channel(last_seq);
        let (records, queue) = mpsc::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let applier = {
            let (connection, closing) = (connection.clone(), closing.clone());
            std::thread::Builder::new()
                .name("edit-applier".into())
                .spawn(move || apply_journaled(&connection, &queue, &progress, &closing))
                .map_err(|e| Error::io("starting the edit applier", e))?
        };
        let state = State {
            cells: Mutex::new(cells),
            writer: Mutex::new(Writer {
                journal,
                last_seq,
                applier: Some(records),
            }),
            applied,
        };
        Ok(DuckDbForecastStore {
            connection,
            state: Arc::new(state),
            applier: Some(applier),
            closing,
        })
    }

    /// Reads again the drafts of `tenants`, which a model refresh has rebuilt.
    pub async fn reload_drafts(&self, tenants: &[TenantId]) -> Result<()> {
        let (state, tenants) = (self.state.clone(), tenants.to_vec());
        blocking(&self.connection, "reading the draft", move |connection| {
            for tenant in tenants {
                let mut drafts =
                    drafts(connection, Some(&tenant)).map_err(failed("reading the draft"))?;
                lock(&state.cells)
                    .replace_drafts(&tenant, drafts.remove(&tenant).unwrap_or_default());
            }
            Ok(())
        })
        .await
    }

    /// Waits until the tables hold every edit acknowledged so far.
    pub async fn caught_up(&self) -> Result<()> {
        let journaled = lock(&self.state.writer).last_seq;
        let mut applied = self.state.applied.clone();
        match tokio::time::timeout(
            CATCH_UP_TIMEOUT,
            applied.wait_for(|&applied| applied >= journaled),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(Error::Warehouse {
                context: "reading the edits' tables".into(),
                message: format!(
                    "the journal's edits up to {journaled} are not in the tables yet (see the \
                     edit applier's errors in the log); they are safe in the journal"
                ),
            }),
        }
    }

    /// Decides a write on the cells as they stand, under the writer lock: `decide` returns
    /// the outcome, the cells' changes and the history entries it numbered from `last_seq`.
    /// The entries are journaled and synced, then the cells change and the applier gets the
    /// record.
    async fn write<T, F>(&self, context: &'static str, decide: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ForecastCells, &mut i64) -> Result<Decided<T>> + Send + 'static,
    {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = lock(&state.writer);
            let mut next_seq = writer.last_seq;
            let decided = decide(&lock(&state.cells), &mut next_seq)?;
            if decided.entries.is_empty() {
                return Ok(decided.outcome);
            }
            let everything_applied = *state.applied.borrow() == writer.last_seq;
            if everything_applied && writer.journal.len() > JOURNAL_CLEAR_BYTES {
                writer.journal.clear()?;
            }
            let record = Record {
                entries: decided.entries,
            };
            writer.journal.append(&record)?;
            writer.last_seq = next_seq;
            let mut cells = lock(&state.cells);
            for change in decided.changes {
                match change {
                    Change::Set(tenant, edit) => cells.set_edit(&tenant, edit),
                    Change::Remove(tenant, cell) => {
                        cells.remove_edit(&tenant, &cell);
                    }
                }
            }
            drop(cells);
            // Closing: the record is in the journal, and the next open applies it.
            if let Some(applier) = &writer.applier {
                let _ = applier.send(record);
            }
            Ok(decided.outcome)
        })
        .await
        .map_err(|e| Error::Warehouse {
            context: context.into(),
            message: e.to_string(),
        })?
    }
}

impl Drop for DuckDbForecastStore {
    /// Lets the applier write what is queued, so the connection is free when this returns
    /// (what it cannot write stays in the journal for the next open).
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        lock(&self.state.writer).applier = None;
        if let Some(applier) = self.applier.take() {
            let _ = applier.join();
        }
    }
}

/// What a write decided.
struct Decided<T> {
    outcome: T,
    changes: Vec<Change>,
    entries: Vec<Entry>,
}

impl<T> Decided<T> {
    /// A write that changes nothing.
    fn nothing(outcome: T) -> Self {
        Decided {
            outcome,
            changes: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// A change a journaled write makes to the cells.
enum Change {
    Set(TenantId, Edit),
    Remove(TenantId, Cell),
}

/// The applier: writes queued records to the tables in batches, in order, until the store
/// closes. A batch that fails is tried again: its records are safe in the journal, and the
/// reads that need the tables wait (and time out) meanwhile. Once the store is closing, a
/// failed batch is left to the next open.
fn apply_journaled(
    connection: &Shared,
    queue: &mpsc::Receiver<Record>,
    applied: &watch::Sender<i64>,
    closing: &AtomicBool,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(APPLY_BATCH - 1));
        let mut pause = Duration::from_millis(100);
        loop {
            let outcome = apply_records(&mut lock(connection), &batch);
            let Err(error) = outcome else { break };
            tracing::error!(%error, records = batch.len(), "applying journaled edits failed");
            if closing.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(10));
        }
        if let Some(last) = batch.last() {
            applied.send_replace(last.last_seq());
        }
    }
}

/// Writes `records` to the tables in one transaction.
fn apply_records(connection: &mut Connection, records: &[Record]) -> duckdb::Result<()> {
    let transaction = connection.transaction()?;
    apply_entries(
        &transaction,
        records.iter().flat_map(|record| &record.entries),
    )?;
    transaction.commit()
}

/// Writes history entries and the edits they make, in order, in the open transaction. The
/// history goes in through DuckDB's appender, which adds rows without planning a statement.
fn apply_entries<'e>(
    connection: &Connection,
    entries: impl Iterator<Item = &'e Entry> + Clone,
) -> duckdb::Result<()> {
    let mut appender =
        connection.appender_with_columns_to_db("EDIT_HISTORY", "APP", &HISTORY_COLUMNS)?;
    for entry in entries.clone() {
        appender.append_row(params![
            entry.seq,
            entry.tenant,
            entry.sku,
            entry.date,
            entry.op,
            entry.old,
            entry.new,
            entry.note,
            entry.version,
            entry.user,
            entry.at,
            change_id(entry.seq),
        ])?;
    }
    appender.flush()?;
    drop(appender);
    for entry in entries {
        if entry.op == Op::Delete.as_str() {
            connection.prepare_cached(DELETE_EDIT)?.execute(params![
                entry.tenant,
                entry.sku,
                entry.date
            ])?;
            continue;
        }
        let values = params![
            entry.tenant,
            entry.sku,
            entry.date,
            entry.new,
            entry.note,
            entry.version,
            entry.user,
            entry.at,
            change_id(entry.seq),
            entry.old,
        ];
        if connection.prepare_cached(UPDATE_EDIT)?.execute(values)? == 0 {
            connection.prepare_cached(INSERT_EDIT)?.execute(values)?;
        }
    }
    Ok(())
}

/// The change id of the history entry numbered `seq` (Snowflake's are UUIDs).
fn change_id(seq: i64) -> String {
    format!("local-{seq}")
}

/// The history's last number (0 when empty).
fn last_history_seq(connection: &Connection) -> duckdb::Result<i64> {
    connection.query_row(
        "SELECT CAST(COALESCE(MAX(SEQ), 0) AS BIGINT) FROM SNOWCAST.APP.EDIT_HISTORY",
        [],
        |row| row.get(0),
    )
}

/// The drafts and edits of every tenant, as the tables hold them.
fn read_cells(connection: &Connection) -> duckdb::Result<ForecastCells> {
    let mut cells = ForecastCells::default();
    for (tenant, drafts) in drafts(connection, None)? {
        cells.replace_drafts(&tenant, drafts);
    }
    let mut statement = connection.prepare(&format!(
        "SELECT TENANT_ID, {EDIT_COLUMNS} FROM SNOWCAST.APP.MANUAL_EDITS_HT"
    ))?;
    let edits = statement
        .query_map([], |row| {
            let tenant = stored(0, TenantId::new(&row.get::<_, String>(0)?))?;
            Ok((tenant, edit_of(row, 1)?))
        })?
        .collect::<duckdb::Result<Vec<_>>>()?;
    for (tenant, edit) in edits {
        cells.set_edit(&tenant, edit);
    }
    Ok(cells)
}

/// The time of a change, to the microsecond the warehouse keeps (as it will read back).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A lock, whatever a panicking holder left: the cells change one insert or removal at a
/// time, and the writer's state only after its record is synced.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The drafts of `tenant` (or of every tenant), by tenant.
fn drafts(
    connection: &Connection,
    tenant: Option<&TenantId>,
) -> duckdb::Result<BTreeMap<TenantId, Cells<Quantity>>> {
    let mut statement = connection.prepare_cached(DRAFTS)?;
    let mut rows = statement.query(params![tenant.map(TenantId::as_str)])?;
    let mut drafts: BTreeMap<TenantId, Cells<Quantity>> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let tenant = stored(0, TenantId::new(&row.get::<_, String>(0)?))?;
        let sku = stored(1, SkuId::new(&row.get::<_, String>(1)?))?;
        let quantity = required(3, quantity_at(row, 3)?)?;
        drafts
            .entry(tenant)
            .or_default()
            .insert((sku, date_at(row, 2)?), quantity);
    }
    Ok(drafts)
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

/// A history entry's values.
struct HistoryChange<'a> {
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

impl HistoryChange<'_> {
    /// The journal entry of this change, numbered after `last_seq`.
    fn numbered(&self, last_seq: &mut i64) -> Entry {
        *last_seq += 1;
        Entry {
            seq: *last_seq,
            tenant: self.tenant.as_str().to_string(),
            sku: self.cell.sku_id.as_str().to_string(),
            date: self.cell.date.to_string(),
            op: self.op.as_str().to_string(),
            old: self.old.map(|q| q.to_string()),
            new: self.new.map(|q| q.to_string()),
            note: self.note.map(|note| note.as_str().to_string()),
            version: self.version,
            user: self.user.to_string(),
            at: self.at.to_rfc3339(),
        }
    }
}

/// Decides one edit over `old` (the cell's current edit) without a version check (the
/// caller checked), as the memory twin and the Snowflake procedure do: unchanged when
/// quantity and note are the same. Returns the outcome and, for a change, its entry.
fn decide_edit(
    (tenant, user): (&TenantId, &str),
    input: &EditInput,
    old: Option<&Edit>,
    now: DateTime<Utc>,
    last_seq: &mut i64,
) -> (PutOutcome, Option<Entry>) {
    if let Some(old) = old.filter(|old| old.same_as(input)) {
        return (PutOutcome::Unchanged(old.clone()), None);
    }
    let edit = Edit {
        cell: input.cell.clone(),
        quantity: input.quantity,
        note: input.note.clone(),
        version: old.map_or(0, |old| old.version) + 1,
        edited_by: user.to_string(),
        edited_at: now,
    };
    let entry = HistoryChange {
        tenant,
        cell: &input.cell,
        op: Op::Put,
        old: old.map(|old| old.quantity),
        new: Some(input.quantity),
        note: input.note.as_ref(),
        version: edit.version,
        user,
        at: now,
    }
    .numbered(last_seq);
    (PutOutcome::Applied(edit), Some(entry))
}

/// The cells' changes for `outcomes` of `tenant`'s edits.
fn applied(tenant: &TenantId, outcomes: &[PutOutcome]) -> Vec<Change> {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            PutOutcome::Applied(edit) => Some(Change::Set(tenant.clone(), edit.clone())),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl ForecastRead for DuckDbForecastStore {
    async fn forecast(
        &self,
        tenant: &TenantId,
        query: &ForecastQuery,
    ) -> Result<Page<ForecastRow>> {
        Ok(lock(&self.state.cells).page(tenant, query))
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
        self.write("writing an edit", move |cells, last_seq| {
            let old = cells.edit(&tenant, &edit.cell);
            let current = old.map_or(0, |old| old.version);
            if expected.is_some_and(|expected| expected != current) {
                return Ok(Decided::nothing(PutOutcome::Stale { current }));
            }
            let (outcome, entry) = decide_edit((&tenant, &user), &edit, old, now(), last_seq);
            Ok(Decided {
                changes: applied(&tenant, std::slice::from_ref(&outcome)),
                outcome,
                entries: entry.into_iter().collect(),
            })
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
        self.write("writing a batch of edits", move |cells, last_seq| {
            let now = now();
            // The batch's cells are distinct: each one's old edit is the stored one.
            let (outcomes, entries): (Vec<PutOutcome>, Vec<Option<Entry>>) = edits
                .iter()
                .map(|edit| {
                    let old = cells.edit(&tenant, &edit.cell);
                    decide_edit((&tenant, &user), edit, old, now, last_seq)
                })
                .unzip();
            Ok(Decided {
                changes: applied(&tenant, &outcomes),
                outcome: outcomes,
                entries: entries.into_iter().flatten().collect(),
            })
        })
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
        self.write("reverting an edit", move |cells, last_seq| {
            let old = cells.edit(&tenant, &cell);
            let current = old.map_or(0, |edit| edit.version);
            if expected.is_some_and(|expected| expected != current) {
                return Ok(Decided::nothing(RevertOutcome::Stale { current }));
            }
            let Some(old) = old else {
                return Ok(Decided::nothing(RevertOutcome::NotFound));
            };
            let entry = HistoryChange {
                tenant: &tenant,
                cell: &cell,
                op: Op::Delete,
                old: Some(old.quantity),
                new: None,
                note: None,
                version: old.version,
                user: &user,
                at: now(),
            }
            .numbered(last_seq);
            Ok(Decided {
                outcome: RevertOutcome::Reverted,
                changes: vec![Change::Remove(tenant.clone(), cell.clone())],
                entries: vec![entry],
            })
        })
        .await
    }

    async fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Result<Vec<Edit>> {
        Ok(lock(&self.state.cells).edits(tenant, query))
    }

    async fn history(&self, tenant: &TenantId, query: &HistoryQuery) -> Result<Page<HistoryEntry>> {
        self.caught_up().await?;
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

    use snowcast::domain::forecast::DateRange;

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

    /// The store over the warehouse in `dir`, opened anew (as after a restart).
    async fn reopened(dir: &std::path::Path) -> DuckDbForecastStore {
        DuckDbForecastStore::open(&Warehouse::open(dir).unwrap())
            .await
            .unwrap()
    }

    /// The first ten history entries of the scenario's days.
    fn first_entries() -> HistoryQuery {
        HistoryQuery {
            sku_id: None,
            range: scenario::range(),
            limit: 10,
            after: None,
        }
    }

    #[tokio::test]
    async fn the_store_keeps_the_ports_promises_on_duckdb() {
        let (_dir, warehouse) = seeded();
        scenario::exercise(&DuckDbForecastStore::open(&warehouse).await.unwrap()).await;
    }

    #[tokio::test]
    async fn of_two_writers_holding_one_version_one_wins_on_duckdb() {
        let (_dir, warehouse) = seeded();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        scenario::one_version_one_winner(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn edits_and_history_survive_a_reopen() {
        let (dir, warehouse) = seeded();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        let acme = TenantId::new("acme").unwrap();
        store
            .put_edit(&acme, "ann", &scenario::edit("SKU-1", 2, "7.5", None), None)
            .await
            .unwrap();
        drop((store, warehouse));
        let store = reopened(dir.path()).await;
        let history = store.history(&acme, &first_entries()).await.unwrap();
        assert_eq!(history.items.len(), 1);
        assert_eq!(history.items[0].new_quantity.unwrap().to_string(), "7.5");
    }

    #[tokio::test]
    async fn the_history_numbers_on_after_a_reopen() {
        let (dir, warehouse) = seeded();
        let acme = TenantId::new("acme").unwrap();
        async fn put(warehouse: &Warehouse, quantity: &str) {
            let cell = scenario::edit("SKU-1", 2, quantity, None);
            let store = DuckDbForecastStore::open(warehouse).await.unwrap();
            let acme = TenantId::new("acme").unwrap();
            store.put_edit(&acme, "ann", &cell, None).await.unwrap();
        }
        put(&warehouse, "1").await;
        put(&warehouse, "2").await;
        drop(warehouse);
        put(&Warehouse::open(dir.path()).unwrap(), "3").await;
        let store = reopened(dir.path()).await;
        store
            .revert_edit(&acme, "ann", &scenario::cell("SKU-1", 2), None)
            .await
            .unwrap();
        let numbers: Vec<(i64, Op)> = store
            .history(&acme, &first_entries())
            .await
            .unwrap()
            .items
            .iter()
            .map(|entry| (entry.seq, entry.op))
            .collect();
        assert_eq!(
            numbers,
            [(1, Op::Put), (2, Op::Put), (3, Op::Put), (4, Op::Delete)]
        );
    }

    #[tokio::test]
    async fn a_journaled_record_goes_in_with_its_transaction() {
        let (_dir, warehouse) = seeded();
        let connection = warehouse.api();
        let mut connection = connection.lock().unwrap();
        let (acme, cell) = (TenantId::new("acme").unwrap(), scenario::cell("SKU-1", 1));
        let at = now();
        let mut last_seq = 0;
        let entry = HistoryChange {
            tenant: &acme,
            cell: &cell,
            op: Op::Put,
            old: None,
            new: Some(Quantity::parse("1.25").unwrap()),
            note: None,
            version: 1,
            user: "ann",
            at,
        }
        .numbered(&mut last_seq);
        let count = |connection: &Connection| -> (i64, i64) {
            connection
                .query_row(
                    "SELECT (SELECT count(*) FROM SNOWCAST.APP.EDIT_HISTORY), \
                     (SELECT count(*) FROM SNOWCAST.APP.MANUAL_EDITS_HT)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap()
        };
        let transaction = connection.transaction().unwrap();
        apply_entries(&transaction, std::iter::once(&entry)).unwrap();
        assert_eq!(count(&transaction), (1, 1));
        drop(transaction); // rolled back
        assert_eq!(count(&connection), (0, 0));
        let record = Record {
            entries: vec![entry],
        };
        apply_records(&mut connection, std::slice::from_ref(&record)).unwrap();
        let (quantity, at_micros, change): (String, i64, String) = connection
            .query_row(
                "SELECT CAST(NEW_QUANTITY AS VARCHAR), epoch_us(EDITED_AT), CHANGE_ID \
                 FROM SNOWCAST.APP.EDIT_HISTORY WHERE SEQ = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (quantity.as_str(), at_micros, change.as_str()),
            ("1.2500", at.timestamp_micros(), "local-1")
        );
    }

    #[tokio::test]
    async fn acknowledged_edits_a_crash_left_in_the_journal_are_applied_at_open() {
        let (dir, warehouse) = seeded();
        let acme = TenantId::new("acme").unwrap();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        store
            .put_edit(&acme, "ann", &scenario::edit("SKU-1", 2, "7.5", None), None)
            .await
            .unwrap();
        drop((store, warehouse));
        // What a kill -9 leaves: records synced to the journal, not yet in the tables (the
        // second already applied, as if the crash came between DuckDB's commit and the
        // journal's clearing), and a record cut short.
        let stamp = |minute: u32| format!("2026-12-07T10:{minute:02}:00+00:00");
        let put = |seq: i64, sku: &str, old: Option<&str>, new: &str, version: i64| Entry {
            seq,
            tenant: "acme".into(),
            sku: sku.into(),
            date: scenario::day(2).to_string(),
            op: Op::Put.as_str().into(),
            old: old.map(str::to_string),
            new: Some(new.into()),
            note: Some("from the journal".into()),
            version,
            user: "bob".into(),
            at: stamp(seq as u32),
        };
        let applied = Record {
            entries: vec![put(1, "SKU-1", None, "7.5", 1)],
        };
        let unapplied = [
            Record {
                entries: vec![put(2, "SKU-1", Some("7.5"), "8", 2)],
            },
            Record {
                entries: vec![put(3, "a/b c", None, "1", 1), put(4, "Ü'x", None, "2", 1)],
            },
            Record {
                entries: vec![Entry {
                    op: Op::Delete.as_str().into(),
                    new: None,
                    note: None,
                    ..put(5, "a/b c", Some("1"), "1", 1)
                }],
            },
        ];
        let warehouse = Warehouse::open(dir.path()).unwrap();
        {
            let (mut journal, _) = Journal::open(&warehouse.edit_journal()).unwrap();
            for record in std::iter::once(&applied).chain(&unapplied) {
                journal.append(record).unwrap();
            }
        }
        let mut torn = std::fs::OpenOptions::new()
            .append(true)
            .open(warehouse.edit_journal())
            .unwrap();
        std::io::Write::write_all(&mut torn, b"{\"entries\":[{\"seq\":6").unwrap();
        drop(torn);
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        let query = EditsQuery {
            sku_id: None,
            range: scenario::range(),
            limit: 100,
        };
        let edits: Vec<(String, String, i64)> = store
            .edits(&acme, &query)
            .await
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e.cell.sku_id.as_str().into(),
                    e.quantity.to_string(),
                    e.version,
                )
            })
            .collect();
        assert_eq!(
            edits,
            [
                ("SKU-1".into(), "8".into(), 2),
                ("Ü'x".into(), "2".into(), 1)
            ]
        );
        let history = store.history(&acme, &first_entries()).await.unwrap();
        let numbers: Vec<(i64, Op)> = history.items.iter().map(|e| (e.seq, e.op)).collect();
        assert_eq!(
            numbers,
            [
                (1, Op::Put),
                (2, Op::Put),
                (3, Op::Put),
                (4, Op::Put),
                (5, Op::Delete)
            ]
        );
        // The journal was emptied, and numbering goes on after the recovered entries.
        assert_eq!(
            std::fs::metadata(warehouse.edit_journal()).unwrap().len(),
            0
        );
        store
            .put_edit(&acme, "ann", &scenario::edit("SKU-2", 3, "4", None), None)
            .await
            .unwrap();
        let history = store.history(&acme, &first_entries()).await.unwrap();
        assert_eq!(history.items.last().map(|e| e.seq), Some(6));
        // What a reopen reads is what the store held.
        let live = lock(&store.state.cells).clone();
        drop((store, warehouse));
        assert_eq!(*lock(&reopened(dir.path()).await.state.cells), live);
    }

    #[tokio::test]
    async fn an_edit_is_acknowledged_once_journaled_and_reads_of_the_tables_wait_for_it() {
        let (_dir, warehouse) = seeded();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        let acme = TenantId::new("acme").unwrap();
        // The applier cannot write while another thread holds the API connection.
        let (locked, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let holder = std::thread::spawn({
            let (connection, locked, release) = (warehouse.api(), locked.0, release.1);
            move || {
                let _held = connection.lock().unwrap();
                locked.send(()).unwrap();
                let _ = release.recv();
            }
        });
        locked.1.recv().unwrap();
        store
            .put_edit(&acme, "ann", &scenario::edit("SKU-1", 2, "7.5", None), None)
            .await
            .unwrap();
        let page = store
            .forecast(
                &acme,
                &ForecastQuery {
                    sku_id: Some(SkuId::new("SKU-1").unwrap()),
                    range: DateRange::new(scenario::day(2), scenario::day(2)).unwrap(),
                    show_manual: true,
                    limit: 10,
                    after: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items[0].manual_quantity.unwrap().to_string(), "7.5");
        let journal = std::fs::read_to_string(warehouse.edit_journal()).unwrap();
        assert!(journal.contains("\"new\":\"7.5\""), "{journal}");
        let history = tokio::spawn({
            let store = Arc::new(store);
            async move { store.history(&acme, &first_entries()).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!history.is_finished(), "the history waits for the applier");
        release.0.send(()).unwrap();
        holder.join().unwrap();
        let history = history.await.unwrap().unwrap();
        assert_eq!(history.items.len(), 1);
    }

    /// A page of `V_FORECAST` itself, as (sku, date, draft, manual, version, note, editor,
    /// edit time), and whether more follow: what the copy in memory must answer.
    fn view_page(
        connection: &Connection,
        tenant: &TenantId,
        query: &ForecastQuery,
    ) -> (Vec<ViewRow>, bool) {
        let mut statement = connection
            .prepare_cached(
                "SELECT SKU_ID, CAST(DATE AS VARCHAR), CAST(DRAFT_QUANTITY AS VARCHAR), \
                 CAST(MANUAL_QUANTITY AS VARCHAR), CAST(VERSION AS BIGINT), NOTE, EDITED_BY, \
                 epoch_us(EDITED_AT) FROM SNOWCAST.APP.V_FORECAST \
                 WHERE TENANT_ID = $1 AND DATE BETWEEN CAST($2 AS DATE) AND CAST($3 AS DATE) \
                 AND ($4 IS NULL OR SKU_ID = $4) \
                 AND ($5 IS NULL OR SKU_ID > $5 OR (SKU_ID = $5 AND DATE > CAST($6 AS DATE))) \
                 ORDER BY SKU_ID, DATE LIMIT $7",
            )
            .unwrap();
        let after = query.after.as_ref();
        let mut rows: Vec<ViewRow> = statement
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
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        quantity_at(row, 2)?,
                        quantity_at(row, 3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                        row.get(7)?,
                    ))
                },
            )
            .unwrap()
            .collect::<duckdb::Result<_>>()
            .unwrap();
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        (rows, more)
    }

    type ViewRow = (
        String,
        String,
        Option<Quantity>,
        Option<Quantity>,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );

    fn as_view_row(row: &ForecastRow) -> ViewRow {
        (
            row.cell.sku_id.as_str().to_string(),
            row.cell.date.to_string(),
            row.draft_quantity,
            row.manual_quantity,
            row.version,
            row.note.as_ref().map(|note| note.as_str().to_string()),
            row.edited_by.clone(),
            row.edited_at.map(|at| at.timestamp_micros()),
        )
    }

    /// A small deterministic generator (no crate needed for a test's shuffling).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    const SKUS: [&str; 5] = ["SKU-1", "SKU-2", "a/b c", "Ü'x", "SKU-10"];

    /// Random edits, batches and reverts over drafted and undrafted cells of two tenants.
    async fn scramble(store: &DuckDbForecastStore, random: &mut Lcg) {
        for step in 0..120 {
            let tenant = TenantId::new(["acme", "globex"][random.below(2) as usize]).unwrap();
            let sku = SKUS[random.below(SKUS.len() as u64) as usize];
            let day = 1 + random.below(12) as u32;
            let quantity = format!("{}.{}", random.below(500), random.below(10_000));
            let note = (random.below(3) == 0).then(|| format!("step {step}"));
            match random.below(5) {
                0 => {
                    store
                        .revert_edit(&tenant, "ann", &scenario::cell(sku, day), None)
                        .await
                        .unwrap();
                }
                1 => {
                    let batch = [
                        scenario::edit(sku, day, &quantity, note.as_deref()),
                        scenario::edit(sku, day + 12, &quantity, None),
                    ];
                    store.put_edits(&tenant, "bob", &batch).await.unwrap();
                }
                _ => {
                    let edit = scenario::edit(sku, day, &quantity, note.as_deref());
                    store.put_edit(&tenant, "cy", &edit, None).await.unwrap();
                }
            }
        }
    }

    #[tokio::test]
    async fn pages_read_in_memory_are_the_pages_of_the_view() {
        let (_dir, warehouse) = seeded();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        scramble(&store, &mut Lcg(7)).await;
        store.caught_up().await.unwrap();
        let connection = warehouse.api();
        let widths = [(1, 10), (3, 3), (1, 28), (11, 12)];
        for tenant in ["acme", "globex", "initech"].map(|t| TenantId::new(t).unwrap()) {
            for sku in [
                None,
                Some("SKU-1"),
                Some("a/b c"),
                Some("Ü'x"),
                Some("none"),
            ] {
                for (from, to) in widths {
                    for (limit, show_manual) in [(1, true), (4, false), (1000, true)] {
                        let mut query = ForecastQuery {
                            sku_id: sku.map(|sku| SkuId::new(sku).unwrap()),
                            range: DateRange::new(scenario::day(from), scenario::day(to)).unwrap(),
                            show_manual,
                            limit,
                            after: None,
                        };
                        // Every page, following the cursor as a client does.
                        loop {
                            let page = store.forecast(&tenant, &query).await.unwrap();
                            let expected = view_page(&connection.lock().unwrap(), &tenant, &query);
                            let rows: Vec<ViewRow> = page.items.iter().map(as_view_row).collect();
                            assert_eq!((rows, page.more), expected, "{tenant:?} {query:?}");
                            match page.items.last() {
                                Some(last) if page.more => query.after = Some(last.cell.clone()),
                                _ => break,
                            }
                        }
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn the_copy_in_memory_is_what_a_reopen_reads() {
        let (dir, warehouse) = seeded();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        scramble(&store, &mut Lcg(11)).await;
        let live = lock(&store.state.cells).clone();
        drop((store, warehouse));
        let reopened = reopened(dir.path()).await;
        assert_eq!(*lock(&reopened.state.cells), live);
    }

    #[tokio::test]
    async fn a_rebuilt_draft_is_read_again_for_the_tenants_named() {
        let (_dir, warehouse) = seeded();
        let store = DuckDbForecastStore::open(&warehouse).await.unwrap();
        warehouse
            .api()
            .lock()
            .unwrap()
            .execute_batch(
                "UPDATE SNOWCAST.ANALYTICS.FORECAST_DRAFT SET DRAFT_QUANTITY = 3; \
                 DELETE FROM SNOWCAST.ANALYTICS.FORECAST_DRAFT WHERE SKU_ID = 'SKU-2'",
            )
            .unwrap();
        let query = ForecastQuery {
            sku_id: None,
            range: scenario::range(),
            show_manual: true,
            limit: 100,
            after: None,
        };
        let drafts = |page: Page<ForecastRow>| -> Vec<String> {
            page.items
                .iter()
                .map(|row| format!("{} {:?}", row.cell.sku_id.as_str(), row.draft_quantity))
                .collect()
        };
        let (acme, globex) = (
            TenantId::new("acme").unwrap(),
            TenantId::new("globex").unwrap(),
        );
        store
            .reload_drafts(std::slice::from_ref(&acme))
            .await
            .unwrap();
        let three = Some(Quantity::parse("3").unwrap());
        assert_eq!(
            drafts(store.forecast(&acme, &query).await.unwrap()),
            vec![format!("SKU-1 {three:?}"); 3]
        );
        // Not named: still the draft as read before.
        let old = Some(Quantity::parse("10.5").unwrap());
        assert_eq!(
            drafts(store.forecast(&globex, &query).await.unwrap()),
            vec![format!("SKU-1 {old:?}"); 3]
        );
    }
}
