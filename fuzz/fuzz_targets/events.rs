//! What triggers the functions: S3 notifications, alone or inside SQS batches, their keys
//! and the bronze layout. Nothing may panic; a key the layout accepts names a valid tenant
//! and dataset and cannot climb out of its prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snowcast::{
    domain::{keys::BronzeKey, naming},
    lambda,
    services::csv_to_parquet::{
        Notice,
        event::{decode_key, parse_notification},
    },
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = decode_key(text);
    check_key(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        for message in lambda::sqs_messages(&value).unwrap_or_default() {
            check_notification(&message.body);
        }
    }
    check_notification(text);
});

fn check_notification(body: &str) {
    for notice in parse_notification(body).unwrap_or_default() {
        if let Notice::Created(object) = notice {
            assert!(!object.bucket.is_empty() && !object.key.is_empty());
            check_key(&object.key);
        }
    }
}

fn check_key(key: &str) {
    if let Ok(bronze) = BronzeKey::parse(key) {
        assert!(naming::validate_tenant(bronze.scope.tenant()).is_ok());
        assert!(naming::validate_dataset(bronze.scope.dataset()).is_ok());
        assert!(key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
        assert!(!key.chars().any(char::is_control));
    }
}
