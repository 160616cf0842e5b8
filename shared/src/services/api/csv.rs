//! The spreadsheet round trip: `GET /v1/forecast?format=csv` writes the columns
//! `sku_id,date,quantity,note,draft_quantity,manual_quantity,version`, and
//! `POST /v1/edits` with `text/csv` reads them back (only `sku_id,date,quantity` are
//! required; `note` is optional; other columns are ignored).
//!
//! A row of the forecast a planner did not touch is not an edit: when the file has the
//! `draft_quantity` and `manual_quantity` columns, a row whose quantity equals its draft and
//! which had no manual value is skipped, as is a row with no quantity at all. So a whole
//! exported page can be sent back and only the changed cells become edits.

use super::problem::ApiError;
use crate::{
    domain::forecast::{Cell, EditInput, ForecastRow, Note, Quantity, SkuId, parse_date},
    error::Error,
};

/// Media type of the CSV bodies.
pub const TEXT_CSV: &str = "text/csv; charset=utf-8";
const HEADER: [&str; 7] = [
    "sku_id",
    "date",
    "quantity",
    "note",
    "draft_quantity",
    "manual_quantity",
    "version",
];

/// Writes forecast rows as CSV (RFC 4180 quoting; values verbatim).
pub fn write_forecast(rows: &[ForecastRow]) -> crate::error::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |error: csv::Error| Error::io("writing CSV", std::io::Error::other(error));
    writer.write_record(HEADER).map_err(failed)?;
    let text = |quantity: Option<Quantity>| quantity.map(|q| q.to_string()).unwrap_or_default();
    for row in rows {
        let record = [
            row.cell.sku_id.as_str().to_string(),
            row.cell.date.to_string(),
            text(row.quantity),
            row.note.as_ref().map_or("", Note::as_str).to_string(),
            text(row.draft_quantity),
            text(row.manual_quantity),
            row.version.to_string(),
        ];
        writer.write_record(&record).map_err(failed)?;
    }
    writer
        .into_inner()
        .map_err(|error| Error::io("writing CSV", error.into_error()))
}

/// Edits read from a CSV body, and how many rows were not edits.
#[derive(Debug)]
pub struct CsvEdits {
    /// The edits, in file order.
    pub edits: Vec<EditInput>,
    /// Rows that changed nothing (untouched draft, or no quantity).
    pub skipped: usize,
}

struct Columns {
    sku: usize,
    date: usize,
    quantity: usize,
    note: Option<usize>,
    draft: Option<usize>,
    manual: Option<usize>,
}

fn columns(header: &csv::StringRecord) -> Result<Columns, ApiError> {
    let find = |name: &str| {
        header
            .iter()
            .position(|column| column.trim().trim_start_matches('\u{feff}') == name)
    };
    let required = |name: &str| {
        find(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the CSV has no {name} column (header: sku_id,date,quantity,note)"
            ))
        })
    };
    Ok(Columns {
        sku: required("sku_id")?,
        date: required("date")?,
        quantity: required("quantity")?,
        note: find("note"),
        draft: find("draft_quantity"),
        manual: find("manual_quantity"),
    })
}

/// Reads edits from CSV; an error names the line and column.
pub fn read_edits(body: &[u8]) -> Result<CsvEdits, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(body);
    let header = reader
        .headers()
        .map_err(|error| ApiError::BadRequest(format!("invalid CSV header: {error}")))?
        .clone();
    let columns = columns(&header)?;
    let mut found = CsvEdits {
        edits: Vec::new(),
        skipped: 0,
    };
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|error| {
            ApiError::BadRequest(format!("invalid CSV at line {line}: {error}"))
        })?;
        match edit_of(&record, &columns)
            .map_err(|message| ApiError::BadRequest(format!("line {line}: {message}")))?
        {
            Some(edit) => found.edits.push(edit),
            None => found.skipped += 1,
        }
    }
    Ok(found)
}

fn edit_of(record: &csv::StringRecord, columns: &Columns) -> Result<Option<EditInput>, String> {
    let field = |index: usize| record.get(index).unwrap_or_default();
    let optional = |index: Option<usize>| index.map(field).filter(|value| !value.is_empty());
    let quantity_text = field(columns.quantity);
    if quantity_text.is_empty() {
        return Ok(None);
    }
    let quantity = Quantity::parse(quantity_text).map_err(|error| error.to_string())?;
    if columns.draft.is_some() && columns.manual.is_some() && optional(columns.manual).is_none() {
        let draft = optional(columns.draft)
            .map(Quantity::parse)
            .transpose()
            .map_err(|error| error.to_string())?;
        if draft == Some(quantity) {
            return Ok(None);
        }
    }
    let cell = Cell {
        sku_id: SkuId::new(field(columns.sku)).map_err(|error| error.to_string())?,
        date: parse_date("date", field(columns.date)).map_err(|error| error.to_string())?,
    };
    let note = optional(columns.note)
        .map(Note::new)
        .transpose()
        .map_err(|error| error.to_string())?;
    Ok(Some(EditInput {
        cell,
        quantity,
        note,
    }))
}
