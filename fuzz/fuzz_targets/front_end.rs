//! The converter's whole front end on arbitrary bytes: compression and encoding detection,
//! sampling, delimiter and type sniffing, splitting, validation, Parquet. The first byte
//! picks the dataset (sales, with its contract, or one without). Whatever the bytes: no
//! panic, `rows_read = rows_written + rows_rejected`, and every Parquet file committed
//! reads back with the rows the manifest gives it.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use parquet::file::reader::{FileReader, SerializedFileReader};
use snowcast::{
    adapters::memory::MemorySink,
    convert::{ConvertSettings, Converter},
    domain::{keys::SourceId, manifest::Status},
};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let [choice, text @ ..] = data else {
        return;
    };
    let dataset = if choice & 1 == 0 { "sales" } else { "fuzzed" };
    let source = SourceId::new("s3://bronze/acme/x/f.csv", "f.csv", "f");
    let settings = ConvertSettings {
        batch_rows: 64,
        ..ConvertSettings::default().with_memory_budget(1 << 20)
    };
    let converter = Converter::try_new("acme", dataset, source)
        .expect("valid names")
        .with_settings(settings);
    let sink = MemorySink::default();
    let manifest = runtime()
        .block_on(converter.run(&Bytes::copy_from_slice(text), &sink))
        .expect("only operational errors fail, and memory cannot fail");
    assert_eq!(
        manifest.rows_read,
        manifest.rows_written + manifest.rows_rejected
    );
    if manifest.status == Status::Rejected {
        assert_eq!(manifest.rows_written, 0);
    }
    let objects = sink.objects();
    for file in &manifest.files {
        let bytes = objects.get(&file.key).expect("a listed file is stored").clone();
        let reader = SerializedFileReader::new(bytes).expect("the Parquet reads back");
        let rows: i64 = reader.metadata().file_metadata().num_rows();
        assert_eq!(rows as u64, file.rows);
    }
});
