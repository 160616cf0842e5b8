#!/usr/bin/env python3
"""Generate a retail sales CSV of about SIZE_MB megabytes for the converter benchmark.

Columns: sku_id, location_id, date, units, revenue, price, promo, category, channel, notes.
Two years of days, ~2% empty cells, free-text notes with quotes, commas and the odd
newline. Deterministic for a given seed; every order holds the same rows.

Row order (`--order`): `date` (daily extracts appended: the easiest order to partition by
day), `sku` (an export sorted by SKU, dates in order within a SKU) or `random`.
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
    parser.add_argument("--order", choices=("date", "sku", "random"), default="date")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = datetime.date(2023, 1, 1)
    days = [(start + datetime.timedelta(days=d)).isoformat() for d in range(args.days)]
    rows_per_day = max(1, int(args.size_mb * 1_000_000) // 88 // args.days)
    lines = generate(rng, days, rows_per_day)
    if args.order != "date":
        lines = list(lines)
        if args.order == "sku":
            lines.sort(key=lambda line: line[:10])  # sku_id; the sort is stable
        else:
            random.Random(args.seed + 1).shuffle(lines)
    header = "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes\n"
    written, rows = len(header), 0
    lines = iter(lines)
    with open(args.output, "w", newline="") as out:
        out.write(header)
        while batch := [line for _, line in zip(range(100_000), lines)]:
            chunk = "".join(batch)
            out.write(chunk)
            written += len(chunk)
            rows += len(batch)
    print(f"{args.output}: {written / 1e6:.1f} MB, {rows} rows")


def generate(rng: random.Random, days: list[str], rows_per_day: int):
    """Rows in date order, each line with its line end."""
    skus = [f"SKU-{i:06d}" for i in range(20_000)]
    locations = [f"LOC-{i:03d}" for i in range(60)]
    for day in days:
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
            yield ",".join(cells) + "\n"


if __name__ == "__main__":
    main()
