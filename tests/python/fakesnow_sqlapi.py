"""A small SQL API v2 adapter over fakesnow (Snowflake emulated on DuckDB), so the tests run
the statements snowcast sends, and the DDL in infra/, through the real client.

POST /api/v2/statements executes one statement with its positional bindings and answers a
jsonv2 ResultSet (values encoded as the SQL API encodes them: dates as days, timestamps as
seconds.nanos) or a 422 QueryFailureStatus. Prints its URL, serves until stdin closes.

What fakesnow cannot run, this adapter (and only it) bends, saying so here:
- `CREATE HYBRID TABLE` runs as `CREATE TABLE` (same columns and primary key).
- `CREATE PROCEDURE ... LANGUAGE SQL AS $$ ... $$` is kept, and `CALL` runs its body
  statement by statement in one DuckDB transaction, its `:ARG` references bound as
  parameters. Only straight-line bodies are understood: BEGIN TRANSACTION, DML, COMMIT,
  `LET x RESULTSET := (query)`, `RETURN TABLE(x)`, and an `EXCEPTION WHEN OTHER THEN
  ROLLBACK; RAISE;` handler.
- `<DB>.INFORMATION_SCHEMA.HYBRID_TABLES` (in the statement, or as a whole bound value for
  `IDENTIFIER(?)`) reads `<DB>.FAKE_INFORMATION_SCHEMA.HYBRID_TABLES`: fakesnow reserves the
  INFORMATION_SCHEMA schema and has no such view, so tests create it as a table there.
  (`SNOWFLAKE.ACCOUNT_USAGE.*` views need no bend: tests create them as tables.)
GET /_traffic answers every request and response so far, for check_sqlapi.py.
"""

import datetime as dt
import decimal
import json
import re
import threading
import urllib.parse
import uuid

import fakesnow

from stand_in import JsonHandler, serve

EPOCH = dt.date(1970, 1, 1)
lock = threading.Lock()
connection = None
procedures = {}
traffic = {"requests": [], "responses": []}
HYBRID = re.compile(r"^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?)HYBRID\s+TABLE\b", re.I)
PROCEDURE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?PROCEDURE\s+([\w.]+)\s*\((.*?)\)\s*RETURNS.*?\$\$(.*)\$\$\s*$",
    re.I | re.S)
CALL = re.compile(r"^\s*CALL\s+([\w.]+)\s*\(", re.I)
INFO_VIEW = re.compile(r"\bINFORMATION_SCHEMA\.HYBRID_TABLES\b", re.I)
BOUND_INFO_VIEW = re.compile(r"^\w+\.INFORMATION_SCHEMA\.HYBRID_TABLES$", re.I)


def stand_in_views(statement, params):
    """The statement and parameters with INFORMATION_SCHEMA.HYBRID_TABLES on its stand-in."""
    replace = lambda text: INFO_VIEW.sub("FAKE_INFORMATION_SCHEMA.HYBRID_TABLES", text)
    params = [replace(p) if isinstance(p, str) and BOUND_INFO_VIEW.match(p) else p for p in params]
    return replace(statement), params


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


def encode(value, kind="text"):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        seconds = aware.timestamp()
        text = f"{int(seconds // 1)}.{aware.microsecond * 1000:09d}"
        if kind == "timestamp_tz":  # the SQL API appends the offset in minutes + 1440
            offset = aware.utcoffset() or dt.timedelta(0)
            text += f" {int(offset.total_seconds() // 60) + 1440}"
        return text
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


def split_body(body):
    """Statements of a straight-line Snowflake Scripting body, and whether its handler rolls back."""
    body = body.strip()
    body = re.sub(r"^BEGIN\b", "", body, flags=re.I).strip()
    body = re.sub(r"\bEND\s*;?\s*$", "", body, flags=re.I).strip()
    parts = re.split(r"^\s*EXCEPTION\s*$", body, maxsplit=1, flags=re.I | re.M)
    main, handler = parts[0], (parts[1] if len(parts) > 1 else "")
    statements = [s.strip() for s in re.split(r";\s*(?:\n|$)", main) if s.strip()]
    return statements, "ROLLBACK" in handler.upper()


def substitute(sql, arguments):
    """`:NAME` references to arguments become `?` parameters, in order."""
    values = []

    def replace(match):
        name = match.group(1).upper()
        if name not in arguments:
            return match.group(0)
        values.append(arguments[name])
        return "?"
    return re.sub(r"(?<![\w:]):([A-Za-z_]\w*)", replace, sql), values


def call(cursor, name, params):
    names, body = procedures[name]
    arguments = dict(zip(names, params))
    statements, rolls_back = split_body(body)
    results = {}
    try:
        for statement in statements:
            let = re.match(r"^LET\s+(\w+)\s+RESULTSET\s*:=\s*\((.*)\)$", statement, re.I | re.S)
            ret = re.match(r"^RETURN\s+TABLE\s*\(\s*(\w+)\s*\)$", statement, re.I)
            if let:
                sql, values = substitute(let.group(2), arguments)
                cursor.execute(sql, values or None)
                results[let.group(1).upper()] = (cursor.fetchall(), cursor.description)
            elif ret:
                return results[ret.group(1).upper()]
            else:
                sql, values = substitute(statement, arguments)
                cursor.execute(sql, values or None)
    except Exception:
        if rolls_back:
            cursor.execute("ROLLBACK")
        raise
    return [], None


def execute(statement, params):
    """Rows and description of one statement, on fakesnow or through the bends above."""
    cursor = connection.cursor()
    statement = re.sub(r"^(\s*--[^\n]*\n)+", "", statement)  # leading comment lines
    definition = PROCEDURE.match(statement)
    if definition:
        arguments = re.split(r",(?![^()]*\))", definition.group(2))
        names = [a.strip().split()[0].upper() for a in arguments if a.strip()]
        procedures[definition.group(1).upper()] = (names, definition.group(3))
        return [("Function created.",)], None
    invoked = CALL.match(statement)
    if invoked and invoked.group(1).upper() in procedures:
        return call(cursor, invoked.group(1).upper(), params)
    statement, params = stand_in_views(statement, params)
    cursor.execute(HYBRID.sub(r"\1TABLE", statement), params or None)
    return (cursor.fetchall() if cursor.description else []), cursor.description


class Handler(JsonHandler):
    def record(self, status, body):
        schema = "ResultSet" if status == 200 else "QueryFailureStatus"
        traffic["responses"].append({"schema": schema, "body": body})
        self.reply(status, body)

    def do_GET(self):
        if self.path == "/_traffic":
            return self.reply(200, traffic)
        self.reply(404, {"message": "no such path"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        traffic["requests"].append({
            "method": "POST", "path": url.path, "query": dict(urllib.parse.parse_qsl(url.query)),
            "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw.decode()})
        request = json.loads(raw)
        handle = str(uuid.uuid4())
        bindings = request.get("bindings") or {}
        params = [bind(bindings[str(i)]) for i in range(1, len(bindings) + 1)]
        try:
            with lock:
                rows, description = execute(request["statement"], params)
                columns = row_type(description) if description else [
                    {"name": "status", "type": "text", "length": 0, "precision": 0, "scale": 0, "nullable": True}]
        except Exception as e:  # fakesnow raises the connector's ProgrammingError
            return self.record(422, {"code": str(getattr(e, "errno", "") or "002003").zfill(6),
                                     "sqlState": getattr(e, "sqlstate", None) or "42000",
                                     "message": str(e), "statementHandle": handle})
        data = [[encode(v, c["type"]) for v, c in zip(row, columns)] for row in rows]
        self.record(200, {
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
