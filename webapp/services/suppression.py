"""The workspace suppression list: parse pasted emails/domains, save, search, remove.

Adding entries applies to people already on lists too: the page first shows how many
subscribed contacts match, and on confirmation they are unsubscribed in Tributary (sticky,
set-based) with a consent-ledger entry naming the entry, the person and the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, bindparam, func, literal, or_, select, tuple_, update

from ..extensions import db
from ..models import ConsentEvent, Contact, ContactList, Suppression
from ..models.base import utcnow
from .paging import PAGE_SIZE, Page, keyset

MAX_LINES = 5000
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


LEDGER_SOURCE = "suppression list"
CHUNK = 500


@dataclass
class AddResult:
    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (line, why)
    unsubscribed: int = 0  # subscribed contacts the new entries unsubscribed


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


def parse_entries(raw: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(valid (kind, value) pairs without repeats, invalid (line, why) pairs)."""
    wanted: dict[tuple[str, str], None] = {}
    invalid: list[tuple[str, str]] = []
    for line in (raw or "").splitlines()[:MAX_LINES]:
        if not line.strip():
            continue
        try:
            wanted[parse_entry(line)] = None
        except ValueError as exc:
            invalid.append((line.strip()[:120], str(exc)))
    return list(wanted), invalid


def _conditions(keys: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    """(ledger note, WHERE clause on contacts) per chunk of emails and per domain."""
    emails = [v for k, v in keys if k == "email"]
    out = [("Email on the suppression list", Contact.email_norm.in_(emails[i:i + CHUNK]))
           for i in range(0, len(emails), CHUNK)]
    out += [(f"Domain {v} on the suppression list", Contact.email_norm.like(f"%@{v}"))
            for k, v in keys if k == "domain"]  # domains hold no LIKE wildcards
    return out


def matching_subscribed(keys: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """(list name, count) of the subscribed contacts these entries match, per list."""
    counts: dict[str, int] = {}
    for _note, where in _conditions(keys):
        rows = db.session.execute(
            select(ContactList.name, func.count(Contact.id))
            .join(ContactList, ContactList.id == Contact.list_id)
            .where(Contact.status == "subscribed", where).group_by(ContactList.name))
        for name, n in rows:
            counts[name] = counts.get(name, 0) + n
    return sorted(counts.items())


def unsubscribe_matching(keys: list[tuple[str, str]], user_id: int | None) -> int:
    """Unsubscribe (sticky) the subscribed contacts the entries match, with a ledger row
    each: INSERT … SELECT then one UPDATE per condition, in the caller's transaction."""
    now = utcnow()
    ledger = ConsentEvent.__table__
    total = 0
    for note, where in _conditions(keys):
        chosen = select(
            Contact.id, literal("opted_out"), literal(LEDGER_SOURCE),
            bindparam("at", now, type_=ledger.c.at.type),
            literal(user_id, type_=ledger.c.user_id.type), literal(note[:500]),
            bindparam("recorded_at", now, type_=ledger.c.recorded_at.type),
        ).where(Contact.status == "subscribed", where)
        db.session.execute(ledger.insert().from_select(
            ["contact_id", "state", "source", "at", "user_id", "note", "recorded_at"], chosen))
        result = db.session.execute(
            update(Contact).where(Contact.status == "subscribed", where)
            .values(status="unsubscribed", unsubscribed_locally=True, unsubscribed_at=now,
                    updated_at=now)
            .execution_options(synchronize_session=False))
        total += result.rowcount or 0
    return total


def add_entries(raw: str, note: str = "", *, user_id: int | None = None,
                unsubscribe: bool = True) -> AddResult:
    """Save every valid line (set-based) and, with `unsubscribe`, unsubscribe the
    subscribed contacts they match; report invalid lines and ones already there."""
    result = AddResult()
    keys, result.invalid = parse_entries(raw)
    if not keys:
        return result
    there: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        there.update(db.session.execute(
            select(Suppression.kind, Suppression.value)
            .where(tuple_(Suppression.kind, Suppression.value).in_(chunk))
        ).tuples())
    new = [k for k in keys if k not in there]
    db.session.add_all(Suppression(kind=k, value=v, note=note[:255]) for k, v in new)
    if unsubscribe:
        result.unsubscribed = unsubscribe_matching(keys, user_id)
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


def suppressed_by(email_norm: str) -> Suppression | None:
    """The suppression entry (email first, else its domain) that matches an email."""
    domain = email_norm.rpartition("@")[2]
    rows = db.session.scalars(select(Suppression).where(or_(
        and_(Suppression.kind == "email", Suppression.value == email_norm),
        and_(Suppression.kind == "domain", Suppression.value == domain))))
    return min(rows, key=lambda e: e.kind != "email", default=None)


def remove(entry: Suppression) -> None:
    db.session.delete(entry)
    db.session.commit()
