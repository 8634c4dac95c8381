"""The workspace suppression list: parse pasted emails/domains, save, search, remove."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select, tuple_

from ..extensions import db
from ..models import Suppression
from .paging import PAGE_SIZE, Page, keyset

MAX_LINES = 5000
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass
class AddResult:
    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (line, why)


def _valid_domain(value: str) -> bool:
    labels = value.split(".")
    return (len(value) <= 253 and len(labels) >= 2 and all(_LABEL.match(p) for p in labels)
            and not labels[-1].isdigit())


def parse_entry(line: str) -> tuple[str, str]:
    """One line -> (kind, normalised value); raises ValueError saying why it is not valid.
    `@domain.com` or `domain.com` is a domain, anything else with "@" an email."""
    value = line.strip().lower()
    if value.startswith("@"):
        value = value[1:]
    elif "@" in value:
        if len(value) > 254:
            raise ValueError("too long for an email address")
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from exc
        return "email", value
    if not _valid_domain(value):
        raise ValueError("not an email address or a domain")
    return "domain", value


def add_entries(raw: str, note: str = "") -> AddResult:
    """Save every valid line (set-based); report invalid lines and ones already there."""
    result = AddResult()
    wanted: dict[tuple[str, str], None] = {}
    for line in (raw or "").splitlines()[:MAX_LINES]:
        if not line.strip():
            continue
        try:
            wanted[parse_entry(line)] = None
        except ValueError as exc:
            result.invalid.append((line.strip()[:120], str(exc)))
    if not wanted:
        return result
    keys = list(wanted)
    there: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        there.update(db.session.execute(
            select(Suppression.kind, Suppression.value)
            .where(tuple_(Suppression.kind, Suppression.value).in_(chunk))
        ).tuples())
    new = [k for k in keys if k not in there]
    db.session.add_all(Suppression(kind=k, value=v, note=note[:255]) for k, v in new)
    db.session.commit()
    result.added = [v for _, v in new]
    result.existing = [v for k, v in keys if (k, v) in there]
    return result


def entries_page(q: str = "", *, after: int | None = None, before: int | None = None,
                 size: int = PAGE_SIZE) -> Page:
    """Newest first; `q` matches a value containing it."""
    stmt = select(Suppression)
    term = q.strip().lower()
    if term:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(or_(Suppression.value.like(f"%{escaped}%", escape="\\")))
    return keyset(stmt, Suppression.id, after=after, before=before, size=size, descending=True)


def remove(entry: Suppression) -> None:
    db.session.delete(entry)
    db.session.commit()
