"""Parses SQL files as Snowflake SQL with sqlglot; exits non-zero naming the first statement
it cannot parse. Used by the tests on infra/snowflake/*.sql.

sqlglot keeps some statements as opaque Commands (`CREATE PIPE`, `CREATE ROLE`, `CREATE
USER`, `GRANT ... ON PIPE`, `GRANT ROLE`): those are checked against Snowflake's grammar for
them here, and a pipe's COPY INTO is parsed by sqlglot.

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
)]


def check(path: str, text: str) -> int:
    try:
        parsed = sqlglot.parse(text, read="snowflake", error_level=ErrorLevel.RAISE)
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
    return len([e for e in parsed if e is not None])


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
