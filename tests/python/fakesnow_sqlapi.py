"""A small SQL API v2 adapter over fakesnow (Snowflake emulated on DuckDB), so the tests run
the statements snowcast sends, and the DDL in infra/, through the real client.

POST /api/v2/statements executes one statement with its positional bindings and answers a
jsonv2 ResultSet (values encoded as the SQL API encodes them: dates as days, timestamps as
seconds.nanos) or a 422 QueryFailureStatus. Prints its URL, serves until stdin closes.
"""

import datetime as dt
import decimal
import json
import threading
import uuid

import fakesnow

from stand_in import JsonHandler, serve

EPOCH = dt.date(1970, 1, 1)
lock = threading.Lock()
connection = None


def bind(binding):
    kind, value = binding["type"].upper(), binding.get("value")
    if value is None:
        return None
    if kind == "FIXED":
        return decimal.Decimal(value) if "." in value else int(value)
    if kind == "REAL":
        return float(value)
    if kind == "BOOLEAN":
        return value.lower() in ("true", "1")
    if kind == "DATE":
        return dt.date.fromisoformat(value)
    if kind.startswith("TIMESTAMP"):
        return dt.datetime.fromisoformat(value)
    return value


def encode(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        seconds = aware.timestamp()
        return f"{int(seconds // 1)}.{aware.microsecond * 1000:09d}"
    if isinstance(value, dt.date):
        return str((value - EPOCH).days)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def row_type(description):
    from snowflake.connector.constants import FIELD_ID_TO_NAME
    columns = []
    for column in description:
        columns.append({
            "name": column.name, "type": FIELD_ID_TO_NAME.get(column.type_code, "TEXT").lower(),
            "length": column.internal_size or 0, "precision": column.precision or 0,
            "scale": column.scale or 0, "nullable": bool(column.is_nullable),
        })
    return columns


class Handler(JsonHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length))
        handle = str(uuid.uuid4())
        bindings = request.get("bindings") or {}
        params = [bind(bindings[str(i)]) for i in range(1, len(bindings) + 1)]
        try:
            with lock:
                cursor = connection.cursor()
                cursor.execute(request["statement"], params or None)
                rows = cursor.fetchall() if cursor.description else []
                columns = row_type(cursor.description) if cursor.description else [
                    {"name": "status", "type": "text", "length": 0, "precision": 0, "scale": 0, "nullable": True}]
        except Exception as e:  # fakesnow raises the connector's ProgrammingError
            return self.reply(422, {"code": str(getattr(e, "errno", "") or "002003").zfill(6),
                                    "sqlState": getattr(e, "sqlstate", None) or "42000",
                                    "message": str(e), "statementHandle": handle})
        data = [[encode(v) for v in row] for row in rows]
        self.reply(200, {
            "code": "090001", "sqlState": "00000", "message": "Statement executed successfully.",
            "statementHandle": handle, "statementStatusUrl": f"/api/v2/statements/{handle}",
            "resultSetMetaData": {"numRows": len(data), "format": "jsonv2",
                                  "partitionInfo": [{"rowCount": len(data)}], "rowType": columns},
            "data": data,
        })


def main():
    global connection
    with fakesnow.patch():
        import snowflake.connector
        snowflake.connector.paramstyle = "qmark"
        connection = snowflake.connector.connect(paramstyle="qmark")
        serve(Handler)


if __name__ == "__main__":
    main()
