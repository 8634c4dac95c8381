"""When recurring imports run, and the dispatcher that starts the due ones.

Each active import has `next_run_at`: 24 hours after the last scheduled run, or the next
`run_hour`:00 in its IANA time zone (zoneinfo, DST-correct). The dispatcher is periodic
(background.PERIODIC); (import, scheduled_for) is unique and an import has at most one live
run, so two dispatchers, a restart or a click on "Import now" never run an import twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ..extensions import db
from ..models import ImportRun, Integration, RecurringImport
from ..models.base import utcnow

log = logging.getLogger(__name__)
DAY = timedelta(hours=24)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a known time zone") from exc


def local_and_utc(moment: datetime | None, tz_name: str | None) -> tuple[str, str] | None:
    """('2025-03-04 06:00 CET (Europe/Berlin)', '2025-03-04 05:00 UTC') for a schedule slot;
    the UTC part is "" when the zone is UTC itself (no time printed twice)."""
    if moment is None:
        return None
    try:
        tz = zone(tz_name)
    except ValueError:
        tz = zone("UTC")
    local = moment.astimezone(tz)
    name = tz_name or "UTC"
    local_text = f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
    if name != local.tzname():
        local_text += f" ({name})"
    utc_text = f"{moment.astimezone(zone('UTC')):%Y-%m-%d %H:%M} UTC"
    return local_text, "" if local.tzname() == "UTC" else utc_text


def next_at_hour(after: datetime, hour: int, tz_name: str | None) -> datetime:
    """The first `hour`:00 local time in `tz_name` strictly after `after` (aware UTC).

    A wall time skipped by a DST jump runs at the first instant after the gap; a repeated
    one runs once, at its first occurrence."""
    tz = zone(tz_name)
    local = after.astimezone(tz)
    day = local.date()
    for offset in range(0, 3):
        wall = datetime.combine(day + timedelta(days=offset), time(hour), tzinfo=tz)
        # Normalise through UTC: a non-existent wall time lands just after the gap.
        moment = wall.astimezone(ZoneInfo("UTC"))
        if moment > after:
            return moment
    raise AssertionError("unreachable")  # pragma: no cover


def next_run_after(imp: RecurringImport, after: datetime) -> datetime:
    """The slot following `after` for this import's schedule."""
    if imp.run_hour is not None:
        return next_at_hour(after, imp.run_hour, imp.time_zone)
    return after + DAY


def first_schedule(imp: RecurringImport, first_run_at: datetime) -> datetime:
    """Where the schedule starts once the first run (the setup's "Import") has started."""
    if imp.run_hour is not None:
        return next_at_hour(first_run_at, imp.run_hour, imp.time_zone)
    return first_run_at + DAY


def _advance(imp_next: datetime, imp: RecurringImport, now: datetime) -> datetime:
    """The next slot after a dispatched one; missed slots (scheduler down) are skipped."""
    nxt = next_run_after(imp, imp_next)
    while nxt <= now:
        nxt = next_run_after(imp, nxt)
    return nxt


def dispatch_due(now: datetime | None = None, *,
                 enqueue: Callable[[int], object] | None = None) -> list[int]:
    """Create a run for every active import whose next_run_at has come, advance its
    schedule, and enqueue the runs. Safe to call from several processes at once."""
    from .runs import enqueue as default_enqueue

    now = now or utcnow()
    session = db.session
    due = session.execute(
        select(RecurringImport.id, RecurringImport.next_run_at)
        .join(Integration, Integration.id == RecurringImport.integration_id)
        .where(RecurringImport.state == "active", RecurringImport.next_run_at <= now,
               Integration.status == "connected")
        .order_by(RecurringImport.next_run_at)
    ).all()
    session.commit()
    created: list[int] = []
    for import_id, slot in due:
        run_id = _dispatch_one(import_id, slot, now)
        if run_id is not None:
            created.append(run_id)
    for run_id in created:
        try:
            (enqueue or default_enqueue)(run_id)
        except Exception:  # Redis trouble: the sweep enqueues queued runs without a job
            log.exception("could not enqueue scheduled run %s", run_id)
    return created


def _dispatch_one(import_id: int, slot: datetime, now: datetime) -> int | None:
    """One import's due slot, in one transaction: insert the run, move next_run_at on
    (compare-and-set on the old slot). Whoever loses a race does nothing."""
    session = db.session
    imp = session.get(RecurringImport, import_id)
    if imp is None or imp.next_run_at != slot:
        session.rollback()
        return None
    nxt = _advance(slot, imp, now)
    try:
        moved = session.execute(
            update(RecurringImport)
            .where(RecurringImport.id == import_id, RecurringImport.next_run_at == slot)
            .values(next_run_at=nxt, last_scheduled_at=slot)
        )
        if moved.rowcount != 1:
            session.rollback()
            return None
        run = ImportRun(import_id=import_id, trigger_kind="scheduled", status="queued",
                        scheduled_for=slot, queued_at=now)
        session.add(run)
        session.commit()
        return run.id
    except IntegrityError:
        # This slot exists already, or a run of this import is still live: the slot is
        # skipped (a live run continues from the cursor anyway); keep the schedule moving.
        session.rollback()
        session.execute(
            update(RecurringImport)
            .where(RecurringImport.id == import_id, RecurringImport.next_run_at == slot)
            .values(next_run_at=nxt, last_scheduled_at=slot)
        )
        session.commit()
        return None
    except OperationalError:  # SQLite busy beyond its timeout: the next tick retries
        session.rollback()
        log.warning("dispatch of import %s deferred: database busy", import_id)
        return None


def enable(imp: RecurringImport, first_run_at: datetime | None = None) -> None:
    """Activate an import's schedule after its first run (the caller commits)."""
    imp.state = "active"
    imp.state_reason = ""
    imp.next_run_at = first_schedule(imp, first_run_at or utcnow())


def stop(imp: RecurringImport) -> None:
    """"Stop imports": no further scheduled runs; settings and cursor kept."""
    imp.state = "stopped"
    imp.next_run_at = None


def resume(imp: RecurringImport, now: datetime | None = None) -> None:
    now = now or utcnow()
    imp.state = "active"
    imp.state_reason = ""
    imp.next_run_at = next_run_after(imp, now) if imp.run_hour is not None else now + DAY
