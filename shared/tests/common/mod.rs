//! Converter test helpers: convert bytes with a contract or without, read the Parquet back
//! with the `parquet` crate, read reject logs, check the manifest invariants.

#![allow(dead_code)] // each test binary uses its own subset

use std::{path::Path, sync::Arc};

use arrow_array::{Array, RecordBatch, StringArray, cast::AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use snowcast::{
    adapters::local::LocalDirSink,
    convert::{ConvertSettings, Converter},
    domain::{contract::Contract, keys::SourceId, manifest::Manifest},
};
use tempfile::TempDir;

pub const SALES_HEADER: &str =
    "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes";

pub fn contract(toml: &str) -> Contract {
    Contract::from_toml(toml).unwrap().validated().unwrap()
}

/// The built-in sales contract with a reject limit of `ratio`.
pub fn sales_with_limit(ratio: f64) -> Contract {
    let mut sales = snowcast::domain::contract::builtin("sales")
        .unwrap()
        .unwrap();
    sales.max_reject_ratio = ratio;
    sales
}

pub struct Converted {
    pub manifest: Manifest,
    pub dir: TempDir,
}

/// Every batch of one Parquet file, read with the `parquet` crate.
pub fn read_parquet(path: &str) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The values of an Int64 column across batches.
pub fn int64s(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

impl Converted {
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.manifest
            .files
            .iter()
            .flat_map(|file| read_parquet(&file.uri))
            .collect()
    }

    /// Values of a string-like column across all files.
    pub fn strings(&self, column: &str) -> Vec<Option<String>> {
        self.batches()
            .iter()
            .flat_map(|batch| {
                let array = batch.column_by_name(column).unwrap();
                let array = arrow_cast(array);
                (0..array.len())
                    .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Values of any column across all files, as text (decimals with their scale).
    pub fn strings_or_text(&self, column: &str) -> Vec<Option<String>> {
        let options = arrow_cast::display::FormatOptions::default();
        self.batches()
            .iter()
            .flat_map(|batch| {
                let array = batch.column_by_name(column).unwrap();
                let formatter =
                    arrow_cast::display::ArrayFormatter::try_new(array.as_ref(), &options).unwrap();
                (0..array.len())
                    .map(|i| array.is_valid(i).then(|| formatter.value(i).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn rejects(&self) -> Vec<serde_json::Value> {
        let Some(path) = &self.manifest.rejects else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn parquet_files_on_disk(&self) -> usize {
        walk(self.dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count()
    }
}

pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

pub fn arrow_cast(array: &Arc<dyn Array>) -> StringArray {
    match array.data_type() {
        arrow_schema::DataType::Utf8 => array.as_string::<i32>().clone(),
        arrow_schema::DataType::Dictionary(..) => {
            let dict = array.as_dictionary::<arrow_array::types::Int32Type>();
            let values = dict.values().as_string::<i32>();
            dict.keys()
                .iter()
                .map(|k| k.map(|k| values.value(k as usize)))
                .collect()
        }
        other => panic!("not a string column: {other}"),
    }
}

pub async fn convert_with(
    bytes: Vec<u8>,
    dataset: &str,
    contract: Option<Contract>,
    settings: ConvertSettings,
) -> Converted {
    let dir = tempfile::tempdir().unwrap();
    let source = SourceId::new(
        format!("s3://bronze/acme/{dataset}/upload.csv"),
        "upload.csv",
        "0123456789abcdef",
    );
    let mut converter = Converter::try_new("acme", dataset, source)
        .unwrap()
        .with_settings(settings.with_spill_dir(dir.path()))
        .with_ingested_at(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
    if let Some(contract) = contract {
        converter = converter.with_contract(contract);
    }
    let sink = LocalDirSink::new(dir.path().join("silver"));
    let manifest = converter
        .run(&bytes::Bytes::from(bytes), &sink)
        .await
        .unwrap();
    assert_eq!(
        manifest.rows_read,
        manifest.rows_written + manifest.rows_rejected,
        "every row is accounted for"
    );
    let on_disk: Manifest = serde_json::from_slice(
        &std::fs::read(dir.path().join("silver").join(format!(
            "_manifests/{dataset}/tenant_id=acme/upload-0123456789abcdef.json"
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk, manifest, "the stored manifest is the returned one");
    Converted { manifest, dir }
}

/// Text of a dataset without a contract (types sniffed), default settings.
pub async fn convert_without_contract(text: &str, dataset: &str) -> Converted {
    convert_with(
        text.as_bytes().to_vec(),
        dataset,
        None,
        ConvertSettings::default(),
    )
    .await
}

/// Raw bytes under the sales contract with no tolerance for bad rows.
pub async fn convert_sales_bytes(bytes: Vec<u8>) -> Converted {
    convert_with(
        bytes,
        "sales",
        Some(sales_with_limit(0.0)),
        ConvertSettings::default(),
    )
    .await
}

pub async fn convert(text: &str, contract: Contract) -> Converted {
    convert_with(
        text.as_bytes().to_vec(),
        &contract.dataset.clone(),
        Some(contract),
        ConvertSettings::default(),
    )
    .await
}

/// Converts generated sales rows with no bad row tolerated.
pub async fn convert_all_or_nothing(rows: &[String], settings: ConvertSettings) -> Converted {
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let bytes = sales_rows(&refs).into_bytes();
    convert_with(bytes, "sales", Some(sales_with_limit(0.0)), settings).await
}

pub fn sales_rows(rows: &[&str]) -> String {
    let mut text = format!("{SALES_HEADER}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}
