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
    /// The forecast API (with the warehouse feature).
    #[cfg_attr(not(feature = "warehouse"), allow(dead_code))]
    api: Option<String>,
    /// What it printed after its endpoints.
    #[cfg_attr(not(feature = "warehouse"), allow(dead_code))]
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Stack {
    fn start(data: &Path) -> Stack {
        Stack::start_with(data, &[])
    }

    fn start_with(data: &Path, extra: &[&str]) -> Stack {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snowcast"))
            .args(["up", "--data-dir", data.to_str().unwrap()])
            .args(["--s3-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut endpoint = None;
        let api = loop {
            let line = lines
                .next()
                .expect("snowcast up ended before printing its endpoints")
                .unwrap();
            let after = |marker: &str| {
                line.split(marker)
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap().to_string())
            };
            if let Some(found) = after("S3 endpoint ") {
                endpoint = Some(found);
            } else if let Some(found) = after("forecast API ") {
                break Some(found.trim_end_matches("/v1/forecast").to_string());
            } else if line.contains("without the warehouse feature") {
                break None;
            }
        };
        let endpoint = endpoint.expect("the S3 endpoint comes first");
        // Keep reading, so the stack never blocks on a full pipe; shown on failure.
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = printed.clone();
        std::thread::spawn(move || {
            lines.map_while(Result::ok).for_each(|line| {
                eprintln!("up: {line}");
                kept.lock().unwrap().push(line);
            })
        });
        Stack {
            child,
            endpoint,
            api,
            printed,
        }
    }

    /// The first line printed after the endpoints that contains `marker`.
    #[cfg(feature = "warehouse")]
    fn line(&self, marker: &str, within: Duration) -> String {
        poll(within, || {
            let printed = self.printed.lock().unwrap();
            printed.iter().find(|line| line.contains(marker)).cloned()
        })
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
    // The converter's metric records are kept in the data dir, not printed.
    let metrics = std::fs::read_to_string(data.join("metrics.jsonl")).unwrap();
    assert!(
        metrics
            .lines()
            .filter(|line| line.contains(r#""Function":"csv-to-parquet""#))
            .count()
            >= 2,
        "{metrics}"
    );
    if stack.api.is_none() {
        assert!(
            queued_loads(&data) >= 2,
            "each batch announced on the load queue"
        );
    }
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

/// The whole pipeline, as a planner sees it: a sales file uploaded with boto3 becomes a
/// draft forecast on the API, an edit is visible on the next read (and to its tenant only),
/// bad rows land in the rejects with reasons, and a stack killed while loading a
/// many-partition file loads every file once after a restart.
#[cfg(feature = "warehouse")]
#[test]
fn a_sales_file_becomes_a_forecast_that_a_planner_edits_and_a_killed_load_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut stack = Stack::start(&data);

    // acme: 15 SKUs at 3 locations over 120 days, shuffled, with two bad rows.
    let sales = dir.path().join("acme.csv");
    let last = common::write_shuffled_sales(&sales, 7, 120, 2);
    stack.s3(&[
        "put",
        "bronze",
        "acme/sales/2025/history.csv",
        sales.to_str().unwrap(),
    ]);
    let acme = token(&data, "acme");
    let globex = token(&data, "globex");

    // The draft: 90 days from the day after the last sale, once the model ran.
    let (from, to) = (last + chrono::Days::new(1), last + chrono::Days::new(90));
    let api = stack.api.clone().expect("built with the warehouse feature");
    let page = format!("{api}/v1/forecast?sku_id=SKU-03&from={from}&to={to}");
    let draft = poll(Duration::from_secs(180), || {
        let (status, body) = call("GET", &page, &acme, None);
        assert_eq!(status, 200, "{body}");
        (body["items"].as_array().unwrap().len() == 90).then_some(body)
    });
    let first = &draft["items"][0];
    assert_eq!(first["date"], from.to_string());
    assert!(first["draft_quantity"].as_f64().unwrap() >= 0.0, "{first}");
    assert_eq!(first["version"], 0);

    // An edit is visible on the very next read, and only to its tenant.
    let cell = format!("{api}/v1/edits/SKU-03/{from}");
    let (status, edit) = call(
        "PUT",
        &cell,
        &acme,
        Some(r#"{"quantity": 42.5, "note": "promo"}"#),
    );
    assert_eq!(status, 200, "{edit}");
    let (_, after) = call("GET", &page, &acme, None);
    assert_eq!(
        (
            after["items"][0]["quantity"].as_f64(),
            after["items"][0]["version"].as_i64()
        ),
        (Some(42.5), Some(1)),
        "{after}"
    );
    assert_eq!(after["items"][0]["draft_quantity"], first["draft_quantity"]);
    let (_, drafts) = call("GET", &format!("{page}&show_manual=false"), &acme, None);
    assert_eq!(drafts["items"][0]["quantity"], first["draft_quantity"]);
    let (status, other) = call("GET", &page, &globex, None);
    assert_eq!((status, other["items"].as_array().unwrap().len()), (200, 0));
    let (status, _) = call("PUT", &cell, &globex, Some(r#"{"quantity": 1}"#));
    assert_eq!(status, 200, "globex writes its own cell");
    let (_, still) = call("GET", &page, &acme, None);
    assert_eq!(still["items"][0]["quantity"].as_f64(), Some(42.5));
    let (status, _) = call("GET", &page, "not-a-token", None);
    assert_eq!(status, 401);

    // The bad rows are in the rejects, with their reasons.
    let manifest = &stack.manifests(1, Duration::from_secs(10))[0];
    assert_eq!(manifest["rows_rejected"], 2, "{manifest}");
    let rejects = manifest["rejects"]
        .as_str()
        .unwrap()
        .trim_start_matches("s3://silver/");
    let rejects = stack.s3(&["get", "silver", rejects]);
    assert!(
        rejects.contains("2024-13-00")
            && rejects.contains("2024-13-01")
            && rejects.contains("reason"),
        "{rejects}"
    );

    // globex: 730 daily partitions, killed as soon as its conversion is announced (the
    // loader is then inside its 730 one-file transactions), then restarted.
    let history = dir.path().join("globex.csv");
    common::write_daily_sales(&history, 100_000);
    stack.s3(&[
        "put",
        "bronze",
        "globex/sales/history.csv",
        history.to_str().unwrap(),
    ]);
    stack.manifests(2, Duration::from_secs(180));
    stack.child.kill().unwrap(); // SIGKILL
    stack.child.wait().unwrap();
    let loads_left = queued_loads(&data);
    let stack = Stack::start(&data);
    let until = Instant::now() + Duration::from_secs(300);
    while queued_loads(&data) > 0 {
        assert!(Instant::now() < until, "loads still queued");
        std::thread::sleep(Duration::from_millis(200));
    }
    let manifests = stack.manifests(2, Duration::from_secs(10));
    stack.stop();

    let written: u64 = manifests
        .iter()
        .map(|m| m["rows_written"].as_u64().unwrap())
        .sum();
    let warehouse = python::run_json(
        "warehouse.py",
        &[data.join("warehouse/snowcast.duckdb").to_str().unwrap()],
    );
    eprintln!("after the kill: {loads_left} load messages queued; warehouse {warehouse}");
    assert_eq!(
        warehouse["sales_rows"].as_u64(),
        Some(written),
        "{warehouse}"
    );
    assert_eq!(
        warehouse["sales_rows_distinct_source"],
        warehouse["sales_rows"]
    );
    assert_eq!(warehouse["rows_in_history"], warehouse["sales_rows"]);
    assert_eq!(warehouse["loads_failed"], 0);
    assert_eq!(warehouse["pending_refresh"], 0);
    assert_eq!(warehouse["sales_rows_by_tenant"]["globex"], 100_000);
    assert!(
        warehouse["draft_rows_by_tenant"]["globex"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(warehouse["draft_rows_by_tenant"]["acme"], 15 * 90);
}

#[cfg(feature = "warehouse")]
impl Stack {
    /// Stops the stack as Ctrl-C does, and waits for it to exit.
    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let until = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < until, "snowcast up did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A token for `tenant`, as `snowcast token` prints it.
#[cfg(feature = "warehouse")]
fn token(data: &Path, tenant: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_snowcast"))
        .args([
            "token",
            "--tenant",
            tenant,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// One API call; the status and the JSON body (null when empty).
#[cfg(feature = "warehouse")]
fn call(method: &str, url: &str, token: &str, body: Option<&str>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

/// Calls `check` until it returns something, failing after `within`.
#[cfg(feature = "warehouse")]
fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < until, "not ready after {within:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The web page in headless Chromium: a planner types a value into a day of the forecast
/// table, and the API returns it as that cell's edit; the page's screenshot is kept.
#[cfg(feature = "warehouse")]
#[test]
fn a_planner_edits_the_forecast_in_the_web_page_and_the_api_returns_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stack = Stack::start(&data);
    let sales = dir.path().join("acme.csv");
    let last = common::write_shuffled_sales(&sales, 11, 100, 0);
    stack.s3(&[
        "put",
        "bronze",
        "acme/sales/history.csv",
        sales.to_str().unwrap(),
    ]);
    let token = token(&data, "acme");
    let (from, to) = (last + chrono::Days::new(1), last + chrono::Days::new(90));
    let api = stack.api.clone().unwrap();
    let page = format!("{api}/v1/forecast?sku_id=SKU-05&from={from}&to={to}");
    poll(Duration::from_secs(180), || {
        let (_, body) = call("GET", &page, &token, None);
        (body["items"]
            .as_array()
            .is_some_and(|items| items.len() == 90))
        .then_some(())
    });

    let day = from + chrono::Days::new(2);
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-page-edit.png");
    let url = format!("{api}/?sku=SKU-05&from={from}&to={to}#token={token}");
    let summary = python::run_json(
        "browser.py",
        &[
            &url,
            screenshot.to_str().unwrap(),
            &day.to_string(),
            "17.25",
            "from the page",
        ],
    );
    eprintln!("browser: {summary}; screenshot {}", screenshot.display());
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );

    let (status, edits) = call(
        "GET",
        &format!("{api}/v1/edits?sku_id=SKU-05&from={from}&to={to}"),
        &token,
        None,
    );
    assert_eq!(status, 200);
    let items = edits["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{edits}");
    assert_eq!(items[0]["date"], day.to_string());
    assert_eq!(items[0]["quantity"].as_f64(), Some(17.25));
    assert_eq!(items[0]["note"], "from the page");
    assert_eq!(items[0]["edited_by"], "local-user");
}

/// `snowcast up --demo` as a newcomer runs it: a year of two tenants' sales uploaded with the
/// AWS SDK for Rust (whose PutObject carries `?x-id=PutObject`), followed to the forecast,
/// and the printed token and address work.
#[cfg(feature = "warehouse")]
#[test]
fn the_demo_ends_with_a_readable_forecast_and_a_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(&dir.path().join("data"), &["--demo"]);
    stack.line("forecast readable", Duration::from_secs(900));
    let page = stack.line("#token=ey", Duration::from_secs(5));
    let token = page.split("#token=").nth(1).unwrap().trim().to_string();
    let api = stack.api.clone().unwrap();
    let today = chrono::Utc::now().date_naive();
    let to = today + chrono::Days::new(89);
    let (status, body) = call(
        "GET",
        &format!("{api}/v1/forecast?sku_id=SKU-001&from={today}&to={to}"),
        &token,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 90, "{body}");
    let (_, sales) = call(
        "GET",
        &format!(
            "{api}/v1/sales?sku_id=SKU-001&from={}&to={today}",
            today - chrono::Days::new(364)
        ),
        &token,
        None,
    );
    assert!(sales["items"].as_array().unwrap().len() > 300, "{sales}");
    let rejects = stack.keys("silver", "_rejects/sales/tenant_id=globex/");
    assert_eq!(
        rejects.len(),
        1,
        "the quarter with three bad rows: {rejects:?}"
    );
}
