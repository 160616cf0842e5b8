//! The forecast a planner reads and corrects: draft rows from the gold model, manual edits
//! over them (one per tenant, SKU and day, versioned), the history of every accepted
//! change, and per-user preferences.
//!
//! Every value a client sends is validated here, once, into a type that cannot hold a bad
//! value: a [`SkuId`], a [`Quantity`], a [`Note`], a [`DateRange`]. Stores and handlers take
//! these types, so nothing unchecked reaches SQL (which binds them anyway).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize, Serializer};

use super::naming;
use crate::error::{Error, Result};

/// Longest SKU id, in characters.
pub const MAX_SKU_CHARS: usize = 128;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Widest date range a request may ask for, in days (`from` and `to` inclusive).
pub const MAX_RANGE_DAYS: i64 = 366;
/// Largest page of rows.
pub const MAX_PAGE: usize = 1_000;
/// Default page size.
pub const DEFAULT_PAGE: usize = 100;
/// Most edits one atomic batch may hold.
pub const MAX_BATCH: usize = 500;
/// Most edits `GET /v1/edits` returns at once (narrow the range or pick a SKU for more).
pub const MAX_EDITS_LISTED: usize = 10_000;
/// Longest preference key, in bytes (`[A-Za-z0-9_-]`).
pub const MAX_PREF_KEY: usize = 64;
/// Largest preference value, as JSON text.
pub const MAX_PREF_BYTES: usize = 16 * 1024;

/// Decimal places a quantity may have (Snowflake `NUMBER(15,4)`).
const QUANTITY_SCALE: u32 = 4;
const QUANTITY_UNIT: i64 = 10_i64.pow(QUANTITY_SCALE);
/// Quantities stay below 10^11 so that, with four decimals, they have at most 15
/// significant digits and survive a trip through a JSON (f64) number unchanged.
const QUANTITY_LIMIT: i64 = 100_000_000_000 * QUANTITY_UNIT;

/// A tenant, as the verified token names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// Checks a tenant id: 1-64 of `[A-Za-z0-9_-]`, as in bronze keys.
    pub fn new(tenant: &str) -> Result<Self> {
        naming::validate_tenant(tenant)?;
        Ok(TenantId(tenant.to_string()))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product id: 1-128 characters, no control characters. Anything else is allowed
/// (slashes, quotes, spaces, non-ASCII): it is data, always bound, never spliced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SkuId(String);

impl SkuId {
    /// Checks a SKU id.
    pub fn new(sku: &str) -> Result<Self> {
        let chars = sku.chars().count();
        if chars == 0 || chars > MAX_SKU_CHARS {
            return Err(Error::invalid(
                "sku_id",
                format!("must be 1-{MAX_SKU_CHARS} characters, not {chars}"),
            ));
        }
        if sku.chars().any(char::is_control) {
            return Err(Error::invalid(
                "sku_id",
                "must not contain control characters",
            ));
        }
        Ok(SkuId(sku.to_string()))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A non-negative quantity with at most four decimals, kept exactly as ten-thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i64);

impl Quantity {
    /// Zero.
    pub const ZERO: Quantity = Quantity(0);

    /// Parses decimal text (`12`, `12.5`, `1.25e2`, `0.0001`); rejects negatives, more than
    /// four decimals, non-finite values and values of 10^11 or more.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid("quantity", format!("{text:?} {why}"));
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (
                &text[..at],
                text[at + 1..]
                    .parse::<i32>()
                    .map_err(|_| bad("is not a number"))?,
            ),
            None => (text, 0),
        };
        let mantissa = mantissa.strip_prefix('+').unwrap_or(mantissa);
        let (negative, mantissa) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty())
            || !digits_only(whole)
            || !digits_only(fraction)
        {
            return Err(bad("is not a number"));
        }
        // value = digits * 10^-scale, with the digits' leading and trailing zeros dropped.
        let all = format!("{whole}{fraction}");
        let significant = all.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        if digits.is_empty() {
            return Ok(Quantity::ZERO);
        }
        if negative {
            return Err(bad("is negative"));
        }
        let scale =
            fraction.len() as i64 - i64::from(exponent) - (significant.len() - digits.len()) as i64;
        if scale > i64::from(QUANTITY_SCALE) {
            return Err(bad("has more than 4 decimals"));
        }
        let shift = i64::from(QUANTITY_SCALE) - scale;
        if digits.len() as i64 + shift > 15 {
            return Err(bad("is too large (at most 10^11)"));
        }
        let units =
            digits.parse::<i64>().map_err(|_| bad("is too large"))? * 10_i64.pow(shift as u32);
        if units >= QUANTITY_LIMIT {
            return Err(bad("is too large (at most 10^11)"));
        }
        Ok(Quantity(units))
    }

    /// A JSON number, checked like text.
    pub fn from_json(value: &serde_json::Value) -> Result<Self> {
        match value {
            serde_json::Value::Number(number) => Quantity::parse(&number.to_string()),
            other => Err(Error::invalid(
                "quantity",
                format!("must be a number, not {other}"),
            )),
        }
    }

    /// From ten-thousandths, as stores keep it.
    pub fn from_units(units: i64) -> Result<Self> {
        if (0..QUANTITY_LIMIT).contains(&units) {
            Ok(Quantity(units))
        } else {
            Err(Error::invalid(
                "quantity",
                format!("{units} ten-thousandths is out of range"),
            ))
        }
    }

    /// Ten-thousandths.
    pub fn units(self) -> i64 {
        self.0
    }

    /// The nearest f64; exact in the sense that it prints back as [`Quantity`]'s text.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / QUANTITY_UNIT as f64
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / QUANTITY_UNIT;
        let fraction = self.0 % QUANTITY_UNIT;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let fraction = format!("{fraction:04}");
        write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        if self.0 % QUANTITY_UNIT == 0 {
            serializer.serialize_i64(self.0 / QUANTITY_UNIT)
        } else {
            serializer.serialize_f64(self.as_f64())
        }
    }
}

/// A planner's note on an edit: at most 1,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Note(String);

impl Note {
    /// Checks a note.
    pub fn new(note: &str) -> Result<Self> {
        let chars = note.chars().count();
        if chars > MAX_NOTE_CHARS {
            return Err(Error::invalid(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters, not {chars}"),
            ));
        }
        Ok(Note(note.to_string()))
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses an ISO date (`YYYY-MM-DD`).
pub fn parse_date(what: &'static str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|date| date.format("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| Error::invalid(what, format!("{text:?} is not an ISO date (YYYY-MM-DD)")))
}

/// An inclusive range of days, at most [`MAX_RANGE_DAYS`] wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

impl DateRange {
    /// Checks `from <= to` and the width.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self> {
        if from > to {
            return Err(Error::invalid(
                "to",
                format!("{to} is before from ({from})"),
            ));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_RANGE_DAYS {
            return Err(Error::invalid(
                "to",
                format!("the range spans {days} days; at most {MAX_RANGE_DAYS}"),
            ));
        }
        Ok(DateRange { from, to })
    }
    /// Whether `date` is in the range.
    pub fn contains(&self, date: NaiveDate) -> bool {
        (self.from..=self.to).contains(&date)
    }
}

/// A cell's version: 0 when never edited (or reverted), then 1, 2, ... per accepted change.
pub type Version = i64;

/// One forecast cell: a SKU on a day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Cell {
    /// The product.
    pub sku_id: SkuId,
    /// The day.
    pub date: NaiveDate,
}

/// What a planner asks to set on a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct EditInput {
    /// The cell.
    pub cell: Cell,
    /// The quantity to show instead of the draft.
    pub quantity: Quantity,
    /// Why (optional).
    pub note: Option<Note>,
}

/// A manual edit as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edit {
    /// The cell.
    #[serde(flatten)]
    pub cell: Cell,
    /// The planner's quantity.
    pub quantity: Quantity,
    /// The planner's note.
    pub note: Option<Note>,
    /// The cell's version after this edit (>= 1).
    pub version: Version,
    /// The user (`sub`) who made it.
    pub edited_by: String,
    /// When it was accepted.
    pub edited_at: DateTime<Utc>,
}

impl Edit {
    /// Whether `input` would change nothing (same quantity and note).
    pub fn same_as(&self, input: &EditInput) -> bool {
        self.quantity == input.quantity && self.note == input.note
    }
}

/// One row of `v_forecast`: the draft, the edit over it, and what to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRow {
    /// The cell.
    #[serde(flatten)]
    pub cell: Cell,
    /// The model's quantity (null for a cell edited without a draft).
    pub draft_quantity: Option<Quantity>,
    /// The planner's quantity, if edited.
    pub manual_quantity: Option<Quantity>,
    /// What the planner sees: the manual value when shown and present, else the draft.
    pub quantity: Option<Quantity>,
    /// The cell's version (0 when never edited).
    pub version: Version,
    /// The edit's note.
    pub note: Option<Note>,
    /// Who edited it.
    pub edited_by: Option<String>,
    /// When it was edited.
    pub edited_at: Option<DateTime<Utc>>,
}

impl ForecastRow {
    /// Joins a draft value and an edit, the way `V_FORECAST` does.
    pub fn join(
        cell: Cell,
        draft: Option<Quantity>,
        edit: Option<&Edit>,
        show_manual: bool,
    ) -> Self {
        let manual = edit.map(|e| e.quantity);
        ForecastRow {
            quantity: if show_manual { manual.or(draft) } else { draft },
            cell,
            draft_quantity: draft,
            manual_quantity: manual,
            version: edit.map_or(0, |e| e.version),
            note: edit.and_then(|e| e.note.clone()),
            edited_by: edit.map(|e| e.edited_by.clone()),
            edited_at: edit.map(|e| e.edited_at),
        }
    }
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A quantity or note was set.
    Put,
    /// The cell was reverted to the draft.
    Delete,
}

impl Op {
    /// `put` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Delete => "delete",
        }
    }
    /// Parses `put` or `delete`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "put" => Ok(Op::Put),
            "delete" => Ok(Op::Delete),
            other => Err(Error::invalid(
                "op",
                format!("{other:?} is not put or delete"),
            )),
        }
    }
}

/// One accepted change, append-only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Position in the tenant's history (increasing with time); the page cursor.
    #[serde(skip)]
    pub seq: i64,
    /// The cell.
    #[serde(flatten)]
    pub cell: Cell,
    /// Put or delete.
    pub op: Op,
    /// The manual quantity before (null: the draft was shown).
    pub old_quantity: Option<Quantity>,
    /// The manual quantity after (null for a delete).
    pub new_quantity: Option<Quantity>,
    /// The note of the change.
    pub note: Option<Note>,
    /// Who.
    pub edited_by: String,
    /// When.
    pub edited_at: DateTime<Utc>,
}

/// A keyset page request of `v_forecast`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastQuery {
    /// One SKU, or all.
    pub sku_id: Option<SkuId>,
    /// The days.
    pub range: DateRange,
    /// Whether `quantity` shows manual values.
    pub show_manual: bool,
    /// At most this many rows.
    pub limit: usize,
    /// Rows strictly after this cell, in (sku_id, date) order.
    pub after: Option<Cell>,
}

/// Edits of a range, for `GET /v1/edits`.
#[derive(Debug, Clone, PartialEq)]
pub struct EditsQuery {
    /// One SKU, or all.
    pub sku_id: Option<SkuId>,
    /// The days.
    pub range: DateRange,
    /// At most this many edits, in (sku_id, date) order.
    pub limit: usize,
}

/// A page of the change history, newest last.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// One SKU, or all.
    pub sku_id: Option<SkuId>,
    /// The days of the edited cells.
    pub range: DateRange,
    /// At most this many entries.
    pub limit: usize,
    /// Entries strictly after this position.
    pub after: Option<i64>,
}

/// One SKU's sales, for `GET /v1/sales` (the actuals charted beside the forecast).
#[derive(Debug, Clone, PartialEq)]
pub struct SalesQuery {
    /// The SKU.
    pub sku_id: SkuId,
    /// The days.
    pub range: DateRange,
}

/// Units a SKU sold on one day, summed over locations; a day a later file restated counts
/// once, as last loaded (what the model reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailySales {
    /// The day.
    pub date: NaiveDate,
    /// Units sold (negative when returns outweighed sales).
    pub units: i64,
}

/// Checks a page size: 1..=[`MAX_PAGE`].
pub fn page_size(limit: usize) -> Result<usize> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid(
            "limit",
            format!("{limit} is not in 1..={MAX_PAGE}"),
        ))
    }
}

/// Checks a preference key: 1-64 of `[A-Za-z0-9_-]`.
pub fn pref_key(key: &str) -> Result<String> {
    naming::validate_segment("preference key", key, MAX_PREF_KEY)?;
    Ok(key.to_string())
}

/// Checks a preference value's size.
pub fn pref_value(value: &serde_json::Value) -> Result<()> {
    let size = value.to_string().len();
    if size > MAX_PREF_BYTES {
        return Err(Error::invalid(
            "value",
            format!("{size} bytes of JSON; at most {MAX_PREF_BYTES}"),
        ));
    }
    Ok(())
}
