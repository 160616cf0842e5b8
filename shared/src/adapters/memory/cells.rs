//! The two tables `V_FORECAST` joins, in memory: each tenant's draft quantities and manual
//! edits, in (sku_id, date) order, with the view's page read. The memory twin keeps its
//! forecast here, and the local stack's store serves reads from a copy of its warehouse's
//! tables (see `snowcast-local`'s `warehouse::store`), so both read pages the same way.

use std::{collections::BTreeMap, ops::Bound};

use chrono::NaiveDate;

use crate::{
    domain::forecast::{
        Cell, DateRange, Edit, EditsQuery, ForecastQuery, ForecastRow, Quantity, SkuId, TenantId,
        Version,
    },
    ports::forecast::Page,
};

/// A tenant's cells in (sku_id, date) order, as the views are read.
pub type Cells<V> = BTreeMap<(SkuId, NaiveDate), V>;

/// Drafts and edits per tenant.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ForecastCells {
    drafts: BTreeMap<TenantId, Cells<Quantity>>,
    edits: BTreeMap<TenantId, Cells<Edit>>,
}

/// A cell's key in [`Cells`].
pub fn key(cell: &Cell) -> (SkuId, NaiveDate) {
    (cell.sku_id.clone(), cell.date)
}

/// Whether a cell is in the days and (if one is named) the SKU a query asks for.
pub fn selects(range: &DateRange, wanted: Option<&SkuId>, sku: &SkuId, date: NaiveDate) -> bool {
    range.contains(date) && wanted.is_none_or(|wanted| wanted == sku)
}

impl ForecastCells {
    /// Sets a draft quantity.
    pub fn set_draft(
        &mut self,
        tenant: &TenantId,
        sku: &SkuId,
        date: NaiveDate,
        quantity: Quantity,
    ) {
        self.drafts
            .entry(tenant.clone())
            .or_default()
            .insert((sku.clone(), date), quantity);
    }

    /// Replaces a tenant's whole draft, as a model refresh does.
    pub fn replace_drafts(&mut self, tenant: &TenantId, drafts: Cells<Quantity>) {
        self.drafts.insert(tenant.clone(), drafts);
    }

    /// The cell's edit, if it has one.
    pub fn edit(&self, tenant: &TenantId, cell: &Cell) -> Option<&Edit> {
        self.edits.get(tenant)?.get(&key(cell))
    }

    /// The cell's version (0 when it has no edit).
    pub fn version(&self, tenant: &TenantId, cell: &Cell) -> Version {
        self.edit(tenant, cell).map_or(0, |edit| edit.version)
    }

    /// Stores `edit`, replacing the cell's previous one.
    pub fn set_edit(&mut self, tenant: &TenantId, edit: Edit) {
        self.edits
            .entry(tenant.clone())
            .or_default()
            .insert(key(&edit.cell), edit);
    }

    /// Removes the cell's edit; returns it.
    pub fn remove_edit(&mut self, tenant: &TenantId, cell: &Cell) -> Option<Edit> {
        self.edits.get_mut(tenant)?.remove(&key(cell))
    }

    /// The edits a query selects, in (sku_id, date) order.
    pub fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Vec<Edit> {
        self.edits
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|((sku, date), _)| selects(&query.range, query.sku_id.as_ref(), sku, *date))
            .map(|(_, edit)| edit.clone())
            .take(query.limit)
            .collect()
    }

    /// A page of `V_FORECAST`: the cells with a draft, an edit or both, joined.
    pub fn page(&self, tenant: &TenantId, query: &ForecastQuery) -> Page<ForecastRow> {
        let drafts = self.drafts.get(tenant);
        let edits = self.edits.get(tenant);
        // The first limit + 1 of the union lie within the first limit + 1 of each side.
        let mut keys = first_cells(drafts, query, query.limit + 1);
        keys.extend(first_cells(edits, query, query.limit + 1));
        keys.sort();
        keys.dedup();
        let more = keys.len() > query.limit;
        keys.truncate(query.limit);
        let items = keys
            .into_iter()
            .map(|key| {
                let draft = drafts.and_then(|cells| cells.get(&key)).copied();
                let edit = edits.and_then(|cells| cells.get(&key));
                let cell = Cell {
                    sku_id: key.0,
                    date: key.1,
                };
                ForecastRow::join(cell, draft, edit, query.show_manual)
            })
            .collect();
        Page { items, more }
    }
}

/// The first `limit` cells of `cells` that `query` selects, in order.
fn first_cells<V>(
    cells: Option<&Cells<V>>,
    query: &ForecastQuery,
    limit: usize,
) -> Vec<(SkuId, NaiveDate)> {
    let Some(cells) = cells else {
        return Vec::new();
    };
    let lower = match (&query.sku_id, &query.after) {
        (Some(sku), None) => Bound::Included((sku.clone(), query.range.from)),
        (_, Some(after)) => Bound::Excluded(key(after)),
        (None, None) => Bound::Unbounded,
    };
    let upper = match &query.sku_id {
        Some(sku) => Bound::Included((sku.clone(), query.range.to)),
        None => Bound::Unbounded,
    };
    // A cursor past the SKU's last day selects nothing (and BTreeMap::range would panic).
    if let (Bound::Included(low) | Bound::Excluded(low), Bound::Included(high)) = (&lower, &upper)
        && low > high
    {
        return Vec::new();
    }
    cells
        .range((lower, upper))
        .map(|(key, _)| key)
        .filter(|(sku, date)| selects(&query.range, query.sku_id.as_ref(), sku, *date))
        .take(limit)
        .cloned()
        .collect()
}
