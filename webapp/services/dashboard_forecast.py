"""The dashboard's forecast of the next runs: how many contacts the imports scheduled in the
next 24 hours are expected to add, and what that does to the plan limit and the fee.

Decisions:
- The window is the next 24 hours (overdue runs included): every import runs at most once a
  day, so that is one run per import, and it is what a person checking the dashboard in the
  morning wants to know. The fee is the current billing cycle's, from `imports.forecast`
  (one computation for headline, detail and figures; no fee arithmetic here).
- An import that has run learns from its last finished runs (up to five): about their mean
  added count, at most the largest of them, possibly none. One that never finished a run but
  whose source was counted (a preview or an interrupted first run, `source_total`) may add up
  to that count less what earlier runs added. Update-only imports add no one. An import with
  nothing to learn from is listed and said to be left out of the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..imports.forecast import Forecast, NewContacts, forecast
from ..models import ImportRun, Integration, RecurringImport
from ..models.base import utcnow

WINDOW = timedelta(hours=24)
HISTORY = 5  # finished runs an estimate learns from
FINISHED = ("completed", "completed_with_errors", "capped")


@dataclass(frozen=True)
class RunEstimate:
    """One scheduled run in the window and what it is expected to add (None: unknown)."""

    imp: RecurringImport
    when: datetime
    new: NewContacts | None


@dataclass(frozen=True)
class NextRuns:
    """The runs due in the window, their sum and its fee forecast (None: no run due)."""

    runs: list[RunEstimate]
    total: NewContacts
    fee: Forecast | None

    @property
    def unknown(self) -> int:
        return sum(1 for r in self.runs if r.new is None)

    @property
    def crosses_limit(self) -> bool:
        """Within the plan now, over it after the expected additions."""
        return self.fee is not None and self.fee.now.over <= 0 < self.fee.after.over

    @property
    def may_cross_limit(self) -> bool:
        """Within the plan now and after the expected additions, but not at the most."""
        if self.fee is None or self.fee.now.over > 0 or self.crosses_limit:
            return False
        high = self.total.high
        return high is not None and self.fee.now.count + high > self.fee.now.limit


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def estimate(imp: RecurringImport) -> NewContacts | None:
    """What the import's next run is expected to add, learnt from its own runs."""
    if imp.criteria == "update_only":
        return NewContacts.exactly(0, "Update existing only adds no contacts.")
    added = list(db.session.scalars(
        select(ImportRun.added)
        .where(ImportRun.import_id == imp.id, ImportRun.trigger_kind != "preview",
               ImportRun.status.in_(FINISHED))
        .order_by(ImportRun.id.desc()).limit(HISTORY)))
    if added:
        expected = math.ceil(sum(added) / len(added))
        runs = "run" if len(added) == 1 else f"{len(added)} runs"
        spread = (f"{min(added):,}" if min(added) == max(added)
                  else f"{min(added):,} to {max(added):,}")
        return NewContacts(0, expected, max(added), f"the last {runs} added {spread}")
    counted = db.session.scalar(
        select(ImportRun.source_total)
        .where(ImportRun.import_id == imp.id, ImportRun.source_total.is_not(None))
        .order_by(ImportRun.id.desc()).limit(1))
    if counted is None:
        return None
    before = db.session.scalar(
        select(func.coalesce(func.sum(ImportRun.added), 0))
        .where(ImportRun.import_id == imp.id, ImportRun.trigger_kind != "preview")) or 0
    rest = max(0, counted - before)
    return NewContacts(0, rest, rest, f"first full run: the source holds {counted:,} records")


def next_runs(now: datetime | None = None) -> NextRuns:
    """The active imports of connected integrations due in the next 24 hours, with their
    estimates and the fee forecast of their sum."""
    now = now or utcnow()
    imports = list(db.session.scalars(
        select(RecurringImport)
        .join(Integration, Integration.id == RecurringImport.integration_id)
        .where(RecurringImport.state == "active", Integration.status == "connected",
               RecurringImport.next_run_at.is_not(None),
               RecurringImport.next_run_at <= now + WINDOW)
        .options(joinedload(RecurringImport.list), joinedload(RecurringImport.integration))
        .order_by(RecurringImport.next_run_at, RecurringImport.id)))
    runs = [RunEstimate(imp, imp.next_run_at, estimate(imp)) for imp in imports]
    known = [r.new for r in runs if r.new is not None]
    total = NewContacts(
        sum(n.low for n in known), sum(n.expected for n in known),
        sum(n.high for n in known if n.high is not None)
        if all(n.high is not None for n in known) else None,
        "",
    )
    if not runs:
        return NextRuns(runs, total, None)
    words = f"The {_plural(len(runs), 'run')} due in the next 24 hours"
    words += " adds" if len(runs) == 1 else " add"
    return NextRuns(runs, total, forecast(total, now, adds_words=words))
