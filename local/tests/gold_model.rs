//! The gold model (`infra/snowflake/10_forecast_model.sql`) on silver data written by the
//! real converter: two tenants' sales in shuffled order, a later file restating days, and
//! rows the contract rejects. `tests/python/gold_model.py` runs the model's one SQL
//! definition on DuckDB and on fakesnow and compares both with an independent polars
//! computation (and checks key, NULLs, sign and horizon).

mod common;

#[path = "../../tests/support/python.rs"]
mod python;

use std::{path::Path, process::Command};

fn convert(tenant: &str, csv: &Path, silver: &Path) -> serde_json::Value {
    let output = common::convert_command(tenant, csv.to_str().unwrap(), silver.to_str().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_model_on_duckdb_and_fakesnow_equals_an_independent_polars_computation() {
    let dir = tempfile::tempdir().unwrap();
    let silver = dir.path().join("silver");
    let inputs = [
        ("acme", "sales-2024q1.csv", 1, 100, 3),
        ("globex", "sales-2024q1.csv", 2, 77, 0),
        // Restates acme's days with other units: the model must count the later load.
        ("acme", "sales-2024q1-restated.csv", 3, 100, 0),
    ];
    let mut rejected = 0;
    for (tenant, name, seed, days, bad) in inputs {
        let csv = dir.path().join(format!("{tenant}-{name}"));
        common::write_shuffled_sales(&csv, seed, days, bad);
        let manifest = convert(tenant, &csv, &silver);
        assert_eq!(manifest["status"], "accepted");
        rejected += manifest["rows_rejected"].as_u64().unwrap();
        // Loads are ordered by their ingestion time, which has microseconds.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(rejected, 3, "the bad rows are quarantined, not modelled");

    let infra = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/snowflake");
    let summary = python::run_json("gold_model.py", &[silver.to_str().unwrap(), infra]);
    assert_eq!(summary["tenants"], 2);
    assert_eq!(summary["skus"], 30, "every SKU sold in the last 8 weeks");
    assert_eq!(summary["rows"], 30 * 90, "90 days ahead per SKU");
    assert!(summary["positive"].as_u64().unwrap() > 0);
}

#[test]
fn the_check_fails_when_the_model_drifts_from_its_description() {
    let dir = tempfile::tempdir().unwrap();
    let silver = dir.path().join("silver");
    let csv = dir.path().join("sales.csv");
    common::write_shuffled_sales(&csv, 7, 70, 0);
    convert("acme", &csv, &silver);
    // A model whose window is one day longer than documented.
    let infra = dir.path().join("infra");
    std::fs::create_dir(&infra).unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/snowflake");
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let drifted = text.replace(
            "WHERE s.DATE > l.LAST_DATE - 56",
            "WHERE s.DATE >= l.LAST_DATE - 56",
        );
        std::fs::write(infra.join(path.file_name().unwrap()), drifted).unwrap();
    }
    let output = Command::new(python::python())
        .arg(python::script("gold_model.py"))
        .arg(&silver)
        .arg(&infra)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("differs from polars"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
