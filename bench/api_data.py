"""The forecast API benchmark's synthetic data and page encoding: the one place both readers
(bench/fastapi_reader.py and the Rust `api_server` example) take their data from.

Data: tenant `bench`; SKUs `SKU-00000` .. `SKU-{n-1:05}`; days from 2027-01-01 for `days`
days; every cell has a draft, no manual edits, version 0. The draft of SKU i on day d
(both counted from 0) is

    draft_quantity = ((i * 31 + d * 7) % 500) + 0.25

so every draft is a JSON number with two decimals (12.25, 499.25, ...).

A page is encoded as `shared::services::api::forecast` encodes it (serde_json, compact):
rows in (sku_id, date) order with the fields of `ForecastRow` in declaration order, a
quantity as an integer when whole and as the shortest round-tripping float otherwise, and
the strong ETag the Rust handler sends (first 16 bytes of the body's SHA-256, hex, quoted).
The load driver compares each server's page with `reference_page`, so a server that
serves other bytes is caught, not silently measured.
"""
import base64
import datetime as dt
import hashlib
import json

TENANT = "bench"
FIRST_DAY = dt.date(2027, 1, 1)
# Quantities are kept as ten-thousandths, like the domain's `Quantity`.
QUANTITY_UNIT = 10_000


def sku_name(index: int) -> str:
    return f"SKU-{index:05}"


def draft_units(sku_index: int, day_index: int) -> int:
    """The draft of a cell in ten-thousandths: ((i*31 + d*7) % 500) + 0.25."""
    return ((sku_index * 31 + day_index * 7) % 500) * QUANTITY_UNIT + QUANTITY_UNIT // 4


def quantity_json(units: int | None) -> int | float | None:
    """As `Quantity`'s Serialize: an integer when whole, else the nearest float."""
    if units is None:
        return None
    if units % QUANTITY_UNIT == 0:
        return units // QUANTITY_UNIT
    return units / QUANTITY_UNIT


def row(sku: str, date: str, draft: int | None, manual: int | None, show_manual: bool,
        version: int = 0, note: str | None = None, edited_by: str | None = None,
        edited_at: str | None = None) -> dict:
    """One `ForecastRow`, keys in the order serde writes them."""
    shown = manual if show_manual and manual is not None else draft
    return {
        "sku_id": sku,
        "date": date,
        "draft_quantity": quantity_json(draft),
        "manual_quantity": quantity_json(manual),
        "quantity": quantity_json(shown),
        "version": version,
        "note": note,
        "edited_by": edited_by,
        "edited_at": edited_at,
    }


def encode_cursor(sku: str, date: str) -> str:
    """base64url (no padding) of the JSON pair, as `params::encode_cursor` writes it."""
    text = json.dumps([sku, date], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_cursor(text: str) -> tuple[str, str]:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    sku, date = json.loads(raw)
    if not isinstance(sku, str) or not isinstance(date, str):
        raise ValueError("not a (sku_id, date) pair")
    return sku, date


def encode_page(items: list[dict], next_cursor: str | None) -> bytes:
    # serde_json writes compact JSON and leaves non-ASCII unescaped.
    return json.dumps({"items": items, "next_cursor": next_cursor},
                      separators=(",", ":"), ensure_ascii=False).encode()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).digest()[:16].hex() + '"'


def reference_page(sku_index: int, first_day: int, last_day: int, show_manual: bool,
                   limit: int) -> bytes:
    """The page of one SKU over days [first_day, last_day] of the untouched data set."""
    sku = sku_name(sku_index)
    days = range(first_day, last_day + 1)
    items = [row(sku, (FIRST_DAY + dt.timedelta(days=d)).isoformat(), draft_units(sku_index, d),
                 None, show_manual) for d in days[:limit]]
    cursor = encode_cursor(items[-1]["sku_id"], items[-1]["date"]) if len(days) > limit else None
    return encode_page(items, cursor)
