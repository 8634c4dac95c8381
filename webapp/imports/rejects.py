"""Rejected rows of a run as CSV, with spreadsheet-formula cells neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import select

from ..extensions import db
from ..models import RejectedRow

HEADER = ("source_id", "email", "name", "reason", "detail", "source")
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: risky first characters get a '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_DANGEROUS) else text


def iter_csv(run_id: int, batch: int = 2000, *, source: str = "",
             reason: str = "") -> Iterator[str]:
    """The run's rejected and skipped rows as CSV text chunks (streamed, keyset-paginated);
    `source` names where the run read them, `reason` keeps only rows of that reason."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    last = 0
    while True:
        stmt = (select(RejectedRow.id, RejectedRow.source_id, RejectedRow.email,
                       RejectedRow.name, RejectedRow.reason, RejectedRow.detail)
                .where(RejectedRow.run_id == run_id, RejectedRow.id > last))
        if reason:
            stmt = stmt.where(RejectedRow.reason == reason)
        rows = db.session.execute(stmt.order_by(RejectedRow.id).limit(batch)).all()
        for row in rows:
            writer.writerow([neutralise(v) for v in (*row[1:], source)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < batch:
            return
        last = rows[-1].id


def rejects_csv(run_id: int, **kw) -> str:
    return "".join(iter_csv(run_id, **kw))
