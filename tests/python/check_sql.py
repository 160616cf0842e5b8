"""Parses SQL files as Snowflake SQL with sqlglot; exits non-zero naming the first statement
it cannot parse. Used by the tests on infra/snowflake/*.sql.

sqlglot keeps some statements as opaque Commands (`CREATE PIPE`, `CREATE ROLE`, `CREATE
USER`, `GRANT ... ON PIPE`, `GRANT [DATABASE] ROLE`, `GRANT ... ON ALL|FUTURE TABLES`): those are checked against Snowflake's grammar for
them here, and a pipe's COPY INTO is parsed by sqlglot. sqlglot knows neither hybrid
tables (parsed here as the plain CREATE TABLE they extend) nor Snowflake Scripting: a
procedure's header is checked here and every SQL statement of its body parsed by sqlglot.

    check_sql.py FILE...
"""

import logging
import re
import sys

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError

PIPE = re.compile(
    r"^\s*CREATE\s+(OR\s+REPLACE\s+)?PIPE\s+(IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\w+(\.\w+){0,2})(?P<options>(\s+\w+\s*=\s*('[^']*'|\w+))*)\s+AS\s+(?P<copy>COPY\s+INTO\s.*)$",
    re.S | re.I,
)

IDENT = r"\w+(\.\w+){0,2}"
PROPERTY = r"\s+\w+\s*=\s*('[^']*'|\w+)"
COMMANDS = [re.compile(p, re.S | re.I) for p in (
    rf"^CREATE\s+(OR\s+REPLACE\s+)?ROLE\s+(IF\s+NOT\s+EXISTS\s+)?{IDENT}({PROPERTY})*$",
    rf"^CREATE\s+(OR\s+REPLACE\s+)?USER\s+(IF\s+NOT\s+EXISTS\s+)?{IDENT}({PROPERTY})*$",
    rf"^GRANT\s+(OPERATE|MONITOR|OWNERSHIP)(\s*,\s*(OPERATE|MONITOR))*\s+ON\s+PIPE\s+{IDENT}\s+TO\s+ROLE\s+\w+$",
    rf"^GRANT\s+ROLE\s+\w+\s+TO\s+(USER|ROLE)\s+\w+$",
    rf"^GRANT\s+DATABASE\s+ROLE\s+\w+\.\w+\s+TO\s+ROLE\s+\w+$",
    rf"^GRANT\s+\w+(\s*,\s*\w+)*\s+ON\s+(ALL|FUTURE)\s+TABLES\s+IN\s+SCHEMA\s+{IDENT}\s+TO\s+ROLE\s+\w+$",
    rf"^ALTER\s+USER\s+(IF\s+EXISTS\s+)?{IDENT}\s+SET({PROPERTY})+$",
    rf"^GRANT\s+USAGE\s+ON\s+PROCEDURE\s+{IDENT}\s*\([\w\s,()]*\)\s+TO\s+ROLE\s+\w+$",
    rf"^CREATE\s+(OR\s+REPLACE\s+)?STREAM\s+(IF\s+NOT\s+EXISTS\s+)?{IDENT}\s+ON\s+TABLE\s+{IDENT}({PROPERTY})*$",
    # A triggered task calling a procedure: no SCHEDULE, a WHEN on a stream.
    rf"^CREATE\s+(OR\s+REPLACE\s+)?TASK\s+(IF\s+NOT\s+EXISTS\s+)?{IDENT}({PROPERTY})*"
    rf"\s+WHEN\s+SYSTEM\$STREAM_HAS_DATA\('{IDENT}'\)\s+AS\s+CALL\s+{IDENT}\(\)$",
    rf"^ALTER\s+TASK\s+(IF\s+EXISTS\s+)?{IDENT}\s+(RESUME|SUSPEND)$",
)]
HYBRID = re.compile(r"^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?)HYBRID\s+(TABLE\b)", re.I)
PROCEDURE = re.compile(
    r"^\s*CREATE\s+(OR\s+REPLACE\s+)?PROCEDURE\s+" + IDENT + r"\s*\((?P<args>.*?)\)\s*"
    r"RETURNS\s+.+?\s+LANGUAGE\s+SQL\s+(EXECUTE\s+AS\s+(OWNER|CALLER)\s+)?AS\s*\$\$(?P<body>.*)\$\$\s*$",
    re.S | re.I)
SCRIPT_ONLY = re.compile(
    r"^(BEGIN(\s+TRANSACTION)?|COMMIT|ROLLBACK|RAISE|RETURN\s+TABLE\s*\(\w+\)|RETURN\s+\w+|END|EXCEPTION"
    r"|WHEN\s+OTHER\s+THEN|DECLARE|\w+\s+NUMBER\s+DEFAULT\s+\d+|\w+\s*:=\s*SQLROWCOUNT)$", re.I)


def statements(text):
    """Splits at `;` outside quotes, comments and $$ bodies."""
    found, start, at = [], 0, 0
    while at < len(text):
        two = text[at:at + 2]
        if two == "--":
            at = text.find("\n", at) if "\n" in text[at:] else len(text)
        elif two in ("/*", "$$"):
            end = text.find("*/" if two == "/*" else "$$", at + 2)
            at = len(text) if end < 0 else end + 2
        elif text[at] in "'\"":
            end = text.find(text[at], at + 1)
            at = len(text) if end < 0 else end + 1
        elif text[at] == ";":
            found.append(text[start:at])
            start = at = at + 1
        else:
            at += 1
    found.append(text[start:])
    code = lambda s: "\n".join(l for l in s.splitlines() if not l.strip().startswith("--")).strip()
    return [code(s) for s in found if code(s)]


def check_procedure(path, match):
    """Each SQL statement of a straight-line body must parse, its `:ARG` references bound."""
    count = 0
    for statement in re.split(r";\s*(?:\n|$)", match.group("body")):
        statement = statement.strip()
        let = re.match(r"^LET\s+\w+\s+RESULTSET\s*:=\s*\((.*)\)$", statement, re.S | re.I)
        if let:
            statement = let.group(1)
        statement = re.sub(r"^BEGIN\s+(?!TRANSACTION)", "", statement, flags=re.I).strip()
        lines = [l for l in statement.splitlines() if not SCRIPT_ONLY.match(l.strip())]
        statement = "\n".join(lines).strip()
        if not statement or SCRIPT_ONLY.match(statement):
            continue
        bound = re.sub(r"(?<![\w:]):[A-Za-z_]\w*", "?", statement)
        try:
            sqlglot.parse_one(bound, read="snowflake", error_level=ErrorLevel.RAISE)
        except ParseError as e:
            sys.exit(f"{path}: procedure body: {e}\n{statement[:200]}")
        count += 1
    if count == 0:
        sys.exit(f"{path}: a procedure without SQL")


def check(path: str, text: str) -> int:
    plain = []
    for statement in statements(text):
        procedure = PROCEDURE.match(statement)
        if procedure:
            check_procedure(path, procedure)
        elif re.match(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?PROCEDURE", statement, re.I):
            sys.exit(f"{path}: not a LANGUAGE SQL procedure: {statement[:160]}")
        else:
            plain.append(HYBRID.sub(r"\1\2", statement))
    try:
        parsed = [sqlglot.parse_one(s, read="snowflake", error_level=ErrorLevel.RAISE) for s in plain]
    except ParseError as e:
        sys.exit(f"{path}: {e}")
    for expression in filter(None, parsed):
        if not isinstance(expression, exp.Command):
            continue
        # Comments before a statement come back as /* ... */ ahead of it.
        statement = re.sub(r"^\s*(/\*.*?\*/\s*)+", "", expression.sql(dialect="snowflake"), flags=re.S)
        if any(command.match(statement) for command in COMMANDS):
            continue
        pipe = PIPE.match(statement)
        if not pipe:
            sys.exit(f"{path}: not understood as Snowflake SQL: {statement[:160]}")
        try:
            copy = sqlglot.parse_one(pipe.group("copy"), read="snowflake", error_level=ErrorLevel.RAISE)
        except ParseError as e:
            sys.exit(f"{path}: pipe {pipe.group('name')}: {e}")
        if not isinstance(copy, exp.Copy):
            sys.exit(f"{path}: pipe {pipe.group('name')} is not AS COPY INTO")
    return len([e for e in parsed if e is not None]) + (len(statements(text)) - len(plain))


def main() -> None:
    # sqlglot logs a warning for every statement it keeps as a Command; those are checked here.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    count = 0
    for path in sys.argv[1:]:
        with open(path) as f:
            count += check(path, f.read())
    print(count)


if __name__ == "__main__":
    main()
