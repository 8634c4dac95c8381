"""A list's contacts: keyset pages, search by email or name, detail, manual unsubscribe.

Search walks the (list_id, id) index in id order and stops after one page of matches, so a
common term is answered from the first rows it meets; a term with no match scans the list
once (100,000 rows in roughly 30–60 ms on SQLite).
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import Contact, CustomField
from ..models.base import utcnow
from .paging import PAGE_SIZE, Page, keyset

SEARCH_MAX = 100


def clean_query(raw: str | None) -> str:
    return " ".join((raw or "").split())[:SEARCH_MAX]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_condition(q: str):
    """How a search term matches (measured at 100,000 contacts, see bench/pages.py):
    "ann@ex" (an "@" inside) is an email prefix: a range on the unique (list_id, email_norm)
    index; "@example.com" (leading "@") is an email containing it (a domain search);
    anything else is an email prefix or a name containing the term, case-insensitively."""
    term = q.lower()
    prefix = and_(Contact.email_norm >= term, Contact.email_norm < term + "\uffff")
    pattern = f"%{_escape_like(term)}%"
    if term.startswith("@"):
        return Contact.email_norm.like(pattern, escape="\\")
    if "@" in term:
        return prefix
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLite's LIKE already ignores ASCII case; ILIKE would add lower() on every row.
        return or_(prefix, Contact.name.like(pattern, escape="\\"))
    return or_(prefix, Contact.name.ilike(pattern, escape="\\"))


def contacts_page(list_id: int, q: str = "", *, after: int | None = None,
                  before: int | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of a list's contacts ordered by id, optionally filtered by `q`."""
    stmt = select(Contact).where(Contact.list_id == list_id)
    if q:
        stmt = stmt.where(search_condition(q))
    return keyset(stmt, Contact.id, after=after, before=before, size=size)


def custom_values(contact: Contact) -> list[tuple[str, object, bool]]:
    """(field name, value, hidden) for every defined field, then undefined keys kept."""
    values = dict(contact.custom or {})
    out: list[tuple[str, object, bool]] = []
    for field in db.session.scalars(select(CustomField).order_by(CustomField.name)):
        out.append((field.name, values.pop(field.name, None), field.hidden))
    out.extend((name, value, False) for name, value in sorted(values.items()))
    return out


def unsubscribe(contact: Contact) -> bool:
    """Manual unsubscribe: sticky (no import re-subscribes). False when already unsubscribed
    here."""
    if contact.status == "unsubscribed" and contact.unsubscribed_locally:
        return False
    now = utcnow()
    contact.status = "unsubscribed"
    contact.unsubscribed_locally = True
    contact.unsubscribed_at = now
    contact.updated_at = now
    db.session.commit()
    return True
