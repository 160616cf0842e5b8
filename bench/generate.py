#!/usr/bin/env python3
"""Generate a retail sales CSV of about SIZE_MB megabytes for the converter benchmark.

Columns: sku_id, location_id, date, units, revenue, price, promo, category, channel, notes.
Two years of days, rows in date order (as daily extracts are appended), ~2% empty cells,
free-text notes with quotes, commas and the odd newline. Deterministic for a given seed.
"""
import argparse
import datetime
import random

CATEGORIES = [f"cat_{i:02d}" for i in range(24)]
CHANNELS = ["store", "web", "app", "marketplace"]
NOTE_WORDS = ["restock", "promo", "damaged", "late delivery", "price match", "bundle",
              "clearance", "weekend", "holiday", "new display", "loyalty", "returned"]


def note(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return ""
    words = " ".join(rng.choice(NOTE_WORDS) for _ in range(rng.randint(1, 6)))
    if roll < 0.85:
        return words
    if roll < 0.97:
        return f'"{words}, ""checked"" by store {rng.randint(1, 99)}"'
    return f'"{words}\nsecond line, with comma"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output")
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    target = int(args.size_mb * 1_000_000)
    start = datetime.date(2023, 1, 1)
    days = [(start + datetime.timedelta(days=d)).isoformat() for d in range(args.days)]
    skus = [f"SKU-{i:06d}" for i in range(20_000)]
    locations = [f"LOC-{i:03d}" for i in range(60)]
    rows_per_day = max(1, target // 88 // args.days)
    written = 0
    with open(args.output, "w", newline="") as out:
        header = "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes\n"
        out.write(header)
        written += len(header)
        for day in days:
            lines = []
            for _ in range(rows_per_day):
                units = rng.randint(0, 40)
                price = rng.randint(99, 99_999) / 100
                cells = [
                    rng.choice(skus), rng.choice(locations), day, str(units),
                    f"{units * price:.2f}", f"{price:.4f}",
                    "true" if rng.random() < 0.1 else "false",
                    rng.choice(CATEGORIES), rng.choice(CHANNELS), note(rng),
                ]
                if rng.random() < 0.02:
                    cells[rng.choice((3, 4, 7, 8))] = ""
                lines.append(",".join(cells))
            chunk = "\n".join(lines) + "\n"
            out.write(chunk)
            written += len(chunk)
    print(f"{args.output}: {written / 1e6:.1f} MB, {rows_per_day * len(days)} rows")


if __name__ == "__main__":
    main()
