"""Intake: turn an authenticated delivery into rows of `plugin_events` and commit them in
one INSERT … ON CONFLICT DO NOTHING (duplicates by `(source_id, dedup_key)` are acknowledged
and not stored again), then nudge the workers. Nothing is stored half: a refused event
refuses its whole request."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text, update

from ..extensions import db
from ..models.base import utcnow
from ..models.plugins import PluginEvent, PluginSource
from ..prepared import prepared
from . import kinds

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 500
MAX_WEBHOOK_BYTES = 1024 * 1024  # Shopify and WooCommerce bodies (orders can be large)
MAX_DEPTH = 32
SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")
OBJECT_FIELDS = ("traits", "properties", "context", "integrations")


CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 413: "too_large", 500: "error"}


class Refused(Exception):
    """A request refused with `status` and a JSON error naming the limit or the field."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict:
        """Segment's error shape (`code`, `message`) plus `error` and the `field` at fault."""
        out: dict[str, Any] = {"success": False, "code": CODES.get(self.status, "error"),
                               "message": self.message, "error": self.message}
        if self.field:
            out["field"] = self.field
        return out


# ------------------------------------------------------------------------ raw body


def read_capped(stream, content_length: int | None, cap: int, what: str) -> bytes:
    """Read at most `cap` bytes; more (announced or sent) is a 413 naming the limit."""
    if content_length is not None and content_length > cap:
        raise Refused(413, f"Too large: the limit is {_size(cap)} {what}.")
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise Refused(413, f"Too large: the limit is {_size(cap)} {what}.")
    return data


def inflate(raw: bytes, cap: int, what: str) -> bytes:
    """A gzip body (Segment libraries' `gzip=True`) unpacked to at most `cap` bytes, so a
    small bomb cannot grow past the limit."""
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = unpacker.decompress(raw, cap + 1)
    except zlib.error:
        raise Refused(400, "The body is not valid gzip.", "body") from None
    if len(data) > cap or unpacker.unconsumed_tail:
        raise Refused(413, f"Too large: the limit is {_size(cap)} {what}.")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def decode_json(raw: bytes, field: str = "body") -> Any:
    """UTF-8 JSON or a 400 saying so (invalid UTF-8, bad JSON, nested too deep)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "The body is not valid UTF-8.", field) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise Refused(400, "The JSON is nested too deeply.", field) from None
    except ValueError:
        raise Refused(400, "The body is not valid JSON.", field) from None
    if _depth(value) > MAX_DEPTH:
        raise Refused(400, f"The JSON is nested deeper than {MAX_DEPTH} levels.", field)
    return value


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a hostile body cannot blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _storable(value: str) -> bool:
    """Text PostgreSQL and SQLite both store: no NUL, no lone surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, field: str, limit: int = 200, *, required: bool = False) -> str | None:
    """An optional short string field (numbers accepted, as Segment does for ids)."""
    if value is None or value == "":
        if required:
            raise Refused(400, f"{field} is required.", field)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refused(400, f"{field} must be a string.", field)
    text = str(value)
    if len(text) > limit:
        raise Refused(400, f"{field} is longer than {limit} characters.", field)
    if not _storable(text):
        raise Refused(400, f"{field} contains characters that cannot be stored.", field)
    return text


def _time(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise Refused(400, f"{field} must be an ISO 8601 date-time.", field)
    parsed = parse_time(value)
    if parsed is None:
        raise Refused(400, f"{field} must be an ISO 8601 date-time.", field)
    return parsed


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (a trailing Z allowed); without an offset it is UTC. None when unreadable."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not datetime(1970, 1, 1, tzinfo=UTC) <= parsed <= datetime(9999, 1, 1, tzinfo=UTC):
        return None
    return parsed.astimezone(UTC)


def normalize_email(value: Any) -> str | None:
    """Trimmed, lower-cased; validation is the processor's (a bad one is rejected there
    with its reason, the event kept). None when absent, not text or unstorable."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not email or len(email) > 254 or not _storable(email):
        return None
    return email


def _dig(payload: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------- tracking API (Segment)


def segment_rows(source_id: int, channel: str, events: list, *, browser: bool = False,
                 forced_type: str | None = None, prefix: str = "batch") -> list[dict]:
    """Validate Segment events and build their rows. `browser`: the public key, which may
    send only page, identify and the browser track events (else 403)."""
    if not isinstance(events, list):
        raise Refused(400, f"{prefix} must be an array of events.", prefix)
    if len(events) > MAX_BATCH_EVENTS:
        raise Refused(413, f"Too many events: the limit is {MAX_BATCH_EVENTS} per batch.",
                      prefix)
    if not events:
        raise Refused(400, f"{prefix} holds no events.", prefix)
    rows = []
    now = utcnow()
    for n, event in enumerate(events):
        where = f"{prefix}[{n}]" if forced_type is None else "body"
        rows.append(_segment_row(source_id, channel, event, where, browser, forced_type, now))
    return rows


def _segment_row(source_id, channel, event, where, browser, forced_type, now) -> dict:
    if not isinstance(event, dict):
        raise Refused(400, f"{where} must be an object.", where)
    body = _compact(event)
    if len(body.encode("utf-8", "replace")) > MAX_EVENT_BYTES:
        raise Refused(413, f"Too large: the limit is 32 KB per event ({where}).", where)
    if not _storable(body):
        raise Refused(400, f"{where} contains characters that cannot be stored.", where)
    field = f"{where}.type"
    event_type = forced_type or _text(event.get("type"), field, 20, required=True)
    if event_type not in SEGMENT_TYPES:
        raise Refused(400, f"{field} must be one of {', '.join(SEGMENT_TYPES)}.", field)
    for name in OBJECT_FIELDS:
        if event.get(name) is not None and not isinstance(event.get(name), dict):
            raise Refused(400, f"{where}.{name} must be an object.", f"{where}.{name}")
    name = ""
    if event_type == "track":
        name = _text(event.get("event"), f"{where}.event", required=True) or ""
    elif event_type in ("page", "screen"):
        name = _text(event.get("name"), f"{where}.name") or ""
    user_id = _text(event.get("userId"), f"{where}.userId")
    anonymous_id = _text(event.get("anonymousId"), f"{where}.anonymousId")
    if user_id is None and anonymous_id is None:
        raise Refused(400, f"{where} needs a userId or an anonymousId.", f"{where}.userId")
    if browser and not kinds.browser_allowed(event_type, name):
        raise Refused(403, f"The browser key cannot send {event_type} {name!r}: use the "
                           "server key.".replace(" ''", ""), f"{where}.type")
    message_id = _text(event.get("messageId"), f"{where}.messageId")
    dedup = message_id or "sha256:" + hashlib.sha256(
        json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()
    occurred = _time(event.get("timestamp"), f"{where}.timestamp")
    email = None
    for path in (("traits", "email"), ("context", "traits", "email"), ("properties", "email")):
        raw = _dig(event, *path)
        if raw is not None:
            if not isinstance(raw, str):
                field = f"{where}.{'.'.join(path)}"
                raise Refused(400, f"{field} must be a string.", field)
            email = normalize_email(raw)
            if email is None and raw.strip():
                field = f"{where}.{'.'.join(path)}"
                raise Refused(400, f"{field} is not an email address that can be stored.",
                              field)
            break
    return {
        "source_id": source_id, "channel": channel, "topic": event_type,
        "kind": kinds.segment_kind(event_type, name), "name": name, "dedup_key": dedup,
        "body": body, "email_norm": email, "anonymous_id": anonymous_id, "user_id": user_id,
        "occurred_at": occurred or now, "received_at": now,
    }


# ---------------------------------------------------------------------- webhooks


def _clean_or_none(value: Any, limit: int = 200) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if len(text) <= limit and _storable(text) else None


def shopify_row(source_id: int, headers, body_text: str, payload: Any) -> dict:
    """The row of one Shopify delivery; de-duplicated on its event id (else webhook id)."""
    topic = _clean_or_none(headers.get("X-Shopify-Topic"), 64) or ""
    if not topic:
        raise Refused(400, "X-Shopify-Topic is missing.", "X-Shopify-Topic")
    if not isinstance(payload, dict):  # every Shopify topic sends one JSON object
        raise Refused(400, "The body must be a JSON object.", "body")
    dedup = (_clean_or_none(headers.get("X-Shopify-Event-Id"))
             or _clean_or_none(headers.get("X-Shopify-Webhook-Id")))
    if not dedup:
        raise Refused(400, "X-Shopify-Webhook-Id is missing.", "X-Shopify-Webhook-Id")
    now = utcnow()
    occurred = (parse_time(headers.get("X-Shopify-Triggered-At"))
                or parse_time(_dig(payload, "updated_at")) or now)
    email = normalize_email(_dig(payload, "email")) or normalize_email(
        _dig(payload, "customer", "email"))
    customer_id = _dig(payload, "customer", "id") if topic.startswith(
        ("orders/", "refunds/", "checkouts/")) else _dig(payload, "id")
    if topic.startswith("customers/") and topic not in ("customers/create", "customers/update"):
        customer_id = _dig(payload, "customer", "id") or _dig(payload, "customer_id")
    return {
        "source_id": source_id, "channel": "shopify", "topic": topic,
        "kind": kinds.shopify_kind(topic), "name": "", "dedup_key": f"shopify:{dedup}",
        "body": body_text, "email_norm": email, "anonymous_id": None,
        "user_id": _clean_or_none(customer_id), "occurred_at": occurred, "received_at": now,
    }


def woocommerce_row(source_id: int, headers, body_text: str, payload: Any) -> dict:
    """The row of one WooCommerce delivery; de-duplicated on resource, id and modification
    time (the delivery id collides within a second, so it is never the key)."""
    topic = _clean_or_none(headers.get("X-WC-Webhook-Topic"), 64) or ""
    if not topic or not isinstance(payload, dict):
        raise Refused(400, "X-WC-Webhook-Topic and a JSON object body are needed.",
                      "X-WC-Webhook-Topic")
    resource = (_clean_or_none(headers.get("X-WC-Webhook-Resource"), 40)
                or topic.partition(".")[0])
    resource_id = _clean_or_none(payload.get("id"))
    modified = _clean_or_none(payload.get("date_modified_gmt"), 40) or ""
    if resource_id is None:
        raise Refused(400, "The body has no id.", "id")
    now = utcnow()
    email = normalize_email(payload.get("email")) or normalize_email(
        _dig(payload, "billing", "email"))
    customer = payload.get("customer_id") if resource == "order" else payload.get("id")
    return {
        "source_id": source_id, "channel": "woocommerce", "topic": topic,
        "kind": kinds.woocommerce_kind(topic, payload), "name": "",
        "dedup_key": f"{resource}:{resource_id}:{modified}", "body": body_text,
        "email_norm": email, "anonymous_id": None,
        "user_id": _clean_or_none(customer) if customer not in (None, 0, "0") else None,
        "occurred_at": parse_time(modified) or now, "received_at": now,
    }


# ------------------------------------------------------------------------ storing


# Row counts an INSERT is built for: a request's rows are padded with copies of its last
# row (skipped by ON CONFLICT, so not counted as new) up to the next size, so a process
# keeps at most ten statements however its batches vary.
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, MAX_BATCH_EVENTS)
_TOUCHED: dict[tuple[str, int], float] = {}  # (what, id) -> when this process last wrote it
TOUCH_EVERY = 30.0
COLUMNS = ("source_id", "channel", "topic", "kind", "name", "dedup_key", "body", "email_norm",
           "anonymous_id", "user_id", "occurred_at", "received_at", "status", "attempts",
           "verdict", "error")


def _insert(n: int):
    """INSERT … VALUES (n rows) ON CONFLICT (source_id, dedup_key) DO NOTHING RETURNING id,
    a typed text statement (compiled once per size by `prepared`: the dialects' insert()
    constructs are not cacheable, and compiling one per request cost more than the write)."""
    table = PluginEvent.__table__
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in COLUMNS) + ")" for i in range(n))
    stmt = text(f"INSERT INTO plugin_events ({', '.join(COLUMNS)}) VALUES {values} "
                "ON CONFLICT (source_id, dedup_key) DO NOTHING RETURNING id")
    return stmt.bindparams(*(bindparam(f"{c}_{i}", type_=table.c[c].type)
                             for i in range(n) for c in COLUMNS))


def _due(what: str, row_id: int) -> bool:
    """Write a "last seen" time at most every TOUCH_EVERY seconds per process: one hot row
    updated on every request would serialize the writers."""
    now = time.monotonic()
    if now - _TOUCHED.get((what, row_id), -TOUCH_EVERY) < TOUCH_EVERY:
        return False
    _TOUCHED[(what, row_id)] = now
    return True


def store(source_id: int, rows: list[dict], key_id: int | None = None) -> int:
    """Commit the rows (duplicates skipped) in one transaction, then nudge the workers.
    Returns how many were new. Acknowledge only after this returned."""
    unique: dict[str, dict] = {}
    for row in rows:
        unique.setdefault(row["dedup_key"], {**row, "status": "pending", "attempts": 0,
                                             "verdict": {}, "error": ""})
    batch = list(unique.values())
    n = next(size for size in SIZES if size >= len(batch))
    batch += batch[-1:] * (n - len(batch))
    params = {f"{c}_{i}": row[c] for i, row in enumerate(batch) for c in COLUMNS}
    connection = db.session.connection()
    new = len(prepared(f"plugin events insert {n}", lambda: _insert(n), connection)
              .run(connection, params).all())
    now = utcnow()
    if new and _due("source", source_id):
        db.session.execute(
            update(PluginSource).where(PluginSource.id == source_id)
            .values(last_event_at=now).execution_options(synchronize_session=False))
    if key_id is not None and _due("key", key_id):
        from .keys import touch

        touch(key_id)
    db.session.commit()
    if new:
        from .nudge import nudge

        nudge()
    return new


def count_bad_signature(source_id: int) -> None:
    """A refused signature: counted on the source (shown on its page), nothing stored; a
    count in Redis, not a database write per refused request (see refusals.py)."""
    from . import refusals

    refusals.count(source_id)
