"""Magento's customer attributes and records: search criteria, field types, option
labels, the default address and the newsletter consent state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..base import Field, Record, parse_time

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
GROUP = "customers"

# Attributes that are internal bookkeeping, never useful to import.
_INTERNAL = frozenset({
    "password_hash", "rp_token", "rp_token_created_at", "confirmation", "lock_expires",
    "failures_num", "first_failure", "default_billing", "default_shipping",
})
# Customer keys mapped onto Record attributes rather than `fields`.
_RECORD_KEYS = frozenset({
    "id", "email", "firstname", "lastname", "updated_at", "addresses", "custom_attributes",
    "extension_attributes",
})
# Fields the client adds from the default address and extension attributes.
_VIRTUAL_FIELDS = (
    Field("telephone", "Phone (default address)", "phone"),
    Field("country_id", "Country (default address)", "country"),
    Field("city", "City (default address)", "text"),
    Field("postcode", "Postcode (default address)", "text"),
    Field("is_subscribed", "Newsletter subscribed", "boolean"),
)
_ADDRESS_FIELDS = ("city", "postcode")
_INPUT_TYPES = {
    "text": "text", "textarea": "textarea", "multiline": "textarea", "select": "choice",
    "multiselect": "multi_choice", "boolean": "boolean", "date": "date",
    "datetime": "datetime", "hidden": "other", "file": "other", "image": "other",
}


def format_time(value: datetime) -> str:
    """An aware (or naive-as-UTC) datetime in Magento's filter format, whole seconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(TIME_FORMAT)


def criteria(
    groups: list[list[tuple[str, str, str]]],
    sorts: list[tuple[str, str]],
    page_size: int,
    page: int = 1,
) -> list[tuple[str, str]]:
    """searchCriteria query params: filters in one group OR, groups AND."""
    out: list[tuple[str, str]] = []
    for g, filters in enumerate(groups):
        for f, (field, condition, value) in enumerate(filters):
            key = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            out += [(f"{key}[field]", field), (f"{key}[value]", value),
                    (f"{key}[condition_type]", condition)]
    for s, (field, direction) in enumerate(sorts):
        out += [(f"searchCriteria[sortOrders][{s}][field]", field),
                (f"searchCriteria[sortOrders][{s}][direction]", direction)]
    out += [("searchCriteria[pageSize]", str(page_size)),
            ("searchCriteria[currentPage]", str(page))]
    return out


def field_type(attr: dict[str, Any]) -> str:
    """The normalised type of a customer attribute (dates, email, url, numbers…)."""
    code = attr.get("attribute_code")
    if code in ("created_at", "updated_at"):
        return "datetime"
    rules = {str(r.get("value")) for r in attr.get("validation_rules") or []
             if isinstance(r, dict)}
    if code == "email" or "email" in rules:
        return "email"
    if "url" in rules:
        return "url"
    kind = _INPUT_TYPES.get(str(attr.get("frontend_input")), "other")
    if kind == "text" and attr.get("backend_type") in ("decimal", "int"):
        return "number"
    return kind


def field(attr: dict[str, Any]) -> Field | None:
    """A customer attribute as a Field; None for internal and hidden attributes."""
    code = attr.get("attribute_code")
    if not code or code in _INTERNAL or attr.get("frontend_input") == "hidden":
        return None
    options = tuple(
        str(o.get("label")).strip() for o in attr.get("options") or []
        if str(o.get("value", "")).strip() and str(o.get("label", "")).strip()
    )
    return Field(name=code, label=str(attr.get("frontend_label") or attr.get("store_label")
                                      or code),
                 type=field_type(attr), custom=bool(attr.get("user_defined")),
                 allowed_values=options)


def options(meta: list[dict[str, Any]]) -> dict[str, Any]:
    """Attribute codes, their inputs and option id -> label maps from the metadata."""
    labels: dict[str, dict[str, str]] = {}
    inputs: dict[str, str] = {}
    for attr in meta:
        code = attr.get("attribute_code")
        if not code:
            continue
        inputs[code] = str(attr.get("frontend_input"))
        by_id = {str(o.get("value")): str(o.get("label")).strip()
                 for o in attr.get("options") or [] if str(o.get("value", "")).strip()}
        if by_id:
            labels[code] = by_id
    return {"names": [a.get("attribute_code") for a in meta if a.get("attribute_code")],
            "labels": labels, "inputs": inputs}


def option_value(code: str, raw: Any, opts: dict[str, Any]) -> Any:
    """Select option ids as labels (multiselect: a list of labels)."""
    labels = opts["labels"].get(code)
    if not labels or raw is None:
        return raw
    if opts["inputs"].get(code) == "multiselect":
        ids = [v.strip() for v in str(raw).split(",") if v.strip()]
        return [labels.get(v, v) for v in ids]
    text = str(raw)
    if text in ("", "0") and text not in labels:
        return None
    return labels.get(text, raw)


def record(item: dict[str, Any], opts: dict[str, Any]) -> Record:
    """One customer of a search answer as a Record."""
    fields: dict[str, Any] = {}
    for key, raw in item.items():
        if key in _RECORD_KEYS or key in _INTERNAL:
            continue
        # ids (group_id, website_id, store_id) stay ids: sources refer to them
        fields[key] = raw if key.endswith("_id") else option_value(key, raw, opts)
    for attr in item.get("custom_attributes") or []:
        if isinstance(attr, dict) and attr.get("attribute_code"):
            code = attr["attribute_code"]
            fields[code] = option_value(code, attr.get("value"), opts)
    address = default_address(item)
    for key in _ADDRESS_FIELDS:
        if address.get(key):
            fields[key] = address[key]
    ext = item.get("extension_attributes") or {}
    subscribed = ext.get("is_subscribed") if isinstance(ext, dict) else None
    if subscribed is not None:
        fields["is_subscribed"] = bool(subscribed)
    country = address.get("country_id")
    return Record(
        source_id=str(item.get("id")),
        email=item.get("email"),
        first_name=item.get("firstname"),
        last_name=item.get("lastname"),
        phone=address.get("telephone") or None,
        country=country.upper() if isinstance(country, str) and country else None,
        # Magento cannot say "opted out": is_subscribed false is "not subscribed" (after
        # true, consent withdrawn); absent (2.3 search results) is unknown.
        consent=consent(subscribed),
        consent_at=None,
        updated_at=parse_time(item.get("updated_at")),
        fields=fields,
    )


def default_address(item: dict[str, Any]) -> dict[str, Any]:
    """The default billing address, else the first one."""
    addresses = [a for a in item.get("addresses") or [] if isinstance(a, dict)]
    for a in addresses:
        if a.get("default_billing") or str(a.get("id")) == str(item.get("default_billing")):
            return a
    return addresses[0] if addresses else {}


def consent(subscribed: Any) -> str:
    """extension_attributes.is_subscribed as a consent state."""
    if subscribed is None:
        return "unknown"
    return "subscribed" if subscribed is True or subscribed in (1, "1", "true") else \
        "not_subscribed"

