//! Dataset contracts: the columns, types and rules a tenant's CSV must meet.
//!
//! Contracts are TOML files kept in the repo (`shared/contracts/`) and compiled into every
//! binary, so a Lambda never reads them at run time. A contract can also come from a file
//! (`snowcast convert --contract FILE`; the CLI reads it, [`Contract::from_file_text`]
//! parses it). Loading validates the contract as a whole:
//! a contract that could only fail later (a partition column that is not a date, a primary
//! key naming a missing column) is refused at load.

use std::{collections::HashSet, fmt, path::Path, str::FromStr};

use serde::{Deserialize, Serialize};

use super::{keys::RESERVED_COLUMNS, naming::is_identifier};
use crate::error::{Error, Result};

/// Logical column types a contract can name. Each maps to one Parquet logical type that
/// Snowflake loads by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int,
    /// 64-bit IEEE float.
    Float,
    /// true/false (also yes/no, y/n, t/f, 1/0; case-insensitive).
    Bool,
    /// Exact decimal with precision (1..=38) and scale (0..=precision).
    Decimal {
        /// Digits in all (1..=38).
        precision: u8,
        /// Digits after the point (0..=precision).
        scale: i8,
    },
    /// Calendar date (Parquet DATE).
    Date,
    /// Instant in UTC, microsecond precision (Parquet TIMESTAMP(MICROS, UTC)).
    Timestamp,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::String => f.write_str("string"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Bool => f.write_str("bool"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
        }
    }
}

impl FromStr for ColumnType {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let lowered = text.trim().to_ascii_lowercase();
        Ok(match lowered.as_str() {
            "string" | "text" | "varchar" => ColumnType::String,
            "int" | "integer" | "bigint" => ColumnType::Int,
            "float" | "double" => ColumnType::Float,
            "bool" | "boolean" => ColumnType::Bool,
            "date" => ColumnType::Date,
            "timestamp" => ColumnType::Timestamp,
            other => {
                let args = other
                    .strip_prefix("decimal(")
                    .or_else(|| other.strip_prefix("number("))
                    .and_then(|rest| rest.strip_suffix(')'))
                    .ok_or_else(|| format!("unknown column type {text:?}"))?;
                let (precision, scale) = args
                    .split_once(',')
                    .ok_or_else(|| format!("{text:?}: decimal needs (precision,scale)"))?;
                let precision: u8 = precision
                    .trim()
                    .parse()
                    .map_err(|_| format!("{text:?}: bad precision"))?;
                let scale: i8 = scale
                    .trim()
                    .parse()
                    .map_err(|_| format!("{text:?}: bad scale"))?;
                if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                    return Err(format!(
                        "{text:?}: precision must be 1..=38 and scale 0..=precision"
                    ));
                }
                ColumnType::Decimal { precision, scale }
            }
        })
    }
}

impl Serialize for ColumnType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One column of a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Lower snake_case name, matched against the normalised CSV header.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// A required column must be present in the header and non-null in every row.
    #[serde(default = "default_true")]
    pub nullable: bool,
    /// chrono format for date and timestamp columns (`%d/%m/%Y`, `%Y-%m-%d %H:%M:%S`).
    /// Timestamps without an offset in the format are read as UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn default_true() -> bool {
    true
}

/// How a partition column's values group rows into Hive partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One partition per day.
    Day,
    /// One partition per month.
    Month,
    /// Not partitioned (beyond `tenant_id=`).
    None,
}

/// The Hive partitioning of a dataset's silver files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// The date or timestamp column partitioned on.
    pub column: String,
    /// Day or month.
    pub granularity: Granularity,
}

/// Text encodings a contract may declare for its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TextEncoding {
    /// UTF-8 (with or without BOM; UTF-16 by BOM is read too).
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// Windows ANSI exports (Excel "CSV" on western-European Windows).
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "latin1")]
    Windows1252,
}

/// A dataset's contract. See `shared/contracts/sales.toml` for a documented example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The dataset it applies to (a lower snake_case identifier).
    pub dataset: String,
    /// What the dataset holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The columns, in silver order.
    pub columns: Vec<ColumnSpec>,
    /// Columns that identify a row; implicitly required. Downstream (dbt) deduplicates on it.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// How silver files are partitioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionSpec>,
    /// Field values that mean NULL (compared after trimming for non-string columns).
    #[serde(default = "default_null_tokens")]
    pub null_tokens: Vec<String>,
    /// Field delimiter; sniffed among `,` `;` tab `|` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// Text encoding of files without a BOM.
    #[serde(default)]
    pub encoding: TextEncoding,
    /// `,` for files written with a European locale (`1.234,5` is not supported, `1234,5` is).
    #[serde(default = "default_decimal_separator")]
    pub decimal_separator: char,
    /// Share of bad rows (0.0..=1.0) above which the whole file is rejected.
    #[serde(default = "default_max_reject_ratio")]
    pub max_reject_ratio: f64,
    /// How large a record may be before it is rejected.
    #[serde(default)]
    pub limits: Limits,
}

/// How large one record may be. A record past a limit is rejected with the reason (its
/// bytes are not kept), and a header with more columns than allowed rejects the file, so
/// memory stays bounded whatever a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest field in bytes. Default 16 MiB, Snowflake's default VARCHAR maximum.
    pub max_field_bytes: usize,
    /// Largest record in bytes. Default 32 MiB; the converter also caps it at an eighth of
    /// its memory budget.
    pub max_record_bytes: usize,
    /// Most columns a file may have. Default 2,000.
    pub max_columns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_field_bytes: 16 << 20,
            max_record_bytes: 32 << 20,
            max_columns: 2000,
        }
    }
}

fn default_null_tokens() -> Vec<String> {
    vec![String::new(), "NULL".into(), "null".into()]
}

fn default_decimal_separator() -> char {
    '.'
}

fn default_max_reject_ratio() -> f64 {
    0.05
}

impl Contract {
    /// Parses and validates a contract from TOML text.
    pub fn from_toml(text: &str) -> std::result::Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Parses and validates the text of a contract file; errors name `path`.
    pub fn from_file_text(path: &Path, text: &str) -> Result<Self> {
        let contract = Self::from_toml(text).map_err(|source| Error::ContractFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        contract.validated()
    }

    /// Checks the rules a contract must meet as a whole and makes key and partition columns
    /// required.
    pub fn validated(mut self) -> Result<Self> {
        let checked = self.check_columns().and_then(|()| self.check_options());
        match checked.and_then(|()| self.require_keys()) {
            Ok(()) => Ok(self),
            Err(message) => Err(Error::contract(&self.dataset, message)),
        }
    }

    /// Names, uniqueness and formats of the columns.
    fn check_columns(&self) -> std::result::Result<(), String> {
        if !is_identifier(&self.dataset) {
            return Err("dataset must be a lower snake_case identifier".into());
        }
        if self.columns.is_empty() {
            return Err("a contract needs at least one column".into());
        }
        let mut seen = HashSet::new();
        for column in &self.columns {
            if !is_identifier(&column.name)
                || column.name.starts_with('_')
                || RESERVED_COLUMNS.contains(&column.name.as_str())
            {
                return Err(format!(
                    "column {:?} must be lower snake_case, not start with '_' and not be tenant_id (reserved for lineage)",
                    column.name
                ));
            }
            if !seen.insert(column.name.as_str()) {
                return Err(format!("column {:?} is declared twice", column.name));
            }
            if column.format.is_some()
                && !matches!(column.column_type, ColumnType::Date | ColumnType::Timestamp)
            {
                return Err(format!(
                    "column {:?}: format only applies to date and timestamp",
                    column.name
                ));
            }
        }
        Ok(())
    }

    /// The reject ratio, delimiter, decimal separator and limits.
    fn check_options(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.max_reject_ratio) {
            return Err("max_reject_ratio must be within 0.0..=1.0".into());
        }
        if let Some(delimiter) = self.delimiter
            && !delimiter.is_ascii()
        {
            return Err(format!(
                "delimiter {delimiter:?} must be one ASCII character"
            ));
        }
        if !matches!(self.decimal_separator, '.' | ',') {
            return Err("decimal_separator must be '.' or ','".into());
        }
        let limits = self.limits;
        if limits.max_field_bytes == 0 || limits.max_record_bytes == 0 {
            return Err("limits must be above zero".into());
        }
        if limits.max_columns < self.columns.len() {
            return Err(format!(
                "limits.max_columns ({}) is below the contract's {} columns",
                limits.max_columns,
                self.columns.len()
            ));
        }
        Ok(())
    }

    /// Makes the key and partition columns required (the partition column must be a date
    /// or timestamp).
    fn require_keys(&mut self) -> std::result::Result<(), String> {
        let mut required: Vec<String> = self.primary_key.clone();
        if let Some(partition) = &self.partition {
            let Some(column) = self.column(&partition.column) else {
                return Err(format!(
                    "partition column {:?} is not a column",
                    partition.column
                ));
            };
            if partition.granularity != Granularity::None
                && !matches!(column.column_type, ColumnType::Date | ColumnType::Timestamp)
            {
                return Err(format!(
                    "partition column {:?} must be a date or timestamp to partition by day or month",
                    partition.column
                ));
            }
            required.push(partition.column.clone());
        }
        for name in &required {
            match self.columns.iter_mut().find(|c| &c.name == name) {
                Some(column) => column.nullable = false,
                None => return Err(format!("key column {name:?} is not a column")),
            }
        }
        Ok(())
    }

    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The partitioning that applies, or `None` for an unpartitioned dataset.
    pub fn partitioning(&self) -> Option<&PartitionSpec> {
        self.partition
            .as_ref()
            .filter(|p| p.granularity != Granularity::None)
    }
}

/// The contracts kept in the repo, compiled in.
const BUILTIN: &[(&str, &str)] = &[
    ("sales", include_str!("../../contracts/sales.toml")),
    ("inventory", include_str!("../../contracts/inventory.toml")),
    ("products", include_str!("../../contracts/products.toml")),
];

/// Looks up the built-in contract of a dataset.
pub fn builtin(dataset: &str) -> Option<Result<Contract>> {
    BUILTIN
        .iter()
        .find(|(name, _)| *name == dataset)
        .map(|(name, text)| {
            Contract::from_toml(text)
                .map_err(|e| Error::contract(name, e.to_string()))
                .and_then(Contract::validated)
        })
}

/// Names of the datasets that have a built-in contract.
pub fn builtin_datasets() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_contract_is_valid() {
        for name in builtin_datasets() {
            let contract = builtin(name).unwrap().unwrap();
            assert_eq!(contract.dataset, name);
        }
    }

    #[test]
    fn decimal_types_parse_and_bounds_are_checked() {
        assert_eq!(
            "decimal(12, 2)".parse::<ColumnType>(),
            Ok(ColumnType::Decimal {
                precision: 12,
                scale: 2
            })
        );
        assert!("decimal(39,2)".parse::<ColumnType>().is_err());
        assert!("decimal(4,5)".parse::<ColumnType>().is_err());
        assert!("money".parse::<ColumnType>().is_err());
    }

    #[test]
    fn key_and_partition_columns_become_required() {
        let contract = Contract::from_toml(
            r#"
            dataset = "d"
            primary_key = ["id"]
            partition = { column = "day", granularity = "day" }
            columns = [
              { name = "id", type = "string" },
              { name = "day", type = "date" },
            ]"#,
        )
        .unwrap()
        .validated()
        .unwrap();
        assert!(contract.columns.iter().all(|c| !c.nullable));
    }

    #[test]
    fn a_partition_on_a_string_column_is_refused() {
        let err = Contract::from_toml(
            r#"
            dataset = "d"
            partition = { column = "id", granularity = "month" }
            columns = [{ name = "id", type = "string" }]"#,
        )
        .unwrap()
        .validated()
        .unwrap_err();
        assert!(
            err.to_string().contains("must be a date or timestamp"),
            "{err}"
        );
    }
}
