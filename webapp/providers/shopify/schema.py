"""Shopify's customer fields: the standard REST fields, metafield types and the record
mapping (consent states included)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from ..base import Field, Record, iso, parse_time

CONSENT = {
    "subscribed": "subscribed",
    "unsubscribed": "opted_out",
    "redacted": "opted_out",
    "invalid": "opted_out",
    "pending": "unknown",  # double opt-in not confirmed yet
    # Said explicitly: after "subscribed" it means consent was withdrawn.
    "not_subscribed": "not_subscribed",
}

# Standard REST customer fields offered for mapping (nested ones by dotted path).
STANDARD_FIELDS = (
    Field("email", "Email", "email"),
    Field("first_name", "First name"),
    Field("last_name", "Last name"),
    Field("phone", "Phone", "phone"),
    Field("tags", "Tags", "multi_choice"),
    Field("note", "Note", "textarea"),
    Field("state", "Account state", "choice",
          allowed_values=("disabled", "invited", "enabled", "declined")),
    Field("verified_email", "Verified email", "boolean"),
    Field("tax_exempt", "Tax exempt", "boolean"),
    Field("currency", "Currency", "currency"),
    Field("orders_count", "Orders count", "number"),
    Field("total_spent", "Total spent", "number"),
    Field("created_at", "Created at", "datetime"),
    Field("updated_at", "Updated at", "datetime"),
    Field("email_marketing_consent.state", "Email marketing consent", "choice",
          allowed_values=tuple(CONSENT)),
    Field("email_marketing_consent.opt_in_level", "Opt-in level", "choice",
          allowed_values=("single_opt_in", "confirmed_opt_in", "unknown")),
    Field("email_marketing_consent.consent_updated_at", "Consent updated at", "datetime"),
    Field("default_address.company", "Company"),
    Field("default_address.address1", "Address line 1"),
    Field("default_address.address2", "Address line 2"),
    Field("default_address.city", "City"),
    Field("default_address.province", "Province"),
    Field("default_address.zip", "Postal code"),
    Field("default_address.country_code", "Country", "country"),
    Field("default_address.phone", "Address phone", "phone"),
)
_STANDARD_NAMES = frozenset(f.name for f in STANDARD_FIELDS)

# Metafield type -> (normalised field type, python converter of the string value).
METAFIELD_TYPES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "single_line_text_field": ("text", str),
    "multi_line_text_field": ("textarea", str),
    "rich_text_field": ("textarea", str),
    "date": ("date", str),
    "date_time": ("datetime", str),
    "number_integer": ("number", int),
    "number_decimal": ("number", float),
    "boolean": ("boolean", lambda v: v == "true"),
    "url": ("url", str),
    "email": ("email", str),
    "list.single_line_text_field": ("multi_choice", json.loads),
}

DEFINITIONS_QUERY = """
query MetafieldDefinitions($after: String) {
  metafieldDefinitions(ownerType: CUSTOMER, first: 250, after: $after) {
    nodes { namespace key name type { name } validations { name value } }
    pageInfo { hasNextPage endCursor }
  }
}"""
TAGS_QUERY = "query CustomerTags { shop { customerTags(first: 250) { edges { node } } } }"


def metafield_field(d: dict) -> Field:
    """A customer metafield definition as a Field (`namespace.key`, choices when given)."""
    type_name = (d.get("type") or {}).get("name", "")
    kind = METAFIELD_TYPES.get(type_name, ("other", str))[0]
    choices: tuple[str, ...] = ()
    for v in d.get("validations") or []:
        if v.get("name") == "choices":
            try:
                choices = tuple(str(x) for x in json.loads(v.get("value") or "[]"))
            except ValueError:
                choices = ()
    if choices and kind == "text":
        kind = "choice"
    return Field(f"{d['namespace']}.{d['key']}", d.get("name") or d["key"], kind, custom=True,
                 allowed_values=choices)


def record(c: dict, metafields: dict[str, Any]) -> Record:
    """One REST customer (plus its metafield values) as a Record."""
    address = c.get("default_address") or {}
    consent = c.get("email_marketing_consent") or {}
    tags = [t.strip() for t in (c.get("tags") or "").split(",") if t.strip()]
    fields: dict[str, Any] = {}
    for f in STANDARD_FIELDS:
        head, _, sub = f.name.partition(".")
        fields[f.name] = (c.get(head) or {}).get(sub) if sub else c.get(head)
    fields["tags"] = tags
    fields.update(metafields)
    return Record(
        source_id=str(c["id"]),
        email=c.get("email"),
        first_name=c.get("first_name"),
        last_name=c.get("last_name"),
        phone=c.get("phone") or address.get("phone"),
        country=address.get("country_code"),
        consent=CONSENT.get(consent.get("state") or "", "unknown"),
        consent_at=parse_time(consent.get("consent_updated_at")),
        updated_at=parse_time(c.get("updated_at")),
        fields=fields,
    )


def convert(metafield: dict, type_name: str) -> Any:
    """A metafield's string value as its Python type (the raw value when it does not fit)."""
    value = metafield.get("value")
    if value is None:
        return None
    convert = METAFIELD_TYPES.get(metafield.get("type") or type_name, ("other", str))[1]
    try:
        return convert(value)
    except (ValueError, TypeError):
        return value


def server_time(date_header: str) -> datetime | None:
    """The shop's clock from an answer's Date header (when the walk began)."""
    try:
        return parsedate_to_datetime(date_header).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def high_water(high: datetime | None, walk_start: datetime | None) -> datetime | None:
    """The id-ordered walk can pass a record before it changes; if anything changed
    after the walk began, the next run restarts from the walk's start to catch it."""
    if high is None or walk_start is None:
        return high
    start = walk_start - timedelta(seconds=1)
    return start if high > start else high


def walk_cursor(since, last_id, high, walk_start) -> dict[str, Any]:
    """Where an id-ordered walk stands (resumed with since_id)."""
    return {
        "since": iso(since) if since else None,
        "last_id": last_id,
        "high_water": high.isoformat() if high else None,
        "walk_start": walk_start.isoformat() if walk_start else None,
    }
