//! A moto AWS emulator on 127.0.0.1 for integration tests, started once per test binary.
//!
//! `tests/python/moto_server.py` runs it and serves until its stdin closes; this process
//! holds that pipe for its lifetime, so the server ends with the tests however they end.
//! Include with `#[path = "../../tests/support/moto.rs"] mod moto;`.

#![allow(dead_code)] // each test binary uses its own subset

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock},
};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

struct Server {
    url: String,
    // Kept open (and the child kept) until the process exits.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// Python with moto installed: `SNOWCAST_TEST_PYTHON` (set by scripts/test), else the
/// repository's `.venv`.
fn python() -> String {
    std::env::var("SNOWCAST_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_string())
}

/// The emulator's endpoint URL, starting it on first use.
pub fn endpoint() -> &'static str {
    &SERVER
        .get_or_init(|| {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/python/moto_server.py"
            );
            let mut child = Command::new(python())
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("moto_server starts (run scripts/setup to install moto)");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("piped stdout"))
                .read_line(&mut line)
                .expect("moto_server prints its URL");
            assert!(
                line.starts_with("http://127.0.0.1:"),
                "moto_server said {line:?}"
            );
            Server {
                url: line.trim().to_string(),
                _stdin: Mutex::new(child.stdin.take().expect("piped stdin")),
                _child: Mutex::new(child),
            }
        })
        .url
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
