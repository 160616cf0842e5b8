//! A moto AWS emulator on 127.0.0.1 for integration tests, started once per test binary.
//! Include with `#[path = "../../tests/support/moto.rs"] mod moto;` beside `python.rs`.

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

use crate::python;

/// The emulator's endpoint URL, starting it on first use.
pub fn endpoint() -> &'static str {
    static SERVER: OnceLock<python::Server> = OnceLock::new();
    &SERVER.get_or_init(|| python::start("moto_server.py")).url
}

/// SDK configuration pointing at the emulator with static test credentials.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "moto",
        )))
        .build()
}

/// Environment for a child process (the CLI) to reach the emulator.
pub fn child_env() -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint().to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// A name unique to this test run, for buckets and queues.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
