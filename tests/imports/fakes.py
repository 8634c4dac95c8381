"""An in-process provider implementing the protocol, for fast engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from webapp.providers.base import Page, Record, SchemaError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(i: int | str, email: str | None, *, first: str | None = None, last: str | None = None,
        consent: str = "unknown", at: datetime | None = None, **fields: Any) -> Record:
    """A Record with a stable updated_at (T0 + i seconds when i is an int)."""
    when = at or (T0 + timedelta(seconds=int(i))) if str(i).isdigit() else (at or T0)
    return Record(source_id=str(i), email=email, first_name=first, last_name=last,
                  consent=consent, updated_at=when, fields=dict(fields))


def people(n: int, start: int = 1, domain: str = "example.com", **fields: Any) -> list[Record]:
    return [rec(i, f"person{i}@{domain}", first="Person", last=str(i), **fields)
            for i in range(start, start + n)]


class FakeProvider:
    """Serves `records` in pages of `page_size`; the cursor is {"offset": n}.

    `fail_at` maps a page index (0-based, within one walk) to an exception raised instead
    of yielding that page. `known_fields` (when set) makes unknown requested fields raise
    SchemaError, like a source whose field was deleted."""

    name = "fake"
    label = "Fake"

    def __init__(self, records: list[Record], page_size: int = 3, *,
                 fail_at: dict[int, Exception] | None = None,
                 known_fields: set[str] | None = None):
        self.records = list(records)
        self.page_size = page_size
        self.fail_at = dict(fail_at or {})
        self.known_fields = known_fields
        self.credentials: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []
        self.pages_served = 0

    def __call__(self, integration, **kwargs):  # usable as a provider_factory
        self.factory_kwargs = kwargs
        return self

    def iter_pages(self, group: str, source: str, *, since: datetime | None = None,
                   cursor: dict[str, Any] | None = None,
                   fields: list[str] | None = None) -> Iterator[Page]:
        self.calls.append({"since": since, "cursor": cursor, "fields": fields})
        if fields and self.known_fields is not None:
            missing = tuple(f for f in fields if f not in self.known_fields)
            if missing:
                raise SchemaError("gone: " + ", ".join(missing), missing=missing)
        chosen = [r for r in self.records if since is None or r.updated_at >= since]
        offset = int((cursor or {}).get("offset", 0))
        high = None
        for r in chosen[:offset]:
            high = r.updated_at if high is None or r.updated_at > high else high
        index = 0
        while True:
            if index in self.fail_at:
                raise self.fail_at.pop(index)
            chunk = chosen[offset:offset + self.page_size]
            offset += len(chunk)
            for r in chunk:
                high = r.updated_at if high is None or r.updated_at > high else high
            done = offset >= len(chosen)
            self.pages_served += 1
            yield Page(chunk, {"offset": offset}, high, done=done)
            index += 1
            if done:
                return
