//! Property: any table, written as CSV in any of the ways tenants write them (quoting,
//! delimiter, line ends, compression, encoding), converts without a contract into Parquet
//! that holds every row and every value as written.

mod common;

use std::io::Write;

use common::*;
use proptest::prelude::*;
use snowcast::{convert::ConvertSettings, domain::manifest::Status};

/// Characters values are made of: quotes, spaces, line ends, digits, a few non-ASCII
/// letters, and `€`, which stands for the file's delimiter. The other candidate delimiters
/// are left out, so the delimiter the file uses is the one the sniffer can find.
const ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', '1', '7', '9', '.', '-', '"', ' ', '\n', '\r', 'é', 'ß', '中', '€', '\'',
];

#[derive(Debug, Clone, Copy)]
enum Quoting {
    /// Only fields that need it.
    Minimal,
    Always,
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
}

#[derive(Debug, Clone, Copy)]
enum Packing {
    Plain,
    Gzip,
    Zstd,
}

#[derive(Debug, Clone)]
struct Table {
    columns: usize,
    rows: Vec<Vec<String>>,
    delimiter: char,
    quoting: Quoting,
    crlf: bool,
    encoding: Encoding,
    packing: Packing,
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(ALPHABET), 0..12)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
        (-10_000i64..10_000).prop_map(|n| n.to_string()),
        (0u32..100_000, 0u32..3).prop_map(|(n, scale)| match scale {
            0 => n.to_string(),
            s => format!("{}.{:0width$}", n / 100, n % 100, width = s as usize),
        }),
        prop::sample::select(vec!["true", "FALSE", "2024-02-29", "007", "+7", "1e999"])
            .prop_map(str::to_string),
    ]
}

fn table() -> impl Strategy<Value = Table> {
    (2usize..6, 1usize..40).prop_flat_map(|(columns, rows)| {
        (
            prop::collection::vec(prop::collection::vec(value(), columns), rows),
            prop::sample::select(vec![',', ';', '\t', '|']),
            prop_oneof![Just(Quoting::Minimal), Just(Quoting::Always)],
            any::<bool>(),
            prop_oneof![
                Just(Encoding::Utf8),
                Just(Encoding::Utf8Bom),
                Just(Encoding::Utf16Le),
                Just(Encoding::Utf16Be)
            ],
            prop_oneof![
                Just(Packing::Plain),
                Just(Packing::Gzip),
                Just(Packing::Zstd)
            ],
        )
            .prop_map(
                move |(rows, delimiter, quoting, crlf, encoding, packing)| Table {
                    columns,
                    rows: rows
                        .into_iter()
                        .map(|row| {
                            row.into_iter()
                                .map(|v| v.replace('€', &delimiter.to_string()))
                                .collect()
                        })
                        .collect(),
                    delimiter,
                    quoting,
                    crlf,
                    encoding,
                    packing,
                },
            )
    })
}

impl Table {
    fn field(&self, value: &str) -> String {
        let needs = value.is_empty()
            || value.contains(['"', '\n', '\r', self.delimiter])
            || value.starts_with(' ');
        match self.quoting {
            Quoting::Always => format!("\"{}\"", value.replace('"', "\"\"")),
            Quoting::Minimal if needs && !value.is_empty() => {
                format!("\"{}\"", value.replace('"', "\"\""))
            }
            Quoting::Minimal => value.to_string(),
        }
    }

    fn text(&self) -> String {
        let end = if self.crlf { "\r\n" } else { "\n" };
        let header: Vec<String> = (0..self.columns).map(|i| format!("c{i}")).collect();
        let mut text = header.join(&self.delimiter.to_string()) + end;
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(|v| self.field(v)).collect();
            text.push_str(&fields.join(&self.delimiter.to_string()));
            text.push_str(end);
        }
        text
    }

    fn bytes(&self) -> Vec<u8> {
        let text = self.text();
        let encoded = match self.encoding {
            Encoding::Utf8 => text.into_bytes(),
            Encoding::Utf8Bom => [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
            Encoding::Utf16Le => [&[0xff, 0xfe][..], &utf16(&text, u16::to_le_bytes)].concat(),
            Encoding::Utf16Be => [&[0xfe, 0xff][..], &utf16(&text, u16::to_be_bytes)].concat(),
        };
        match self.packing {
            Packing::Plain => encoded,
            Packing::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&encoded).unwrap();
                gz.finish().unwrap()
            }
            Packing::Zstd => zstd::encode_all(&encoded[..], 1).unwrap(),
        }
    }
}

fn utf16(text: &str, order: fn(u16) -> [u8; 2]) -> Vec<u8> {
    text.encode_utf16().flat_map(order).collect()
}

/// What a value reads as: NULL for the null tokens, else itself.
fn expected(value: &str) -> Option<&str> {
    (!matches!(value, "" | "NULL" | "null")).then_some(value)
}

/// The value as stored equals the value as written, exactly; numbers stored as decimals
/// may gain trailing fraction zeros (`2.5` in a column of scale 2 is `2.50`), booleans
/// are lower case.
fn same(stored: &str, written: &str) -> bool {
    if stored == written || stored.eq_ignore_ascii_case(written) && written.len() <= 5 {
        return true;
    }
    match (stored.split_once('.'), written.split_once('.')) {
        (Some((si, sf)), Some((wi, wf))) => {
            si == wi && sf.starts_with(wf) && sf[wf.len()..].bytes().all(|b| b == b'0')
        }
        (Some((si, sf)), None) => si == written && sf.bytes().all(|b| b == b'0'),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_table_round_trips_through_parquet(table in table()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let out = runtime.block_on(convert_with(
            table.bytes(),
            "tables",
            None,
            ConvertSettings::default(),
        ));
        let manifest = &out.manifest;
        prop_assert_eq!(manifest.status, Status::Accepted, "{:?}", manifest.reason);
        let delimiter = table.delimiter.to_string();
        prop_assert_eq!(manifest.source.delimiter.as_deref(), Some(delimiter.as_str()));
        prop_assert_eq!(manifest.rows_read, table.rows.len() as u64);
        prop_assert_eq!(manifest.rows_written, table.rows.len() as u64);
        for column in 0..table.columns {
            let stored = out.strings_or_text(&format!("c{column}"));
            for (row, cells) in table.rows.iter().enumerate() {
                let written = expected(&cells[column]);
                let kept = stored[row].as_deref();
                let equal = match (kept, written) {
                    (Some(kept), Some(written)) => same(kept, written),
                    (kept, written) => kept == written,
                };
                prop_assert!(equal, "row {} column {}: wrote {:?}, stored {:?}", row, column, written, kept);
            }
        }
    }
}
