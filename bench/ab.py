#!/usr/bin/env python3
"""A/B of snowcast binaries on the benchmark CSV: the same conversion, interleaved, pinned
to one core, wall and CPU time per run. For "is this commit slower than that one" on a
noisy host, where the peers' ratios move with the host.

    .venv/bin/python bench/ab.py OLD_BINARY NEW_BINARY [--layout flat|by-day] [--runs 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--layout", default="flat", choices=["flat", "by-day"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--csv", default=os.path.join(ROOT, "bench", "data", "sales_1024mb.csv"))
    args = parser.parse_args()
    contract = os.path.join(ROOT, "bench", "contracts", f"sales_{args.layout.replace('-', '_')}.toml")
    out = os.path.join(ROOT, "bench", "out", "ab")
    walls: dict[str, list[float]] = {}
    for run in range(args.runs):
        for binary in args.binaries:
            shutil.rmtree(out, ignore_errors=True)
            command = ["taskset", "-c", "0", binary, "convert", args.csv, "--tenant", "bench",
                       "--dataset", "sales", "--out", out, "--contract", contract]
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, _, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            print(f"run {run + 1} {binary}: wall {wall:.2f} s, user {usage.ru_utime:.2f} s, "
                  f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB", flush=True)
            walls.setdefault(binary, []).append(wall)
    first = statistics.median(walls[args.binaries[0]])
    for binary, times in walls.items():
        median = statistics.median(times)
        print(f"{binary}: median wall {median:.3f} s, min {min(times):.3f} s, "
              f"{first / median:.2f}x the first binary's speed")


if __name__ == "__main__":
    main()
