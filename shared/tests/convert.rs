//! The converter end to end on real files: CSV bytes in, Parquet read back with the
//! `parquet` crate, reject logs and manifests checked. One test per input case.

mod common;

use std::io::Write;

use arrow_array::{Array, BooleanArray, Date32Array, Decimal128Array, Int64Array, cast::AsArray};
use common::*;
use snowcast::{
    adapters::local::LocalDirSink,
    convert::{ConvertSettings, Converter},
    domain::{keys::SourceId, manifest::Status},
};

const GOOD: &str = "A1,L1,2024-01-01,3,12.50,4.1667,true,toys,web,plain";

#[tokio::test]
async fn typed_values_round_trip_through_parquet() {
    let text = sales_rows(&[
        GOOD,
        "A2,L1,2024-01-02,,-0.5,0.3333,no,,store,\"quote \"\"q\"\", comma\"",
    ]);
    let out = convert(&text, sales_with_limit(0.0)).await;
    assert_eq!(out.manifest.status, Status::Accepted);
    assert_eq!(out.manifest.rows_written, 2);
    let batches = out.batches();
    let mut units = Vec::new();
    let mut revenue = Vec::new();
    let mut promo = Vec::new();
    let mut dates = Vec::new();
    for batch in &batches {
        let u = batch.column_by_name("units").unwrap();
        let u = u.as_any().downcast_ref::<Int64Array>().unwrap();
        units.extend(u.iter());
        let r = batch.column_by_name("revenue").unwrap();
        let r = r.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!((r.precision(), r.scale()), (14, 2));
        revenue.extend(r.iter());
        let p = batch.column_by_name("promo").unwrap();
        promo.extend(p.as_any().downcast_ref::<BooleanArray>().unwrap().iter());
        let d = batch.column_by_name("date").unwrap();
        dates.extend(d.as_any().downcast_ref::<Date32Array>().unwrap().iter());
    }
    assert_eq!(units, [Some(3), None]);
    assert_eq!(revenue, [Some(1250), Some(-50)]);
    assert_eq!(promo, [Some(true), Some(false)]);
    assert_eq!(dates, [Some(19723), Some(19724)]);
    assert_eq!(out.strings("category"), [Some("toys".into()), None]);
    assert_eq!(
        out.strings("notes"),
        [Some("plain".into()), Some("quote \"q\", comma".into())]
    );
    assert_eq!(
        out.strings("tenant_id"),
        [Some("acme".into()), Some("acme".into())]
    );
    assert_eq!(
        out.strings("_source_key"),
        vec![Some("s3://bronze/acme/sales/upload.csv".to_string()); 2]
    );
    let rows = int64s(&batches, "_source_row");
    assert_eq!(rows, [1, 2]);
}

#[tokio::test]
async fn files_are_hive_partitioned_by_day_with_deterministic_names() {
    let text = sales_rows(&[GOOD, "A2,L1,2024-01-02,1,1,1,false,toys,web,", GOOD]);
    let first = convert(&text, sales_with_limit(0.0)).await;
    let keys: Vec<_> = first
        .manifest
        .files
        .iter()
        .map(|f| f.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "sales/tenant_id=acme/date=2024-01-01/upload-0123456789abcdef-0.parquet",
            "sales/tenant_id=acme/date=2024-01-02/upload-0123456789abcdef-0.parquet",
        ]
    );
    assert_eq!(
        first.manifest.partitions,
        ["date=2024-01-01", "date=2024-01-02"]
    );
    assert_eq!(
        first
            .manifest
            .files
            .iter()
            .map(|f| f.rows)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let again = convert(&text, sales_with_limit(0.0)).await;
    let again_keys: Vec<_> = again.manifest.files.iter().map(|f| &f.key).collect();
    assert_eq!(
        again_keys,
        first
            .manifest
            .files
            .iter()
            .map(|f| &f.key)
            .collect::<Vec<_>>()
    );
    let bytes = |c: &Converted| {
        c.manifest
            .files
            .iter()
            .map(|f| std::fs::read(&f.uri).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bytes(&first),
        bytes(&again),
        "a rerun writes identical files"
    );
}

#[tokio::test]
async fn monthly_partitions_of_timestamps() {
    let inventory = snowcast::domain::contract::builtin("inventory")
        .unwrap()
        .unwrap();
    let text = "sku_id,location_id,date,on_hand,on_order,unit_cost,snapshot_at\n\
                A,L,2024-01-31,1,0,1.5,2024-01-31T23:00:00Z\n\
                A,L,2024-02-01,2,0,1.5,2024-02-01 08:00:00\n";
    let out = convert(text, inventory).await;
    assert_eq!(
        out.manifest.partitions,
        ["date_month=2024-01", "date_month=2024-02"]
    );
    let stamps: Vec<i64> = out
        .batches()
        .iter()
        .flat_map(|b| {
            b.column_by_name("snapshot_at")
                .unwrap()
                .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(stamps, [1_706_742_000_000_000, 1_706_774_400_000_000]);
}

#[tokio::test]
async fn each_kind_of_bad_row_is_rejected_with_its_reason() {
    let text = sales_rows(&[
        GOOD,
        "A1,L1,2024-01-01,3,12.50,4.1667,true,toys,web", // too few fields
        "A1,L1,2024-01-01,3,12.50,4.1667,true,toys,web,n,extra", // too many fields
        "A1,L1,2024-01-01,three,12.50,4.1667,true,toys,web,", // not an int
        "A1,L1,2024-02-30,3,12.50,4.1667,true,toys,web,", // impossible date
        "A1,L1,2024-01-01,3,12.5.0,4.1667,true,toys,web,", // not a decimal
        "A1,L1,2024-01-01,3,12.50,4.1667,maybe,toys,web,", // not a bool
        ",L1,2024-01-01,3,12.50,4.1667,true,toys,web,",  // missing key
        "A1,L1,2024-01-01,3,123456789012345.00,1,true,toys,web,", // out of precision
        GOOD,
    ]);
    let out = convert(&text, sales_with_limit(1.0)).await;
    assert_eq!(out.manifest.status, Status::Accepted);
    assert_eq!(out.manifest.rows_read, 10);
    assert_eq!(out.manifest.rows_written, 2);
    assert_eq!(out.manifest.rows_invalid, 8);
    let rejects = out.rejects();
    let summary: Vec<(i64, Option<&str>, &str)> = rejects
        .iter()
        .map(|r| {
            (
                r["row"].as_i64().unwrap(),
                r["column"].as_str(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, None, "expected 10 fields, found 9"),
            (3, None, "expected 10 fields, found 11"),
            (4, Some("units"), "not an integer: \"three\""),
            (
                5,
                Some("date"),
                "not a date (expected YYYY-MM-DD): \"2024-02-30\""
            ),
            (6, Some("revenue"), "not a decimal: \"12.5.0\""),
            (7, Some("promo"), "not a boolean: \"maybe\""),
            (8, Some("sku_id"), "missing required value"),
            (
                9,
                Some("revenue"),
                "decimal out of range for its precision: \"123456789012345.00\""
            ),
        ]
    );
    assert_eq!(
        rejects[0]["fields"].as_array().unwrap().len(),
        9,
        "the record is kept"
    );
}

#[tokio::test]
async fn crossing_the_reject_threshold_rejects_the_file_and_writes_no_parquet() {
    let mut rows = vec![GOOD; 18];
    rows.push("A1,L1,bad-date,3,12.50,4.1667,true,toys,web,");
    rows.push("A1,L1,2024-01-01,x,12.50,4.1667,true,toys,web,");
    let text = sales_rows(&rows);
    // 2 of 20 rows = 10%: above 5%, within 10%.
    let rejected = convert(&text, sales_with_limit(0.05)).await;
    assert_eq!(rejected.manifest.status, Status::Rejected);
    assert!(
        rejected
            .manifest
            .reason
            .as_deref()
            .unwrap()
            .contains("2 of 20 rows"),
        "{:?}",
        rejected.manifest.reason
    );
    assert_eq!(rejected.manifest.rows_written, 0);
    assert_eq!(rejected.manifest.rows_rejected, 20);
    assert_eq!(rejected.parquet_files_on_disk(), 0);
    assert_eq!(rejected.rejects().len(), 2, "bad rows are still reported");
    let within = convert(&text, sales_with_limit(0.10)).await;
    assert_eq!(within.manifest.status, Status::Accepted);
    assert_eq!(within.manifest.rows_written, 18);
}

#[tokio::test]
async fn unpartitioned_rejection_aborts_files_already_streaming() {
    let mut flat = sales_with_limit(0.0);
    flat.partition = None;
    let mut rows = vec![GOOD; 5000];
    rows.push("A1,L1,2024-01-01,x,12.50,4.1667,true,toys,web,");
    let settings = ConvertSettings {
        batch_rows: 100,
        ..ConvertSettings::default()
    }
    .with_target_file_bytes(4096);
    let out = convert_with(
        sales_rows(&rows).into_bytes(),
        "sales",
        Some(flat),
        settings,
    )
    .await;
    assert_eq!(out.manifest.status, Status::Rejected);
    assert_eq!(out.parquet_files_on_disk(), 0);
    let leftovers: Vec<_> = walk(out.dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_missing_required_column_rejects_the_file() {
    let text = "sku_id,date,units\nA,2024-01-01,1\n";
    let out = convert(text, sales_with_limit(0.05)).await;
    assert_eq!(out.manifest.status, Status::Rejected);
    let reason = out.manifest.reason.unwrap();
    assert!(reason.contains("location_id"), "{reason}");
    assert!(out.manifest.rejects.is_none());
}

#[tokio::test]
async fn missing_nullable_and_extra_columns_are_reported() {
    let text = "sku_id,location_id,date,Units,Store Manager\nA,L,2024-01-01,1,Ann\n";
    let out = convert(text, sales_with_limit(0.0)).await;
    assert_eq!(out.manifest.status, Status::Accepted);
    assert_eq!(
        out.manifest.missing_columns,
        ["revenue", "price", "promo", "category", "channel", "notes"]
    );
    assert_eq!(out.manifest.extra_columns, ["store_manager"]);
    assert_eq!(out.strings("store_manager"), [Some("Ann".into())]);
    assert_eq!(out.strings("notes"), [None]);
}

#[tokio::test]
async fn bom_crlf_and_quoted_newlines() {
    let text = format!(
        "\u{feff}{SALES_HEADER}\r\nA1,L1,2024-01-01,3,1,1,true,toys,web,\"line one\r\nline two\"\r\n{GOOD}\r\n"
    );
    let out = convert(&text, sales_with_limit(0.0)).await;
    assert_eq!(out.manifest.source.encoding.as_deref(), Some("utf-8-bom"));
    assert_eq!(out.manifest.rows_written, 2);
    assert_eq!(
        out.strings("notes"),
        [Some("line one\r\nline two".into()), Some("plain".into())]
    );
    assert_eq!(
        out.strings("sku_id")[0].as_deref(),
        Some("A1"),
        "BOM not in the first name"
    );
}

#[tokio::test]
async fn gzip_and_zstd_are_detected_by_magic_bytes() {
    let text = sales_rows(&[GOOD, GOOD, GOOD]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Two members, as `cat a.gz b.gz` produces.
    gzip.write_all(text.as_bytes()).unwrap();
    let mut gz_bytes = gzip.finish().unwrap();
    let mut second = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    second.write_all(format!("{GOOD}\n").as_bytes()).unwrap();
    gz_bytes.extend(second.finish().unwrap());
    let out = convert_sales_bytes(gz_bytes).await;
    assert_eq!(out.manifest.source.compression.as_deref(), Some("gzip"));
    assert_eq!(out.manifest.rows_written, 4);

    let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let out = convert_sales_bytes(zst).await;
    assert_eq!(out.manifest.source.compression.as_deref(), Some("zstd"));
    assert_eq!(out.manifest.rows_written, 3);
}

#[tokio::test]
async fn empty_file_is_rejected_and_header_only_is_accepted_empty() {
    let empty = convert("", sales_with_limit(0.0)).await;
    assert_eq!(empty.manifest.status, Status::Rejected);
    assert_eq!(
        empty.manifest.reason.as_deref(),
        Some("the file is empty (no header row)")
    );

    let header_only = convert(&format!("{SALES_HEADER}\r\n"), sales_with_limit(0.0)).await;
    assert_eq!(header_only.manifest.status, Status::Accepted);
    assert_eq!(header_only.manifest.rows_read, 0);
    assert!(header_only.manifest.files.is_empty());
}

#[tokio::test]
async fn duplicate_headers_are_made_unique() {
    let text = "Name,name,NAME\na,b,c\n";
    let out = convert_without_contract(text, "misc").await;
    let names: Vec<_> = out
        .manifest
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["name", "name_2", "name_3"]);
    assert_eq!(out.strings("name_3"), [Some("c".into())]);
}

#[tokio::test]
async fn delimiters_are_sniffed_and_decimal_commas_read() {
    let mut sales = sales_with_limit(0.0);
    sales.decimal_separator = ',';
    for delimiter in [";", "\t", "|"] {
        let text = SALES_HEADER.replace(',', delimiter)
            + "\n"
            + &[
                "A1",
                "L1",
                "2024-01-01",
                "3",
                "12,50",
                "4,1667",
                "true",
                "toys",
                "web",
                "x",
            ]
            .join(delimiter)
            + "\n";
        let out = convert(&text, sales.clone()).await;
        assert_eq!(out.manifest.source.delimiter.as_deref(), Some(delimiter));
        assert_eq!(out.manifest.rows_written, 1, "{delimiter:?}");
    }
}

#[tokio::test]
async fn windows_1252_is_decoded_when_declared_and_rejected_otherwise() {
    let mut bytes = format!("{SALES_HEADER}\n").into_bytes();
    bytes.extend_from_slice(b"A1,L1,2024-01-01,3,1,1,true,caf\xe9,web,\x80 promo\n");
    let utf8 = convert_sales_bytes(bytes.clone()).await;
    assert_eq!(utf8.manifest.status, Status::Rejected);
    let reason = utf8.manifest.reason.unwrap();
    assert!(
        reason.contains("row 1 is not valid UTF-8") && reason.contains("windows-1252"),
        "{reason}"
    );

    let mut declared = sales_with_limit(0.0);
    declared.encoding = snowcast::domain::contract::TextEncoding::Windows1252;
    let decoded = convert_with(bytes, "sales", Some(declared), Default::default()).await;
    assert_eq!(decoded.manifest.status, Status::Accepted);
    assert_eq!(decoded.strings("category"), [Some("café".into())]);
    assert_eq!(decoded.strings("notes"), [Some("€ promo".into())]);
}

#[tokio::test]
async fn utf16_with_bom_is_transcoded() {
    let text = format!("{SALES_HEADER}\n{GOOD}\n");
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let out = convert_sales_bytes(bytes).await;
    assert_eq!(out.manifest.source.encoding.as_deref(), Some("utf-16le"));
    assert_eq!(out.manifest.rows_written, 1);
}

#[tokio::test]
async fn unknown_datasets_get_sniffed_types_unless_strict() {
    let text = "Store,Opened,Staff,Rating,Code\nS1,2020-05-01,12,4.5,007\nS2,2021-06-30,,3.9,010\n";
    let out = convert_without_contract(text, "stores").await;
    assert_eq!(out.manifest.contract, None);
    let types: Vec<String> = out
        .manifest
        .columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.column_type))
        .collect();
    assert_eq!(
        types,
        [
            "store:string",
            "opened:date",
            "staff:int",
            "rating:decimal(2,1)",
            "code:string"
        ]
    );
    assert_eq!(out.manifest.rows_written, 2);

    let dir = tempfile::tempdir().unwrap();
    let strict = Converter::try_new("acme", "stores", SourceId::new("k.csv", "k.csv", "f"))
        .unwrap()
        .with_strict(true)
        .run(
            &bytes::Bytes::from(text.as_bytes().to_vec()),
            &LocalDirSink::new(dir.path()),
        )
        .await
        .unwrap();
    assert_eq!(strict.status, Status::Rejected);
    assert!(strict.reason.unwrap().contains("strict"));
}

#[tokio::test]
async fn spilled_partitions_keep_every_row_in_order() {
    // Rows cycle through 40 days so every batch touches every partition; a tiny budget
    // forces many spills.
    let rows: Vec<String> = (0..20_000)
        .map(|i| {
            format!(
                "S{i},L1,2024-01-{:02},{i},1.00,1,false,c,web,note {i}",
                1 + (i % 40) % 28
            )
        })
        .collect();
    let settings = ConvertSettings {
        batch_rows: 512,
        ..ConvertSettings::default().with_memory_budget(1 << 20)
    };
    let out = convert_all_or_nothing(&rows, settings).await;
    assert!(out.manifest.spilled_bytes > 0, "the budget forced a spill");
    assert_eq!(out.manifest.rows_written, 20_000);
    assert_eq!(out.manifest.partitions.len(), 28);
    for file in &out.manifest.files {
        let rows = int64s(&read_parquet(&file.uri), "_source_row");
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "source order kept in {}",
            file.key
        );
        assert_eq!(rows.len() as u64, file.rows);
    }
}

#[tokio::test]
async fn memory_grows_with_the_number_of_partitions_no_more() {
    // One row on each of 3,000 days, shuffled: the rows are ~200 KB, under the 1.3 MiB
    // buffer of a 4 MiB budget, but each one is a slice of its batch held by its partition,
    // and those slices' arrays (15 columns each) are ~9 MB. Uncounted, they stayed in
    // memory until the end (a 40,000-day file peaked at 160 MiB under a 24 MiB budget);
    // counted, they are spilled like any rows.
    let first = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let rows: Vec<String> = (0..3_000u64)
        .map(|i| {
            let day = first + chrono::Days::new(i * 7_919 % 3_000);
            format!("S{i},L1,{day},{i},1.00,1,false,c,web,")
        })
        .collect();
    let settings = ConvertSettings {
        batch_rows: 1_024,
        ..ConvertSettings::default().with_memory_budget(4 << 20)
    };
    let out = convert_all_or_nothing(&rows, settings).await;
    assert!(
        out.manifest.spilled_bytes > 0,
        "the slices' own memory forced a spill"
    );
    assert_eq!(out.manifest.rows_written, 3_000);
    assert_eq!(out.manifest.partitions.len(), 3_000);
}

#[tokio::test]
async fn date_ordered_partitions_spill_as_parquet_and_keep_every_row() {
    // Rows in date order, 600 a day, under a budget that spills every few days: each day
    // is spilled whole (encoded then, copied at the end) except the ones a spill cuts in
    // two, which are read back and encoded with their later rows.
    let rows: Vec<String> = (0..16_800)
        .map(|i| {
            format!(
                "S{},L1,2024-04-{:02},{i},{}.25,1,false,c,web,note {i}",
                i % 13,
                1 + i / 600,
                i % 1000
            )
        })
        .collect();
    let settings = ConvertSettings {
        batch_rows: 256,
        ..ConvertSettings::default().with_memory_budget(2 << 20)
    };
    let out = convert_all_or_nothing(&rows, settings).await;
    assert!(out.manifest.spilled_bytes > 0, "the budget forced a spill");
    assert_eq!(out.manifest.rows_written, 16_800);
    assert_eq!(out.manifest.partitions.len(), 28);
    let mut seen = Vec::new();
    for file in &out.manifest.files {
        let batches = read_parquet(&file.uri);
        let rows = int64s(&batches, "units");
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "order kept in {}",
            file.key
        );
        assert_eq!(rows.len() as u64, file.rows);
        let day: i64 = file.key.split("date=2024-04-").nth(1).unwrap()[..2]
            .parse()
            .unwrap();
        assert!(
            rows.iter().all(|&i| 1 + i / 600 == day),
            "rows of {day} only"
        );
        seen.extend(rows);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..16_800).collect::<Vec<i64>>(), "every row once");
}

#[tokio::test]
async fn large_outputs_roll_over_into_bounded_files() {
    let rows: Vec<String> = (0..30_000)
        .map(|i| format!("S{i},L{i},2024-01-01,{i},{i}.25,1,true,c{i},web,some free text {i}"))
        .collect();
    let settings = ConvertSettings {
        batch_rows: 1000,
        ..ConvertSettings::default().with_target_file_bytes(64 * 1024)
    };
    let out = convert_all_or_nothing(&rows, settings).await;
    assert!(
        out.manifest.files.len() > 3,
        "{} files",
        out.manifest.files.len()
    );
    for (n, file) in out.manifest.files.iter().enumerate() {
        assert!(file.key.ends_with(&format!("-{n}.parquet")), "{}", file.key);
        assert!(
            file.bytes < 2 * 64 * 1024 + (1 << 20),
            "{} bytes",
            file.bytes
        );
    }
    assert_eq!(
        out.manifest.files.iter().map(|f| f.rows).sum::<u64>(),
        30_000
    );
}

#[test]
fn contracts_with_formats_parse_custom_dates() {
    let c = contract(
        r#"
        dataset = "events"
        columns = [
          { name = "day", type = "date", format = "%d/%m/%Y" },
          { name = "at", type = "timestamp", format = "%d/%m/%Y %H:%M %z" },
        ]"#,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = runtime.block_on(convert("day,at\n31/12/2024,31/12/2024 23:30 +0100\n", c));
    assert_eq!(out.manifest.rows_written, 1);
    let batch = &out.batches()[0];
    let day = batch
        .column_by_name("day")
        .unwrap()
        .as_primitive::<arrow_array::types::Date32Type>();
    assert_eq!(day.value(0), 20088);
    let at = batch
        .column_by_name("at")
        .unwrap()
        .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_735_684_200_000_000);
}

#[tokio::test]
async fn one_core_and_two_cores_write_identical_files() {
    // Rows in no order and in date order, a small budget (spills) and small batches: the
    // two-core path (an encoder thread per series, partitions grouped on a thread of their
    // own) must write byte for byte what the one-core path writes.
    let mut state = 7u64;
    let random: Vec<String> = (0..12_000)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let day = 1 + (state >> 33) % 28;
            format!(
                "S{},L1,2024-02-{day:02},{i},1.50,2,false,c,web,note {i}",
                state % 97
            )
        })
        .collect();
    let mut by_date = random.clone();
    by_date.sort_by_key(|row| row.split(',').nth(2).unwrap().to_string());
    for (partitioned, rows) in [(true, &random), (true, &by_date), (false, &random)] {
        let mut contract = sales_with_limit(0.0);
        if !partitioned {
            contract.partition = None;
        }
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let bytes = sales_rows(&refs).into_bytes();
        let mut outputs = Vec::new();
        for threads in [1, 2] {
            let settings = ConvertSettings {
                batch_rows: 700,
                threads,
                ..ConvertSettings::default()
                    .with_memory_budget(1 << 20)
                    .with_target_file_bytes(96 * 1024)
            };
            let out = convert_with(bytes.clone(), "sales", Some(contract.clone()), settings).await;
            let files: Vec<(String, u64, Vec<u8>)> = out
                .manifest
                .files
                .iter()
                .map(|f| (f.key.clone(), f.rows, std::fs::read(&f.uri).unwrap()))
                .collect();
            assert_eq!(out.manifest.rows_written, 12_000);
            outputs.push((out.manifest.spilled_bytes > 0, files));
        }
        assert_eq!(outputs[0], outputs[1], "partitioned: {partitioned}");
        assert_eq!(outputs[0].0, partitioned, "partitioned files spill");
        assert!(outputs[0].1.len() >= if partitioned { 28 } else { 1 });
    }
}

/// A sink that keeps every upload's fate, and fails the commit of one key.
#[derive(Clone, Default)]
struct FatefulSink {
    fates: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, &'static str>>>,
    fail_commit_of: String,
}

#[async_trait::async_trait]
impl snowcast::ports::storage::ObjectSink for FatefulSink {
    async fn create(
        &self,
        key: &str,
    ) -> snowcast::error::Result<Box<dyn snowcast::ports::storage::ObjectUpload>> {
        self.fates.lock().unwrap().insert(key.to_string(), "open");
        Ok(Box::new(FatefulUpload {
            sink: self.clone(),
            key: key.to_string(),
            bytes: 0,
        }))
    }

    async fn get(&self, _key: &str) -> snowcast::error::Result<Option<bytes::Bytes>> {
        Ok(None)
    }
}

struct FatefulUpload {
    sink: FatefulSink,
    key: String,
    bytes: u64,
}

#[async_trait::async_trait]
impl snowcast::ports::storage::ObjectUpload for FatefulUpload {
    async fn write(&mut self, bytes: bytes::Bytes) -> snowcast::error::Result<()> {
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    async fn commit(
        self: Box<Self>,
    ) -> snowcast::error::Result<snowcast::ports::storage::StoredObject> {
        // A round trip, so several commits are in flight at once.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let fate = if self.key.contains(&self.sink.fail_commit_of) {
            "failed"
        } else {
            "committed"
        };
        self.sink
            .fates
            .lock()
            .unwrap()
            .insert(self.key.clone(), fate);
        if fate == "failed" {
            return Err(snowcast::error::Error::invalid(
                "commit",
                "refused by the test",
            ));
        }
        Ok(snowcast::ports::storage::StoredObject {
            uri: format!("test://{}", self.key),
            key: self.key,
            bytes: self.bytes,
        })
    }

    async fn abort(self: Box<Self>) -> snowcast::error::Result<()> {
        self.sink.fates.lock().unwrap().insert(self.key, "aborted");
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_partition_commit_fails_the_file_and_leaves_no_upload_open() {
    // 28 daily partitions, committed a few at a time beside the writing of the next ones;
    // the commit of day 10 fails. The conversion reports the error, the partitions before
    // it stay committed, and no upload is left open: the ones after it were committing
    // beside it, are aborted, or never started.
    let rows: Vec<String> = (0..5_000)
        .map(|i| format!("S{i},L1,2024-03-{:02},{i},1.00,1,false,c,web,", 1 + i % 28))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let sink = FatefulSink {
        fail_commit_of: "date=2024-03-10/".into(),
        ..FatefulSink::default()
    };
    let source = SourceId::new("s3://bronze/acme/sales/f.csv", "f.csv", "0123456789abcdef");
    let error = Converter::try_new("acme", "sales", source)
        .unwrap()
        .with_contract(sales_with_limit(0.0))
        .run(&bytes::Bytes::from(sales_rows(&refs)), &sink)
        .await
        .expect_err("a failed commit fails the conversion");
    assert!(error.to_string().contains("refused by the test"), "{error}");
    let fates = sink.fates.lock().unwrap().clone();
    let parquet: Vec<_> = fates
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .collect();
    assert!(
        parquet.iter().all(|(_, fate)| **fate != "open"),
        "no upload left open: {parquet:?}"
    );
    for (key, fate) in &parquet {
        let day: u32 = key.split("date=2024-03-").nth(1).unwrap()[..2]
            .parse()
            .unwrap();
        match day {
            ..10 => assert_eq!(**fate, "committed", "{key}"),
            10 => assert_eq!(**fate, "failed", "{key}"),
            // Committing beside the failed one, or aborted.
            _ => assert!(["committed", "aborted"].contains(*fate), "{key}"),
        }
    }
    assert!(
        !fates.keys().any(|k| k.contains("_manifests/")),
        "no manifest"
    );
}
