#!/usr/bin/env python3
"""Load test of the forecast reader: the Rust `api_server` example in each cache mode
against the seed's own design (bench/fastapi_reader.py: FastAPI + redis-py), on one URL.

For each scenario the server runs pinned to one CPU (the Lambda case: one vCPU), wrk runs
pinned to another, and a private redis-server (started here on a free port, no
persistence) sits beside wrk so it does not take the server's CPU. Each server is polled
until it answers, its page is checked byte for byte against bench/api_data.py's reference
page (so every server does the same work), warmed up, loaded with
`wrk --latency -t1 -cN -dDs`, and stopped; its peak RSS (VmHWM) and the CPU it used during
the wrk run are recorded. Scenarios:

    rust l1       --cache l1                      L1 hit, no Redis
    rust both     --cache both --redis-url URL    L1 hit + Redis generation check
    rust l2       --cache l2 --redis-url URL      L2 hit (L1 disabled)
    rust none     --cache none                    miss every time (in-memory store)
    fastapi redis bench/fastapi_reader.py         GET generation + GET page (hit)

    .venv/bin/python bench/api_load.py --duration 10 --connections 16 --write bench/out/api_load.md

The Rust binary is $CARGO_TARGET_DIR/release/examples/api_server (CARGO_TARGET_DIR defaults
to ~/.cache/snowcast/target), or --rust-bin; without it the Rust scenarios are skipped.
Needs redis-server, wrk and taskset on PATH.
"""
import argparse
import datetime as dt
import http.client
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import api_data  # noqa: E402

BASELINE = "fastapi redis"
READY_SECONDS = 60


@dataclass
class Scenario:
    name: str
    # Placeholders: {port} {redis_url} {skus} {days} {python} {root}.
    argv: list[str]
    skip: str | None = None


@dataclass
class Result:
    scenario: str
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    rps: float = float("nan")
    peak_rss_kib: int | None = None
    cpu_percent: float | None = None
    same_page: bool | None = None
    notes: list[str] = field(default_factory=list)
    failed: bool = False


class Children:
    """Every process this run starts, so any exit (error, Ctrl-C, SIGTERM) stops them all."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], log) -> subprocess.Popen:
        # Own session: a terminal's Ctrl-C reaches only this driver, which then stops
        # the children in order (and by their own ids) instead of racing them.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 10) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc, grace=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    # taskset execs the command, so the pid we hold is the server's own (for /proc reads).
    return argv if cpu is None else ["taskset", "-c", str(cpu)] + argv


def log_tail(log, chars: int = 2000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-chars:].strip()


def start_redis(children: Children, port: int, cpu: int | None, log) -> subprocess.Popen:
    proc = children.start(pinned(cpu, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"]), log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited {proc.returncode}: {log_tail(log)}")
        if redis_command(port, "PING") == b"+PONG\r\n":
            return proc
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port}: {log_tail(log)}")


def redis_command(port: int, *words: str) -> bytes | None:
    """One RESP command on a fresh connection; None while Redis is not listening."""
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request.encode())
            return sock.recv(4096)
    except OSError:
        return None


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def wait_ready(proc: subprocess.Popen, port: int, path: str, log) -> tuple[dict, bytes]:
    """Polls until the server answers the benchmark URL with 200."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log_tail(log)}")
        try:
            status, headers, body = get(port, path)
        except OSError:
            time.sleep(0.1)
            continue
        if status != 200:
            raise RuntimeError(f"server answered {status}: {body[:500]!r}")
        return {k.lower(): v for k, v in headers.items()}, body
    raise RuntimeError(f"server did not answer within {READY_SECONDS}s: {log_tail(log)}")


def warm_up(port: int, path: str, requests: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(requests):
            status, _, body = get(port, path, conn)
            if status != 200:
                raise RuntimeError(f"warm-up request answered {status}: {body[:500]!r}")
    finally:
        conn.close()


UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """Requests/sec, the 50% and 99% latencies (ms), and any errors wrk reports."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and p50 and p99):
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    errors = []
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors.append(f"{non_2xx.group(1)} non-2xx/3xx responses")
    sockets = re.search(r"Socket errors:\s+(.*)", output)
    if sockets:
        errors.append(f"socket errors ({sockets.group(1).strip()})")
    return {"rps": float(rps.group(1)), "p50": to_ms(p50.group(1)), "p99": to_ms(p99.group(1)),
            "errors": errors}


def peak_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name (which may hold spaces): utime and stime are 14, 15.
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_scenario(scenario: Scenario, args, children: Children, redis_port: int | None,
                 path: str, reference: bytes) -> Result:
    result = Result(scenario.name)
    port = free_port()
    values = {"port": port, "redis_url": f"redis://127.0.0.1:{redis_port}/0" if redis_port else "",
              "skus": args.skus, "days": args.days, "python": sys.executable, "root": ROOT}
    argv = [word.format(**values) for word in scenario.argv]
    result.notes.append(f"command: `{shlex.join(pinned(args.server_cpu, argv))}`")
    if redis_port:
        redis_command(redis_port, "FLUSHALL")  # no scenario reads another's pages
    with tempfile.TemporaryFile() as log:
        proc = children.start(pinned(args.server_cpu, argv), log)
        try:
            headers, body = wait_ready(proc, port, path, log)
            result.same_page = body == reference
            if not result.same_page:
                result.notes.append(f"page differs from the reference ({len(body)} bytes, "
                                    f"reference {len(reference)}): not the same work")
            elif headers.get("etag") != api_data.etag_of(body):
                result.notes.append(f"ETag {headers.get('etag')} is not the SHA-256 one")
            warm_up(port, path, args.warmup)
            cpu_before, started = cpu_seconds(proc.pid), time.monotonic()
            wrk = subprocess.run(
                pinned(args.client_cpu, ["wrk", "--latency", "-t1", f"-c{args.connections}",
                                         f"-d{args.duration}s", f"http://127.0.0.1:{port}{path}"]),
                capture_output=True, text=True, timeout=args.duration + 60, check=True)
            result.cpu_percent = 100 * (cpu_seconds(proc.pid) - cpu_before) / (
                time.monotonic() - started)
            parsed = parse_wrk(wrk.stdout)
            result.rps, result.p50_ms, result.p99_ms = parsed["rps"], parsed["p50"], parsed["p99"]
            result.notes.extend(parsed["errors"])
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode} during the run: {log_tail(log)}")
            result.peak_rss_kib = peak_rss_kib(proc.pid)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            result.failed = True
            result.notes.append(f"FAILED: {error}")
        finally:
            children.stop(proc)
    return result


def scenarios(args) -> list[Scenario]:
    rust_bin = args.rust_bin or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/snowcast/target"),
        "release", "examples", "api_server")
    missing = None if os.access(rust_bin, os.X_OK) else f"no Rust binary at {rust_bin} (build " \
        "it with `cargo build --release --example api_server` or pass --rust-bin)"
    rust = [rust_bin, "--addr", "127.0.0.1:{port}", "--skus", "{skus}", "--days", "{days}",
            "--cache"]
    found = [
        Scenario("rust l1", rust + ["l1"], missing),
        Scenario("rust both", rust + ["both", "--redis-url", "{redis_url}"], missing),
        Scenario("rust l2", rust + ["l2", "--redis-url", "{redis_url}"], missing),
        Scenario("rust none", rust + ["none"], missing),
        Scenario(BASELINE, ["{python}", "{root}/bench/fastapi_reader.py", "--port", "{port}",
                            "--redis-url", "{redis_url}", "--skus", "{skus}", "--days", "{days}"]),
    ]
    for extra in args.server_cmd:
        name, sep, command = extra.partition("=")
        if not sep or not name.strip() or not command.strip():
            raise SystemExit(f"--server-cmd {extra!r}: expected NAME=COMMAND")
        found.append(Scenario(name.strip(), shlex.split(command)))
    if args.only:
        wanted = [word.strip() for word in args.only.split(",")]
        found = [s for s in found if any(word in s.name for word in wanted)]
    return found


def versions(redis_used: bool) -> str:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "missing"

    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    redis_version = re.search(r"v=(\S+)", redis)
    # uvicorn picks uvloop and httptools when installed, else asyncio and h11.
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    http = "httptools" if find_spec("httptools") else "h11"
    return (f"wrk {wrk[1] if len(wrk) > 1 else '?'}, "
            f"redis-server {redis_version.group(1) if redis_version else '?'}"
            f"{'' if redis_used else ' (unused)'}, Python {platform.python_version()}, "
            f"FastAPI {version('fastapi')}, Starlette {version('starlette')}, "
            f"uvicorn {version('uvicorn')} ({loop} loop, {http}), redis-py {version('redis')}")


def render(results: list[Result], skipped: list[Scenario], header: list[str]) -> str:
    base = next((r for r in results if r.scenario == BASELINE and not r.failed), None)
    lines = header + ["", "| scenario | p50 ms | p99 ms | requests/s | vs fastapi | "
                      "peak RSS MiB | server CPU % | page |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.failed:
            lines.append(f"| {r.scenario} | failed | | | | | | |")
            continue
        ratio = f"{r.rps / base.rps:.2f}x" if base else "n/a"
        rss = f"{r.peak_rss_kib / 1024:.0f}" if r.peak_rss_kib else "?"
        cpu = f"{r.cpu_percent:.0f}" if r.cpu_percent is not None else "?"
        lines.append(f"| {r.scenario} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.rps:,.0f} | "
                     f"{ratio} | {rss} | {cpu} | {'same' if r.same_page else 'DIFFERS'} |")
    reasons: dict[str, list[str]] = {}
    for s in skipped:
        reasons.setdefault(s.skip, []).append(s.name)
    notes = [f"- {', '.join(names)}: skipped: {why}" for why, names in reasons.items()]
    notes += [f"- {r.scenario}: {note}" for r in results for note in r.notes]
    return "\n".join(lines + ["", "Notes:"] + notes) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--warmup", type=int, default=300, help="requests before wrk")
    parser.add_argument("--rust-bin", help="the api_server example (default: in CARGO_TARGET_DIR)")
    parser.add_argument("--server-cmd", action="append", default=[], metavar="NAME=COMMAND",
                        help="one more scenario; COMMAND may use {port} {redis_url} {skus} "
                             "{days} {python} {root} (repeatable)")
    parser.add_argument("--only", help="comma-separated parts of scenario names to run")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU of wrk and redis-server")
    parser.add_argument("--write", metavar="FILE", help="also save the report to FILE")
    args = parser.parse_args()

    for tool in ("redis-server", "wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH (apt-get install -y redis-server wrk util-linux)")
    if args.skus < 2 or args.days < 1:
        raise SystemExit("need at least 2 SKUs and 1 day")
    # One SKU, 90 days (fewer if the data set is shorter), all rows on one page.
    sku_index, last_day, limit = 1, min(args.days, 90) - 1, 100
    first_date = api_data.FIRST_DAY
    last_date = first_date + dt.timedelta(days=last_day)
    path = (f"/v1/forecast?sku_id={api_data.sku_name(sku_index)}&from={first_date}"
            f"&to={last_date}&show_manual=true&limit={limit}")
    reference = api_data.reference_page(sku_index, 0, last_day, True, limit)

    chosen = scenarios(args)
    runnable = [s for s in chosen if not s.skip]
    skipped = [s for s in chosen if s.skip]
    if skipped:
        print(f"skipping {', '.join(s.name for s in skipped)} (see the notes)", file=sys.stderr)
    redis_needed = any("{redis_url}" in " ".join(s.argv) for s in runnable)

    header = [
        f"Command: `{shlex.join(sys.orig_argv)}` ({dt.date.today()})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; server on CPU {args.server_cpu}, "
        f"wrk and redis-server on CPU {args.client_cpu}; load average at start "
        f"{os.getloadavg()[0]:.2f}  ",
        versions(redis_needed) + "  ",
        f"URL: `{path}` ({last_day + 1} rows, {len(reference):,} bytes of JSON); "
        f"data set {args.skus} SKUs x {args.days} days; wrk -t1 -c{args.connections} "
        f"-d{args.duration}s after {args.warmup} warm-up requests",
    ]

    # SIGTERM and SIGINT unwind, so the finally below stops every child (SIGINT set
    # explicitly: a shell's background job inherits it ignored).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    children = Children()
    results: list[Result] = []
    try:
        with tempfile.TemporaryFile() as redis_log:
            redis_port = None
            if redis_needed:
                redis_port = free_port()
                start_redis(children, redis_port, args.client_cpu, redis_log)
            for scenario in runnable:
                print(f"running {scenario.name} ...", file=sys.stderr, flush=True)
                result = run_scenario(scenario, args, children, redis_port, path, reference)
                results.append(result)
                print(f"  {result.rps:,.0f} requests/s, p50 {result.p50_ms:.3f} ms, "
                      f"p99 {result.p99_ms:.3f} ms" if not result.failed else
                      f"  {result.notes[-1]}", file=sys.stderr, flush=True)
    finally:
        children.stop_all()

    report = render(results, skipped, header)
    print(report, end="")
    if args.write:
        os.makedirs(os.path.dirname(os.path.abspath(args.write)), exist_ok=True)
        with open(args.write, "w") as f:
            f.write(report)
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted (every child stopped)")
