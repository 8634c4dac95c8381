"""Workspace settings form: validate every input, report each error next to its input."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import available_timezones

from ..customfields import CURRENCIES
from ..extensions import db
from ..models import WorkspaceSettings


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def currencies() -> list[str]:
    return sorted(CURRENCIES)


def validate(form) -> tuple[dict, dict[str, str]]:
    """Cleaned values and errors (input name -> message) from the settings form."""
    values: dict = {}
    errors: dict[str, str] = {}
    name = " ".join((form.get("name") or "").split())
    if not name or len(name) > 120:
        errors["name"] = "Give the workspace a name of at most 120 characters."
    values["name"] = name
    raw_limit = (form.get("subscriber_limit") or "").strip().replace(",", "")
    if raw_limit.isdigit() and int(raw_limit) <= 100_000_000:
        values["subscriber_limit"] = int(raw_limit)
    else:
        errors["subscriber_limit"] = "The limit is a whole number of contacts, 0 or more."
    raw_price = (form.get("extension_price") or "").strip()
    try:
        price = Decimal(raw_price)
        if not price.is_finite() or price < 0 or price >= Decimal("100000000"):
            raise InvalidOperation
        values["extension_price"] = price.quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        errors["extension_price"] = "The price is an amount such as 15 or 12.50, 0 or more."
    currency = (form.get("currency") or "").strip().upper()
    if currency not in CURRENCIES:
        errors["currency"] = "Pick an ISO 4217 currency code such as USD or EUR."
    values["currency"] = currency
    zone = (form.get("time_zone") or "").strip()
    if zone not in time_zones():
        errors["time_zone"] = "Pick a time zone from the list, e.g. Europe/Berlin."
    values["time_zone"] = zone
    return values, errors


def save(values: dict) -> WorkspaceSettings:
    row = WorkspaceSettings.get()
    for key, value in values.items():
        setattr(row, key, value)
    db.session.commit()
    return row
