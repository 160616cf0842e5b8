//! The forecast store in memory: drafts, edits, history and preferences in ordered maps
//! behind one lock, so each operation is atomic as the port requires. For the handlers'
//! tests, the contract tests and the benchmarks; not for production (nothing persists).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    domain::forecast::{
        Cell, DailySales, Edit, EditInput, EditsQuery, ForecastQuery, ForecastRow, HistoryEntry,
        HistoryQuery, Note, Op, Quantity, SalesQuery, SkuId, TenantId, Version,
    },
    error::{Error, Result},
    ports::forecast::{EditStore, ForecastRead, Page, PrefsStore, PutOutcome, RevertOutcome},
};

use super::cells::{Cells, ForecastCells, selects};

#[derive(Debug, Default)]
struct State {
    cells: ForecastCells,
    sales: BTreeMap<TenantId, Cells<i64>>,
    history: BTreeMap<TenantId, Vec<HistoryEntry>>,
    /// The last history position handed out (positions increase across tenants).
    seq: i64,
    prefs: BTreeMap<(TenantId, String, String), serde_json::Value>,
    /// Counts store calls, so tests can assert that a rejected request made none.
    calls: usize,
    /// The error the next call fails with, as a real store's fault would.
    fault: Option<Error>,
}

/// The forecast store in memory. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryForecastStore {
    state: Arc<Mutex<State>>,
    clock: Option<DateTime<Utc>>,
}

impl MemoryForecastStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stamps every change with `now` instead of the wall clock (deterministic tests).
    pub fn with_clock(mut self, now: DateTime<Utc>) -> Self {
        self.clock = Some(now);
        self
    }

    /// Sets a draft quantity, as the gold model would.
    pub fn put_draft(&self, tenant: &TenantId, sku: &SkuId, date: NaiveDate, quantity: Quantity) {
        self.lock().cells.set_draft(tenant, sku, date, quantity);
    }

    /// Sets a day's units sold, as a load would.
    pub fn put_sales(&self, tenant: &TenantId, sku: &SkuId, date: NaiveDate, units: i64) {
        self.lock()
            .sales
            .entry(tenant.clone())
            .or_default()
            .insert((sku.clone(), date), units);
    }

    /// Store calls made so far (reads and writes).
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps (each change is one insert).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// Makes the next call fail with `error` (a throttle, a lost connection, a bad SQL).
    pub fn fail_next(&self, error: Error) {
        self.lock().fault = Some(error);
    }

    fn call(&self) -> Result<MutexGuard<'_, State>> {
        let mut state = self.lock();
        state.calls += 1;
        match state.fault.take() {
            Some(error) => Err(error),
            None => Ok(state),
        }
    }
}

impl State {
    /// Applies one edit (no version check) and records its history entry.
    fn apply(
        &mut self,
        tenant: &TenantId,
        user: &str,
        input: &EditInput,
        now: DateTime<Utc>,
    ) -> PutOutcome {
        let old = self.cells.edit(tenant, &input.cell);
        if let Some(old) = old.filter(|old| old.same_as(input)) {
            return PutOutcome::Unchanged(old.clone());
        }
        let old_quantity = old.map(|old| old.quantity);
        let edit = Edit {
            cell: input.cell.clone(),
            quantity: input.quantity,
            note: input.note.clone(),
            version: old.map_or(0, |old| old.version) + 1,
            edited_by: user.to_string(),
            edited_at: now,
        };
        self.cells.set_edit(tenant, edit.clone());
        self.record(
            tenant,
            &input.cell,
            Op::Put,
            old_quantity,
            Some(input.quantity),
            input.note.clone(),
            user,
            now,
        );
        PutOutcome::Applied(edit)
    }

    #[allow(clippy::too_many_arguments)] // one history entry's fields
    fn record(
        &mut self,
        tenant: &TenantId,
        cell: &Cell,
        op: Op,
        old_quantity: Option<Quantity>,
        new_quantity: Option<Quantity>,
        note: Option<Note>,
        user: &str,
        now: DateTime<Utc>,
    ) {
        self.seq += 1;
        let entry = HistoryEntry {
            seq: self.seq,
            cell: cell.clone(),
            op,
            old_quantity,
            new_quantity,
            note,
            edited_by: user.to_string(),
            edited_at: now,
        };
        self.history.entry(tenant.clone()).or_default().push(entry);
    }
}

#[async_trait]
impl ForecastRead for MemoryForecastStore {
    async fn forecast(
        &self,
        tenant: &TenantId,
        query: &ForecastQuery,
    ) -> Result<Page<ForecastRow>> {
        Ok(self.call()?.cells.page(tenant, query))
    }

    async fn sales(&self, tenant: &TenantId, query: &SalesQuery) -> Result<Vec<DailySales>> {
        let state = self.call()?;
        let Some(sales) = state.sales.get(tenant) else {
            return Ok(Vec::new());
        };
        let from = (query.sku_id.clone(), query.range.from);
        let to = (query.sku_id.clone(), query.range.to);
        Ok(sales
            .range(from..=to)
            .map(|((_, date), units)| DailySales {
                date: *date,
                units: *units,
            })
            .collect())
    }
}

#[async_trait]
impl EditStore for MemoryForecastStore {
    async fn put_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        edit: &EditInput,
        expected: Option<Version>,
    ) -> Result<PutOutcome> {
        let now = self.now();
        let mut state = self.call()?;
        let current = state.cells.version(tenant, &edit.cell);
        if expected.is_some_and(|expected| expected != current) {
            return Ok(PutOutcome::Stale { current });
        }
        Ok(state.apply(tenant, user, edit, now))
    }

    async fn put_edits(
        &self,
        tenant: &TenantId,
        user: &str,
        edits: &[EditInput],
    ) -> Result<Vec<PutOutcome>> {
        let now = self.now();
        let mut state = self.call()?;
        let mut cells: Vec<&Cell> = edits.iter().map(|edit| &edit.cell).collect();
        cells.sort();
        if cells.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(Error::invalid("edits", "the batch names a cell twice"));
        }
        Ok(edits
            .iter()
            .map(|edit| state.apply(tenant, user, edit, now))
            .collect())
    }

    async fn revert_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        cell: &Cell,
        expected: Option<Version>,
    ) -> Result<RevertOutcome> {
        let now = self.now();
        let mut state = self.call()?;
        let current = state.cells.version(tenant, cell);
        if expected.is_some_and(|expected| expected != current) {
            return Ok(RevertOutcome::Stale { current });
        }
        let Some(old) = state.cells.remove_edit(tenant, cell) else {
            return Ok(RevertOutcome::NotFound);
        };
        state.record(
            tenant,
            cell,
            Op::Delete,
            Some(old.quantity),
            None,
            None,
            user,
            now,
        );
        Ok(RevertOutcome::Reverted)
    }

    async fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Result<Vec<Edit>> {
        Ok(self.call()?.cells.edits(tenant, query))
    }

    async fn history(&self, tenant: &TenantId, query: &HistoryQuery) -> Result<Page<HistoryEntry>> {
        let state = self.call()?;
        let mut items: Vec<HistoryEntry> = state
            .history
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|entry| {
                selects(
                    &query.range,
                    query.sku_id.as_ref(),
                    &entry.cell.sku_id,
                    entry.cell.date,
                ) && query.after.is_none_or(|after| entry.seq > after)
            })
            .take(query.limit + 1)
            .cloned()
            .collect();
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        Ok(Page { items, more })
    }
}

#[async_trait]
impl PrefsStore for MemoryForecastStore {
    async fn prefs(
        &self,
        tenant: &TenantId,
        user: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        let state = self.call()?;
        Ok(state
            .prefs
            .iter()
            .filter(|((t, u, _), _)| t == tenant && u == user)
            .map(|((_, _, key), value)| (key.clone(), value.clone()))
            .collect())
    }

    async fn put_pref(
        &self,
        tenant: &TenantId,
        user: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        self.call()?.prefs.insert(
            (tenant.clone(), user.to_string(), key.to_string()),
            value.clone(),
        );
        Ok(())
    }
}
