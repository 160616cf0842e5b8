"""Runs the gold model (the FORECAST_MODEL view of infra/snowflake/10_forecast_model.sql)
on silver sales Parquet three ways and compares them:

- DuckDB, the statement as written (what the local stack runs);
- fakesnow (Snowflake's dialect emulated on DuckDB), with the infra DDL of the RAW and
  ANALYTICS tables and the refresh procedure's DELETE + INSERT statements;
- polars, computed independently from the model's description (calendar weekdays, a
  dense day grid), sharing no SQL.

Prints a JSON summary on stdout; exits non-zero naming the first difference or broken
invariant (key unique, no NULLs, no negative draft, 90 days per SKU from the day after the
tenant's last sale).

    gold_model.py SILVER_DIR INFRA_DIR
"""

import datetime
import decimal
import glob
import json
import os
import re
import sys

import duckdb
import polars as pl

HORIZON = 90
WINDOW = 56
MODEL = "dow_mean_8w"
SALES_COLUMNS = "TENANT_ID, SKU_ID, LOCATION_ID, DATE, UNITS, REVENUE, PRICE, PROMO, CATEGORY, " \
                "CHANNEL, NOTES, _SOURCE_KEY, _SOURCE_ROW, _INGESTED_AT"


def statements(path: str) -> list[str]:
    """The file's statements, split at a `;` that ends a line outside a `$$` body."""
    text = re.sub(r"^\s*--.*$", "", open(path).read(), flags=re.M)
    parts, current, in_body = [], [], False
    for line in text.splitlines():
        current.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            parts.append("\n".join(current).strip().rstrip(";"))
            current = []
    return [p for p in parts if p]


def model_views(infra: str) -> list[str]:
    """The model's views, in order: SALES_DAILY, then FORECAST_MODEL over it."""
    found = [s for s in statements(os.path.join(infra, "10_forecast_model.sql"))
             if s.startswith("CREATE OR REPLACE VIEW")]
    assert [v.split()[4] for v in found] == ["SNOWCAST.ANALYTICS.SALES_DAILY", "SNOWCAST.ANALYTICS.FORECAST_MODEL"], found
    return found


def refresh_body(infra: str) -> list[str]:
    """The procedure's DELETE and INSERT of the draft, for every tenant (no stream here)."""
    text = open(os.path.join(infra, "10_forecast_model.sql")).read()
    body = text[text.index("BEGIN TRANSACTION;"):text.index("WRITTEN := SQLROWCOUNT;")]
    picked = [s.strip() for s in body.split(";") if s.strip().startswith(("DELETE", "INSERT INTO SNOWCAST.ANALYTICS.FORECAST_DRAFT"))]
    assert len(picked) == 2, picked
    return [re.sub(r"WHERE TENANT_ID IN \(SELECT TENANT_ID FROM SNOWCAST\.ANALYTICS\.FORECAST_REFRESH_TENANTS\)",
                   "", s) for s in picked]


def rows_of(records) -> set[tuple]:
    return {(t, s, d.isoformat() if hasattr(d, "isoformat") else str(d), decimal.Decimal(str(q)).quantize(decimal.Decimal("0.0001")), m)
            for t, s, d, q, m in records}


def on_duckdb(parquet: str, infra: str) -> set[tuple]:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS snowcast")
    con.execute("CREATE SCHEMA snowcast.raw")
    con.execute("CREATE SCHEMA snowcast.analytics")
    con.execute(f"CREATE TABLE snowcast.raw.sales AS SELECT {SALES_COLUMNS} "
                f"FROM read_parquet('{parquet}', hive_partitioning = false)")
    for view in model_views(infra):
        con.execute(view)
    return rows_of(con.execute(
        "SELECT TENANT_ID, SKU_ID, DATE, DRAFT_QUANTITY, MODEL FROM snowcast.analytics.forecast_model").fetchall())


def on_fakesnow(parquet: str, infra: str) -> set[tuple]:
    import fakesnow
    import snowflake.connector

    with fakesnow.patch():
        con = snowflake.connector.connect(database="SNOWCAST", schema="RAW")
        cur = con.cursor()
        for file in ("01_database.sql", "03_tables.sql"):
            for statement in statements(os.path.join(infra, file)):
                cur.execute(statement)
        for statement in statements(os.path.join(infra, "06_app_tables.sql")):
            if "SCHEMA IF NOT EXISTS SNOWCAST.ANALYTICS" in statement or "TABLE IF NOT EXISTS SNOWCAST.ANALYTICS.FORECAST_DRAFT" in statement:
                cur.execute(statement.replace("CLUSTER BY (TENANT_ID, DATE)", ""))
        # Snowpipe's COPY stands in as a plain load of the same files.
        cur.execute(f"INSERT INTO SNOWCAST.RAW.SALES ({SALES_COLUMNS}) SELECT {SALES_COLUMNS} "
                    f"FROM read_parquet('{parquet}', hive_partitioning = false)")
        for view in model_views(infra):
            cur.execute(view)
        for statement in refresh_body(infra):
            cur.execute(statement)
        cur.execute("SELECT TENANT_ID, SKU_ID, DATE, DRAFT_QUANTITY, MODEL FROM SNOWCAST.ANALYTICS.FORECAST_DRAFT")
        return rows_of(cur.fetchall())


def on_polars(parquet: str) -> set[tuple]:
    sales = (pl.scan_parquet(parquet, hive_partitioning=False)
             .with_columns(pl.col("tenant_id").cast(pl.String), pl.col("_source_key").cast(pl.String))
             .sort(["_ingested_at", "_source_key", "_source_row"], descending=True)
             .unique(subset=["tenant_id", "sku_id", "location_id", "date"], keep="first")
             .collect())
    out = []
    for (tenant,), part in sales.group_by(["tenant_id"]):
        last = part["date"].max()
        first = last - datetime.timedelta(days=WINDOW - 1)
        recent = part.filter(pl.col("date") >= first)
        grid = pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})
        for (sku,), cells in recent.group_by(["sku_id"]):
            daily = (grid.join(cells.group_by("date").agg(pl.col("units").fill_null(0).sum()),
                               on="date", how="left")
                     .with_columns(pl.col("units").fill_null(0), pl.col("date").dt.weekday().alias("weekday")))
            means = {w: decimal.Decimal(int(u)) / 8 for w, u in
                     daily.group_by("weekday").agg(pl.col("units").sum()).iter_rows()}
            for ahead in range(1, HORIZON + 1):
                day = last + datetime.timedelta(days=ahead)
                draft = max(means[day.isoweekday()], decimal.Decimal(0))
                out.append((tenant, sku, day, draft, MODEL))
    return rows_of(out)


def check_invariants(rows: set[tuple], parquet: str) -> None:
    keys = [(t, s, d) for t, s, d, _, _ in rows]
    assert len(keys) == len(set(keys)), "key (tenant_id, sku_id, date) unique"
    assert all(None not in row for row in rows), "no NULL"
    assert all(q >= 0 for _, _, _, q, _ in rows), "no negative draft"
    last = {t: d.isoformat() for t, d in duckdb.sql(
        f"SELECT tenant_id, max(date) FROM read_parquet('{parquet}', hive_partitioning = false) GROUP BY 1").fetchall()}
    per_sku: dict[tuple, list[str]] = {}
    for t, s, d, _, _ in rows:
        per_sku.setdefault((t, s), []).append(d)
    for (t, s), days in per_sku.items():
        days.sort()
        start = (datetime.date.fromisoformat(last[t]) + datetime.timedelta(days=1)).isoformat()
        assert len(days) == HORIZON and days[0] == start, f"{t}/{s}: {len(days)} days from {days[0]}"


def main() -> None:
    silver, infra = sys.argv[1], sys.argv[2]
    if not glob.glob(os.path.join(silver, "**", "*.parquet"), recursive=True):
        sys.exit(f"no Parquet under {silver}")
    parquet = os.path.join(silver, "**", "*.parquet")
    expected = on_polars(parquet)
    results = {"duckdb": on_duckdb(parquet, infra), "fakesnow": on_fakesnow(parquet, infra)}
    for engine, rows in results.items():
        missing, extra = sorted(expected - rows), sorted(rows - expected)
        if missing or extra:
            sys.exit(f"{engine} differs from polars: {len(missing)} rows missing, e.g. {missing[:3]}; "
                     f"{len(extra)} extra, e.g. {extra[:3]}")
    check_invariants(expected, parquet)
    print(json.dumps({
        "rows": len(expected),
        "tenants": len({t for t, *_ in expected}),
        "skus": len({(t, s) for t, s, *_ in expected}),
        "positive": sum(1 for *_, q, _ in expected if q > 0),
        "total": str(sum(q for *_, q, _ in expected)),
    }))


if __name__ == "__main__":
    main()
