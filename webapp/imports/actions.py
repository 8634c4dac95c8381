"""The per-list actions on an import: Stop imports, Resume, Import now, and the one rule for
when an import cannot run. Each returns its outcome in plain words for the page."""

from __future__ import annotations

from ..extensions import db
from ..models import ImportRun, RecurringImport
from . import runs, schedule

QUEUE_DOWN_MESSAGE = ("Import queued, but the job queue is unreachable right now. "
                      "It will start by itself when the queue is back.")


def blocked_reason(imp: RecurringImport) -> str:
    """Why the import cannot run right now ("" when it can)."""
    integration = imp.integration
    if integration.status == "needs_reconnect":
        why = integration.status_reason or "its credentials were refused"
        return f"Reconnect the integration first: {why}"
    if integration.status != "connected":
        return "The integration is disconnected; connect it again first."
    if "email" not in (imp.mapping or {}).values():
        return "Assign the Email column on the mapping page first."
    return ""


def stop(imp: RecurringImport) -> str:
    """Stop imports: no further scheduled runs (a live run finishes). Returns the message."""
    if imp.state == "stopped":
        return "Imports into this list were stopped already."
    schedule.stop(imp)
    db.session.commit()
    return "Imports stopped. Settings are kept; Resume to start the schedule again."


def resume(imp: RecurringImport) -> tuple[bool, str]:
    """Resume the schedule; refused while the integration cannot run imports."""
    if imp.integration.status != "connected":
        return False, blocked_reason(imp)
    if imp.state == "active":
        return True, "Imports into this list are active already."
    schedule.resume(imp)
    db.session.commit()
    when = schedule.local_and_utc(imp.next_run_at, imp.time_zone)
    return True, f"Imports resumed. Next run: {when[0]}." if when else "Imports resumed."


def import_now(imp: RecurringImport, user_id: int | None) -> tuple[ImportRun | None, str, str]:
    """(run, message, tone): starts a manual run unless one is live or the import can't run.
    A double click gets the live run back (the one-live-run index decides a race)."""
    blocked = blocked_reason(imp)
    if blocked:
        return None, blocked, "bad"
    started = runs.start(imp.id, "manual", user_id=user_id)
    if not started.created:
        return started.run, "A run is already in progress.", "warn"
    if not started.queued:
        return started.run, QUEUE_DOWN_MESSAGE, "warn"
    return started.run, "Import started.", "ok"
