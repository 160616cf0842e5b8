#!/usr/bin/env python3
"""CSV -> zstd Parquet benchmark: snowcast against DuckDB, pyarrow and polars, in one run.

Each engine converts the same CSV in its own process, unpartitioned ("flat") and Hive-
partitioned by day ("by-day"), single-threaded and with every core, for each row order of
the input (`--orders`: date, sku, random; see generate.py). Wall time and peak RSS
(from wait4) are measured per run; the table shows medians, MB/s of input, and ratios to
DuckDB on the same row, because this machine is noisy and ratios travel better than
absolutes. Results go to stdout and, with --write, into BENCHMARKS.md.

    .venv/bin/python bench/run.py --size-mb 1024 --runs 3 --write
    .venv/bin/python bench/run.py --size-mb 256 --orders date,sku,random --runs 3 --write
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ["snowcast", "duckdb", "pyarrow", "polars"]
LAYOUTS = ["flat", "by-day"]
ORDERS = ["date", "sku", "random"]


def snowcast_binary() -> str:
    """SNOWCAST_BIN, else the release build in CARGO_TARGET_DIR (as scripts/test sets it)."""
    if os.environ.get("SNOWCAST_BIN"):
        return os.environ["SNOWCAST_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR",
                            os.path.expanduser("~/.cache/snowcast/target"))
    return os.path.join(target, "release", "snowcast")


def command(engine: str, layout: str, threads: int, csv: str, out: str) -> list[str]:
    if engine == "snowcast":
        contract = "sales_by_day.toml" if layout == "by-day" else "sales_flat.toml"
        return [snowcast_binary(), "convert", csv, "--tenant", "bench", "--dataset", "sales",
                "--out", out, "--contract", os.path.join(ROOT, "bench", "contracts", contract)]
    return [sys.executable, os.path.join(ROOT, "bench", "peers.py"), engine, layout,
            str(threads), csv, out]


def measure(cmd: list[str], threads: int) -> tuple[float, int, int | None]:
    """Runs cmd; returns (seconds, peak RSS bytes, bytes spilled if it prints a manifest)."""
    env = dict(os.environ, POLARS_MAX_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                               f"{stderr.read().decode(errors='replace')[-2000:]}")
        stdout.seek(0)
        try:
            spilled = json.loads(stdout.read()).get("spilled_bytes")
        except ValueError:
            spilled = None
    return elapsed, usage.ru_maxrss * 1024, spilled


def tree_bytes(path: str) -> int:
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            if name.endswith(".parquet"):
                total += os.path.getsize(os.path.join(base, name))
    return total


def pin(threads: int) -> list[int] | None:
    """CPU set for single-threaded runs, so no engine borrows a second core."""
    if threads == 1 and hasattr(os, "sched_setaffinity"):
        return [sorted(os.sched_getaffinity(0))[0]]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    parser.add_argument("--orders", default="date", help="row orders of the input: date,sku,random")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()

    orders = args.orders.split(",")
    unknown = set(orders) - set(ORDERS)
    if unknown:
        sys.exit(f"unknown orders {sorted(unknown)}; choose from {ORDERS}")
    csvs = {order: input_file(args.size_mb, order) for order in orders}
    csv_mb = os.path.getsize(csvs[orders[0]]) / 1e6
    out_root = os.path.join(ROOT, "bench", "out")
    engines = args.engines.split(",")
    results = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        cpus = pin(threads)
        for order in orders:
            for layout in args.layouts.split(","):
                for run in range(args.runs):
                    # Engines interleave within a run so drift on the machine hits all alike.
                    for engine in engines:
                        out = os.path.join(out_root, f"{engine}-{layout}-{threads}")
                        shutil.rmtree(out, ignore_errors=True)
                        cmd = command(engine, layout, threads, csvs[order], out)
                        if cpus:
                            cmd = ["taskset", "-c", ",".join(map(str, cpus))] + cmd
                        seconds, rss, spilled = measure(cmd, threads)
                        size = tree_bytes(out)
                        results.setdefault((threads, order, layout, engine), []).append(
                            (seconds, rss, size, spilled))
                        print(f"threads={threads} {order:6} {layout:6} {engine:8} run {run + 1}: "
                              f"{seconds:6.2f}s {csv_mb / seconds:7.1f} MB/s "
                              f"rss {rss / 2**20:7.1f} MiB out {size / 1e6:7.1f} MB", flush=True)
                if args.write:
                    # After every group, so an interrupted run still records what it measured.
                    write_report(render(results, csv_mb), args)
    print(render(results, csv_mb))


def input_file(size_mb: float, order: str) -> str:
    """The benchmark CSV of this size and row order, generated on first use."""
    data = os.path.join(ROOT, "bench", "data")
    os.makedirs(data, exist_ok=True)
    suffix = "" if order == "date" else f"_{order}"
    csv = os.path.join(data, f"sales_{int(size_mb)}mb{suffix}.csv")
    if not os.path.exists(csv):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "generate.py"), csv,
                        "--size-mb", str(size_mb), "--order", order], check=True)
    return csv


def render(results, csv_mb: float) -> str:
    lines = [
        "| threads | order | layout | engine | median s | MB/s | vs DuckDB | peak RSS MiB "
        "| spilled MB | output MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    def position(key):
        threads, order, layout, engine = key
        return threads, ORDERS.index(order), LAYOUTS.index(layout), ENGINES.index(engine)

    for key in sorted(results, key=position):
        threads, order, layout, engine = key
        runs = results[key]
        seconds = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        size = statistics.median(r[2] for r in runs)
        spills = [r[3] for r in runs if r[3] is not None]
        spilled = f"{statistics.median(spills) / 1e6:.0f}" if spills else "-"
        duck = results.get((threads, order, layout, "duckdb"))
        ratio = statistics.median(r[0] for r in duck) / seconds if duck else float("nan")
        lines.append(f"| {threads} | {order} | {layout} | {engine} | {seconds:.2f} | "
                     f"{csv_mb / seconds:.1f} | {ratio:.2f}x | {rss / 2**20:.0f} | {spilled} | "
                     f"{size / 1e6:.1f} |")
    return "\n".join(lines)


def write_report(table: str, args) -> None:
    """Writes the results into BENCHMARKS.md, keeping rows of thread counts not run now
    (so `--threads 2` on a quiet machine adds to an earlier `--threads 1` run)."""
    import duckdb
    import polars
    import pyarrow

    versions = (f"DuckDB {duckdb.__version__}, pyarrow {pyarrow.__version__}, "
                f"polars {polars.__version__}, Python {platform.python_version()}")
    cmd = (f".venv/bin/python bench/run.py --size-mb {args.size_mb:g} --runs {args.runs} "
           f"--threads {args.threads} --orders {args.orders} --write")
    measured = {t.strip() for t in args.threads.split(",")}
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    head, _, rest = text.partition(begin)
    previous, _, tail = rest.partition(end)
    commands = [line for line in previous.splitlines()
                if line.startswith("- `") and not any(f"--threads {t} " in line for t in measured)
                and "--threads 1,2" not in line]
    commands.append(f"- `{cmd}` ({time.strftime('%Y-%m-%d')})")
    header, rows = table.split("\n")[:2], table.split("\n")[2:]
    # Rows of other thread counts stay if they have this table's columns.
    kept = [line for line in previous.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()
            and line.split("|")[1].strip() not in measured
            and line.count("|") == header[0].count("|")]
    rows = sorted(kept + rows, key=lambda line: int(line.split("|")[1]))
    body = (f"{begin}\nCommands:\n" + "\n".join(commands) + "\n\n"
            f"Peers: {versions}  \nMachine: {platform.machine()}, {os.cpu_count()} cores\n\n"
            + "\n".join(header + rows) + f"\n{end}")
    with open(path, "w") as f:
        f.write(head + body + tail)


if __name__ == "__main__":
    main()
