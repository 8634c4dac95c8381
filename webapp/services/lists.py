"""Lists and their autoresponder cycles: create, rename, delete, counts."""

from __future__ import annotations

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Contact, ContactList, Cycle
from .errors import FormError

NAME_MAX = 120


def clean_name(raw: str | None, what: str = "list") -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise FormError("name", f"Give the {what} a name.")
    if len(name) > NAME_MAX:
        raise FormError("name", f"Use at most {NAME_MAX} characters ({len(name)} given).")
    return name


def all_lists() -> list[ContactList]:
    return list(db.session.scalars(select(ContactList).order_by(ContactList.name)))


def counts_by_list() -> dict[int, tuple[int, int]]:
    """list id -> (contacts, subscribed contacts), one grouped query."""
    subscribed = func.sum(case((Contact.status == "subscribed", 1), else_=0))
    rows = db.session.execute(
        select(Contact.list_id, func.count(), subscribed).group_by(Contact.list_id)
    )
    return {list_id: (total, int(subs or 0)) for list_id, total, subs in rows}


def contact_count(list_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Contact).where(Contact.list_id == list_id)
    ) or 0


def name_taken(name: str, exclude_id: int | None = None) -> bool:
    stmt = select(ContactList.id).where(func.lower(ContactList.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(ContactList.id != exclude_id)
    return db.session.scalar(stmt.limit(1)) is not None


def create_list(raw_name: str | None) -> ContactList:
    name = clean_name(raw_name)
    if name_taken(name):
        raise FormError("name", f"A list named “{name}” exists already.")
    row = ContactList(name=name)
    db.session.add(row)
    _commit_unique("name", f"A list named “{name}” exists already.")
    return row


def rename_list(row: ContactList, raw_name: str | None) -> ContactList:
    name = clean_name(raw_name)
    if name_taken(name, exclude_id=row.id):
        raise FormError("name", f"A list named “{name}” exists already.")
    row.name = name
    _commit_unique("name", f"A list named “{name}” exists already.")
    return row


def delete_list(row: ContactList) -> None:
    """Delete a list with its contacts and cycles: set-based, contacts first so deleting
    the cycles does not first null out every enrolled contact's cycle."""
    list_id = row.id
    db.session.expunge(row)
    db.session.execute(delete(Contact).where(Contact.list_id == list_id))
    db.session.execute(delete(Cycle).where(Cycle.list_id == list_id))
    db.session.execute(delete(ContactList).where(ContactList.id == list_id))
    db.session.commit()


def _commit_unique(field: str, message: str) -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:  # a concurrent insert won the race
        db.session.rollback()
        raise FormError(field, message) from exc


# Autoresponder cycles -------------------------------------------------------------------

def _clean_length(raw: str | None) -> int:
    text = (raw or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise FormError("length_days", "Length is a whole number of days, 1 to 3650.")
    return int(text)


def save_cycle(list_id: int, raw_name: str | None, raw_length: str | None,
               cycle: Cycle | None = None) -> Cycle:
    """Create a cycle on the list, or update `cycle`; names are unique within the list."""
    name = clean_name(raw_name, "cycle")
    length = _clean_length(raw_length)
    taken = select(Cycle.id).where(
        Cycle.list_id == list_id, func.lower(Cycle.name) == name.lower()
    )
    if cycle is not None:
        taken = taken.where(Cycle.id != cycle.id)
    message = f"This list has a cycle named “{name}” already."
    if db.session.scalar(taken.limit(1)) is not None:
        raise FormError("name", message)
    if cycle is None:
        cycle = Cycle(list_id=list_id, name=name, length_days=length)
        db.session.add(cycle)
    else:
        cycle.name, cycle.length_days = name, length
    _commit_unique("name", message)
    return cycle


def delete_cycle(cycle: Cycle) -> None:
    """Delete a cycle; its contacts stay on the list, unenrolled (one UPDATE)."""
    db.session.execute(
        update(Contact).where(Contact.cycle_id == cycle.id)
        .values(cycle_id=None, cycle_day=None, enrolled_at=None)
    )
    db.session.delete(cycle)
    db.session.commit()


def enrolled_counts(list_id: int) -> dict[int, int]:
    rows = db.session.execute(
        select(Contact.cycle_id, func.count())
        .where(Contact.list_id == list_id, Contact.cycle_id.is_not(None))
        .group_by(Contact.cycle_id)
    )
    return dict(rows.all())
