#!/usr/bin/env python3
"""Cold init of the API functions: process start -> first poll of the Lambda Runtime API
(`GET .../invocation/next`), i.e. everything `main` does before it can serve: read the
configuration, fetch the Snowflake secret from Secrets Manager (moto, on 127.0.0.1),
parse the key, build the clients. Compared with a hello-world `lambda_http` binary that
does nothing before polling. Medians of --runs starts each; the ratio is the figure to
watch (goal: at most 2x the hello world). Each binary starts against two Secrets Manager
endpoints: the emulator, and a stub that answers GetSecretValue at once from memory; the
ratio is taken on the latter, so it measures our own work (the client, the signing, the
key) plus one loopback round trip, with no emulator latency to subtract.

The binaries are built as SAM's `cargo lambda build --release` builds the artifacts: from
each function's directory (so `functions/.cargo/config.toml` applies: fat LTO, one codegen
unit) and for an explicit target; the hello world is an example of edit-api, built the same
way:

    (cd functions/edit-api && cargo build --release --target x86_64-unknown-linux-gnu \
        --bins --example hello_lambda_http)
    (cd functions/forecast-reader && cargo build --release --target x86_64-unknown-linux-gnu)
    .venv/bin/python bench/cold_init.py --runs 25
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
first_poll = threading.Event()


class InstantSecrets(BaseHTTPRequestHandler):
    """Secrets Manager's GetSecretValue answered at once from memory: with it, cold init is
    our own work plus one loopback round trip, with nothing to subtract."""
    protocol_version = "HTTP/1.1"
    secret: dict = {}

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("X-Amz-Target") != "secretsmanager.GetSecretValue":
            self.send_error(400)
            return
        body = json.dumps(self.secret).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RuntimeApi(BaseHTTPRequestHandler):
    """Answers nothing: the first poll for an invocation is the moment of readiness."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if "/invocation/next" in self.path:
            first_poll.set()
        time.sleep(5)


def default_binaries() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/snowcast/target"))
    return os.path.join(target, "x86_64-unknown-linux-gnu", "release")


def start_moto() -> tuple[subprocess.Popen, str]:
    moto = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "python", "moto_server.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return moto, moto.stdout.readline().strip()


def make_secret(endpoint: str) -> dict:
    """Creates the secret on the emulator; returns its GetSecretValue answer."""
    keys = tempfile.mkdtemp()
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "python", "snowpipe_sdk.py"), "keys", keys], check=True)
    with open(os.path.join(keys, "key.pem")) as f:
        key = f.read()
    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    text = json.dumps({
        "account": "xy12345", "user": "SNOWCAST_API_SVC", "private_key": key, "role": "SNOWCAST_API",
        "warehouse": "SNOWCAST_API_WH", "database": "SNOWCAST", "schema": "APP"})
    secret = client.create_secret(Name="snowcast/api", SecretString=text)
    return {"ARN": secret["ARN"], "Name": secret["Name"], "VersionId": secret["VersionId"],
            "SecretString": text, "VersionStages": ["AWSCURRENT"], "CreatedDate": time.time()}


def secret_round_trip(endpoint: str, arn: str) -> float:
    """One GetSecretValue answered by the emulator, in ms: the part of init no code of ours
    can shorten (unsigned: moto does not check signatures)."""
    import http.client
    import urllib.parse
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    body = json.dumps({"SecretId": arn})
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue",
               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/secretsmanager/aws4_request"}
    started = time.perf_counter()
    conn.request("POST", "/", body, headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 200:
        sys.exit(f"GetSecretValue answered {response.status}")
    return elapsed * 1000


def start_once(binary: str, env: dict) -> tuple[float, float]:
    """Wall time to the first poll and the CPU time (user + system, every thread) the
    process used until then (it idles in the poll), in ms."""
    first_poll.clear()
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready = first_poll.wait(timeout=30)
    elapsed = time.perf_counter() - started
    proc.kill()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    if not ready:
        sys.exit(f"{binary} never polled the Runtime API:\n{err.decode()[-2000:]}")
    return elapsed * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--binaries", default=default_binaries(),
                        help="directory of edit-api, forecast-reader and examples/hello_lambda_http")
    args = parser.parse_args()
    runtime = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=runtime.serve_forever, daemon=True).start()
    moto, endpoint = start_moto()
    instant = ThreadingHTTPServer(("127.0.0.1", 0), InstantSecrets)
    threading.Thread(target=instant.serve_forever, daemon=True).start()
    try:
        InstantSecrets.secret = make_secret(endpoint)
        arn = InstantSecrets.secret["ARN"]
        env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{runtime.server_address[1]}",
                   AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="bench",
                   AWS_LAMBDA_LOG_GROUP_NAME="bench", AWS_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   SNOWCAST_SNOWFLAKE_SECRET=arn, RUST_LOG="warn")
        # As on Lambda: no certificate locations in the environment (some hosts set
        # SSL_CERT_DIR, which makes TLS clients read every file of the directory).
        for name in ("SSL_CERT_DIR", "SSL_CERT_FILE", "AWS_CA_BUNDLE"):
            env.pop(name, None)
        binaries = {
            "hello-world lambda_http": os.path.join(args.binaries, "examples", "hello_lambda_http"),
            "forecast-reader": os.path.join(args.binaries, "forecast-reader"),
            "edit-api": os.path.join(args.binaries, "edit-api"),
        }
        endpoints = {"emulator": endpoint, "instant": f"http://127.0.0.1:{instant.server_address[1]}"}
        # Interleaved, so a slow spell of the host hits every binary alike.
        starts = {(name, source): [] for name in binaries for source in endpoints}
        for run in range(args.runs + 1):
            for (name, source), times in starts.items():
                env["AWS_ENDPOINT_URL"] = endpoints[source]
                measured = start_once(binaries[name], env)
                if run > 0:  # the first start warms the page cache, as a re-used host would be
                    times.append(measured)
        wall = {key: statistics.median(t for t, _ in times) for key, times in starts.items()}
        cpu = {key: statistics.median(c for _, c in times) for key, times in starts.items()}
        for (name, source), times in starts.items():
            print(f"{name}, secret from the {source}: median {wall[name, source]:.1f} ms wall, "
                  f"{cpu[name, source]:.1f} ms CPU, max {max(t for t, _ in times):.1f} ms ({args.runs} starts)")
        trip = statistics.median(secret_round_trip(endpoint, arn) for _ in range(args.runs))
        print(f"secret round trip (GetSecretValue on the emulator): median {trip:.1f} ms")
        base, base_cpu = wall["hello-world lambda_http", "instant"], cpu["hello-world lambda_http", "instant"]
        print("| binary | secret from the emulator, ms | secret answered at once, ms | ratio to hello world "
              "| CPU ms, secret at once | CPU ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in binaries:
            own, spent = wall[name, "instant"], cpu[name, "instant"]
            print(f"| {name} | {wall[name, 'emulator']:.1f} | {own:.1f} | {own / base:.2f}x "
                  f"| {spent:.1f} | {spent / base_cpu:.2f}x |")
    finally:
        instant.shutdown()
        moto.stdin.close()
        moto.wait()
        runtime.shutdown()


if __name__ == "__main__":
    main()
