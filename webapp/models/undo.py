"""The import journal (what each run added and the values it replaced) and undo runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import JSONType, UTCDateTime, utcnow
from .imports import ImportRun
from .users import User

JOURNAL_KINDS = ("added", "changed")
UNDO_STATUSES = ("queued", "running", "completed", "failed")
UNDO_LIVE = ("queued", "running")


class JournalEntry(db.Model):
    """One contact a run added or changed, written in the page's own transaction.

    "changed" keeps only the fields the run wrote, as {"name": [old, new], "custom": {key:
    {"old": value (absent: key never set), "new": value}}, "consent": [state, source, at,
    run_id], "status": [old, new]}; "added" keeps the enrolment the run made. No foreign
    keys: an entry outlives a removed contact, and a checked key per row would double the
    journal's cost on PostgreSQL; `purge` in imports/undo.py drops the entries of runs past
    the undo window (and so of deleted runs too)."""

    __tablename__ = "import_journal"
    __table_args__ = (
        CheckConstraint("kind IN ('added', 'changed')", name="kind"),
        # SQLite: the rows live in the primary key's own b-tree (one write per entry, not two).
        {"sqlite_with_rowid": False},
    )

    run_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    contact_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(8))
    values: Mapped[dict | None] = mapped_column(JSONType)
    cycle_id: Mapped[int | None] = mapped_column()
    cycle_day: Mapped[int | None] = mapped_column()
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_updated_run_id: Mapped[int | None] = mapped_column()
    # Set by the undo for a contact it kept, and why (see webapp/imports/undo.py KEPT).
    kept_reason: Mapped[str | None] = mapped_column(String(24))


class ImportUndo(db.Model):
    """The undo of one import run, recorded like a run: who, when, progress, counts by
    outcome. The RQ job carries only this row's id; the cursor is the last journal contact
    id whose page committed, so a killed undo resumes exactly there."""

    __tablename__ = "import_undos"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'completed', 'failed')",
                        name="status"),
        Index("uq_import_undos_run_id", "run_id", unique=True),
        Index("ix_import_undos_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease: Mapped[str | None] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)  # journal entries to walk
    done: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    restored: Mapped[int] = mapped_column(default=0)
    kept: Mapped[int] = mapped_column(default=0)
    gone: Mapped[int] = mapped_column(default=0)  # removed by someone else before the undo
    kept_by_reason: Mapped[dict] = mapped_column(JSONType, default=dict)
    # opt-outs left in place, enrolments removed, consent records restored
    extra: Mapped[dict] = mapped_column(JSONType, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")

    run: Mapped[ImportRun] = relationship()
    requested_by: Mapped[User | None] = relationship()

    @property
    def live(self) -> bool:
        return self.status in UNDO_LIVE
