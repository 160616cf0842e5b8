//! `snowcast up` as a user runs it: the running binary, uploads with boto3 (single-part and
//! multipart), silver and its manifests read back through the same S3 endpoint, and a
//! `kill -9` in the middle of a conversion followed by a restart on the same data.

mod common;

#[path = "../../tests/support/python.rs"]
mod python;

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A running `snowcast up`, killed when dropped.
struct Stack {
    child: Child,
    endpoint: String,
}

impl Stack {
    fn start(data: &Path) -> Stack {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snowcast"))
            .args(["up", "--data-dir", data.to_str().unwrap()])
            .args(["--s3-addr", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("snowcast up ended before printing its endpoint")
                .unwrap();
            if let Some(rest) = line.split("S3 endpoint ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep reading, so the stack never blocks on a full pipe; shown on failure.
        std::thread::spawn(move || {
            lines
                .map_while(Result::ok)
                .for_each(|l| eprintln!("up: {l}"))
        });
        Stack { child, endpoint }
    }

    fn s3(&self, args: &[&str]) -> String {
        let output = Command::new(python::python())
            .arg(python::script("local_s3.py"))
            .arg(&self.endpoint)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "local_s3.py {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        serde_json::from_str(&self.s3(&["list", bucket, prefix])).unwrap()
    }

    /// The manifests in silver, once there are `count` of them.
    fn manifests(&self, count: usize, within: Duration) -> Vec<Value> {
        let until = Instant::now() + within;
        loop {
            let keys = self.keys("silver", "_manifests/");
            if keys.len() >= count {
                return keys
                    .iter()
                    .map(|key| serde_json::from_str(&self.s3(&["get", "silver", key])).unwrap())
                    .collect();
            }
            assert!(
                Instant::now() < until,
                "{} manifests after {within:?}: {keys:?}",
                keys.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every row read is written or rejected, and every file the manifest names is in silver.
fn assert_accounted(stack: &Stack, manifest: &Value) {
    assert_eq!(manifest["status"], "accepted", "{manifest}");
    let read = manifest["rows_read"].as_u64().unwrap();
    let written = manifest["rows_written"].as_u64().unwrap();
    let rejected = manifest["rows_rejected"].as_u64().unwrap();
    assert_eq!(read, written + rejected, "{manifest}");
    let silver = stack.keys("silver", "");
    let files = manifest["files"].as_array().unwrap();
    let in_files: u64 = files.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    assert_eq!(in_files, written);
    for file in files {
        let key = file["key"].as_str().or(file["path"].as_str()).unwrap();
        let key = key.trim_start_matches("s3://silver/");
        assert!(silver.iter().any(|k| k == key), "{key} not in silver");
    }
}

fn queued_loads(data: &Path) -> usize {
    std::fs::read_dir(data.join("queues/loads/messages"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
}

#[test]
fn uploads_to_bronze_end_in_silver_with_every_row_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stack = Stack::start(&data);

    // A small file with two bad rows, under a key with a space and a subfolder.
    let small = dir.path().join("small.csv");
    common::write_daily_sales(&small, 500);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&small)
        .unwrap();
    writeln!(file, "SKU-1,LOC-1,2023-02-30,1,1.00,1.5,false,c,web,").unwrap();
    writeln!(file, "SKU-2,LOC-1,2023-03-01,many,1.00,1.5,false,c,web,").unwrap();
    stack.s3(&[
        "put",
        "bronze",
        "acme/sales/2023/q1 sales.csv",
        small.to_str().unwrap(),
    ]);
    // A file above boto3's multipart threshold (8 MB): CompleteMultipartUpload notifies.
    let large = dir.path().join("large.csv");
    common::write_daily_sales(&large, 150_000);
    assert!(std::fs::metadata(&large).unwrap().len() > 9 << 20);
    stack.s3(&[
        "put",
        "bronze",
        "globex/sales/history.csv",
        large.to_str().unwrap(),
    ]);

    let manifests = stack.manifests(2, Duration::from_secs(120));
    let by_tenant = |tenant: &str| {
        manifests
            .iter()
            .find(|m| m["tenant_id"] == tenant)
            .unwrap_or_else(|| panic!("no manifest for {tenant}: {manifests:?}"))
    };
    let acme = by_tenant("acme");
    assert_accounted(&stack, acme);
    assert_eq!(
        (acme["rows_read"].as_u64(), acme["rows_rejected"].as_u64()),
        (Some(502), Some(2))
    );
    let rejects = acme["rejects"]
        .as_str()
        .unwrap()
        .trim_start_matches("s3://silver/");
    assert!(
        stack.keys("silver", "").iter().any(|k| k == rejects),
        "{rejects}"
    );
    let globex = by_tenant("globex");
    assert_accounted(&stack, globex);
    assert_eq!(globex["rows_written"].as_u64(), Some(150_000));
    assert!(
        queued_loads(&data) >= 2,
        "each batch announced on the load queue"
    );
}

#[test]
fn a_stack_killed_mid_conversion_finishes_it_after_a_restart_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let large = dir.path().join("large.csv");
    common::write_daily_sales(&large, 400_000);
    {
        let mut stack = Stack::start(&data);
        stack.s3(&[
            "put",
            "bronze",
            "acme/sales/big.csv",
            large.to_str().unwrap(),
        ]);
        // The upload is answered once its notification is on disk; the conversion of
        // 400,000 rows has started or is about to.
        std::thread::sleep(Duration::from_millis(300));
        stack.child.kill().unwrap(); // SIGKILL
        stack.child.wait().unwrap();
        assert!(stack.keys_after_kill_are_unreachable());
    }
    let notifications = data.join("queues/bronze-events/messages");
    assert_eq!(
        std::fs::read_dir(&notifications).unwrap().count(),
        1,
        "killed before the conversion finished: its notification is still queued"
    );
    let stack = Stack::start(&data);
    let manifests = stack.manifests(1, Duration::from_secs(180));
    assert_eq!(manifests.len(), 1, "one conversion, not two");
    assert_accounted(&stack, &manifests[0]);
    assert_eq!(manifests[0]["rows_written"].as_u64(), Some(400_000));
    // Nothing left in flight: the notification is deleted once handled.
    let until = Instant::now() + Duration::from_secs(30);
    let pending = || std::fs::read_dir(&notifications).unwrap().count();
    while pending() > 0 {
        assert!(Instant::now() < until, "the notification was never deleted");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Stack {
    /// After a kill, the endpoint no longer answers (the test really killed the stack).
    fn keys_after_kill_are_unreachable(&self) -> bool {
        let output = Command::new(python::python())
            .arg(python::script("local_s3.py"))
            .arg(&self.endpoint)
            .args(["list", "silver"])
            .output()
            .unwrap();
        !output.status.success()
    }
}

#[test]
fn keys_that_leave_the_bucket_or_alias_another_are_refused_and_reads_honour_if_match() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stack = Stack::start(&data);
    let small = dir.path().join("small.csv");
    common::write_daily_sales(&small, 20);
    let small = small.to_str().unwrap();
    let long = format!("acme/sales/{}.csv", "L".repeat(150));
    for (key, code) in [
        ("acme/sales/../../../silver/x.parquet", "InvalidArgument"),
        ("acme/sales/./y.csv", "InvalidArgument"),
        ("acme/sales//z.csv", "InvalidArgument"),
        (long.as_str(), "KeyTooLongError"),
    ] {
        assert_eq!(
            stack.s3(&["try-put", "bronze", key, small]).trim(),
            code,
            "{key}"
        );
    }
    assert!(stack.keys("bronze", "").is_empty());
    assert!(stack.keys("silver", "").is_empty());
    let stray: Vec<_> = std::fs::read_dir(data.join("s3"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        stray.iter().all(|name| name == "bronze"
            || name == "silver"
            || name.to_string_lossy().starts_with('.')),
        "{stray:?}"
    );

    // A reader holding an old ETag is told the object changed (the converter skips it).
    stack.s3(&["put", "bronze", "acme/sales/a.csv", small]);
    let old = stack.s3(&["etag", "bronze", "acme/sales/a.csv"]);
    let other = dir.path().join("other.csv");
    common::write_daily_sales(&other, 30);
    stack.s3(&["put", "bronze", "acme/sales/a.csv", other.to_str().unwrap()]);
    let new = stack.s3(&["etag", "bronze", "acme/sales/a.csv"]);
    assert_ne!(old, new);
    assert_eq!(
        stack
            .s3(&["get-if-match", "bronze", "acme/sales/a.csv", old.trim()])
            .trim(),
        "PreconditionFailed"
    );
    assert_eq!(
        stack
            .s3(&["get-if-match", "bronze", "acme/sales/a.csv", new.trim()])
            .trim(),
        "ok"
    );
}
