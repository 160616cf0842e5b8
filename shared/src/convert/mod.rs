//! CSV -> Parquet conversion: the core of the csv-to-parquet Lambda and `snowcast convert`.
//!
//! An async byte stream goes in (any size; it is never held whole), Parquet objects and a
//! reject log come out through an object sink, and a manifest accounts for every row. No
//! AWS types appear here: the Lambda and the CLI bring the input and the sink (ports).
//!
//! Steps: detect compression and encoding, sample the first MiB to find the delimiter and
//! header (and a first guess at the types, for a dataset without contract), then split
//! records incrementally, validate each row into typed Arrow columns, and write silver
//! Parquet. Parquet is committed only after the whole file is judged: above the contract's
//! reject threshold, nothing but the reject log and the manifest is written.
//!
//! Nothing is lost or altered without a trace, whatever the bytes: every physical record
//! is counted (`rows_read = rows_written + rows_rejected`, also for a file rejected
//! half-way); malformed records (unclosed or misplaced quotes, past the size limits) are
//! rejected with their reason; a sniffed type that a later value does not fit widens and
//! the file is read again, so no value is reparsed into something else. Memory is bounded
//! by the budget and the record limits, spill by its own limit, and every upload is
//! committed or aborted explicitly on every path.
//!
//! Files, in the order data flows: `input` (compression, encoding), `records`
//! (splitting), `plan` and `sniff` (header, delimiter, types), `values` and `columns`
//! (typed columns), `rows` (where records go), `output` (Parquet, partitions, spill,
//! rejects), `read` (one read of the input), `converter` (passes, judging), `settings`.
//!
//! May import: `domain`, `ports`, `lambda::env`, `error` (feature `convert`).

mod columns;
mod converter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod input;
mod output;
mod plan;
mod progress;
mod read;
mod records;
mod rows;
mod settings;
mod sniff;
mod values;

pub use converter::Converter;
pub use input::{Compression, DetectedEncoding, zstd_window_log_max};
pub use progress::Progress;
pub use records::RecordLimits;
pub use settings::ConvertSettings;
