#!/usr/bin/env python3
"""The seed's own design of the forecast reader, for bench/api_load.py to measure against
the Rust one: FastAPI on uvicorn (one worker), redis-py's asyncio client, the forecast in
process memory (the data set of bench/api_data.py).

    GET /v1/forecast?sku_id=S&from=YYYY-MM-DD&to=YYYY-MM-DD&show_manual=true&limit=N[&cursor=C]
    PUT /v1/edits/{sku_id}/{date}   {"quantity": 12.5, "note": "optional"}

Caching as the seed describes it: a per-tenant generation key in Redis, INCR'd by every
accepted edit; a page is cached under tenant + generation + the canonical query, so an edit
orphans every cached page of its tenant at once (they expire after 300 s). Read path: GET
the generation, GET the page key; a hit answers the cached bytes, a miss builds the page
from memory and SETs it with EX 300. A Redis fault degrades to the in-memory store.

No auth: the benchmark measures the function behind a gateway that already checked the
token, so the tenant is always `bench`. JSON only (`format=csv` is refused).

    .venv/bin/python bench/fastapi_reader.py --port 8000 --redis-url redis://127.0.0.1:6379/0
Every option also reads an environment variable: PORT, REDIS_URL, SKUS, DAYS, CACHE.
"""
import argparse
import datetime as dt
import json
import os
import sys
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import RedisError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_data  # noqa: E402  (beside this file, not a package)
from api_data import QUANTITY_UNIT, TENANT  # noqa: E402

MAX_PAGE = 1_000
DEFAULT_PAGE = 100
MAX_RANGE_DAYS = 366
MAX_NOTE_CHARS = 1_000
CACHE_SECONDS = 300
# Quantities stay below 10^11, as the domain's `Quantity` requires.
QUANTITY_LIMIT = 100_000_000_000 * QUANTITY_UNIT
# The `{tenant}` hash tag keeps a tenant's generation and pages in one cluster slot.
KEY_PREFIX = f"snowcast:{{{TENANT}}}"
GENERATION_KEY = f"{KEY_PREFIX}:generation"


class BadRequest(Exception):
    pass


@dataclass
class Edit:
    quantity: int
    note: str | None
    version: int
    edited_by: str
    edited_at: str


class Store:
    """The forecast in memory: drafts per SKU and day, and the edits over them."""

    def __init__(self, skus: int, days: int):
        self.skus = [api_data.sku_name(i) for i in range(skus)]
        self.index = {sku: i for i, sku in enumerate(self.skus)}
        self.dates = [(api_data.FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in range(days)]
        # Drafts take few distinct values: share them, so a big data set costs a pointer a cell.
        shared: dict[int, int] = {}
        self.drafts = [[shared.setdefault(u, u) for u in
                        (api_data.draft_units(i, d) for d in range(days))] for i in range(skus)]
        self.edits: dict[str, dict[str, Edit]] = {}

    def forecast(self, sku: str | None, first: dt.date, last: dt.date, show_manual: bool,
                 limit: int, after: tuple[str, str] | None) -> tuple[list[dict], bool]:
        """Rows of [first, last] in (sku_id, date) order after `after`: (page, more)."""
        lo = max((first - api_data.FIRST_DAY).days, 0)
        hi = min((last - api_data.FIRST_DAY).days, len(self.dates) - 1)
        first_iso, last_iso = first.isoformat(), last.isoformat()
        if sku is not None:
            candidates = [sku]
        elif self.edits:
            candidates = sorted(set(self.skus) | set(self.edits))
        else:
            candidates = self.skus
        items: list[dict] = []
        for name in candidates:
            if after and name < after[0]:
                continue
            index = self.index.get(name)
            drafts = {} if index is None else {
                self.dates[d]: self.drafts[index][d] for d in range(lo, hi + 1)}
            edits = {date: edit for date, edit in self.edits.get(name, {}).items()
                     if first_iso <= date <= last_iso}
            for date in sorted(drafts.keys() | edits.keys()) if edits else drafts:
                if after and (name, date) <= after:
                    continue
                edit = edits.get(date)
                if edit is None:
                    items.append(api_data.row(name, date, drafts.get(date), None, show_manual))
                else:
                    items.append(api_data.row(name, date, drafts.get(date), edit.quantity,
                                              show_manual, edit.version, edit.note,
                                              edit.edited_by, edit.edited_at))
                if len(items) > limit:
                    return items[:limit], True
        return items, False

    def put(self, sku: str, date: str, quantity: int, note: str | None,
            expected: int | None) -> tuple[Edit | None, bool, int]:
        """(edit, changed, current version); edit is None when `expected` is stale."""
        current = self.edits.get(sku, {}).get(date)
        version = current.version if current else 0
        if expected is not None and expected != version:
            return None, False, version
        if current and current.quantity == quantity and current.note == note:
            return current, False, version
        edit = Edit(quantity, note, version + 1, TENANT,
                    dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"))
        self.edits.setdefault(sku, {})[date] = edit
        return edit, True, edit.version


def problem(request: Request, status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": request.headers.get("x-request-id") or str(uuid.uuid4())}
    return Response(json.dumps(body), status, media_type="application/problem+json")


def parse_date(what: str, text: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        date = None
    # fromisoformat also takes 20270101: insist on YYYY-MM-DD like the Rust reader.
    if date is None or date.isoformat() != text:
        raise BadRequest(f"invalid {what}: {text!r} is not an ISO date (YYYY-MM-DD)")
    return date


def parse_quantity(value) -> int:
    """A JSON number (parsed as Decimal) to ten-thousandths, with the domain's rules."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise BadRequest(f"invalid quantity: must be a number, not {value!r}")
    units = value * QUANTITY_UNIT
    if units != units.to_integral_value():
        raise BadRequest(f"invalid quantity: {value} has more than 4 decimals")
    if units < 0:
        raise BadRequest(f"invalid quantity: {value} is negative")
    if units >= QUANTITY_LIMIT:
        raise BadRequest(f"invalid quantity: {value} is too large (at most 10^11)")
    return int(units)


def next_cursor_of(body: bytes) -> str | None:
    """The page's next_cursor, read off the cached bytes (the last field, base64url)."""
    _, _, tail = body.rpartition(b',"next_cursor":')
    return None if tail.startswith(b"null") else tail[1:tail.index(b'"', 1)].decode()


def with_etag(request: Request, body: bytes, next_cursor: str | None) -> Response:
    """As the Rust handler: a strong ETag over the bytes, 304 on If-None-Match."""
    etag = api_data.etag_of(body)
    headers = {"etag": etag, "cache-control": "private, no-cache"}
    if next_cursor:
        headers["x-next-cursor"] = next_cursor
    for value in request.headers.getlist("if-none-match"):
        for tag in value.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == etag:
                return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def create_app(store: Store, redis_url: str | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.redis = aioredis.Redis.from_url(redis_url) if redis_url else None
        yield
        if app.state.redis is not None:
            await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        # FastAPI answers 422; the API's contract is a 400 problem.
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return problem(request, 400, "Bad Request", detail)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, error: BadRequest) -> Response:
        return problem(request, 400, "Bad Request", str(error))

    @app.get("/v1/forecast")
    async def get_forecast(
        request: Request,
        from_: str = Query(alias="from"),
        to: str = Query(),
        sku_id: str | None = Query(None, min_length=1, max_length=128),
        show_manual: str = Query("true", pattern="^(true|false)$"),
        limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE),
        cursor: str | None = None,
        format: str = Query("json", pattern="^json$"),
    ) -> Response:
        first, last = parse_date("from", from_), parse_date("to", to)
        if first > last:
            raise BadRequest(f"invalid to: {last} is before from ({first})")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise BadRequest(f"invalid to: the range spans more than {MAX_RANGE_DAYS} days")
        after = None
        if cursor is not None:
            try:
                after = api_data.decode_cursor(cursor)
            except ValueError:
                raise BadRequest("invalid cursor: use next_cursor as given") from None
        # Defaults filled in, so equivalent queries share one cache entry.
        canonical = json.dumps([sku_id, first.isoformat(), last.isoformat(), show_manual,
                                limit, after], separators=(",", ":"), ensure_ascii=False)

        redis = request.app.state.redis
        page_key = None
        if redis is not None:
            try:
                generation = await redis.get(GENERATION_KEY) or b"0"
                page_key = f"{KEY_PREFIX}:forecast:{generation.decode()}:{canonical}"
                body = await redis.get(page_key)
                if body is not None:
                    return with_etag(request, body, next_cursor_of(body))
            except RedisError:
                page_key = None

        items, more = store.forecast(sku_id, first, last, show_manual == "true", limit, after)
        next_cursor = (api_data.encode_cursor(items[-1]["sku_id"], items[-1]["date"])
                       if more and items else None)
        body = api_data.encode_page(items, next_cursor)
        if page_key is not None:
            try:
                await redis.set(page_key, body, ex=CACHE_SECONDS)
            except RedisError:
                pass
        return with_etag(request, body, next_cursor)

    @app.put("/v1/edits/{sku_id}/{date}")
    async def put_edit(sku_id: str, date: str, request: Request) -> Response:
        if not 1 <= len(sku_id) <= 128 or any(not c.isprintable() for c in sku_id):
            raise BadRequest("invalid sku_id: must be 1-128 characters, no control characters")
        date = parse_date("date", date).isoformat()
        try:
            payload = json.loads(await request.body(), parse_float=Decimal, parse_int=Decimal)
        except (ValueError, InvalidOperation) as error:
            raise BadRequest(f"invalid JSON body: {error}") from None
        if not isinstance(payload, dict) or "quantity" not in payload or \
                payload.keys() - {"quantity", "note"}:
            raise BadRequest('invalid JSON body: expected {"quantity": number, "note"?: string}')
        note = payload.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
            raise BadRequest(f"invalid note: must be a string of at most {MAX_NOTE_CHARS} characters")
        quantity = parse_quantity(payload["quantity"])
        expected = None
        if_match = request.headers.get("if-match", "*").strip()
        if if_match != "*":
            try:
                expected = int(if_match.removeprefix('"').removesuffix('"'))
            except ValueError:
                raise BadRequest(f"invalid If-Match: {if_match!r}") from None

        edit, changed, version = store.put(sku_id, date, quantity, note, expected)
        if edit is None:
            return problem(request, 412, "Precondition Failed",
                           f"the cell is at version {version}; reload it and retry")
        if changed and request.app.state.redis is not None:
            # After the commit, so no reader can cache the old page under the new generation.
            await request.app.state.redis.incr(GENERATION_KEY)
        body = {"sku_id": sku_id, "date": date, "quantity": api_data.quantity_json(edit.quantity),
                "note": edit.note, "version": edit.version, "edited_by": edit.edited_by,
                "edited_at": edit.edited_at}
        return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                        media_type="application/json", headers={"etag": f'"{edit.version}"'})

    return app


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8000")))
    parser.add_argument("--redis-url", default=env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--skus", type=int, default=int(env("SKUS", "200")))
    parser.add_argument("--days", type=int, default=int(env("DAYS", "366")))
    parser.add_argument("--cache", choices=["redis", "none"], default=env("CACHE", "redis"),
                        help="none: every read builds the page from memory")
    args = parser.parse_args()
    app = create_app(Store(args.skus, args.days), args.redis_url if args.cache == "redis" else None)
    # One worker, no access log: the benchmark measures the handler, not log writes.
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
