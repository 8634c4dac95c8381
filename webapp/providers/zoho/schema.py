"""Zoho CRM's fields and records: field types, what cannot be fetched, the record
mapping, and the walk's position (page numbers, page tokens, keyset restarts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...countries import country_code
from ..base import ConfigurationError, Field, Record, iso, parse_time

DISCRETE_LIMIT = 2000
# Answers after which the walk restarts from its last Modified_Time instead of the token.
RESTART_CODES = frozenset({
    "EXPIRED_VALUE", "TOKEN_BOUND_DATA_MISMATCH", "LIMIT_REACHED",
    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
})
UNFETCHABLE_TYPES = frozenset({"subform", "multiselectlookup", "profileimage", "fileupload",
                               "imageupload"})
TYPE_MAP = {
    "text": "text", "textarea": "textarea", "email": "email", "phone": "phone",
    "picklist": "choice", "multiselectpicklist": "multi_choice", "boolean": "boolean",
    "date": "date", "datetime": "datetime", "integer": "number", "bigint": "number",
    "double": "number", "decimal": "number", "currency": "number", "percent": "number",
    "autonumber": "text", "website": "url",
}
CORE_FIELDS = ("Modified_Time", "Email", "First_Name", "Last_Name", "Phone", "Mobile",
               "Mailing_Country", "Country", "Email_Opt_Out")


def field(f: dict[str, Any]) -> Field:
    """A Zoho field's metadata as a Field (picklist values without "-None-")."""
    api, dtype = f["api_name"], str(f.get("data_type", ""))
    kind = "country" if api.endswith("Country") else TYPE_MAP.get(dtype, "other")
    values = tuple(
        str(v.get("actual_value") or v.get("display_value"))
        for v in f.get("pick_list_values") or []
        if (v.get("actual_value") or v.get("display_value")) not in (None, "-None-")
    )
    return Field(api, str(f.get("field_label") or api), kind, bool(f.get("custom_field")),
                 values)


def record(row: dict[str, Any]) -> Record:
    """One Zoho row (its field batches merged) as a Record."""
    opted_out = row.get("Email_Opt_Out") is True
    return Record(
        source_id=str(row["id"]),
        email=row.get("Email"),
        first_name=row.get("First_Name"),
        last_name=row.get("Last_Name"),
        phone=row.get("Phone") or row.get("Mobile"),
        country=country_code(row.get("Mailing_Country", row.get("Country"))),
        consent="opted_out" if opted_out else "unknown",
        consent_at=None,  # Zoho keeps no timestamp for the opt-out flag
        updated_at=parse_time(row.get("Modified_Time")),
        fields={k: v for k, v in row.items()
                if k not in ("id", "Email", "First_Name", "Last_Name", "Phone")},
    )


@dataclass
class Walk:
    """Where a walk stands; `cursor()` serialises it, `start()` resumes from one."""

    group: str
    source: str
    since: datetime | None  # the caller's inclusive lower bound
    mode: str = "page"  # page | token | done ("restart" is page 1 from last_modified)
    page: int = 1
    tokens: list[str | None] | None = None
    query_since: str | None = None  # If-Modified-Since of the current request sequence
    last_modified: datetime | None = None
    last_ids: list[str] | None = None
    high_water: datetime | None = None

    @classmethod
    def start(cls, group: str, source: str, since: datetime | None,
              cursor: dict[str, Any] | None) -> Walk:
        if not cursor:
            return cls(group, source, since, query_since=iso(since) if since else None)
        if cursor.get("group") != group or cursor.get("source") != source:
            raise ConfigurationError("The saved position belongs to another Zoho import.")
        return cls(
            group, source, parse_time(cursor.get("since")) or since,
            mode=cursor.get("mode", "page"), page=int(cursor.get("page") or 1),
            tokens=cursor.get("tokens"), query_since=cursor.get("query_since"),
            last_modified=parse_time(cursor.get("last_modified")),
            last_ids=list(cursor.get("last_ids") or []),
            high_water=parse_time(cursor.get("high_water")),
        )

    def cursor(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {"v": 1, "group": self.group, "source": self.source, "mode": self.mode,
                "page": self.page, "tokens": self.tokens, "query_since": self.query_since,
                "since": iso(self.since), "last_modified": iso(self.last_modified),
                "last_ids": self.last_ids or [], "high_water": iso(self.high_water)}

    def skip(self, rec: Record) -> bool:
        """Already yielded at the boundary second, or older than the caller's `since`."""
        at = rec.updated_at
        if at is None:
            return False
        if self.since and at < self.since:
            return True
        return bool(self.last_modified and at == self.last_modified
                    and rec.source_id in (self.last_ids or ()))

    def note(self, rec: Record) -> None:
        at = rec.updated_at
        if at is None:
            return
        if self.last_modified is None or at > self.last_modified:
            self.last_modified, self.last_ids = at, [rec.source_id]
        elif at == self.last_modified:
            self.last_ids = [*(self.last_ids or []), rec.source_id]
        if self.high_water is None or at > self.high_water:
            self.high_water = at

    def advance(self, info: dict[str, Any], per_page: int, n_batches: int) -> None:
        tokens = info.get("tokens") or []
        if not info.get("more_records"):
            self.mode, self.tokens = "done", None
        elif self.mode == "page" and (self.page + 1) * per_page <= DISCRETE_LIMIT:
            self.page += 1
        elif len(tokens) == n_batches and all(tokens):
            self.mode, self.tokens = "token", tokens
        else:
            self.restart()

    def restart(self) -> None:
        """A fresh request sequence from the last Modified_Time (inclusive), page 1."""
        start = self.last_modified or self.since
        self.mode, self.page, self.tokens = "page", 1, None
        self.query_since = iso(start) if start else None
