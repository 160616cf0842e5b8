//! What the first MiB of a file decides: the delimiter, the header, and which CSV field
//! feeds which silver column (with sniffed types for a dataset without a contract).
//!
//! A file the plan cannot be made for (no header, a malformed or too-wide header, missing
//! required columns) is refused with a reason; the converter then still counts its records.

use super::{
    columns::FieldRules,
    input::not_utf8,
    records::{Malformed, RecordLimits, RecordSplitter},
    sniff::{self, ColumnSniffer},
};
use crate::domain::{
    contract::{ColumnSpec, ColumnType, Contract},
    keys::RESERVED_COLUMNS,
    naming,
};

/// Text sampled before conversion starts, to find the delimiter, header and types.
pub const SAMPLE_BYTES: usize = 1 << 20;
/// Rows used for the first guess at the column types of a dataset without a contract.
const SNIFF_ROWS: usize = 1000;

/// How CSV fields become silver columns.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Silver columns (without tenant and lineage columns), in order.
    pub columns: Vec<ColumnSpec>,
    /// CSV field index of each column, `None` for a missing nullable column.
    pub sources: Vec<Option<usize>>,
    /// Normalised names of the CSV fields, in file order.
    pub header: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    /// For a dataset without a contract: the sniffed type of each column.
    pub sniffers: Option<Vec<ColumnSniffer>>,
}

/// The sample the plan is made from.
pub struct Sample<'a> {
    pub text: &'a [u8],
    /// The sample is the whole file.
    pub complete: bool,
    /// The text is UTF-8 that no decoder checked.
    pub validate_utf8: bool,
}

/// The delimiter: the contract's, or sniffed from the sample.
pub fn delimiter(contract: Option<&Contract>, sample: &Sample<'_>, limits: RecordLimits) -> u8 {
    match contract.and_then(|c| c.delimiter) {
        Some(delimiter) => delimiter as u8,
        None => sniff::sniff_delimiter(sample.text, sample.complete, limits),
    }
}

/// Makes the plan, or says why the file cannot be converted. `widened` carries the column
/// types a first read of a file without a contract settled on.
pub fn plan(
    contract: Option<&Contract>,
    sample: &Sample<'_>,
    delimiter: u8,
    limits: RecordLimits,
    rules: &FieldRules,
    widened: Option<Vec<ColumnSniffer>>,
) -> Result<Plan, String> {
    let mut records = Vec::new();
    let mut splitter = RecordSplitter::new(delimiter, limits);
    let _ = splitter.feed::<()>(sample.text, sample.complete, |record| {
        if records.len() <= SNIFF_ROWS {
            let fields: Vec<Vec<u8>> = record.fields().map(<[u8]>::to_vec).collect();
            records.push((fields, record.malformed()));
        }
        Ok(())
    });
    let Some((header, malformed)) = records.first() else {
        return Err(format!(
            "no complete header row in the first {} KiB",
            SAMPLE_BYTES >> 10
        ));
    };
    let names = header_names(header, *malformed, sample.validate_utf8)?;
    match contract {
        Some(contract) => map_to_contract(contract, names),
        None => {
            let sniffers = match widened {
                Some(sniffers) if sniffers.len() == names.len() => sniffers,
                Some(_) => return Err("the header changed between two reads of the file".into()),
                None => {
                    let rows: Vec<Vec<Vec<u8>>> = records[1..]
                        .iter()
                        .filter(|(_, malformed)| malformed.is_none())
                        .map(|(fields, _)| fields.clone())
                        .collect();
                    sniff::sniff_columns(&rows, names.len(), |v| rules.null_tokens.is_null(v))
                }
            };
            Ok(sniffed(names, sniffers))
        }
    }
}

/// The header's normalised names, unique and never reserved.
fn header_names(
    header: &[Vec<u8>],
    malformed: Option<Malformed>,
    validate_utf8: bool,
) -> Result<Vec<String>, String> {
    if let Some(malformed) = malformed {
        return Err(match malformed {
            Malformed::TooManyFields { limit } => format!(
                "the header has more than {limit} columns (limits.max_columns in the contract)"
            ),
            other => format!("the header row is malformed: {}", other.reason(1)),
        });
    }
    if validate_utf8
        && header
            .iter()
            .any(|f| simdutf8::basic::from_utf8(f).is_err())
    {
        return Err(not_utf8("the header row"));
    }
    let texts = header.iter().map(|f| std::str::from_utf8(f).unwrap_or(""));
    Ok(naming::normalise_headers(texts, &RESERVED_COLUMNS))
}

/// Every column a string unless sniffed otherwise, in file order.
fn sniffed(names: Vec<String>, sniffers: Vec<ColumnSniffer>) -> Plan {
    let columns = names
        .iter()
        .zip(&sniffers)
        .map(|(name, sniffer)| ColumnSpec {
            name: name.clone(),
            column_type: sniffer.column_type(),
            nullable: true,
            format: None,
        })
        .collect();
    Plan {
        columns,
        sources: (0..names.len()).map(Some).collect(),
        header: names,
        missing: Vec::new(),
        extra: Vec::new(),
        sniffers: Some(sniffers),
    }
}

/// The contract's columns from the header's fields, then the header's other columns as
/// strings. A required column missing from the header refuses the file.
fn map_to_contract(contract: &Contract, names: Vec<String>) -> Result<Plan, String> {
    let position = |name: &str| names.iter().position(|n| n == name);
    let missing: Vec<String> = contract
        .columns
        .iter()
        .filter(|c| position(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    let missing_required: Vec<&str> = contract
        .columns
        .iter()
        .filter(|c| !c.nullable && missing.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !missing_required.is_empty() {
        return Err(format!(
            "required column(s) missing from the header: {} (header has: {})",
            missing_required.join(", "),
            names.join(", ")
        ));
    }
    let mut columns = contract.columns.clone();
    let mut sources: Vec<Option<usize>> = columns.iter().map(|c| position(&c.name)).collect();
    let mut extra = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if contract.column(name).is_none() {
            extra.push(name.clone());
            columns.push(ColumnSpec {
                name: name.clone(),
                column_type: ColumnType::String,
                nullable: true,
                format: None,
            });
            sources.push(Some(index));
        }
    }
    Ok(Plan {
        columns,
        sources,
        header: names,
        missing,
        extra,
        sniffers: None,
    })
}
