"""Order history imports: one row per "Import order history" run of a plugin source, the
truth its page reads (progress, outcome, the cursor a resumed run starts from)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import JSONType, UTCDateTime, utcnow

HISTORY_STATUSES = ("queued", "running", "done", "failed")
LIVE_HISTORY_WHERE = "status IN ('queued', 'running')"


class OrderHistoryRun(db.Model):
    """A history import of one source. At most one queued or running per source (a
    partial unique index: a second start is refused by the database)."""

    __tablename__ = "order_history_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index("uq_order_history_runs_live", "source_id", unique=True,
              sqlite_where=text(LIVE_HISTORY_WHERE), postgresql_where=text(LIVE_HISTORY_WHERE)),
        Index("ix_order_history_runs_source_id_id", "source_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("plugin_sources.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # Where the walk is: {"last_id": int} after each committed page (resume point).
    cursor: Mapped[dict] = mapped_column(JSONType, default=dict)
    lease: Mapped[str | None] = mapped_column(String(32))  # the worker holding the run
    pages: Mapped[int] = mapped_column(default=0)
    orders_imported: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(500), default="")  # plain words only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
