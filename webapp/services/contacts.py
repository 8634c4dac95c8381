"""A list's contacts: keyset pages, search by email or name, detail, manual unsubscribe
and resubscribe (each a consent-ledger entry naming the team member, the time and why).

Search walks the (list_id, id) index in id order and stops after one page of matches, so a
common term is answered from the first rows it meets; a term with no match scans the list
once (100,000 rows in roughly 30–60 ms on SQLite).
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import ConsentEvent, Contact, CustomField, Suppression, User
from ..models.base import utcnow
from .errors import FormError
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


MANUAL_SOURCE = "team member"
EVIDENCE_MIN = 10


def _ledger(contact: Contact, state: str, user: User, note: str, now) -> None:
    db.session.add(ConsentEvent(contact_id=contact.id, state=state, source=MANUAL_SOURCE,
                                at=now, run_id=None, user_id=user.id, note=note[:500],
                                recorded_at=now))


def _set_consent(contact: Contact, state: str, user: User, now) -> None:
    contact.consent_state = state
    contact.consent_source = f"{MANUAL_SOURCE} {user.email}"[:64]
    contact.consent_at = now
    contact.consent_run_id = None
    contact.updated_at = now
    contact.updated_run_id = None  # the last change is this person's, not an import run's


def unsubscribe(contact: Contact, user: User, reason: str = "") -> bool:
    """Manual unsubscribe (confirmed on the page): sticky, no import re-subscribes; the
    ledger names who and when. False when already unsubscribed here."""
    if contact.status == "unsubscribed" and contact.unsubscribed_locally:
        return False
    now = utcnow()
    contact.status = "unsubscribed"
    contact.unsubscribed_locally = True
    contact.unsubscribed_at = now
    _set_consent(contact, "opted_out", user, now)
    _ledger(contact, "opted_out", user, reason.strip() or "Unsubscribed on the contact page",
            now)
    db.session.commit()
    return True


def resubscribe(contact: Contact, user: User, evidence: str) -> None:
    """A team member re-subscribes a contact, only with recorded evidence of consent
    (imports never do). Raises FormError in plain words when it cannot be done."""
    evidence = " ".join((evidence or "").split())
    if contact.status == "subscribed":
        raise FormError("evidence", "This contact is subscribed already.")
    if suppression_of(contact) is not None:
        raise FormError("evidence", "This email is on the suppression list; remove it there "
                                    "first.")
    if len(evidence) < EVIDENCE_MIN:
        raise FormError("evidence", "Say how the person gave consent again (at least "
                        f"{EVIDENCE_MIN} characters), e.g. “Asked by email on 2 May, ticket 4411”.")
    now = utcnow()
    contact.status = "subscribed"
    contact.unsubscribed_locally = False
    contact.unsubscribed_at = None
    _set_consent(contact, "subscribed", user, now)
    _ledger(contact, "subscribed", user, evidence, now)
    db.session.commit()


def suppression_of(contact: Contact) -> Suppression | None:
    from .suppression import suppressed_by

    return suppressed_by(contact.email_norm)


def consent_history(contact: Contact) -> list[ConsentEvent]:
    """The contact's consent ledger, newest first, with the team members loaded."""
    from sqlalchemy.orm import selectinload

    return list(db.session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact.id)
        .options(selectinload(ConsentEvent.user))
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())))
