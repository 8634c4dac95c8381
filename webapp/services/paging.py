"""Keyset pagination on an integer id: `after`/`before` cursors, never OFFSET."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select

from ..extensions import db

PAGE_SIZE = 50


@dataclass
class Page:
    """One page of rows and whether pages exist on either side."""

    rows: list[Any] = field(default_factory=list)
    has_prev: bool = False
    has_next: bool = False

    @property
    def first_id(self) -> int | None:
        return self.rows[0].id if self.rows else None

    @property
    def last_id(self) -> int | None:
        return self.rows[-1].id if self.rows else None


def parse_cursor(raw: str | None) -> int | None:
    """A cursor from the query string; anything that is not a positive integer is ignored."""
    if raw and raw.isdigit() and len(raw) < 19:
        return int(raw)
    return None


def keyset(stmt: Select, id_col, *, after: int | None = None, before: int | None = None,
           size: int = PAGE_SIZE, descending: bool = False) -> Page:
    """Run `stmt` one page at a time ordered by `id_col`. Fetches size+1 rows to learn
    whether another page follows; `before` walks backwards and reverses the rows."""
    backwards = before is not None and after is None
    forward_order = id_col.desc() if descending else id_col.asc()
    reverse_order = id_col.asc() if descending else id_col.desc()
    if backwards:
        cond = id_col > before if descending else id_col < before
        stmt = stmt.where(cond).order_by(reverse_order)
    else:
        if after is not None:
            stmt = stmt.where(id_col < after if descending else id_col > after)
        stmt = stmt.order_by(forward_order)
    rows = list(db.session.scalars(stmt.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        return Page(rows, has_prev=more, has_next=True)
    return Page(rows, has_prev=after is not None, has_next=more)
