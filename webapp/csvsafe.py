"""CSV downloads: formula-safe cells, streamed in chunks (rejected rows, contact exports)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: risky first characters get a '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_DANGEROUS) else text


def stream(header: Sequence[str], batches: Iterable[Iterable[Sequence[object]]]) -> Iterator[str]:
    """The header, then one CSV text chunk per batch of rows, every cell neutralised; the
    caller's batches come from keyset pages, so nothing holds the whole table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for rows in batches:
        writer.writerows([neutralise(v) for v in row] for row in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
