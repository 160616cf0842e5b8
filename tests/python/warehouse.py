"""Reads the local stack's warehouse (DuckDB) after the stack stopped, as an auditor would:
row counts of the RAW and gold tables, the load history, and whether any path was loaded
twice. Prints one JSON object.

    warehouse.py DATABASE
"""

import json
import sys

import duckdb


def main() -> None:
    con = duckdb.connect(sys.argv[1])
    one = lambda sql: con.execute(sql).fetchone()[0]
    print(json.dumps({
        "sales_rows": one("SELECT count(*) FROM snowcast.raw.sales"),
        "sales_rows_distinct_source": one(
            "SELECT count(*) FROM (SELECT DISTINCT _source_key, _source_row FROM snowcast.raw.sales)"),
        "sales_rows_by_tenant": dict(con.execute(
            "SELECT tenant_id, count(*) FROM snowcast.raw.sales GROUP BY 1").fetchall()),
        "loads": one("SELECT count(*) FROM snowcast.raw.load_history"),
        "loads_failed": one("SELECT count(*) FROM snowcast.raw.load_history WHERE status <> 'LOADED'"),
        "rows_in_history": one("SELECT coalesce(sum(rows_loaded), 0) FROM snowcast.raw.load_history"),
        "draft_rows_by_tenant": dict(con.execute(
            "SELECT tenant_id, count(*) FROM snowcast.analytics.forecast_draft GROUP BY 1").fetchall()),
        "pending_refresh": one("SELECT count(*) FROM snowcast.analytics.forecast_refresh_tenants"),
    }))


if __name__ == "__main__":
    main()
