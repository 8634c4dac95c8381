"""A list's contacts page: filters (status, consent, origin, which import added them, cycle),
the count that follows them, keyset pages and the streamed, formula-safe CSV export.

Filters narrow the same (list_id, id) walk that paging and search use, so a page stops after
50 matches (a search walks the covering index of list, id, email and name); the count is one
COUNT over the list's rows (see bench/pages.py for figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..csvsafe import stream
from ..extensions import db
from ..hardening import parse_id
from ..models import Contact, CustomField, Cycle, ImportRun, RecurringImport
from ..models.lists import ORIGINS
from .contacts import search_condition
from .paging import PAGE_SIZE, Page, keyset
from .runs_view import integration_label

STATUS_LABELS = {"subscribed": "Subscribed", "unsubscribed": "Unsubscribed"}
CONSENT_LABELS = {"subscribed": "Subscribed to marketing at the source",
                  "opted_out": "Opted out at the source", "unknown": "Not reported"}
ORIGIN_LABELS = {"import": "Recurring import", "plugin": "Plugin", "form": "Form",
                 "api": "API", "manual": "Added by hand"}
NO_CYCLE = "none"
EXPORT_BATCH = 2000
BASE_COLUMNS = ("email", "name", "status", "consent", "consent_source", "consent_at",
                "origin", "added_by_import", "cycle", "cycle_day", "enrolled_at",
                "created_at", "updated_at")


@dataclass
class ContactFilters:
    """What the contacts page is narrowed to; unknown values are ignored, not errors."""

    status: str = ""
    consent: str = ""
    origin: str = ""
    imp: int | None = None  # the recurring import whose run added the contact
    run: int | None = None  # the run that added the contact
    cycle: str = ""  # a cycle id, or "none" for contacts on no cycle

    @classmethod
    def parse(cls, args) -> ContactFilters:
        def pick(name: str, allowed) -> str:
            value = (args.get(name) or "").strip()
            return value if value in allowed else ""

        cycle = (args.get("cycle") or "").strip()
        if cycle != NO_CYCLE:
            cycle = str(parse_id(cycle) or "")
        return cls(status=pick("status", STATUS_LABELS), consent=pick("consent", CONSENT_LABELS),
                   origin=pick("origin", ORIGINS), imp=parse_id(args.get("import")),
                   run=parse_id(args.get("run")), cycle=cycle)

    def params(self) -> dict:
        values = {"status": self.status, "consent": self.consent, "origin": self.origin,
                  "import": self.imp, "run": self.run, "cycle": self.cycle}
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.params())

    def conditions(self, list_id: int) -> list:
        conds = [Contact.list_id == list_id]
        if self.status:
            conds.append(Contact.status == self.status)
        if self.consent:
            conds.append(Contact.consent_state == self.consent)
        if self.origin:
            conds.append(Contact.origin == self.origin)
        if self.imp:
            conds.append(Contact.created_run_id.in_(
                select(ImportRun.id).where(ImportRun.import_id == self.imp)))
        if self.run:
            conds.append(Contact.created_run_id == self.run)
        if self.cycle == NO_CYCLE:
            conds.append(Contact.cycle_id.is_(None))
        elif self.cycle:
            conds.append(Contact.cycle_id == int(self.cycle))
        return conds


@dataclass
class FilterChoices:
    imports: list[tuple[int, str]] = field(default_factory=list)
    cycles: list[tuple[int, str]] = field(default_factory=list)
    status: dict = field(default_factory=lambda: STATUS_LABELS)
    consent: dict = field(default_factory=lambda: CONSENT_LABELS)
    origin: dict = field(default_factory=lambda: ORIGIN_LABELS)


def filter_choices(list_id: int) -> FilterChoices:
    """The list's recurring imports (by integration) and cycles, for the filter selects."""
    imports = db.session.scalars(
        select(RecurringImport).where(RecurringImport.list_id == list_id)
        .options(joinedload(RecurringImport.integration)).order_by(RecurringImport.id))
    cycles = db.session.execute(
        select(Cycle.id, Cycle.name).where(Cycle.list_id == list_id).order_by(Cycle.name))
    return FilterChoices(
        imports=[(imp.id, f"{integration_label(imp.integration)} ({imp.group})")
                 for imp in imports],
        cycles=[(cid, name) for cid, name in cycles])


def _where(list_id: int, filters: ContactFilters, q: str) -> list:
    conds = filters.conditions(list_id)
    return [*conds, search_condition(q)] if q else conds


def _statement(list_id: int, filters: ContactFilters, q: str):
    return select(Contact).where(*_where(list_id, filters, q))


def page(list_id: int, filters: ContactFilters, q: str = "", *, after: int | None = None,
         before: int | None = None, size: int = PAGE_SIZE) -> Page:
    """One keyset page of the list's contacts matching the filters and search. A search
    finds the page's ids first: without filters that walks the covering search index
    (list, id, email, name) alone, then reads the matching rows by id."""
    if not q:
        return keyset(_statement(list_id, filters, q), Contact.id, after=after, before=before,
                      size=size)
    found = keyset(select(Contact.id).where(*_where(list_id, filters, q)), Contact.id,
                   after=after, before=before, size=size)
    rows = {row.id: row for row in db.session.scalars(
        select(Contact).where(Contact.id.in_(found.rows)))} if found.rows else {}
    return Page([rows[i] for i in found.rows if i in rows], found.has_prev, found.has_next)


def count(list_id: int, filters: ContactFilters) -> int:
    """How many of the list's contacts match the filters (search terms are not counted)."""
    return db.session.scalar(
        select(func.count()).select_from(Contact).where(*filters.conditions(list_id))) or 0


# ------------------------------------------------------------------ CSV export


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return str(value)


_EXPORTED = (Contact.id, Contact.email, Contact.name, Contact.status, Contact.consent_state,
             Contact.consent_source, Contact.consent_at, Contact.origin, Contact.created_run_id,
             Contact.cycle_id, Contact.cycle_day, Contact.enrolled_at, Contact.created_at,
             Contact.updated_at, Contact.custom)


def iter_export(list_id: int, filters: ContactFilters, q: str = "",
                batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The matching contacts as CSV chunks: keyset batches of plain rows (never the whole
    list in memory), one column per custom field, every cell formula-safe."""
    fields = list(db.session.scalars(select(CustomField.name).order_by(CustomField.name)))
    cycles = dict(db.session.execute(select(Cycle.id, Cycle.name)
                                     .where(Cycle.list_id == list_id)).all())
    import_labels = dict(filter_choices(list_id).imports)
    import_of: dict[int, int] = {}
    where = _where(list_id, filters, q)

    def batches() -> Iterator[list[list[str]]]:
        last = 0
        while True:
            rows = db.session.execute(select(*_EXPORTED).where(*where, Contact.id > last)
                                      .order_by(Contact.id).limit(batch)).all()
            run_ids = {r.created_run_id for r in rows if r.created_run_id} - import_of.keys()
            if run_ids:
                import_of.update(db.session.execute(
                    select(ImportRun.id, ImportRun.import_id).where(ImportRun.id.in_(run_ids))
                ).all())
            yield [[_cell(v) for v in (
                r.email, r.name, r.status, r.consent_state, r.consent_source, r.consent_at,
                r.origin, import_labels.get(import_of.get(r.created_run_id)),
                cycles.get(r.cycle_id), r.cycle_day, r.enrolled_at, r.created_at, r.updated_at,
                *((r.custom or {}).get(name) for name in fields))] for r in rows]
            if len(rows) < batch:
                return
            last = rows[-1].id

    return stream([*BASE_COLUMNS, *fields], batches())
