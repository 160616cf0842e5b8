//! Regression tests for the converter-integrity review (issue 8): for each finding, the
//! crafted input that broke the promise "every row ends in silver or in the reject file,
//! counted, and values are never changed", converted again. Each test is named after its
//! finding. Memory bounds are checked on the binary in `local/tests/hostile.rs`.

mod common;

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use async_trait::async_trait;
use common::*;
use snowcast::{
    adapters::local::LocalDirSink,
    convert::{ConvertSettings, Converter},
    domain::{keys::SourceId, manifest::Status},
    ports::storage::{ByteSource, Input},
};
use tokio::io::{AsyncRead, ReadBuf};

/// Lines of a sales file with a good row for each number.
fn good_row(i: usize) -> String {
    format!("S{i},L1,2024-01-01,{i},1.00,1,true,c,web,note {i}")
}

/// Finding 1: a quote that never closes swallowed the rest of the file into one cell.
#[tokio::test]
async fn unclosed_quote_rejects_the_swallowed_rows_and_counts_each() {
    let mut rows: Vec<String> = (1..=9000).map(good_row).collect();
    rows.push("S9001,L1,2024-01-01,1,1.00,1,true,c,web,\"never closed".into());
    rows.extend((9002..=10_001).map(good_row));
    let text = sales_rows(&rows.iter().map(String::as_str).collect::<Vec<_>>());

    let strict = convert(&text, sales_with_limit(0.05)).await;
    assert_eq!(strict.manifest.status, Status::Rejected);
    assert_eq!(strict.manifest.rows_read, 10_001, "every physical record");
    assert_eq!(strict.manifest.rows_invalid, 1001);

    let lenient = convert(&text, sales_with_limit(1.0)).await;
    assert_eq!(lenient.manifest.status, Status::Accepted);
    assert_eq!(lenient.manifest.rows_read, 10_001);
    assert_eq!(lenient.manifest.rows_written, 9000);
    assert_eq!(lenient.manifest.rows_rejected, 1001);
    let rejects = lenient.rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["row"], 9001);
    assert_eq!(rejects[0]["last_row"], 10_001);
    assert_eq!(rejects[0]["column"], "notes");
    assert_eq!(rejects[0]["truncated"], true);
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("never closes"),
        "{}",
        rejects[0]["reason"]
    );
    let longest = lenient
        .strings("notes")
        .into_iter()
        .flatten()
        .map(|n| n.len())
        .max();
    assert!(longest < Some(20), "no row carries another row's text");

    // At the very end of a file it costs one row, and the file is kept.
    let mut tail: Vec<String> = (1..=100).map(good_row).collect();
    tail.push("S101,L1,2024-01-01,1,1.00,1,true,c,web,\"oops".into());
    let text = sales_rows(&tail.iter().map(String::as_str).collect::<Vec<_>>());
    let out = convert(&text, sales_with_limit(0.05)).await;
    assert_eq!(
        (out.manifest.rows_read, out.manifest.rows_written),
        (101, 100)
    );
}

/// Converts `text` as a dataset without a contract and returns the manifest's column types
/// and the values of `column` as text.
async fn sniffed(text: &str, column: &str) -> (Vec<String>, Vec<Option<String>>, Converted) {
    let out = convert_without_contract(text, "stores").await;
    let types = out
        .manifest
        .columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.column_type))
        .collect();
    let values = out.strings_or_text(column);
    (types, values, out)
}

/// A column of `first` for 1,000 rows, then `later` values, under header `id,v`.
fn column_file(first: &str, later: &[&str]) -> (String, Vec<String>) {
    let mut values: Vec<String> = (0..1000)
        .map(|i| first.replace('#', &i.to_string()))
        .collect();
    values.extend(later.iter().map(|v| v.to_string()));
    let mut text = String::from("id,v\n");
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!("{i},{v}\n"));
    }
    (text, values)
}

/// Finding 2: types sniffed from the first 1,000 rows reparsed later values into others.
#[tokio::test]
async fn sniffed_types_past_the_sniff_window_widen_and_keep_every_value() {
    for later in [
        &["01234"][..],
        &["12345678901234567890"],
        &["+14155552671"],
        &["+007"],
        &["1e999"],
        &["just text", "more text"],
    ] {
        let (text, values) = column_file("#", later);
        let (types, stored, out) = sniffed(&text, "v").await;
        assert_eq!(types[1], "v:string", "{later:?}");
        assert_eq!(out.manifest.status, Status::Accepted, "{later:?}");
        assert_eq!(out.manifest.rows_written, values.len() as u64);
        let expected: Vec<Option<String>> = values.into_iter().map(Some).collect();
        assert_eq!(stored, expected, "{later:?}: every value as written");
    }
    // A plain text column after 1,000 numeric rows was rejected at 50%.
    let mut text = String::from("id,v\n");
    for i in 0..2000 {
        let v = if i < 1000 {
            i.to_string()
        } else {
            format!("name {i}")
        };
        text.push_str(&format!("{i},{v}\n"));
    }
    let (types, _, out) = sniffed(&text, "v").await;
    assert_eq!(types[1], "v:string");
    assert_eq!(
        (out.manifest.status, out.manifest.rows_written),
        (Status::Accepted, 2000)
    );
    // Integers that later need a fraction become an exact decimal, not a float.
    let (text, _) = column_file("#", &["2.25", "-0.5"]);
    let (types, stored, _) = sniffed(&text, "v").await;
    assert_eq!(types[1], "v:decimal(5,2)");
    assert_eq!(stored[999].as_deref(), Some("999.00"));
    assert_eq!(stored[1000].as_deref(), Some("2.25"));
    assert_eq!(stored[1001].as_deref(), Some("-0.50"));
}

/// Finding 2, contract side: a float column must not turn `1e999` into infinity.
#[tokio::test]
async fn sniffed_types_float_overflow_is_rejected_not_infinite() {
    let c = contract(
        r#"
        dataset = "readings"
        columns = [{ name = "id", type = "string" }, { name = "value", type = "float" }]"#,
    );
    let out = convert("id,value\na,1.5\nb,1e999\nc,-inf\n", sales_free(c, 1.0)).await;
    assert_eq!(out.manifest.rows_written, 2);
    let rejects = out.rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["reason"], "number out of range: \"1e999\"");
}

fn sales_free(
    mut contract: snowcast::domain::contract::Contract,
    ratio: f64,
) -> snowcast::domain::contract::Contract {
    contract.max_reject_ratio = ratio;
    contract
}

/// Finding 3: a CSV column named `tenant_id` sat beside the real one and could shadow it.
#[tokio::test]
async fn reserved_column_names_are_renamed_and_the_tenant_is_the_real_one() {
    let text = "sku,tenant_id,_source_row,Tenant ID\nA,globex,7,initech\n";
    let out = convert_without_contract(text, "stores").await;
    let names: Vec<&str> = out
        .manifest
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["sku", "_csv_tenant_id", "source_row", "_csv_tenant_id_2"]
    );
    let batch = &out.batches()[0];
    let schema = batch.schema();
    let mut all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "silver column names are unique");
    assert_eq!(out.strings("tenant_id"), [Some("acme".to_string())]);
    assert_eq!(out.strings("_csv_tenant_id"), [Some("globex".to_string())]);

    // With a contract, the column is kept under its new name, never dropped or merged.
    let text = format!("{SALES_HEADER},tenant_id\n{},globex\n", good_row(1));
    let out = convert(&text, sales_with_limit(0.0)).await;
    assert_eq!(out.manifest.extra_columns, ["_csv_tenant_id"]);
    assert_eq!(out.strings("tenant_id"), [Some("acme".to_string())]);
    assert_eq!(out.strings("_csv_tenant_id"), [Some("globex".to_string())]);
}

/// An input generated on the fly: a header, then `rows` rows whose notes are `cell_bytes`
/// long (every tenth row's notes empty, a NULL), without holding the text.
struct BigCells {
    rows: usize,
    cell_bytes: usize,
}

struct BigCellsReader {
    pending: Vec<u8>,
    at: usize,
    row: usize,
    rows: usize,
    cell_bytes: usize,
}

impl AsyncRead for BigCellsReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at == this.pending.len() && this.row < this.rows {
            this.row += 1;
            let notes = if this.row.is_multiple_of(10) {
                0
            } else {
                this.cell_bytes
            };
            this.pending = format!("S{},L1,2024-01-01,1,1.00,1,true,c,web,", this.row).into_bytes();
            this.pending.resize(this.pending.len() + notes, b'x');
            this.pending.push(b'\n');
            this.at = 0;
        }
        let n = buf.remaining().min(this.pending.len() - this.at);
        buf.put_slice(&this.pending[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl Input for BigCells {
    async fn open(&self) -> snowcast::Result<ByteSource> {
        Ok(Box::new(BigCellsReader {
            pending: format!("{SALES_HEADER}\n").into_bytes(),
            at: 0,
            row: 0,
            rows: self.rows,
            cell_bytes: self.cell_bytes,
        }))
    }
}

/// Finding 4: large cells pushed a batch past Arrow's 2 GiB of text; later rows were
/// rejected as "text too large for one batch", and a NULL after that panicked.
#[tokio::test]
async fn batch_text_over_2_gib_is_cut_into_batches_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut flat = sales_with_limit(0.0);
    flat.partition = None;
    let converter = Converter::try_new(
        "acme",
        "sales",
        SourceId::new("s3://bronze/acme/sales/big.csv", "big.csv", "f"),
    )
    .unwrap()
    .with_contract(flat)
    .with_settings(ConvertSettings::default().with_spill_dir(dir.path()));
    let input = BigCells {
        rows: 230,
        cell_bytes: 10 << 20,
    };
    let manifest = converter
        .run(&input, &LocalDirSink::new(dir.path().join("silver")))
        .await
        .unwrap();
    assert_eq!(manifest.status, Status::Accepted, "{:?}", manifest.reason);
    assert_eq!((manifest.rows_read, manifest.rows_written), (230, 230));
    assert!(manifest.source.text_bytes > 2 << 30);
}

/// Finding 5 (spill): a small file expanding into more spill than allowed is rejected with
/// the reason, and its rows are still counted.
#[tokio::test]
async fn memory_spill_past_its_limit_rejects_the_file_and_counts_it() {
    let rows: Vec<String> = (0..30_000)
        .map(|i| {
            format!(
                "S{i},L1,2024-0{}-{:02},{i},1.00,1,false,c,web,note {i} {}",
                1 + i % 9,
                1 + i % 28,
                "pad".repeat(20)
            )
        })
        .collect();
    let mut settings = ConvertSettings::default().with_memory_budget(1 << 20);
    settings.max_spill_bytes = 256 << 10;
    let out = convert_all_or_nothing(&rows, settings).await;
    assert_eq!(out.manifest.status, Status::Rejected);
    assert!(
        out.manifest.reason.as_deref().unwrap().contains("spill"),
        "{:?}",
        out.manifest.reason
    );
    assert_eq!(out.manifest.rows_read, 30_000);
    assert!(
        out.manifest.spilled_bytes > 256 << 10,
        "what was spilled is reported"
    );
    assert_eq!(out.parquet_files_on_disk(), 0);
}

/// Finding 10: `Artikel;Preis (EUR, netto)` was split at the comma.
#[tokio::test]
async fn delimiter_ties_go_to_the_consistent_split() {
    let text = "Artikel;Preis (EUR, netto)\nA1;4,50\nB2;12,00\n";
    let out = convert_without_contract(text, "prices").await;
    assert_eq!(out.manifest.source.delimiter.as_deref(), Some(";"));
    let names: Vec<&str> = out
        .manifest
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["artikel", "preis_eur_netto"]);
    assert_eq!(
        out.strings("preis_eur_netto"),
        [Some("4,50".to_string()), Some("12,00".to_string())]
    );
}

/// Finding 11: `"abc"def` became `abcdef`, and `"say \"hi\""` was mangled.
#[tokio::test]
async fn lenient_quotes_are_rejected_rows_never_altered_values() {
    let text = sales_rows(&[
        &good_row(1),
        "S2,L1,2024-01-01,1,1.00,1,true,c,web,\"abc\"def",
        "S3,L1,2024-01-01,1,1.00,1,true,c,web,\"say \\\"hi\\\"\"",
        &good_row(4),
    ]);
    let out = convert(&text, sales_with_limit(1.0)).await;
    assert_eq!(out.manifest.rows_written, 2);
    let rejects = out.rejects();
    assert_eq!(rejects.len(), 2);
    for reject in &rejects {
        assert_eq!(reject["column"], "notes");
        assert!(
            reject["reason"]
                .as_str()
                .unwrap()
                .starts_with("text after the closing quote"),
            "{reject}"
        );
    }
    assert_eq!(
        out.strings("notes"),
        [Some("note 1".to_string()), Some("note 4".to_string())]
    );
}

/// Finding 13: a file rejected for invalid UTF-8 at row 5,001 reported `rows_read 5001`.
#[tokio::test]
async fn accounting_a_file_rejected_mid_way_counts_every_record() {
    let mut bytes = format!("{SALES_HEADER}\n").into_bytes();
    for i in 1..=10_001 {
        let mut row = good_row(i).into_bytes();
        if i == 5001 {
            row.extend_from_slice(b" \xff");
        }
        bytes.extend_from_slice(&row);
        bytes.push(b'\n');
    }
    let out = convert_sales_bytes(bytes).await;
    assert_eq!(out.manifest.status, Status::Rejected);
    assert!(out.manifest.reason.as_deref().unwrap().contains("row 5001"));
    assert_eq!(out.manifest.rows_read, 10_001);
    assert_eq!(out.manifest.rows_rejected, 10_001);

    // A refusal before the first row (a missing required column) counts the file too.
    let text = format!("sku_id,date\n{}", "A,2024-01-01\n".repeat(500));
    let out = convert(&text, sales_with_limit(0.05)).await;
    assert_eq!(out.manifest.status, Status::Rejected);
    assert_eq!(out.manifest.rows_read, 500);
}

/// Finding 6: ~3,700 partitions (ten years of days) made a manifest too large for one SQS
/// message. 20,000 daily partitions, converted for real, announce in messages that fit.
#[tokio::test]
async fn manifest_over_sqs_limit_with_20000_partitions_is_announced_in_parts() {
    let start = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let rows: Vec<String> = (0..20_000u64)
        .map(|i| {
            let day = start + chrono::Days::new(i);
            format!("S{i},L1,{day},1,1.00,1,true,c,web,")
        })
        .collect();
    let out = convert_all_or_nothing(&rows, ConvertSettings::default()).await;
    assert_eq!(out.manifest.partitions.len(), 20_000);
    assert!(serde_json::to_vec(&out.manifest).unwrap().len() > 1 << 20);
    let messages = out.manifest.load_messages("_manifests/m.json");
    assert!(messages.len() > 1);
    let mut announced = 0;
    for message in &messages {
        let size = serde_json::to_vec(message).unwrap().len();
        assert!(
            size <= snowcast::domain::manifest::MAX_LOAD_MESSAGE_BYTES,
            "{size}"
        );
        announced += message.files.len();
    }
    assert_eq!(announced, 20_000);
}

/// Found by the `front_end` fuzz target: a corrupt or truncated gzip/zstd file failed the
/// conversion as an I/O error, so the upload was retried into the DLQ instead of being
/// rejected with its reason.
#[tokio::test]
async fn fuzz_front_end_corrupt_compressed_data_rejects_the_file() {
    let text = sales_rows(
        &(1..=2000)
            .map(good_row)
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    let gzip = gz.finish().unwrap();
    let zstd = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let mut flipped = gzip.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    for (name, bytes) in [
        ("flipped gzip", flipped),
        ("truncated gzip", gzip[..gzip.len() / 2].to_vec()),
        ("truncated zstd", zstd[..zstd.len() / 2].to_vec()),
    ] {
        let out = convert_sales_bytes(bytes).await;
        assert_eq!(out.manifest.status, Status::Rejected, "{name}");
        let reason = out.manifest.reason.unwrap();
        assert!(reason.contains("corrupt or truncated"), "{name}: {reason}");
    }
}

// Second review (adversarial tester, after the fixes above): each test is named after what
// it found.

/// A contract decimal with more places than its scale was rounded (`10.005` -> `10.01`).
#[tokio::test]
async fn adversarial_decimals_past_the_scale_are_rejected_not_rounded() {
    let rows = [
        "S1,L1,2024-01-01,1,10.005,1.00,true,c,web,n",
        "S2,L1,2024-01-01,1,10.000,1.00,true,c,web,n",
        "S3,L1,2024-01-01,1,10.01,1.23456,true,c,web,n",
    ];
    let out = convert(&sales_rows(&rows), sales_with_limit(1.0)).await;
    assert_eq!(
        (out.manifest.rows_written, out.manifest.rows_rejected),
        (1, 2)
    );
    let rejects = out.rejects();
    assert_eq!(rejects[0]["column"], "revenue");
    assert_eq!(rejects[1]["column"], "price");
    assert!(
        rejects[0]["reason"].as_str().unwrap().contains("scale"),
        "{}",
        rejects[0]
    );
    assert_eq!(out.strings_or_text("revenue"), [Some("10.00".to_string())]);
}

/// A leap second rolled over to the next minute and nanoseconds were cut to microseconds.
#[tokio::test]
async fn adversarial_leap_seconds_and_nanoseconds_are_rejected_not_altered() {
    let inventory = contract(include_str!("../contracts/inventory.toml"));
    let text = "sku_id,location_id,date,on_hand,on_order,unit_cost,snapshot_at\n\
                S1,L1,2024-01-01,1,0,1.0,2024-06-30T12:00:60Z\n\
                S2,L1,2024-01-01,1,0,1.0,2024-03-01T12:34:56.123456789Z\n\
                S3,L1,2024-01-01,1,0,1.0,2024-03-01T12:34:56.123456Z\n";
    let mut lenient = inventory.clone();
    lenient.max_reject_ratio = 1.0;
    let out = convert(text, lenient).await;
    assert_eq!(
        (out.manifest.rows_written, out.manifest.rows_rejected),
        (1, 2)
    );
    let reasons: Vec<String> = out
        .rejects()
        .iter()
        .map(|r| r["reason"].to_string())
        .collect();
    assert!(reasons[0].contains("leap second"), "{reasons:?}");
    assert!(reasons[1].contains("microseconds"), "{reasons:?}");

    // Without a contract the column stays text, every value as written.
    let sniffed = "id,at\n1,2024-01-01 23:59:60\n2,2024-01-02 00:00:00\n";
    let out = convert_without_contract(sniffed, "events").await;
    assert_eq!(
        out.strings_or_text("at"),
        [
            Some("2024-01-01 23:59:60".to_string()),
            Some("2024-01-02 00:00:00".to_string())
        ]
    );
}

/// `SKU;Price,EUR` / `A1;4,50` split on the comma: both delimiters explained every record.
#[tokio::test]
async fn adversarial_semicolon_and_decimal_comma_tie_splits_on_the_semicolon() {
    let out =
        convert_without_contract("SKU;Price,EUR\nA1;4,50\nA2;5,00\nA3;12,00\n", "prices").await;
    assert_eq!(out.manifest.source.delimiter.as_deref(), Some(";"));
    assert_eq!(
        out.strings_or_text("price_eur"),
        ["4,50", "5,00", "12,00"].map(|v| Some(v.to_string()))
    );
}

/// A stray quote closed 149,990 lines later hid those rows inside one rejected record,
/// and the file was accepted with 50,010 rows read.
#[tokio::test]
async fn adversarial_stray_quote_closed_later_counts_every_swallowed_row() {
    let mut rows: Vec<String> = (1..=20_000).map(good_row).collect();
    rows[9] = "S10,L1,2024-01-01,1,1.00,1,true,c,web,\"Pipe 12 long".into();
    rows[14_999] = "S15000,L1,2024-01-01,1,1.00,1,true,c,web,Hose 3/4\" x 10m".into();
    let text = sales_rows(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    let out = convert(&text, sales_with_limit(0.05)).await;
    assert_eq!(out.manifest.rows_read, 20_000, "every physical record");
    assert_eq!(
        out.manifest.rows_invalid, 14_991,
        "row 10 through row 15,000"
    );
    assert_eq!(
        out.manifest.status,
        Status::Rejected,
        "far above the reject limit"
    );

    let out = convert(&text, sales_with_limit(1.0)).await;
    assert_eq!(
        (out.manifest.rows_written, out.manifest.rows_rejected),
        (5009, 14_991)
    );
    let rejects = out.rejects();
    assert_eq!(
        (rejects[0]["row"].as_i64(), rejects[0]["last_row"].as_i64()),
        (Some(10), Some(15_000))
    );
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("14991 physical records"),
        "{}",
        rejects[0]
    );
}

/// 1,698 bytes of zstd wrote an 829 MB reject log.
#[tokio::test]
async fn adversarial_reject_log_is_capped_and_counts_the_rest() {
    let mut text = String::from("a,b\n");
    for _ in 0..50_000 {
        text.push_str("x\n");
    }
    let settings = ConvertSettings {
        max_reject_bytes: 100_000,
        ..ConvertSettings::default()
    };
    let out = convert_with(text.into_bytes(), "garbage", None, settings).await;
    assert_eq!(out.manifest.rows_read, 50_000);
    assert_eq!(out.manifest.rows_rejected, 50_000);
    let listed = out.rejects();
    let note = listed.last().unwrap();
    assert_eq!(
        note["omitted_rows"].as_u64(),
        Some(out.manifest.rejects_omitted)
    );
    assert_eq!(
        listed.len() as u64 - 1 + out.manifest.rejects_omitted,
        50_000,
        "listed + omitted"
    );
    let size: u64 = walk(out.dir.path())
        .iter()
        .filter(|p| p.to_string_lossy().contains("_rejects"))
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(size < 101_000, "{size} bytes of reject log");
}

/// `--dataset _rejects` wrote Parquet into the silver bucket's reject area.
#[test]
fn adversarial_reserved_dataset_names_are_refused() {
    for dataset in ["_rejects", "_manifests", "_announced", "_quarantine", "_x"] {
        let source = SourceId::new("s3://bronze/acme/x/a.csv", "a.csv", "0123");
        assert!(
            Converter::try_new("acme", dataset, source).is_err(),
            "{dataset}"
        );
    }
}

/// A zstd frame made with `--long=27` took 160 MB at a 32 MiB budget: the decoder holds a
/// whole window. Windows over half the budget are refused.
#[tokio::test]
async fn adversarial_zstd_windows_over_half_the_budget_reject_the_file() {
    assert_eq!(snowcast::convert::zstd_window_log_max(32 << 20), 24);
    assert_eq!(snowcast::convert::zstd_window_log_max(256 << 20), 27);
    let rows: Vec<String> = (1..=2000).map(good_row).collect();
    let text = sales_rows(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
    encoder.window_log(27).unwrap();
    encoder.long_distance_matching(true).unwrap();
    encoder.include_contentsize(false).unwrap();
    std::io::Write::write_all(&mut encoder, text.as_bytes()).unwrap();
    let long = encoder.finish().unwrap();
    let small = ConvertSettings::default().with_memory_budget(32 << 20);
    let out = convert_with(long.clone(), "sales", Some(sales_with_limit(0.0)), small).await;
    assert_eq!(out.manifest.status, Status::Rejected);
    let out = convert_with(
        long,
        "sales",
        Some(sales_with_limit(0.0)),
        ConvertSettings::default(),
    )
    .await;
    assert_eq!(
        (out.manifest.status, out.manifest.rows_written),
        (Status::Accepted, 2000)
    );
}

/// 1,997 columns took 500 MB at the default 256 MiB budget: each Parquet column costs
/// ~250 KiB whatever the data. The column limit follows the budget.
#[test]
fn adversarial_columns_past_what_the_budget_holds_are_refused() {
    let limits = snowcast::domain::contract::Limits::default();
    let default = ConvertSettings::default().record_limits(limits);
    assert_eq!(default.max_fields, 512, "(256 MiB / 2 + 32 MiB) / 320 KiB");
    let large = ConvertSettings::default()
        .with_memory_budget(2 << 30)
        .record_limits(limits);
    assert_eq!(
        large.max_fields, 2000,
        "the contract's limit, when the budget holds it"
    );
}
