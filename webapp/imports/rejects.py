"""Rejected rows of a run as CSV, with spreadsheet-formula cells neutralised."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from ..csvsafe import stream
from ..extensions import db
from ..models import RejectedRow

HEADER = ("source_id", "email", "name", "reason", "detail", "source")


def iter_csv(run_id: int, batch: int = 2000, *, source: str = "",
             reason: str = "") -> Iterator[str]:
    """The run's rejected and skipped rows as CSV text chunks (streamed, keyset-paginated);
    `source` names where the run read them, `reason` keeps only rows of that reason."""
    return stream(HEADER, _batches(run_id, batch, source, reason))


def _batches(run_id: int, batch: int, source: str, reason: str) -> Iterator[list[tuple]]:
    last = 0
    while True:
        stmt = (select(RejectedRow.id, RejectedRow.source_id, RejectedRow.email,
                       RejectedRow.name, RejectedRow.reason, RejectedRow.detail)
                .where(RejectedRow.run_id == run_id, RejectedRow.id > last))
        if reason:
            stmt = stmt.where(RejectedRow.reason == reason)
        rows = db.session.execute(stmt.order_by(RejectedRow.id).limit(batch)).all()
        yield [(*row[1:], source) for row in rows]
        if len(rows) < batch:
            return
        last = rows[-1].id


def rejects_csv(run_id: int, **kw) -> str:
    return "".join(iter_csv(run_id, **kw))
