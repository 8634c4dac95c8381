"""The import rules that need no database: email checks, the field mapping, value coercion.

Plain functions and small classes, so the pipeline, the preview and the tests share them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email

from ..customfields import TEXT_LIMIT, coerce
from ..providers.base import Record

EMAIL_MAX = 128
FULL_NAME = "Full name"  # the virtual source: first + last name
RESERVED_TARGETS = ("email", "name")

# Source names that mean a Record attribute, compared without case, "_" or spaces
# (Shopify first_name, Zoho First_Name, Magento firstname, Salesforce FirstName).
_ATTRIBUTES = {
    "email": "email", "firstname": "first_name", "lastname": "last_name",
    "phone": "phone", "country": "country",
}

# ASCII dot-atom local part @ a domain: the common case, checked without email-validator's
# full (slow) parse; the domain's verdict is cached. Everything else takes the full path.
_FAST = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([a-z0-9.-]+)"
)


class MappingError(ValueError):
    """The mapping cannot run (email unassigned, a target field gone): plain words."""


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace(" ", "")


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def email_hash(norm: str) -> int:
    """Signed 64-bit hash of a normalised email with its lowest bit clear: the run's
    duplicate memory keeps a per-email flag there (seen.SETTLED)."""
    return int.from_bytes(hashlib.blake2b(norm.encode(), digest_size=8).digest(), "big",
                          signed=True) & ~1


_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f", ""}


def source_flag(value: Any) -> bool | None:
    """A boolean source value (True, "true", 1, "yes"…) as a bool; None when absent or
    not a yes/no value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def record_consent(record: Record, consent_field: str = "") -> str:
    """The record's consent: opted_out, subscribed, not_subscribed (the source says no
    marketing consent) or unknown. `consent_field` is the boolean source field a CRM
    import's team picked as "subscribed to marketing"; an opt-out flag still wins."""
    if record.consent == "opted_out":
        return "opted_out"
    if consent_field:
        flag = source_flag(source_value(record, consent_field))
        if flag is None:
            return "unknown"
        return "subscribed" if flag else "not_subscribed"
    if record.consent in ("subscribed", "not_subscribed"):
        return record.consent
    return "unknown"


@lru_cache(maxsize=4096)
def _domain_problem(domain: str) -> str | None:
    try:
        validate_email("x@" + domain, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def check_email(norm: str) -> tuple[str, str] | None:
    """None when `norm` (normalised) is acceptable, else (reason, detail) with reason
    syntax_error or invalid_domain. No network look-up."""
    if len(norm) > EMAIL_MAX:
        return "syntax_error", f"longer than {EMAIL_MAX} characters"
    match = _FAST.fullmatch(norm)
    if match and len(norm) - len(match.group(1)) - 1 <= 64:
        problem = _domain_problem(match.group(1))
        return None if problem is None else ("invalid_domain", problem)
    try:
        validate_email(norm, check_deliverability=False)
    except EmailNotValidError as exc:
        message = str(exc)
        local, at, domain = norm.rpartition("@")
        if at and local and domain and ("after the @-sign" in message or "domain" in message):
            return "invalid_domain", message
        return "syntax_error", message
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A custom field a source column feeds."""

    name: str
    type: str
    format: str
    allowed: tuple[str, ...] = ()


@dataclass(slots=True)
class Mapping:
    """The resolved field mapping of one import."""

    email_source: str | None = None
    name_source: str | None = None
    custom: list[tuple[str, Target]] = field(default_factory=list)

    @classmethod
    def build(cls, mapping: dict[str, Any], fields: list[Any]) -> Mapping:
        """Resolve {source: target}; `fields` are the workspace CustomField rows."""
        by_id = {f.id: f for f in fields}
        by_name = {f.name: f for f in fields}
        result = cls()
        for source, target in (mapping or {}).items():
            if target in (None, "", "?"):
                continue
            if target == "email":
                result.email_source = source
                continue
            if target == "name":
                result.name_source = source
                continue
            ref = target
            if isinstance(ref, str) and ref.startswith("custom:"):
                ref = ref[len("custom:"):]
            if isinstance(ref, str) and ref.isdigit():
                ref = int(ref)
            row = by_id.get(ref) if isinstance(ref, int) else by_name.get(ref)
            if row is None:
                raise MappingError(
                    f"The source field {source!r} is mapped to a custom field that no "
                    "longer exists; edit the mapping."
                )
            result.custom.append(
                (source, Target(row.name, row.type, row.format, tuple(row.allowed_values or ())))
            )
        if not result.email_source:
            raise MappingError("No source field is mapped to Email; edit the mapping.")
        return result

    def fetch_fields(self) -> list[str]:
        """Source fields to ask the provider for (those not already on every Record)."""
        names = [self.email_source, self.name_source] + [s for s, _ in self.custom]
        wanted = []
        for name in names:
            if name and name != FULL_NAME and _key(name) not in _ATTRIBUTES | {"fullname": 1}:
                if name not in wanted:
                    wanted.append(name)
        return wanted


def source_value(record: Record, source: str) -> Any:
    """A source field's value on a record: its own field, else the Record attribute it
    names, else the virtual Full name."""
    fields = record.fields
    if source in fields:
        return fields[source]
    attr = _ATTRIBUTES.get(_key(source))
    if attr is not None:
        return getattr(record, attr)
    if source == FULL_NAME or _key(source) == "fullname":
        return full_name(record)
    return None


def full_name(record: Record) -> str:
    return " ".join(p.strip() for p in (record.first_name or "", record.last_name or "")
                    if p and p.strip())


def record_email(record: Record, mapping: Mapping) -> str | None:
    src = mapping.email_source
    if src and src in record.fields:
        value = record.fields[src]
        return str(value) if value not in (None, "") else None
    return record.email


def record_name(record: Record, mapping: Mapping) -> tuple[str, bool]:
    """(name, clipped): empty when the source has none (an empty value never erases)."""
    src = mapping.name_source
    if not src:
        return "", False
    value = source_value(record, src)
    text = str(value).strip() if value is not None else ""
    if len(text) > TEXT_LIMIT:
        return text[:TEXT_LIMIT], True
    return text, False


def custom_values(record: Record, mapping: Mapping) -> tuple[dict[str, Any], list[str]]:
    """Coerced custom values (empty or unfit ones left out) and the warnings."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    region = record.country if isinstance(record.country, str) else None
    for source, target in mapping.custom:
        raw = source_value(record, source)
        if raw is None or raw == "" or raw == []:
            continue
        result = coerce(target.type, target.format, list(target.allowed), raw, region=region)
        if result.error == "empty":
            continue
        if result.error:
            warnings.append(f"{target.name}: {result.error}")
            continue
        if result.warning:
            warnings.append(f"{target.name}: {result.warning}")
        values[target.name] = result.value
    return values, warnings
