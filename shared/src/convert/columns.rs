//! Typed column builders that turn CSV fields into Arrow arrays, one row at a time.
//!
//! A row is all-or-nothing: when any field of a row fails, every column is truncated back
//! to the row's start and the row goes to the reject file. Arrow's own builders cannot
//! truncate, hence these small Vec-backed ones.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float64Array,
    Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, types::Int32Type,
};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{
    sniff::ColumnSniffer,
    values::{self, ParseError, TemporalFormat},
};
use crate::{
    domain::{
        contract::{ColumnSpec, ColumnType, Contract},
        keys::{INGESTED_AT, SOURCE_KEY, SOURCE_ROW, TENANT_ID},
    },
    error::{Error, Result},
};

/// Arrow type of a contract column type.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => utc_micros(),
    }
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn constant_text() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The silver schema: `tenant_id`, the data columns in order, then the lineage columns.
pub fn silver_schema(columns: &[ColumnSpec]) -> SchemaRef {
    let mut fields = vec![Field::new(TENANT_ID, constant_text(), false)];
    fields.extend(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.column_type), c.nullable)),
    );
    fields.push(Field::new(SOURCE_KEY, constant_text(), false));
    fields.push(Field::new(SOURCE_ROW, DataType::Int64, false));
    fields.push(Field::new(INGESTED_AT, utc_micros(), false));
    Arc::new(Schema::new(fields))
}

/// The field values a contract treats as NULL.
#[derive(Debug, Clone)]
pub struct NullTokens {
    tokens: Vec<Vec<u8>>,
    empty_is_null: bool,
}

impl NullTokens {
    pub fn new(tokens: &[String]) -> Self {
        NullTokens {
            empty_is_null: tokens.iter().any(String::is_empty),
            tokens: tokens
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| t.as_bytes().to_vec())
                .collect(),
        }
    }

    pub fn is_null(&self, field: &[u8]) -> bool {
        if field.is_empty() {
            return self.empty_is_null;
        }
        self.tokens.iter().any(|t| t.as_slice() == field)
    }
}

enum Values {
    Utf8 {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    Int(Vec<i64>),
    Float {
        values: Vec<f64>,
        decimal_comma: bool,
    },
    Bool(BooleanBufferBuilder),
    Decimal {
        values: Vec<i128>,
        precision: u8,
        scale: i8,
        separator: u8,
    },
    Date {
        values: Vec<i32>,
        format: TemporalFormat,
    },
    Timestamp {
        values: Vec<i64>,
        format: TemporalFormat,
    },
}

/// One typed column being built.
pub struct ColumnBuilder {
    values: Values,
    validity: BooleanBufferBuilder,
    nullable: bool,
}

impl ColumnBuilder {
    pub fn new(spec: &ColumnSpec, decimal_separator: char, capacity: usize) -> Self {
        let format = || TemporalFormat::new(spec.format.as_deref());
        let values = match spec.column_type {
            ColumnType::String => Values::Utf8 {
                offsets: Self::fresh_offsets(capacity),
                data: Vec::with_capacity(capacity * 8),
            },
            ColumnType::Int => Values::Int(Vec::with_capacity(capacity)),
            ColumnType::Float => Values::Float {
                values: Vec::with_capacity(capacity),
                decimal_comma: decimal_separator == ',',
            },
            ColumnType::Bool => Values::Bool(BooleanBufferBuilder::new(capacity)),
            ColumnType::Decimal { precision, scale } => Values::Decimal {
                values: Vec::with_capacity(capacity),
                precision,
                scale,
                separator: decimal_separator as u8,
            },
            ColumnType::Date => Values::Date {
                values: Vec::with_capacity(capacity),
                format: format(),
            },
            ColumnType::Timestamp => Values::Timestamp {
                values: Vec::with_capacity(capacity),
                format: format(),
            },
        };
        ColumnBuilder {
            values,
            validity: BooleanBufferBuilder::new(capacity),
            nullable: spec.nullable,
        }
    }

    fn fresh_offsets(capacity: usize) -> Vec<i32> {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        offsets
    }

    /// Appends NULL, or fails if the column is required.
    pub fn push_null(&mut self) -> Result<(), ParseError> {
        if !self.nullable {
            return Err("missing required value");
        }
        match &mut self.values {
            Values::Utf8 { offsets, data } => offsets.push(text_offset(data)?),
            Values::Int(v) => v.push(0),
            Values::Float { values, .. } => values.push(0.0),
            Values::Bool(v) => v.append(false),
            Values::Decimal { values, .. } => values.push(0),
            Values::Date { values, .. } => values.push(0),
            Values::Timestamp { values, .. } => values.push(0),
        }
        self.validity.append(false);
        Ok(())
    }

    /// Parses and appends one non-null field.
    pub fn push(&mut self, field: &[u8]) -> Result<(), ParseError> {
        match &mut self.values {
            Values::Utf8 { offsets, data } => {
                data.extend_from_slice(field);
                match text_offset(data) {
                    Ok(end) => offsets.push(end),
                    Err(reason) => {
                        data.truncate(data.len() - field.len());
                        return Err(reason);
                    }
                }
            }
            other => {
                let field = field.trim_ascii();
                match other {
                    Values::Utf8 { .. } => unreachable!("handled above"),
                    Values::Int(v) => v.push(values::parse_int(field)?),
                    Values::Float {
                        values,
                        decimal_comma,
                    } => values.push(values::parse_float(field, *decimal_comma)?),
                    Values::Bool(v) => v.append(values::parse_bool(field)?),
                    Values::Decimal {
                        values,
                        precision,
                        scale,
                        separator,
                    } => values.push(values::parse_decimal(
                        field, *precision, *scale, *separator,
                    )?),
                    Values::Date { values, format } => {
                        values.push(values::parse_date(field, format)?)
                    }
                    Values::Timestamp { values, format } => {
                        values.push(values::parse_timestamp(field, format)?)
                    }
                }
            }
        }
        self.validity.append(true);
        Ok(())
    }

    /// Drops every value after the first `len`.
    pub fn truncate(&mut self, len: usize) {
        if self.validity.len() <= len {
            return;
        }
        self.validity.truncate(len);
        match &mut self.values {
            Values::Utf8 { offsets, data } => {
                offsets.truncate(len + 1);
                data.truncate(offsets[len] as usize);
            }
            Values::Int(v) => v.truncate(len),
            Values::Float { values, .. } => values.truncate(len),
            Values::Bool(v) => v.truncate(len),
            Values::Decimal { values, .. } => values.truncate(len),
            Values::Date { values, .. } => values.truncate(len),
            Values::Timestamp { values, .. } => values.truncate(len),
        }
    }

    /// Moves the built values out as an Arrow array, leaving the builder empty.
    pub fn finish(&mut self) -> Result<ArrayRef> {
        let len = self.validity.len();
        let validity = self.validity.finish();
        let nulls = Some(NullBuffer::new(validity)).filter(|n| n.null_count() > 0);
        let array: ArrayRef = match &mut self.values {
            Values::Utf8 { offsets, data } => {
                let offsets = std::mem::replace(offsets, Self::fresh_offsets(len));
                let data = std::mem::replace(data, Vec::with_capacity(data.capacity()));
                Arc::new(StringArray::try_new(
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    data.into(),
                    nulls,
                )?)
            }
            Values::Int(v) => Arc::new(Int64Array::new(take_vec(v).into(), nulls)),
            Values::Float { values, .. } => {
                Arc::new(Float64Array::new(take_vec(values).into(), nulls))
            }
            Values::Bool(v) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            Values::Decimal {
                values,
                precision,
                scale,
                ..
            } => Arc::new(
                Decimal128Array::new(take_vec(values).into(), nulls)
                    .with_precision_and_scale(*precision, *scale)?,
            ),
            Values::Date { values, .. } => {
                Arc::new(Date32Array::new(take_vec(values).into(), nulls))
            }
            Values::Timestamp { values, .. } => Arc::new(
                TimestampMicrosecondArray::new(take_vec(values).into(), nulls).with_timezone("UTC"),
            ),
        };
        Ok(array)
    }
}

/// Bytes a value of this type takes in a batch besides its text (an offset for strings).
fn fixed_bytes(column_type: ColumnType) -> usize {
    match column_type {
        ColumnType::String | ColumnType::Date => 4,
        ColumnType::Decimal { .. } => 16,
        ColumnType::Bool => 1,
        ColumnType::Int | ColumnType::Float | ColumnType::Timestamp => 8,
    }
}

/// The end offset of text in a batch. Batches are cut long before 2 GiB of text, so this
/// only fails if that rule is broken; it fails as an error, never as a wrapped offset.
fn text_offset(data: &[u8]) -> Result<i32, ParseError> {
    i32::try_from(data.len()).map_err(|_| "text too large for one batch")
}

fn take_vec<T>(v: &mut Vec<T>) -> Vec<T> {
    let capacity = v.capacity();
    std::mem::replace(v, Vec::with_capacity(capacity))
}

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// The column at fault, or `None` for a row-level problem (wrong field count).
    pub column: Option<String>,
    pub reason: String,
}

/// Where a contract column's values come from in the CSV record.
struct Mapping {
    builder: ColumnBuilder,
    name: String,
    /// Index of the CSV field, or `None` when the (nullable) column is absent from the file.
    source: Option<usize>,
    /// For a column whose type was sniffed: what its values have been so far. Its values
    /// are taken exactly as written (no trimming), and one that does not fit widens it.
    sniffer: Option<ColumnSniffer>,
}

/// Values that are the same in every row of a file.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub tenant_id: String,
    pub source_key: String,
    pub ingested_at_micros: i64,
}

/// How fields are read: which values are NULL, which decimal separator is used.
#[derive(Debug, Clone)]
pub struct FieldRules {
    pub null_tokens: NullTokens,
    pub decimal_separator: char,
}

impl FieldRules {
    /// The contract's rules, or the defaults for a dataset without one (`""`, `NULL` and
    /// `null` are NULL; `.` separates decimals).
    pub fn for_contract(contract: Option<&Contract>) -> Self {
        match contract {
            Some(contract) => FieldRules {
                null_tokens: NullTokens::new(&contract.null_tokens),
                decimal_separator: contract.decimal_separator,
            },
            None => FieldRules {
                null_tokens: NullTokens::new(&[String::new(), "NULL".into(), "null".into()]),
                decimal_separator: '.',
            },
        }
    }
}

/// What became of a record pushed into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Added,
    /// A value does not fit its column's sniffed type; the record was not added and the
    /// column's sniffer now holds the wider type.
    Widened,
}

/// Builds record batches in the silver schema from CSV records.
pub struct RowBatcher {
    columns: Vec<Mapping>,
    source_rows: Vec<i64>,
    null_tokens: NullTokens,
    schema: SchemaRef,
    tenant_id: ArrayRef,
    source_key: ArrayRef,
    ingested_at_micros: i64,
    expected_fields: usize,
    fixed_row_bytes: usize,
}

/// Bytes a row takes in the lineage columns (dictionary keys, row number, timestamp).
const LINEAGE_ROW_BYTES: usize = 4 + 4 + 8 + 8;

impl RowBatcher {
    /// `sources[i]` is the CSV field index of `columns[i]`; records must have
    /// `expected_fields` fields. With `sniffers` (one per column), every value is checked
    /// against its column's sniffed type. Builders start with room for `batch_bytes` of
    /// fixed-width values, at most `batch_rows` rows.
    pub fn new(
        columns: &[ColumnSpec],
        sources: Vec<Option<usize>>,
        expected_fields: usize,
        rules: &FieldRules,
        lineage: &Lineage,
        sniffers: Option<Vec<ColumnSniffer>>,
        (batch_rows, batch_bytes): (usize, usize),
    ) -> Self {
        let fixed_row_bytes = LINEAGE_ROW_BYTES
            + columns
                .iter()
                .map(|c| fixed_bytes(c.column_type))
                .sum::<usize>();
        let capacity = (batch_bytes / fixed_row_bytes).clamp(1, batch_rows);
        let mut sniffers = sniffers.map(Vec::into_iter);
        let mappings = columns
            .iter()
            .zip(sources)
            .map(|(spec, source)| Mapping {
                builder: ColumnBuilder::new(spec, rules.decimal_separator, capacity),
                name: spec.name.clone(),
                source,
                sniffer: sniffers
                    .as_mut()
                    .and_then(Iterator::next)
                    .filter(|s| *s != ColumnSniffer::string()),
            })
            .collect();
        RowBatcher {
            columns: mappings,
            source_rows: Vec::with_capacity(capacity),
            null_tokens: rules.null_tokens.clone(),
            schema: silver_schema(columns),
            tenant_id: Arc::new(StringArray::from(vec![lineage.tenant_id.as_str()])),
            source_key: Arc::new(StringArray::from(vec![lineage.source_key.as_str()])),
            ingested_at_micros: lineage.ingested_at_micros,
            expected_fields,
            fixed_row_bytes,
        }
    }

    pub fn rows(&self) -> usize {
        self.source_rows.len()
    }

    /// Bytes a row takes in a batch besides its text: with the record's bytes, the cost of
    /// adding it.
    pub fn fixed_row_bytes(&self) -> usize {
        self.fixed_row_bytes
    }

    /// Appends one CSV record, or explains why it cannot be a row.
    pub fn push_record<'r>(
        &mut self,
        row_number: i64,
        field_count: usize,
        field: impl Fn(usize) -> &'r [u8],
    ) -> Result<Pushed, RowError> {
        if field_count != self.expected_fields {
            return Err(RowError {
                column: None,
                reason: format!(
                    "expected {} fields, found {field_count}",
                    self.expected_fields
                ),
            });
        }
        let start = self.source_rows.len();
        for index in 0..self.columns.len() {
            let outcome = self.push_value(index, &field);
            if outcome != Ok(Pushed::Added) {
                for mapping in &mut self.columns[..=index] {
                    mapping.builder.truncate(start);
                }
            }
            match outcome {
                Ok(Pushed::Added) => {}
                Ok(Pushed::Widened) => {
                    self.observe(field_count, &field);
                    return Ok(Pushed::Widened);
                }
                Err(reason) => {
                    let mapping = &self.columns[index];
                    return Err(RowError {
                        column: Some(mapping.name.clone()),
                        reason: describe(reason, mapping.source.map(&field)),
                    });
                }
            }
        }
        self.source_rows.push(row_number);
        Ok(Pushed::Added)
    }

    /// Parses one column's value of a record into its builder.
    fn push_value<'r>(
        &mut self,
        index: usize,
        field: &impl Fn(usize) -> &'r [u8],
    ) -> Result<Pushed, ParseError> {
        let mapping = &mut self.columns[index];
        let Some(source) = mapping.source else {
            return mapping.builder.push_null().map(|()| Pushed::Added);
        };
        let value = field(source);
        let exact =
            mapping.sniffer.is_some() || matches!(mapping.builder.values, Values::Utf8 { .. });
        let compared = if exact { value } else { value.trim_ascii() };
        if self.null_tokens.is_null(compared) {
            return mapping.builder.push_null().map(|()| Pushed::Added);
        }
        if let Some(sniffer) = &mut mapping.sniffer
            && sniffer.observe(value)
        {
            return Ok(Pushed::Widened);
        }
        mapping.builder.push(value).map(|()| Pushed::Added)
    }

    /// Shows a record's values to the sniffed columns only (after a column widened, the
    /// rest of the file is read for its types alone).
    pub fn observe<'r>(&mut self, field_count: usize, field: &impl Fn(usize) -> &'r [u8]) {
        if field_count != self.expected_fields {
            return;
        }
        for mapping in &mut self.columns {
            if let (Some(sniffer), Some(source)) = (&mut mapping.sniffer, mapping.source) {
                let value = field(source);
                if !self.null_tokens.is_null(value) {
                    sniffer.observe(value);
                }
            }
        }
    }

    /// Every column's sniffer as it stands (string for columns that were not sniffed).
    pub fn sniffers(&self) -> Vec<ColumnSniffer> {
        self.columns
            .iter()
            .map(|m| m.sniffer.unwrap_or_else(ColumnSniffer::string))
            .collect()
    }

    /// Moves the buffered rows out as one batch with lineage columns.
    pub fn finish_batch(&mut self) -> Result<RecordBatch> {
        let rows = self.source_rows.len();
        let constant = |value: &ArrayRef| -> Result<ArrayRef> {
            let keys = Int32Array::new(ScalarBuffer::from(vec![0i32; rows]), None);
            Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
                keys,
                value.clone(),
            )?))
        };
        let mut arrays = Vec::with_capacity(self.columns.len() + 4);
        arrays.push(constant(&self.tenant_id)?);
        for mapping in &mut self.columns {
            arrays.push(mapping.builder.finish()?);
        }
        arrays.push(constant(&self.source_key)?);
        arrays.push(Arc::new(Int64Array::from(take_vec(&mut self.source_rows))));
        arrays.push(Arc::new(
            TimestampMicrosecondArray::from(vec![self.ingested_at_micros; rows])
                .with_timezone("UTC"),
        ));
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(Error::from)
    }
}

fn describe(reason: ParseError, value: Option<&[u8]>) -> String {
    match value {
        Some(value) if !value.is_empty() && reason != "missing required value" => {
            let text = String::from_utf8_lossy(value);
            let shown: String = text.chars().take(64).collect();
            let ellipsis = if text.chars().count() > 64 { "…" } else { "" };
            format!("{reason}: {shown:?}{ellipsis}")
        }
        _ => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn spec(name: &str, column_type: &str, nullable: bool) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            column_type: column_type.parse().unwrap(),
            nullable,
            format: None,
        }
    }

    #[test]
    fn a_bad_field_rolls_back_the_whole_row() {
        let columns = [spec("name", "string", true), spec("qty", "int", false)];
        let rules = FieldRules {
            null_tokens: NullTokens::new(&["".into()]),
            decimal_separator: '.',
        };
        let lineage = Lineage {
            tenant_id: "t".into(),
            source_key: "k".into(),
            ingested_at_micros: 0,
        };
        let mut batcher = RowBatcher::new(
            &columns,
            vec![Some(0), Some(1)],
            2,
            &rules,
            &lineage,
            None,
            (4, 1 << 20),
        );
        let rows: [&[&[u8]]; 4] = [&[b"a", b"1"], &[b"b", b"x"], &[b"c", b""], &[b"d", b" 4 "]];
        let outcomes: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| batcher.push_record(i as i64 + 1, r.len(), |f| r[f]))
            .collect();
        assert_eq!(outcomes[0], Ok(Pushed::Added));
        assert_eq!(outcomes[3], Ok(Pushed::Added));
        let bad = outcomes[1].as_ref().unwrap_err();
        assert_eq!(bad.column.as_deref(), Some("qty"));
        assert_eq!(bad.reason, "not an integer: \"x\"");
        assert_eq!(
            outcomes[2].as_ref().unwrap_err().reason,
            "missing required value"
        );

        let batch = batcher.finish_batch().unwrap();
        let names = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), [Some("a"), Some("d")]);
        let qty = batch
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(qty.values().as_ref(), [1, 4]);
        let rows = batch
            .column(4)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(rows.values().as_ref(), [1, 4]);
        assert_eq!(batch.num_columns(), 6);
    }
}
