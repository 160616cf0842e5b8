//! The record splitter and the value parsers. The first byte picks the delimiter and the
//! limits, the second how the text is chunked; the rest is the text. Records must not
//! depend on the chunking, stay within the limits, and count every line they swallow; no
//! parser may panic, and a value a sniffed type takes must come back as written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snowcast::convert::{RecordLimits, fuzzing};

fuzz_target!(|data: &[u8]| {
    let [choice, chunking, text @ ..] = data else {
        return;
    };
    let delimiter = [b',', b';', b'\t', b'|'][usize::from(choice & 3)];
    let limits = if choice & 4 == 0 {
        RecordLimits {
            max_field_bytes: 1 << 20,
            max_record_bytes: 1 << 20,
            max_fields: 1000,
        }
    } else {
        RecordLimits {
            max_field_bytes: 5,
            max_record_bytes: 12,
            max_fields: 3,
        }
    };
    let step = usize::from(*chunking % 16) + 1;
    let pieces = vec![step; text.len() / step];
    fuzzing::check_splitting(text, &pieces, delimiter, limits);
    for record in fuzzing::split(text, &[], delimiter, limits) {
        for field in &record.fields {
            fuzzing::check_values(field);
        }
    }
});
