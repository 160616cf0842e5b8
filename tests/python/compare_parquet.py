#!/usr/bin/env python3
"""Independent check of snowcast's output: read the silver Parquet with pyarrow and the
source CSV with Python's csv module, and compare every value of every written row.

usage: compare_parquet.py MANIFEST_JSON CSV
Exit 0 when every row matches; 1 with the differences otherwise.
"""
import csv
import datetime
import decimal
import json
import sys

import pyarrow.parquet as pq

TRUE = {"true", "t", "yes", "y", "1"}


def expected(value: str, column: dict):
    kind = column["type"]
    if value in ("", "NULL", "null"):
        return None
    if kind == "string":
        return value
    value = value.strip()
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return value.lower() in TRUE
    if kind == "date":
        return datetime.date.fromisoformat(value)
    if kind.startswith("decimal"):
        scale = int(kind.split(",")[1].rstrip(")"))
        # Exact: the converter rejects digits past the scale, so only zeros are dropped.
        return decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-scale),
                                               context=decimal.Context(traps=[decimal.Inexact]))
    raise ValueError(f"unsupported type {kind}")


def main() -> int:
    manifest_path, csv_path = sys.argv[1:3]
    with open(manifest_path) as f:
        manifest = json.load(f)
    columns = manifest["columns"]
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        records = list(csv.reader(f))[1:]
    seen = 0
    problems = []
    for file in manifest["files"]:
        table = pq.read_table(file["uri"])
        for row in table.to_pylist():
            seen += 1
            source = records[row["_source_row"] - 1]
            if row["tenant_id"] != manifest["tenant_id"]:
                problems.append(f"row {row['_source_row']}: tenant {row['tenant_id']}")
            for index, column in enumerate(columns):
                want = expected(source[index], column)
                got = row[column["name"]]
                if want != got:
                    problems.append(f"row {row['_source_row']} {column['name']}: "
                                    f"csv {source[index]!r} -> {want!r}, parquet {got!r}")
    if seen != manifest["rows_written"]:
        problems.append(f"read {seen} rows, manifest says {manifest['rows_written']}")
    if problems:
        print("\n".join(problems[:50]))
        return 1
    print(f"{seen} rows match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
