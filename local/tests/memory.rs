//! Peak memory of `snowcast convert` stays within its budget whatever the number of
//! partitions. Its own test binary, so the child's rusage is the only one measured.

mod common;

use std::io::Write;

/// Peak RSS in bytes of the largest child this process has waited for.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is always valid.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn two_years_of_daily_partitions_fit_in_a_small_budget() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(
        out,
        "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes"
    )
    .unwrap();
    // Rows cycle through 730 days, the worst order: every batch touches every partition.
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    for i in 0..1_000_000u32 {
        let day = start + chrono::Days::new(u64::from(i % 730));
        writeln!(
            out,
            "SKU-{:06},LOC-{:03},{day},{},{}.{:02},1.5,false,cat_{},web,note {}",
            i % 20_000,
            i % 60,
            i % 40,
            i % 997,
            i % 100,
            i % 24,
            i % 13
        )
        .unwrap();
    }
    drop(out);
    let csv_bytes = std::fs::metadata(&csv).unwrap().len();
    let budget_mb = 24;
    let output = common::convert_command("acme", &csv, &dir.path().join("silver"))
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
    assert_eq!(manifest["rows_written"], 1_000_000);
    assert_eq!(manifest["partitions"].as_array().unwrap().len(), 730);
    assert!(manifest["spilled_bytes"].as_u64().unwrap() > 0);
    let peak = children_peak_rss();
    // The budget covers buffers; allow a fixed allowance for the binary, runtime and
    // allocator. Before partition files were committed as they closed, this was ~750 MiB.
    let allowed = (budget_mb + 40) << 20;
    assert!(
        peak < allowed,
        "peak RSS {} MiB for a {} MiB file exceeds {} MiB",
        peak >> 20,
        csv_bytes >> 20,
        allowed >> 20
    );
    assert!(
        csv_bytes > peak,
        "the input ({csv_bytes} B) is larger than the peak RSS"
    );
    eprintln!(
        "peak RSS {} MiB for a {} MiB file",
        peak >> 20,
        csv_bytes >> 20
    );
}
