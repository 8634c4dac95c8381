"""Read side of undo for the pages: a run's undo section, the kept contacts, the progress
label and which runs of a history page were undone; the engine is imports/undo.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..imports import undo as engine
from ..models import Contact, ImportRun, ImportUndo, JournalEntry

KEPT_LISTED = 50
OUTCOME_LABELS = (("removed", "Removed (added by the run)"),
                  ("restored", "Restored (values the run changed)"),
                  ("kept", "Kept"), ("gone", "Already removed by someone else"))
CONSENT_NOTE = ("An undo never re-subscribes anyone: contacts unsubscribed since stay "
                "unsubscribed, and an unsubscribe this run applied because the source "
                "reported an opt-out is not undone (consent withdrawals are never taken back).")


@dataclass
class UndoSection:
    """What the run page shows about undo: the link, the refusal, or the recorded undo."""

    run: ImportRun
    undo: ImportUndo | None
    refusal: str = ""
    kept: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, email, why

    @property
    def can_undo(self) -> bool:
        return not self.refusal

    @property
    def outcomes(self) -> list[tuple[str, int]]:
        u = self.undo
        return [(label, getattr(u, key)) for key, label in OUTCOME_LABELS] if u else []

    @property
    def reasons(self) -> list[tuple[str, str, int]]:
        by = (self.undo.kept_by_reason or {}) if self.undo else {}
        return [(r, engine.KEPT.get(r, r), n) for r, n in sorted(by.items()) if n]


def get_undo(undo_id: int) -> ImportUndo | None:
    return db.session.scalar(select(ImportUndo).where(ImportUndo.id == undo_id).options(
        joinedload(ImportUndo.requested_by)))


def section(run: ImportRun) -> UndoSection:
    undo = engine.undo_of(run.id)
    sec = UndoSection(run=run, undo=undo)
    if run.trigger_kind == "preview" or run.live:
        return sec
    if undo is None or undo.status == "failed":
        sec.refusal = engine.refusal(run)
    if undo is not None:
        sec.kept = kept_contacts(run.id)
    return sec


def kept_contacts(run_id: int, limit: int = KEPT_LISTED) -> list[tuple[int, str, str, str]]:
    """(contact id, email, name, why) of the first contacts the undo kept."""
    rows = db.session.execute(
        select(Contact.id, Contact.email, Contact.name, JournalEntry.kept_reason)
        .join(Contact, Contact.id == JournalEntry.contact_id)
        .where(JournalEntry.run_id == run_id, JournalEntry.kept_reason.is_not(None))
        .order_by(JournalEntry.contact_id).limit(limit))
    return [(cid, email, name, engine.KEPT.get(reason, reason))
            for cid, email, name, reason in rows]


def progress_label(undo: ImportUndo) -> str:
    if undo.status == "queued":
        return "Undo queued: waiting for a worker…"
    if undo.status == "running":
        percent = min(99, undo.done * 100 // undo.total) if undo.total else 0
        return (f"Undoing: {undo.done:,} of {undo.total:,} contacts · {percent} % "
                f"({undo.removed:,} removed, {undo.restored:,} restored, {undo.kept:,} kept)")
    if undo.status == "failed":
        return f"Undo failed: {undo.error}"
    return (f"Undone: {undo.removed:,} removed · {undo.restored:,} restored · "
            f"{undo.kept:,} kept")


def undone_for(runs: list[ImportRun]) -> dict[int, ImportUndo]:
    """The undos (any status) of the runs on one history page (one query)."""
    ids = [r.id for r in runs]
    if not ids:
        return {}
    return {u.run_id: u for u in db.session.scalars(
        select(ImportUndo).where(ImportUndo.run_id.in_(ids))
        .options(joinedload(ImportUndo.requested_by)))}
