//! `snowcast convert` as a user runs it: exit codes, stdout manifest, files on disk, and an
//! independent read of the output with pyarrow.

mod common;

use std::{path::Path, process::Command};

/// The venv Python that has pyarrow (scripts/setup makes it; CI always has it).
fn python() -> String {
    std::env::var("SNOWCAST_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_string())
}

fn repo_file(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

fn convert(csv: &Path, out: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    convert_as("acme", csv, out, extra)
}

fn convert_as(
    tenant: &str,
    csv: &Path,
    out: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let output = common::convert_command(tenant, csv.to_str().unwrap(), out.to_str().unwrap())
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let manifest = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code().unwrap(), manifest, stderr)
}

const CSV: &str = "\u{feff}SKU ID,Location ID,Date,Units,Revenue,Price,Promo,Category,Channel,Notes\r\n\
A1,L1,2024-01-01,3,12.500,4.1667,true,toys,web,\"hello, \"\"world\"\"\"\r\n\
A2,L1,2024-01-02,,1,1.5,FALSE,,web,\r\n\
A3,L2,2024-01-01,5,7.5,1.5,no,food,store,\"multi\r\nline\"\r\n\
A4,L2,2024-01-03,-2,-3.25,0.0001,y,food,app,plain\r\n";

#[test]
fn accepted_file_exits_zero_and_pyarrow_reads_the_csv_values() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales 2024.csv");
    std::fs::write(&csv, CSV).unwrap();
    let out = dir.path().join("silver");
    let (code, manifest, stderr) = convert(&csv, &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(manifest["status"], "accepted");
    assert_eq!(manifest["rows_read"], 4);
    assert_eq!(manifest["rows_written"], 4);
    assert_eq!(manifest["rejects"], serde_json::Value::Null);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "three days");
    for file in files {
        let key = file["key"].as_str().unwrap();
        assert!(
            key.starts_with("sales/tenant_id=acme/date=2024-01-0"),
            "{key}"
        );
        assert!(key.contains("/sales_2024-"), "{key}");
        assert!(Path::new(file["uri"].as_str().unwrap()).is_file());
    }
    let manifest_file = dir.path().join("manifest.json");
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();
    let check = Command::new(python())
        .arg(repo_file("tests/python/compare_parquet.py"))
        .args([&manifest_file, &csv])
        .output()
        .unwrap_or_else(|e| panic!("running {} (run scripts/setup first): {e}", python()));
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "4 rows match"
    );
}

#[test]
fn rejected_file_exits_two_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "sku_id,units\nA,1\n").unwrap();
    let (code, manifest, _) = convert(&csv, &dir.path().join("silver"), &[]);
    assert_eq!(code, 2);
    assert_eq!(manifest["status"], "rejected");
    assert!(manifest["reason"].as_str().unwrap().contains("location_id"));
}

#[test]
fn operational_errors_exit_one_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = convert(&dir.path().join("missing.csv"), dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("snowcast: opening"), "{stderr}");

    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a\n1\n").unwrap();
    let (code, _, stderr) = convert_as("../etc", &csv, dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid tenant id"), "{stderr}");
}

#[test]
fn a_contract_file_replaces_the_builtin_contract() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, CSV).unwrap();
    let contract = repo_file("bench/contracts/sales_flat.toml");
    let (code, manifest, stderr) = convert(&csv, &dir.path().join("o"), &["--contract", &contract]);
    assert_eq!(code, 0, "{stderr}");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert!(
        files[0]["key"]
            .as_str()
            .unwrap()
            .starts_with("sales/tenant_id=acme/s-")
    );
}

/// On a terminal, `convert` redraws a progress line on stderr and ends with a one-line
/// summary; stdout stays the manifest alone. Off a terminal, stderr stays empty.
#[test]
fn on_a_terminal_convert_shows_progress_and_a_summary_and_off_one_nothing() {
    use std::{io::Read, os::fd::FromRawFd, process::Stdio};

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    common::write_daily_sales(&csv, 300_000);
    let out = dir.path().join("silver");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the integers it is given.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (mut terminal, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let child = common::convert_command("acme", csv.to_str().unwrap(), out.to_str().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let shown = std::thread::spawn(move || {
        let mut shown = Vec::new();
        // Reading ends with EIO once the child (the only holder of the slave) exits.
        let _ = terminal.read_to_end(&mut shown);
        String::from_utf8_lossy(&shown).into_owned()
    });
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest["rows_written"], 300_000);
    let shown = shown.join().unwrap();
    assert!(shown.contains("convert ["), "{shown}");
    assert!(shown.contains(" rows · "), "{shown}");
    let summary = shown.lines().last().unwrap_or_default();
    assert!(
        summary.contains(
            "snowcast: converted 300,000 rows read, 300,000 written, 0 rejected; 730 partitions"
        ),
        "{shown:?}"
    );

    let (code, _, stderr) = convert(&csv, &dir.path().join("again"), &[]);
    assert_eq!((code, stderr.as_str()), (0, ""));
}
