#!/usr/bin/env python3
"""The local stack as a user meets it: `snowcast up --demo` on an empty data directory,
timed from the first upload to the forecast being readable (the demo prints it), median
of --runs fresh starts; then, on the last stack, edit-to-visible latency: a PUT of a new
value for a cell followed at once by the GET of that cell's forecast page, timed from
the PUT's start to the GET's answer showing the value (goal: p99 <= 10 ms). Over one
keep-alive connection each, as the web page's browser keeps them.

    cargo build --release -p snowcast-local --features warehouse
    .venv/bin/python bench/local_stack.py --binary $CARGO_TARGET_DIR/release/snowcast --runs 3 --edits 2000
"""
import argparse
import datetime
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def start(binary: str, data: str):
    """Starts `snowcast up --demo`; returns the process and a list its stderr lines land in."""
    process = subprocess.Popen(
        [binary, "up", "--demo", "--data-dir", data, "--s3-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        # One client sending back to back: lift the per-tenant limit (50/s by default).
        env=dict(os.environ, SNOWCAST_RATE_LIMIT_PER_SECOND="1000000", SNOWCAST_RATE_LIMIT_BURST="1000000"))
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True).start()
    return process, lines


def wait_for(lines: list[str], pattern: str, timeout: float) -> re.Match:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in list(lines):
            found = re.search(pattern, line)
            if found:
                return found
        time.sleep(0.05)
    raise SystemExit(f"no {pattern!r} after {timeout} s:\n" + "".join(lines[-30:]))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def edit_to_visible(api: str, token: str, edits: int) -> dict:
    host = api.removeprefix("http://")
    writer, reader = http.client.HTTPConnection(host), http.client.HTTPConnection(host)
    headers = {"authorization": f"Bearer {token}"}
    day = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    page = f"/v1/forecast?sku_id=SKU-001&from={day}&to={day}"
    visible, puts, gets = [], [], []
    for i in range(edits):
        value = 100 + i % 500 + (i % 7) / 4
        started = time.perf_counter()
        writer.request("PUT", f"/v1/edits/SKU-001/{day}", json.dumps({"quantity": value}),
                       dict(headers, **{"content-type": "application/json"}))
        answer = writer.getresponse()
        answer.read()
        assert answer.status == 200, answer.status
        put_done = time.perf_counter()
        reader.request("GET", page, headers=headers)
        answer = reader.getresponse()
        body = json.loads(answer.read())
        done = time.perf_counter()
        shown = body["items"][0]["quantity"]
        if shown != value:
            raise SystemExit(f"edit {i}: the next read shows {shown}, not {value}")
        visible.append((done - started) * 1000)
        puts.append((put_done - started) * 1000)
        gets.append((done - put_done) * 1000)
    return {name: {"p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v)}
            for name, v in (("edit_to_visible_ms", visible), ("put_ms", puts), ("get_ms", gets))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--edits", type=int, default=2000)
    args = parser.parse_args()
    readable = []
    latency = None
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as data:
            process, lines = start(args.binary, data)
            try:
                found = wait_for(lines, r"forecast readable ([0-9.]+) s after the first upload", 900)
                readable.append(float(found.group(1)))
                if run == args.runs - 1:
                    api = wait_for(lines, r"web page\s+(http://[0-9.:]+)/#token=(ey\S+)", 10)
                    latency = edit_to_visible(api.group(1), api.group(2), args.edits)
            finally:
                process.kill()
                process.wait()
    print(json.dumps({"upload_to_forecast_s": {"runs": readable, "median": statistics.median(readable)},
                      "edits": args.edits, **latency}, indent=2))


if __name__ == "__main__":
    main()
