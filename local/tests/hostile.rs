//! `snowcast convert` on crafted hostile inputs at the default 256 MiB budget (issue 8,
//! finding 5): a one-gigabyte line, 100,000 columns, 10 MB cells and a quote left open
//! over 20 million rows. For each: the exit code is 0 or 2 (never a panic's 101), every
//! physical record is counted, and the peak RSS stays under the budget + 64 MiB. Its own
//! test binary, so the converters are the only children measured.

mod common;

use std::{io::Write, path::Path};

const BUDGET_MB: u64 = 256;
const ALLOWANCE_MB: u64 = 64;

/// Writes a zstd file whose text `write` produces.
fn zstd_file(path: &Path, write: impl FnOnce(&mut dyn Write)) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = zstd::Encoder::new(std::io::BufWriter::new(file), 3).unwrap();
    write(&mut encoder);
    encoder.finish().unwrap().flush().unwrap();
}

/// Converts `input` as sales at the default budget; checks the exit code and the peak RSS
/// of every converter so far, and returns the manifest.
fn convert_hostile(input: &Path, dir: &Path, expected_exit: i32) -> serde_json::Value {
    let output = common::convert_command(
        "acme",
        input.to_str().unwrap(),
        dir.join("silver").to_str().unwrap(),
    )
    .args(["--memory-budget-mb", &BUDGET_MB.to_string()])
    .env("SNOWCAST_SPILL_DIR", dir)
    .output()
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(expected_exit),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peak = common::children_peak_rss();
    assert!(
        peak < (BUDGET_MB + ALLOWANCE_MB) << 20,
        "peak RSS {} MiB",
        peak >> 20
    );
    eprintln!("{}: peak RSS so far {} MiB", input.display(), peak >> 20);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sales_header(out: &mut dyn Write) {
    writeln!(
        out,
        "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes"
    )
    .unwrap();
}

/// Writes `bytes` copies of `byte`, a MiB at a time.
fn repeat(out: &mut dyn Write, byte: u8, bytes: usize) {
    let block = vec![byte; 1 << 20];
    for _ in 0..bytes >> 20 {
        out.write_all(&block).unwrap();
    }
}

#[test]
fn a_one_gigabyte_line_is_one_rejected_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("line.csv.zst");
    zstd_file(&input, |out| {
        sales_header(out);
        write!(out, "A1,L1,2024-01-01,1,1.00,1,true,c,web,").unwrap();
        repeat(out, b'x', 1 << 30);
    });
    let manifest = convert_hostile(&input, dir.path(), 2);
    assert_eq!(manifest["rows_read"], 1);
    assert_eq!(manifest["rows_invalid"], 1);
}

#[test]
fn a_hundred_thousand_columns_reject_the_file_and_its_rows_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    let header: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
    writeln!(file, "{}", header.join(",")).unwrap();
    for _ in 0..3 {
        writeln!(file, "{}", vec!["1"; 100_000].join(",")).unwrap();
    }
    file.flush().unwrap();
    let manifest = convert_hostile(&input, dir.path(), 2);
    assert!(
        manifest["reason"].as_str().unwrap().contains("columns"),
        "{}",
        manifest["reason"]
    );
    assert_eq!(manifest["rows_read"], 3);
}

#[test]
fn ten_megabyte_cells_convert() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cells.csv.zst");
    zstd_file(&input, |out| {
        sales_header(out);
        for i in 0..20 {
            write!(out, "S{i},L1,2024-01-0{},1,1.00,1,true,c,web,", 1 + i % 3).unwrap();
            repeat(out, b'a' + i as u8, 10 << 20);
            writeln!(out).unwrap();
        }
    });
    let manifest = convert_hostile(&input, dir.path(), 0);
    assert_eq!(manifest["rows_written"], 20);
}

#[test]
fn a_quote_open_over_twenty_million_rows_counts_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("open.csv.zst");
    zstd_file(&input, |out| {
        sales_header(out);
        writeln!(out, "A1,L1,2024-01-01,1,1.00,1,true,c,web,\"open").unwrap();
        let block = "x,y,z\n".repeat(100_000);
        for _ in 0..200 {
            out.write_all(block.as_bytes()).unwrap();
        }
    });
    let manifest = convert_hostile(&input, dir.path(), 2);
    assert_eq!(manifest["rows_read"], 20_000_001u64);
    assert_eq!(manifest["rows_rejected"], 20_000_001u64);
}
