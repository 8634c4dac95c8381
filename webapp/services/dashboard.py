"""What the dashboard shows at a glance: recent runs, integrations and imports that need
someone, the next scheduled imports, and the lists (plan usage comes from `usage`).

A handful of small, bounded queries (each LIMITed or over the few integrations/imports a
team has), so the page stays fast however many contacts and runs pile up.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import ImportRun, Integration, RecurringImport
from . import runs_view

RECENT_RUNS = 8
NEXT_IMPORTS = 6


@dataclass
class Attention:
    """One thing a person must look at: what, why, and where to fix it."""

    kind: str  # needs_reconnect | needs_attention | failing
    label: str  # "Needs reconnect", …
    title: str  # "Shopify · acme.myshopify.com" or "… → Newsletter"
    reason: str
    provider: str
    anchor: str = ""  # the import row on the details page


def recent_runs(limit: int = RECENT_RUNS) -> list[ImportRun]:
    """The newest runs that are not previews, with their import, list and integration."""
    return list(db.session.scalars(
        select(ImportRun).where(ImportRun.trigger_kind != "preview")
        .options(joinedload(ImportRun.recurring_import).joinedload(RecurringImport.list),
                 joinedload(ImportRun.recurring_import).joinedload(RecurringImport.integration))
        .order_by(ImportRun.id.desc()).limit(limit)))


def attention() -> list[Attention]:
    """Integrations to reconnect, imports that need attention, and imports whose last runs
    failed (the scheduler keeps trying those, but someone should know)."""
    items: list[Attention] = []
    for integ in db.session.scalars(
            select(Integration).where(Integration.status == "needs_reconnect")
            .order_by(Integration.provider, Integration.id)):
        items.append(Attention(
            "needs_reconnect", "Needs reconnect", runs_view.integration_label(integ),
            integ.status_reason or "Its credentials were refused; reconnect it.",
            integ.provider))
    imports = list(db.session.scalars(
        select(RecurringImport)
        .join(Integration, Integration.id == RecurringImport.integration_id)
        .where(Integration.status == "connected", RecurringImport.state != "stopped")
        .options(joinedload(RecurringImport.list), joinedload(RecurringImport.integration))
        .order_by(RecurringImport.id)))
    last = runs_view.last_runs([imp.id for imp in imports])
    for imp in imports:
        title = f"{runs_view.integration_label(imp.integration)} → {imp.list.name}"
        anchor = f"import-row-{imp.id}"
        if imp.state == "needs_attention":
            items.append(Attention("needs_attention", "Needs attention", title,
                                   imp.state_reason or "The import stopped to protect your data.",
                                   imp.integration.provider, anchor))
            continue
        run = last.get(imp.id)
        if imp.consecutive_failures or (run is not None and run.status == "failed"):
            failures = max(imp.consecutive_failures, 1)
            why = (run.error if run is not None and run.error else "The last run failed.")
            times = "once" if failures == 1 else f"{failures} times in a row"
            items.append(Attention("failing", "Failing", title, f"Failed {times}: {why}",
                                   imp.integration.provider, anchor))
    return items


@dataclass
class NextImport:
    imp: RecurringImport
    when: tuple[str, str]


def next_imports(limit: int = NEXT_IMPORTS) -> list[NextImport]:
    """Active imports of connected integrations, soonest scheduled run first."""
    rows = db.session.scalars(
        select(RecurringImport)
        .join(Integration, Integration.id == RecurringImport.integration_id)
        .where(RecurringImport.state == "active", Integration.status == "connected",
               RecurringImport.next_run_at.is_not(None))
        .options(joinedload(RecurringImport.list), joinedload(RecurringImport.integration))
        .order_by(RecurringImport.next_run_at, RecurringImport.id).limit(limit))
    return [NextImport(imp, runs_view.local_and_utc(imp.next_run_at, imp.time_zone))
            for imp in rows]
