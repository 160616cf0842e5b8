//! Forecast store port: the app layer of the warehouse (`V_FORECAST`, `ANALYTICS.SALES_DAILY`,
//! `MANUAL_EDITS_HT`, the edit history, `USER_PREFS_HT`). Adapters: Snowflake SQL API
//! (`adapters::snowflake::forecast`), memory (`adapters::memory::forecast`).
//!
//! Guarantees every adapter gives:
//! - Every operation is scoped to one tenant; no call reads or writes another tenant's rows.
//! - A write and its history entry commit together or not at all; a batch is all or nothing.
//! - A version check (`expected`) and the write it guards are one atomic step: of two
//!   writers holding the same version, exactly one wins.
//! - An edit that changes nothing (same quantity and note) keeps its version and adds no
//!   history entry.
//! - A read after a successful write sees it (read-your-writes across sessions).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{
    domain::forecast::{
        Cell, DailySales, Edit, EditInput, EditsQuery, ForecastQuery, ForecastRow, HistoryEntry,
        HistoryQuery, SalesQuery, TenantId, Version,
    },
    error::Result,
};

/// A page of rows and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows, in the query's order.
    pub items: Vec<T>,
    /// Whether rows follow the last one.
    pub more: bool,
}

/// How a single-cell write ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// The edit was stored with a new version.
    Applied(Edit),
    /// The same quantity and note were already there: nothing changed.
    Unchanged(Edit),
    /// The cell is not at the expected version; nothing changed.
    Stale {
        /// The cell's version now (0: no edit).
        current: Version,
    },
}

/// How a revert ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RevertOutcome {
    /// The edit was removed; the cell shows the draft again.
    Reverted,
    /// There was no edit.
    NotFound,
    /// The cell is not at the expected version; nothing changed.
    Stale {
        /// The cell's version now.
        current: Version,
    },
}

/// Reads `V_FORECAST`, and the sales it was made from (`ANALYTICS.SALES_DAILY`).
#[async_trait]
pub trait ForecastRead: Send + Sync {
    /// One keyset page, ordered by (sku_id, date).
    async fn forecast(&self, tenant: &TenantId, query: &ForecastQuery)
    -> Result<Page<ForecastRow>>;

    /// A SKU's daily sales in a range, by date (days without a sale left out).
    async fn sales(&self, tenant: &TenantId, query: &SalesQuery) -> Result<Vec<DailySales>>;
}

/// Writes and lists manual edits, and reads their history.
#[async_trait]
pub trait EditStore: Send + Sync {
    /// Sets one cell; with `expected`, only if the cell is at that version.
    async fn put_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        edit: &EditInput,
        expected: Option<Version>,
    ) -> Result<PutOutcome>;

    /// Sets many cells at once, last writer wins, all or nothing. One outcome per input,
    /// in order (never `Stale`). Inputs name distinct cells.
    async fn put_edits(
        &self,
        tenant: &TenantId,
        user: &str,
        edits: &[EditInput],
    ) -> Result<Vec<PutOutcome>>;

    /// Reverts one cell to its draft; with `expected`, only if at that version.
    async fn revert_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        cell: &Cell,
        expected: Option<Version>,
    ) -> Result<RevertOutcome>;

    /// The edits of a range, ordered by (sku_id, date).
    async fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Result<Vec<Edit>>;

    /// A page of accepted changes, oldest first.
    async fn history(&self, tenant: &TenantId, query: &HistoryQuery) -> Result<Page<HistoryEntry>>;
}

/// A user's preferences: JSON values by key.
#[async_trait]
pub trait PrefsStore: Send + Sync {
    /// Every preference of a user.
    async fn prefs(
        &self,
        tenant: &TenantId,
        user: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>>;

    /// Sets one preference.
    async fn put_pref(
        &self,
        tenant: &TenantId,
        user: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()>;
}
