"""Salesforce's fields and records: describe types, the walk's SOQL (keyset on
SystemModstamp, Id) and the record mapping."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...countries import country_code
from ..base import Field, Record, parse_time

GROUPS = {"Contact": "Contacts", "Lead": "Leads"}
COUNTRY_FIELD = {"Contact": "MailingCountry", "Lead": "Country"}
# Fetched on every walk when the org has them; custom fields (__c) are added from describe.
CORE_FIELDS = (
    "Id", "SystemModstamp", "FirstName", "LastName", "Email", "Phone", "LeadSource",
    "HasOptedOutOfEmail", "DoNotCall", "LastModifiedDate", "CreatedDate", "Description",
)
UNSELECTABLE_TYPES = frozenset({"address", "location", "base64"})
FIELD_TYPE = {
    "string": "text", "textarea": "textarea", "email": "email", "phone": "phone",
    "url": "url", "boolean": "boolean", "date": "date", "datetime": "datetime",
    "int": "number", "long": "number", "double": "number", "percent": "number",
    "currency": "number", "picklist": "choice", "combobox": "choice",
    "multipicklist": "multi_choice", "id": "text",
}
BATCH_MIN, BATCH_MAX = 200, 2000



def soql_datetime(value: datetime) -> str:
    """An unquoted SOQL dateTime literal, floored to the second (the safe side)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal (backslash escapes, no raw line breaks)."""
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f"'{escaped}'"


def build_soql(
    obj: str, select: list[str], *, since: datetime | None = None,
    after: Mapping[str, str] | None = None, lead_source: str | None = None,
) -> str:
    """The walk's query: changed since `since`, after the keyset `after`, oldest first."""
    where = []
    if since is not None:
        where.append(f"SystemModstamp >= {soql_datetime(since)}")
    if after:
        t = soql_datetime(parse_time(after["t"]))  # type: ignore[arg-type]
        where.append(f"(SystemModstamp > {t} OR (SystemModstamp = {t} AND "
                     f"Id > {soql_string(after['id'])}))")
    if obj == "Lead":
        where.append("IsConverted = false")
    if lead_source is not None:
        where.append(f"LeadSource = {soql_string(lead_source)}")
    query = f"SELECT {','.join(select)} FROM {obj}"
    if where:
        query += " WHERE " + " AND ".join(where)
    return query + " ORDER BY SystemModstamp ASC, Id ASC"



def field(name: str, f: dict[str, Any]) -> Field:
    """A describe entry as a Field (country codes typed as countries)."""
    ftype = "country" if name.endswith("CountryCode") else FIELD_TYPE.get(f.get("type", ""),
                                                                          "other")
    allowed = tuple(p["value"] for p in f.get("picklistValues") or [] if p.get("active", True))
    return Field(name, f.get("label") or name, ftype, bool(f.get("custom")), allowed)


def record(obj: str, raw: dict[str, Any]) -> Record:
    """One SOQL row as a Record (opt-out flag as consent). Takes the decoded row over as the
    record's fields (no copy of every row of a 2,000-row page)."""
    values = raw
    values.pop("attributes", None)
    rid = str(values.pop("Id"))
    country_field = COUNTRY_FIELD[obj]
    country = country_code(values.get(f"{country_field}Code")) or country_code(
        values.get(country_field))
    return Record(
        source_id=rid,
        email=values.pop("Email", None),
        first_name=values.pop("FirstName", None),
        last_name=values.pop("LastName", None),
        phone=values.pop("Phone", None),
        country=country,
        consent="opted_out" if values.get("HasOptedOutOfEmail") is True else "unknown",
        consent_at=None,  # Salesforce keeps no timestamp of the opt-out flag
        updated_at=parse_time(values.get("SystemModstamp")),
        fields=values,
    )
