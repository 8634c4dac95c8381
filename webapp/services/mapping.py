"""The mapping grid's rules: its columns, automatic recognition, type fit, and the guesses
behind an inline custom field. Plain functions over provider Fields and CustomField rows."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..imports.rules import FULL_NAME
from ..providers.base import Field

UNASSIGNED = "?"
_NON_NAME = re.compile(r"[^a-z0-9]+")

# Source types that suit each custom-field type without surprises.
_FITS = {
    "number": {"number"},
    "date": {"date", "datetime"},
    "datetime": {"datetime", "date"},
    "country": {"country"},
    "currency": {"currency"},
    "phone": {"phone"},
    "gender": set(),
    "ip": set(),
    "url": {"url"},
}
_TYPE_WORDS = {
    "number": "numbers", "date": "dates (YYYY-MM-DD)", "datetime": "dates with times",
    "country": "countries", "currency": "ISO currency codes", "phone": "phone numbers",
    "gender": "Male / Female / Prefer not to say", "ip": "IP addresses", "url": "web addresses",
}
# Custom-field type guessed from the source type (an inline "New custom field…").
_GUESS = {
    "number": "number", "date": "date", "datetime": "datetime", "phone": "phone",
    "country": "country", "currency": "currency", "url": "url",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One grid column: a source field (or the virtual Full name)."""

    name: str
    label: str
    type: str
    allowed: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A stable HTML id fragment (source names hold dots, spaces, underscores)."""
        return hashlib.blake2s(self.name.encode(), digest_size=5).hexdigest()


def columns(fields: list[Field]) -> list[Column]:
    """The virtual Full name first, then every source field in the provider's order."""
    cols = [Column(FULL_NAME, "Full name (first + last name)", "text")]
    for f in fields:
        if f.name != FULL_NAME:
            cols.append(Column(f.name, f.label or f.name, f.type, tuple(f.allowed_values)))
    return cols


def normalise_name(raw: str) -> str:
    """A source name or label in custom-field name form: loyalty_tier."""
    name = (raw or "").strip()
    if name.endswith("__c"):  # Salesforce custom field suffix
        name = name[:-3]
    name = _NON_NAME.sub("_", name.lower()).strip("_")
    return name[:64]


def suggested_name(column: Column) -> str:
    """The inline field's prefilled name: the label's normal form (Loyalty tier →
    loyalty_tier), else the source name's."""
    return normalise_name(column.label) or normalise_name(column.name) or "field"


def guess_type(column: Column) -> tuple[str, str, list[str]]:
    """(type, format, allowed values) for a new custom field fed by `column`."""
    if column.type == "textarea":
        return "text", "textarea", []
    if column.type in ("choice", "multi_choice") and len(column.allowed) >= 2:
        fmt = "single_select" if column.type == "choice" else "multi_select"
        return "text", fmt, list(column.allowed)
    return _GUESS.get(column.type, "text"), "text", []


def recognise(cols: list[Column], fields_by_name: dict[str, Any]) -> dict[str, Any]:
    """First-open mapping: the email field → Email, Full name → Name, a source whose name or
    label matches an existing custom field's name → that field; the rest "?"."""
    mapping: dict[str, Any] = {c.name: UNASSIGNED for c in cols}
    email = next((c for c in cols if c.type == "email" and _bare(c.name) == "email"), None)
    email = email or next((c for c in cols if c.type == "email"), None)
    email = email or next((c for c in cols if _bare(c.name) == "email"), None)
    if email is not None:
        mapping[email.name] = "email"
    mapping[FULL_NAME] = "name"
    used: set[int] = set()
    for col in cols:
        if mapping[col.name] != UNASSIGNED:
            continue
        for candidate in (normalise_name(col.name), normalise_name(col.label)):
            field = fields_by_name.get(candidate)
            if field is not None and field.id not in used:
                mapping[col.name] = field.id
                used.add(field.id)
                break
    return mapping


def _bare(name: str) -> str:
    return name.lower().replace("_", "").replace(" ", "")


def type_fit(column: Column, field: Any) -> str | None:
    """A plain-words warning when the source type does not suit the custom field, else None
    (text takes anything; a source picklist into a text field is fine)."""
    if field is None:
        return None
    src = column.type
    if field.format in ("single_select", "radio"):
        if src in ("choice", "text", "boolean"):
            return None
        return (f"{column.label} holds {src.replace('_', ' ')} values; only the field's allowed "
                "values are kept, others are dropped.")
    if field.format in ("multi_select", "checkbox"):
        if src in ("choice", "multi_choice", "text"):
            return None
        return (f"{column.label} holds {src.replace('_', ' ')} values; only the field's allowed "
                "values are kept, others are dropped.")
    if field.type == "text":
        if src == "other":
            return f"{column.label} holds structured values; they are stored as text."
        if src == "multi_choice":
            return f"{column.label} holds several values per person; they are joined as text."
        return None
    fits = _FITS.get(field.type, set())
    if src in fits:
        return None
    return (f"{column.label} is a {src.replace('_', ' ')} field, but {field.name} takes "
            f"{_TYPE_WORDS.get(field.type, field.type)}: values that don't fit are dropped "
            "(the contact is still imported).")


def sample_text(value: Any, limit: int = 80) -> str:
    """A source value as one short line of text for the grid (escaped by the template)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        text = ", ".join(sample_text(v, limit) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {sample_text(v, limit)}" for k, v in value.items())
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------- views and the field filter

VERTICAL_ABOVE = 12  # more source fields than this: one row per field by default
VIEWS = ("list", "grid")


def choose_view(raw: str | None, count: int) -> str:
    """The requested view ("list" or "grid"), else the default for `count` fields: a grid
    of columns fits a few fields, one row per field suits many (as Mailchimp and Klaviyo)."""
    if raw in VIEWS:
        return raw
    return "list" if count > VERTICAL_ABOVE else "grid"


def filter_columns(cols: list[Column], mapping: dict[str, Any], query: str = "",
                   unassigned_only: bool = False) -> list[Column]:
    """The columns whose label or source name holds every word of `query` (any case), and
    only those still marked "?" when `unassigned_only`."""
    words = (query or "").lower().split()
    shown = []
    for col in cols:
        if unassigned_only and mapping.get(col.name, UNASSIGNED) not in (UNASSIGNED, None, ""):
            continue
        text = f"{col.label} {col.name}".lower()
        if all(w in text for w in words):
            shown.append(col)
    return shown


def target_label(target: Any, fields_by_id: dict[int, Any]) -> str:
    """A target in words: Email, Name, or the custom field's name."""
    if target == "email":
        return "Email"
    if target == "name":
        return "Name"
    field = fields_by_id.get(target) if isinstance(target, int) else None
    return field.name if field is not None else "That field"
