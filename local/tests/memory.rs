//! Peak memory of `snowcast convert` stays within its budget whatever the number of
//! partitions. Its own test binary, so the child's rusage is the only one measured.

mod common;

#[test]
fn two_years_of_daily_partitions_fit_in_a_small_budget() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    // 128 MiB: well above the peak (57-72 MiB in debug builds, of which 27-31 MiB are the
    // debug executable's own code pages; the heap peaks at 31-34 MiB, as in release
    // builds), so that the peak staying under it shows the file was streamed.
    common::write_daily_sales(&csv, 2_000_000);
    let csv_bytes = std::fs::metadata(&csv).unwrap().len();
    let budget_mb = 24;
    let output = common::convert_command(
        "acme",
        csv.to_str().unwrap(),
        dir.path().join("silver").to_str().unwrap(),
    )
    .args(["--memory-budget-mb", &budget_mb.to_string()])
    .env("SNOWCAST_SPILL_DIR", dir.path())
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest["rows_written"], 2_000_000);
    assert_eq!(manifest["partitions"].as_array().unwrap().len(), 730);
    assert!(manifest["spilled_bytes"].as_u64().unwrap() > 0);
    // Before partition files were committed as they closed, this peaked at ~750 MiB.
    common::assert_peak_rss_within(budget_mb, csv_bytes);
}
