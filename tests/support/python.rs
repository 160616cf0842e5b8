//! Test servers written in Python (moto, the Snowflake stand-in), started once per test
//! binary: the script prints its URL, then serves until its stdin closes. This process
//! holds that pipe for its lifetime, so a server ends with the tests however they end.
//! Include with `#[path = "../../tests/support/python.rs"] mod python;`.

#![allow(dead_code)] // each test binary uses its own subset

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::Mutex,
};

/// Python with the test tools: `SNOWCAST_TEST_PYTHON` (set by scripts/test), else the
/// repository's `.venv`.
pub fn python() -> String {
    std::env::var("SNOWCAST_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_string())
}

/// Path of a script in `tests/python/`.
pub fn script(name: &str) -> String {
    format!("{}/../tests/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running server.
pub struct Server {
    pub url: String,
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// Starts `tests/python/<name>` and waits for the URL it prints.
pub fn start(name: &str) -> Server {
    let mut child = Command::new(python())
        .arg(script(name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts (run scripts/setup first): {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the server prints its URL");
    assert!(
        line.starts_with("http://127.0.0.1:"),
        "{name} said {line:?}"
    );
    Server {
        url: line.trim().to_string(),
        _stdin: Mutex::new(child.stdin.take().expect("piped stdin")),
        _child: Mutex::new(child),
    }
}

/// Runs the script `name` with `args` to completion; fails the test unless it succeeds, and
/// returns what it printed, as JSON.
pub fn run_json(name: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(python())
        .arg(script(name))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{name} printed no JSON ({e})"))
}
