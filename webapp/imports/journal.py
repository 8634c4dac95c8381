"""The run journal, written inside each page's transaction (imports/pipeline.py write_page).

Before the page's upsert, ONE read of the stored contacts its rows will update (locked on
PostgreSQL, in email order like the upsert) gives the values the run replaces; the
"changed" entries go in as one executemany. After the upsert, the contacts the run created
("added", with the enrolment it made) are recorded and their number is the page's added
count: on PostgreSQL from the rows the upsert returned (one array INSERT), on SQLite with
ONE INSERT … SELECT. Only the fields the run wrote are kept, never whole rows.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Integer, bindparam, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import Contact, JournalEntry
from . import upsert

contacts = Contact.__table__
journal = JournalEntry.__table__

_BEFORE = (contacts.c.id, contacts.c.email_norm, contacts.c.name, contacts.c.custom,
           contacts.c.status, contacts.c.consent_state, contacts.c.consent_source,
           contacts.c.consent_at, contacts.c.consent_run_id, contacts.c.created_run_id,
           contacts.c.updated_at, contacts.c.updated_run_id)


def enabled() -> bool:
    """IMPORT_JOURNAL (config or TRIBUTARY_IMPORT_JOURNAL): on unless set to 0/false/off.
    Off only to measure the journal's own cost (bench/undo.py): runs made without it
    cannot be undone."""
    raw: Any = None
    if has_app_context():
        raw = current_app.config.get("IMPORT_JOURNAL")
    if raw is None:
        raw = os.environ.get("TRIBUTARY_IMPORT_JOURNAL")
    if raw is None or raw == "":
        return True
    if isinstance(raw, str):
        return raw.strip().lower() not in ("0", "false", "off", "no")
    return bool(raw)


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _before_statement(dialect: str):
    stmt = (select(*_BEFORE)
            .where(contacts.c.list_id == bindparam("list_id"), upsert._among(dialect))
            .order_by(contacts.c.email_norm))
    return stmt.with_for_update() if dialect == "postgresql" else stmt


_BEFORE_SQL = {name: _before_statement(name) for name in ("postgresql", "sqlite")}


def changed_entries(session: Session, run_id: int, list_id: int,
                    rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal entries for the stored contacts `rows` will update: the old and new value
    of each field the row writes and that differs (read in the write transaction)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    stored: dict[str, Any] = {}
    norms = [row["email_norm"] for row in rows]
    for chunk in upsert._chunks(dialect, norms):
        for old in session.execute(_BEFORE_SQL[dialect], {"list_id": list_id, "norms": chunk}):
            stored[old.email_norm] = old
    entries = []
    for row in rows:
        old = stored.get(row["email_norm"])
        if old is None or old.created_run_id == run_id:
            continue  # new (journaled as added after the write), or added by this run
        values: dict[str, Any] = {}
        if row["name"] and row["name"] != old.name:
            values["name"] = [old.name, row["name"]]
        old_custom = old.custom or {}
        custom = {}
        for key, new in row["custom"].items():
            if key not in old_custom:
                custom[key] = {"new": new}
            elif old_custom[key] != new:
                custom[key] = {"old": old_custom[key], "new": new}
        if custom:
            values["custom"] = custom
        if row["consent_run_id"] == run_id and old.consent_run_id != run_id:
            values["consent"] = [old.consent_state, old.consent_source,
                                 _stamp(old.consent_at), old.consent_run_id]
        if row["status"] != old.status:
            values["status"] = [old.status, row["status"]]
        if not values:
            continue
        entries.append({"run_id": run_id, "contact_id": old.id, "kind": "changed",
                        "values": values, "prev_updated_at": old.updated_at,
                        "prev_updated_run_id": old.updated_run_id})
    return entries


def _insert_changed(dialect: str):
    stmt = (postgresql.insert(journal) if dialect == "postgresql" else sqlite.insert(journal))
    # A contact the run writes twice (an opt-out pages apart) keeps its first pre-image.
    return stmt.on_conflict_do_nothing(index_elements=[journal.c.run_id, journal.c.contact_id])


_CHANGED_SQL = {name: _insert_changed(name) for name in ("postgresql", "sqlite")}


def write_changed(session: Session, entries: list[dict[str, Any]]) -> None:
    """The page's "changed" entries in one executemany."""
    if entries:
        dialect = session.get_bind().dialect.name
        session.execute(_CHANGED_SQL[dialect], entries)


def _added_statement(dialect: str):
    source = (
        select(bindparam("run_id", type_=Integer), contacts.c.id, literal("added"),
               contacts.c.cycle_id, contacts.c.cycle_day, contacts.c.enrolled_at)
        .where(contacts.c.list_id == bindparam("list_id"),
               contacts.c.created_run_id == bindparam("run_id"), upsert._among(dialect))
    )
    return journal.insert().from_select(
        ["run_id", "contact_id", "kind", "cycle_id", "cycle_day", "enrolled_at"], source
    ).execution_options(preserve_rowcount=True)  # an INSERT's count is kept only if asked


_ADDED_SQL = {name: _added_statement(name) for name in ("postgresql", "sqlite")}


def write_added_rows(session: Session, run_id: int, created: list[tuple[int, str]],
                     rows: dict[str, dict[str, Any]]) -> None:
    """PostgreSQL: the "added" entries of `created` ((contact id, email) of the rows the
    upsert returned as created by this run), with the enrolment their page rows made."""
    ids, cycles, days, enrolled = [], [], [], []
    for contact_id, norm in created:
        row = rows[norm]
        ids.append(contact_id)
        cycles.append(row["cycle_id"])
        days.append(row["cycle_day"])
        enrolled.append(row["enrolled_at"])
    upsert.insert_columns(session, JournalEntry, {
        "run_id": [run_id] * len(ids), "contact_id": ids, "kind": ["added"] * len(ids),
        "cycle_id": cycles, "cycle_day": days, "enrolled_at": enrolled})


def write_added(session: Session, run_id: int, list_id: int, norms: list[str]) -> int:
    """Record the contacts among `norms` this run created (after its upsert, same
    transaction) and return how many: the page's true added count."""
    dialect = session.get_bind().dialect.name
    total = 0
    for chunk in upsert._chunks(dialect, norms):
        result = session.execute(_ADDED_SQL[dialect], {"run_id": run_id, "list_id": list_id,
                                                       "norms": chunk})
        total += result.rowcount
    return total
