"""Rejected rows of a run as CSV, with spreadsheet-formula cells neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import select

from ..extensions import db
from ..models import RejectedRow

HEADER = ("source_id", "email", "reason", "detail")
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: risky first characters get a '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_DANGEROUS) else text


def iter_csv(run_id: int, batch: int = 2000) -> Iterator[str]:
    """The run's rejects as CSV text chunks (streamed, keyset-paginated)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    last = 0
    while True:
        rows = db.session.execute(
            select(RejectedRow.id, RejectedRow.source_id, RejectedRow.email,
                   RejectedRow.reason, RejectedRow.detail)
            .where(RejectedRow.run_id == run_id, RejectedRow.id > last)
            .order_by(RejectedRow.id).limit(batch)
        ).all()
        for row in rows:
            writer.writerow([neutralise(v) for v in row[1:]])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < batch:
            return
        last = rows[-1].id


def rejects_csv(run_id: int) -> str:
    return "".join(iter_csv(run_id))
