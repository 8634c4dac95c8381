"""Undo of an import run, from its journal (imports/journal.py), page by page.

Each page is ONE transaction guarded by the undo's lease (like the import's commit_page):
the lease check comes first (so SQLite's write lock is held while the page is judged, and
PostgreSQL locks the page's contacts), then the contacts are judged against what they are
now and the removals, restorations, ledger rows, kept marks, counts and the cursor are
written together. A killed undo resumes after its last committed page.

The rules: a contact the run added is removed unless someone has touched it since (a team
member, another import, a plugin event, its autoresponder moved on), which keeps it; a value
the run changed is restored only while it is still the value the run wrote; nobody is ever
re-subscribed and an opt-out the run applied stays. Undoing an older run while a later run
(not undone) changed some of the same contacts is refused: undo the later one first.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    Integer,
    String,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..background import stop_requested
from ..extensions import db
from ..models import (
    ConsentEvent,
    Contact,
    ImportRun,
    ImportUndo,
    JournalEntry,
    PluginEvent,
    RecurringImport,
)
from ..models.base import utcnow
from ..models.imports import LIVE_STATUSES

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "IMPORT_UNDO_DAYS": 30,  # how long after it finished a run can be undone
    "IMPORT_UNDO_PAGE": 2000,  # journal entries per undo transaction
    "IMPORT_UNDO_PAUSE_SECONDS": 0.0,  # rest between pages (spares a busy database)
}
SAMPLES = 10
KEPT = {
    "opted_out": "opted out at the source during this run: a consent withdrawal is never "
                 "taken back",
    "unsubscribed": "unsubscribed since: an undo never re-subscribes anyone",
    "edited": "a team member changed this contact since",
    "other_run": "another import wrote this contact since",
    "plugin_activity": "has activity from a plugin source (store, site or tracking API)",
    "cycle_moved_on": "its autoresponder enrolment changed since",
    "values_edited": "the values this run wrote were changed since",
}
UNDO_SOURCE = "undo of import run #{}"

contacts = Contact.__table__
journal = JournalEntry.__table__
ledger = ConsentEvent.__table__


class LeaseLost(RuntimeError):
    """Another worker took this undo over: stop quietly."""


def setting(name: str) -> Any:
    """An undo setting: app config, else TRIBUTARY_<NAME>, else the default."""
    if name in current_app.config:
        return current_app.config[name]
    raw = os.environ.get("TRIBUTARY_" + name)
    default = DEFAULTS[name]
    return type(default)(raw) if raw else default


# ------------------------------------------------------------------ may this run be undone


def undo_of(run_id: int) -> ImportUndo | None:
    return db.session.scalar(select(ImportUndo).where(ImportUndo.run_id == run_id))


def undone_runs():
    """Subquery: ids of runs whose undo completed."""
    return select(ImportUndo.run_id).where(ImportUndo.status == "completed")


def refusal(run: ImportRun, now: datetime | None = None) -> str:
    """Why `run` cannot be undone now, in plain words ("" when it can)."""
    session = db.session
    now = now or utcnow()
    if run.trigger_kind == "preview":
        return "A preview wrote nothing, so there is nothing to undo."
    if run.live:
        return "This run is still going. It can be undone once it has finished."
    undo = undo_of(run.id)
    if undo is not None and undo.status == "completed":
        return "This run was undone already."
    if undo is not None and undo.live:
        return "This run is being undone right now."
    days = int(setting("IMPORT_UNDO_DAYS"))
    finished = run.finished_at or run.queued_at
    if finished < now - timedelta(days=days):
        return (f"Runs can be undone for {days} days after they finish; this one finished "
                f"on {finished:%Y-%m-%d}.")
    entries = session.scalar(select(func.count()).select_from(journal)
                             .where(journal.c.run_id == run.id))
    if not entries:
        if run.written:
            return ("This run was made without the undo journal (before undo existed, or "
                    "with the journal switched off), so it cannot be undone.")
        return "This run added or changed no contact, so there is nothing to undo."
    list_id = run.recurring_import.list_id
    later = session.execute(
        select(ImportRun.id, ImportRun.status, ImportRun.finished_at)
        .join(RecurringImport, RecurringImport.id == ImportRun.import_id)
        .where(RecurringImport.list_id == list_id, ImportRun.id != run.id,
               ImportRun.trigger_kind != "preview",
               or_(ImportRun.status.in_(LIVE_STATUSES),
                   (ImportRun.id > run.id) & (ImportRun.updated > 0)),
               ImportRun.id.not_in(undone_runs()))
        .order_by(ImportRun.id.desc())
    ).all()
    for other_id, status, _finished in later:
        if status in LIVE_STATUSES:
            return (f"Import run #{other_id} into this list is queued or running. Undo "
                    "this run once it has finished.")
    # Only a later run's "changed" entries can meet this run's contacts (its "added" ones
    # are contacts that did not exist); walk the later (usually small) journal and probe
    # this run's primary key.
    mine = journal.alias("mine")
    theirs = journal.alias("theirs")
    for other_id, _status, finished_at in later:
        overlap = session.scalar(
            select(theirs.c.contact_id)
            .where(theirs.c.run_id == other_id, theirs.c.kind == "changed",
                   select(mine.c.contact_id).where(mine.c.run_id == run.id,
                                                   mine.c.contact_id == theirs.c.contact_id)
                   .exists())
            .limit(1))
        if overlap is not None:
            when = f" (finished {finished_at:%Y-%m-%d %H:%M} UTC)" if finished_at else ""
            return (f"Import run #{other_id}{when} changed some of the same contacts after "
                    f"this run. Undo run #{other_id} first: undoing this older run now "
                    f"could bring back values run #{other_id} replaced, or remove contacts "
                    "it updated.")
    return ""


# ------------------------------------------------------------------ judging one page


@dataclass
class Tally:
    """Counts by outcome (and samples for a preview) over the pages judged so far."""

    removed: int = 0
    restored: int = 0
    kept: int = 0
    gone: int = 0
    kept_by_reason: Counter = field(default_factory=Counter)
    extra: Counter = field(default_factory=Counter)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def sample(self, outcome: str, row: dict[str, Any]) -> None:
        bucket = self.samples.setdefault(outcome, [])
        if len(bucket) < SAMPLES:
            bucket.append(row)


@dataclass
class PageWork:
    """What one page of the journal asks to write."""

    remove: list[int] = field(default_factory=list)
    restore: list[dict[str, Any]] = field(default_factory=list)
    unenrol: list[int] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    last: int = 0
    entries: int = 0


def _ids(column, dialect: str):
    """"column is one of :ids" with ONE parameter, so the SQL text never changes: an int
    array on PostgreSQL, a JSON array read by json_each on SQLite (an expanding IN of
    2,000 values is re-rendered, and its values converted, on every execution)."""
    if dialect == "postgresql":
        return column == any_(cast(bindparam("ids"), postgresql.ARRAY(Integer)))
    return column.in_(select(literal_column("value"))
                      .select_from(func.json_each(bindparam("ids", type_=String))))


def _idv(dialect: str, ids: list[int]) -> dict[str, Any]:
    """The bind value for `_ids`."""
    return {"ids": ids if dialect == "postgresql" else json.dumps(ids)}


# What judging an added contact reads, and a changed one (decoding every contact's custom
# values and timestamps would be most of an undo's time).
_ADDED_COLUMNS = (
    contacts.c.id, contacts.c.email, contacts.c.name, contacts.c.status,
    contacts.c.consent_state, contacts.c.consent_run_id, contacts.c.cycle_id,
    contacts.c.cycle_day, contacts.c.enrolled_at, contacts.c.updated_run_id,
)
_CHANGED_COLUMNS = (
    contacts.c.id, contacts.c.email, contacts.c.name, contacts.c.custom, contacts.c.status,
    contacts.c.consent_state, contacts.c.consent_source, contacts.c.consent_at,
    contacts.c.consent_run_id, contacts.c.updated_at, contacts.c.updated_run_id,
)


def _read_page(session: Session, run_id: int, after: int, size: int, *, lock: bool):
    """(journal entries, their contacts by id, contacts with plugin events, contacts with
    consent entries from elsewhere {id: made by a person}) for one page."""
    dialect = session.get_bind().dialect.name
    entries = session.execute(
        select(journal).where(journal.c.run_id == run_id, journal.c.contact_id > after)
        .order_by(journal.c.contact_id).limit(size)).all()
    if not entries:
        return entries, {}, set(), {}
    found: dict[int, Any] = {}
    for kind, columns in (("added", _ADDED_COLUMNS), ("changed", _CHANGED_COLUMNS)):
        ids = [e.contact_id for e in entries if e.kind == kind]
        if not ids:
            continue
        stmt = select(*columns).where(_ids(contacts.c.id, dialect)).order_by(contacts.c.id)
        if lock and dialect == "postgresql":
            stmt = stmt.with_for_update()
        found.update((c.id, c) for c in session.execute(stmt, _idv(dialect, ids)))
    added = [e.contact_id for e in entries if e.kind == "added" and e.contact_id in found]
    plugin: set[int] = set()
    others: dict[int, bool] = {}
    if added:
        events = PluginEvent.__table__
        plugin = set(session.scalars(
            select(events.c.contact_id).where(_ids(events.c.contact_id, dialect)).distinct(),
            _idv(dialect, added)))
        rows = session.execute(
            select(ledger.c.contact_id, ledger.c.user_id).where(
                _ids(ledger.c.contact_id, dialect),
                or_(ledger.c.run_id.is_(None),
                    (ledger.c.run_id != run_id) & ledger.c.run_id.not_in(undone_runs()))),
            _idv(dialect, added))
        for contact_id, user_id in rows:
            others[contact_id] = others.get(contact_id, False) or user_id is not None
    return entries, found, plugin, others


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _same_time(a: datetime | None, b: datetime | None) -> bool:
    return a == b or (a is not None and b is not None and abs((a - b).total_seconds()) < 1e-3)


def _sample_row(c, detail: str = "", **extra: Any) -> dict[str, Any]:
    return {"email": c.email, "name": c.name, "detail": detail, **extra}


def judge_page(run_id: int, entries, found: dict, plugin: set[int], others: dict[int, bool],
               tally: Tally, *, now: datetime, user_id: int | None,
               samples: bool = False) -> PageWork:
    """Decide every entry of a page against the contact as it is now (no writes)."""
    work = PageWork(entries=len(entries), last=entries[-1].contact_id if entries else 0)
    source = UNDO_SOURCE.format(run_id)[:64]
    for entry in entries:
        c = found.get(entry.contact_id)
        if c is None:
            tally.gone += 1
            continue
        if entry.kind == "added":
            _judge_added(run_id, entry, c, plugin, others, tally, work, samples)
        else:
            _judge_changed(run_id, entry, c, tally, work, samples, now, user_id, source)
    return work


def _keep(tally: Tally, work: PageWork, entry, c, reason: str, samples: bool) -> None:
    tally.kept += 1
    tally.kept_by_reason[reason] += 1
    work.kept.append({"b_run_id": entry.run_id, "b_contact_id": entry.contact_id,
                      "kept_reason": reason})
    if samples:
        tally.sample("keep", _sample_row(c, KEPT[reason], reason=reason))


def _judge_added(run_id, entry, c, plugin, others, tally, work, samples) -> None:
    enrolled = entry.cycle_id is not None
    at_day = (enrolled and c.cycle_id == entry.cycle_id and c.cycle_day == entry.cycle_day
              and _same_time(c.enrolled_at, entry.enrolled_at))
    reason = ""
    if c.status == "unsubscribed":
        own = c.consent_run_id == run_id and c.consent_state == "opted_out"
        reason = "opted_out" if own else "unsubscribed"
    elif c.updated_run_id is None:
        reason = "edited"
    elif c.updated_run_id != run_id:
        reason = "other_run"
    elif c.id in plugin:
        reason = "plugin_activity"
    elif c.id in others:
        reason = "edited" if others[c.id] else "other_run"
    elif enrolled and not at_day:
        reason = "cycle_moved_on"
    if not reason:
        tally.removed += 1
        if enrolled:
            tally.extra["enrolments_removed"] += 1
        work.remove.append(c.id)
        if samples:
            tally.sample("remove", _sample_row(c, "added by this run"))
        return
    if at_day:  # kept, but the enrolment this run made goes while it is still at its day
        work.unenrol.append(c.id)
        tally.extra["enrolments_removed"] += 1
    _keep(tally, work, entry, c, reason, samples)


def _judge_changed(run_id, entry, c, tally, work, samples, now, user_id, source) -> None:
    values = entry.values or {}
    name, custom = c.name, dict(c.custom or {})
    consent = (c.consent_state, c.consent_source, c.consent_at, c.consent_run_id)
    restored: list[str] = []
    edited = False
    if "name" in values:
        old, new = values["name"]
        if c.name == new:
            name = old
            restored.append("name")
        else:
            edited = True
    missing = object()
    for key, change in (values.get("custom") or {}).items():
        if custom.get(key, missing) == change["new"]:
            if "old" in change:
                custom[key] = change["old"]
            else:
                custom.pop(key)
            restored.append(key)
        else:
            edited = True
    opted_out = "status" in values and c.status == "unsubscribed"
    if "consent" in values:
        state, src, at, old_run = values["consent"]
        if c.consent_run_id != run_id:
            edited = True  # recorded again since (a person, another run)
        elif c.consent_state == "opted_out":
            opted_out = True  # a withdrawal is never taken back
        elif c.status == "unsubscribed" and state == "subscribed":
            edited = True  # never make an unsubscribed contact look subscribed
        else:
            consent = (state, src, _when(at), old_run)
            restored.append("consent")
            tally.extra["consent_restored"] += 1
            work.ledger.append({
                "contact_id": c.id, "state": state, "source": source, "at": now,
                "run_id": run_id, "user_id": user_id, "recorded_at": now,
                "note": f"Undo of import run #{run_id}: consent as it was before the run"})
    if opted_out:
        tally.extra["opt_outs_kept"] += 1
    if not restored:
        if opted_out:
            reason = "opted_out"
        elif c.updated_run_id is None:
            reason = "edited"
        elif c.updated_run_id != run_id:
            reason = "other_run"
        else:
            reason = "values_edited"
        _keep(tally, work, entry, c, reason, samples)
        return
    whole = not edited and not opted_out and c.updated_run_id == run_id
    work.restore.append({
        "b_id": c.id, "name": name, "custom": custom, "consent_state": consent[0],
        "consent_source": consent[1], "consent_at": consent[2], "consent_run_id": consent[3],
        "updated_at": entry.prev_updated_at if whole else c.updated_at,
        "updated_run_id": entry.prev_updated_run_id if whole else c.updated_run_id,
    })
    tally.restored += 1
    if samples:
        tally.sample("restore", _sample_row(c, "restored: " + ", ".join(restored),
                                            fields=restored))


# ------------------------------------------------------------------ writing one page

_RESTORE = (update(contacts).where(contacts.c.id == bindparam("b_id"))
            .values({k: bindparam(k) for k in (
                "name", "custom", "consent_state", "consent_source", "consent_at",
                "consent_run_id", "updated_at", "updated_run_id")}))
_KEPT = (update(journal).where(journal.c.run_id == bindparam("b_run_id"),
                               journal.c.contact_id == bindparam("b_contact_id"))
         .values(kept_reason=bindparam("kept_reason")))


def write_page(session: Session, work: PageWork) -> None:
    """Removals, restorations, unenrolments, ledger rows and kept marks: a handful of
    set-based statements (inside the caller's transaction)."""
    dialect = session.get_bind().dialect.name
    if work.remove:
        session.execute(delete(ledger).where(_ids(ledger.c.contact_id, dialect)),
                        _idv(dialect, work.remove))
        session.execute(delete(contacts).where(_ids(contacts.c.id, dialect)),
                        _idv(dialect, work.remove))
    if work.restore:
        session.execute(_RESTORE, work.restore)
    if work.unenrol:
        session.execute(update(contacts).where(_ids(contacts.c.id, dialect))
                        .values(cycle_id=None, cycle_day=None, enrolled_at=None),
                        _idv(dialect, work.unenrol))
    if work.ledger:
        session.execute(ledger.insert(), work.ledger)
    if work.kept:
        session.execute(_KEPT, work.kept)


# ------------------------------------------------------------------ preview


def preview(run: ImportRun) -> dict[str, Any]:
    """What an undo would do now: counts by outcome and reason, with samples (reads only;
    the same shape as an import preview's summary)."""
    session = db.session
    tally, after, entries = Tally(), 0, 0
    size = int(setting("IMPORT_UNDO_PAGE"))
    now = utcnow()
    while True:
        page, found, plugin, others = _read_page(session, run.id, after, size, lock=False)
        if not page:
            break
        work = judge_page(run.id, page, found, plugin, others, tally, now=now, user_id=None,
                          samples=True)
        after, entries = work.last, entries + work.entries
    session.rollback()
    return {
        "entries": entries, "would_remove": tally.removed, "would_restore": tally.restored,
        "would_keep": tally.kept, "gone": tally.gone,
        "kept_by_reason": dict(sorted(tally.kept_by_reason.items())),
        "opt_outs_kept": tally.extra["opt_outs_kept"],
        "enrolments_removed": tally.extra["enrolments_removed"],
        "consent_restored": tally.extra["consent_restored"], "samples": tally.samples,
    }


# ------------------------------------------------------------------ starting, running


def start_undo(run: ImportRun, user_id: int | None = None, *,
               queue: bool = True) -> tuple[ImportUndo | None, str]:
    """Record an undo of `run` (queued) and enqueue it; (None, why) when refused. An undo
    that failed part way is queued again and resumes where it stopped."""
    session = db.session
    reason = refusal(run)
    if reason:
        return None, reason
    undo = undo_of(run.id)
    if undo is not None:  # failed earlier: resume it
        undo.status, undo.error, undo.lease, undo.job_id = "queued", "", None, None
        undo.queued_at, undo.requested_by_id = utcnow(), user_id or undo.requested_by_id
        session.commit()
    else:
        total = session.scalar(select(func.count()).select_from(journal)
                               .where(journal.c.run_id == run.id))
        undo = ImportUndo(run_id=run.id, status="queued", requested_by_id=user_id,
                          queued_at=utcnow(), total=total)
        session.add(undo)
        try:
            session.commit()
        except IntegrityError:  # a double click: the other request's undo stands
            session.rollback()
            return undo_of(run.id), ""
    if queue:
        try:
            enqueue(undo.id)
        except Exception:  # Redis down: the sweep enqueues queued undos without a job
            log.warning("could not enqueue undo %s; the sweep will", undo.id)
    return undo, ""


def enqueue(undo_id: int, connection=None) -> str:
    """The undo's job on the imports queue (its id only)."""
    from ..background import get_queue
    from .runs import setting as run_setting

    job_id = f"import-undo-{undo_id}-{uuid.uuid4().hex[:8]}"
    get_queue(run_setting("IMPORT_QUEUE"), connection).enqueue(
        "webapp.jobs.run_undo", undo_id, job_id=job_id,
        job_timeout=int(current_app.config.get("JOB_TIMEOUT_SECONDS", 3600)),
        result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600, description=f"undo {undo_id}")
    db.session.execute(update(ImportUndo).where(ImportUndo.id == undo_id).values(job_id=job_id))
    db.session.commit()
    return job_id


def claim(undo_id: int) -> str | None:
    token, now = uuid.uuid4().hex, utcnow()
    result = db.session.execute(
        update(ImportUndo).where(ImportUndo.id == undo_id, ImportUndo.status == "queued")
        .values(status="running", lease=token, heartbeat_at=now,
                started_at=func.coalesce(ImportUndo.started_at, now)))
    db.session.commit()
    return token if result.rowcount == 1 else None


def execute(undo_id: int) -> str | None:
    """Run (or resume) an undo to its end; the final status, or None if it was not queued."""
    lease = claim(undo_id)
    if lease is None:
        return None
    try:
        return _execute(undo_id, lease)
    except LeaseLost:
        log.warning("undo %s was taken over by another worker; stopping", undo_id)
        return None
    except Exception:
        db.session.rollback()
        log.exception("undo %s failed", undo_id)
        _end(undo_id, lease, "failed", error="An unexpected error stopped the undo; the "
             f"worker's log has the details (undo {undo_id}). Undo the run again to "
             "continue where it stopped.")
        return "failed"


def _execute(undo_id: int, lease: str) -> str:
    session = db.session
    undo = session.get(ImportUndo, undo_id)
    run_id, user_id, after = undo.run_id, undo.requested_by_id, undo.cursor
    tally = Tally(undo.removed, undo.restored, undo.kept, undo.gone,
                  Counter(undo.kept_by_reason or {}), Counter(undo.extra or {}))
    done = undo.done
    session.commit()
    size = int(setting("IMPORT_UNDO_PAGE"))
    pause = float(setting("IMPORT_UNDO_PAUSE_SECONDS"))
    while True:
        now = utcnow()
        beat = session.execute(update(ImportUndo).where(
            ImportUndo.id == undo_id, ImportUndo.lease == lease,
            ImportUndo.status == "running").values(heartbeat_at=now))
        if beat.rowcount != 1:
            session.rollback()
            raise LeaseLost(f"undo {undo_id} was taken over")
        page, found, plugin, others = _read_page(session, run_id, after, size, lock=True)
        if not page:
            session.commit()
            break
        work = judge_page(run_id, page, found, plugin, others, tally, now=now,
                          user_id=user_id)
        write_page(session, work)
        done += work.entries
        session.execute(update(ImportUndo).where(ImportUndo.id == undo_id).values(
            cursor=work.last, done=done, **_counts(tally)))
        session.commit()
        after = work.last
        if stop_requested():
            return _hand_back(undo_id, lease)
        if pause:
            time.sleep(pause)
    return _end(undo_id, lease, "completed")


def _counts(tally: Tally) -> dict[str, Any]:
    return {"removed": tally.removed, "restored": tally.restored, "kept": tally.kept,
            "gone": tally.gone, "kept_by_reason": dict(sorted(tally.kept_by_reason.items())),
            "extra": dict(sorted(tally.extra.items()))}


def _end(undo_id: int, lease: str, status: str, error: str = "") -> str:
    now = utcnow()
    result = db.session.execute(
        update(ImportUndo).where(ImportUndo.id == undo_id, ImportUndo.lease == lease)
        .values(status=status, finished_at=now, heartbeat_at=now, lease=None, error=error))
    db.session.commit()
    if result.rowcount != 1:
        raise LeaseLost(f"undo {undo_id} was taken over")
    return status


def _hand_back(undo_id: int, lease: str) -> str:
    """The worker is stopping: queue the undo again at once; it resumes at its cursor."""
    result = db.session.execute(
        update(ImportUndo).where(ImportUndo.id == undo_id, ImportUndo.lease == lease)
        .values(status="queued", lease=None, job_id=None, queued_at=utcnow()))
    db.session.commit()
    if result.rowcount != 1:
        raise LeaseLost(f"undo {undo_id} was taken over")
    try:
        enqueue(undo_id)
    except Exception:  # Redis down: the sweep enqueues it
        log.warning("could not enqueue handed-back undo %s; the sweep will", undo_id)
    return "handed_back"


def sweep(now: datetime | None = None, *, stale_seconds: float | None = None,
          grace_seconds: float | None = None, connection=None) -> list[int]:
    """Queue again the undos whose worker died (stale heartbeat) or whose job vanished."""
    from .runs import _job_alive
    from .runs import setting as run_setting

    session = db.session
    now = now or utcnow()
    stale = now - timedelta(seconds=stale_seconds if stale_seconds is not None
                            else run_setting("IMPORT_STALE_SECONDS"))
    grace = now - timedelta(seconds=grace_seconds if grace_seconds is not None
                            else run_setting("IMPORT_REQUEUE_GRACE_SECONDS"))
    requeued: list[int] = []
    dead = session.scalars(select(ImportUndo.id).where(
        ImportUndo.status == "running",
        or_(ImportUndo.heartbeat_at.is_(None), ImportUndo.heartbeat_at < stale))).all()
    for undo_id in dead:
        result = session.execute(
            update(ImportUndo).where(ImportUndo.id == undo_id, ImportUndo.status == "running",
                                     or_(ImportUndo.heartbeat_at.is_(None),
                                         ImportUndo.heartbeat_at < stale))
            .values(status="queued", lease=None, job_id=None, queued_at=now,
                    attempts=ImportUndo.attempts + 1))
        session.commit()
        if result.rowcount:
            enqueue(undo_id, connection)
            requeued.append(undo_id)
    lost = session.execute(select(ImportUndo.id, ImportUndo.job_id).where(
        ImportUndo.status == "queued", ImportUndo.queued_at < grace)).all()
    if lost:
        from ..background import redis_connection

        connection = connection or redis_connection()
    for undo_id, job_id in lost:
        if not _job_alive(job_id, connection):
            enqueue(undo_id, connection)
            requeued.append(undo_id)
    return requeued


def purge(now: datetime | None = None) -> int:
    """Delete the journal entries no undo can use any more: those of runs older than every
    run still inside the undo window (run ids grow with time, so one primary-key range; a
    deleted run's entries go once its successors age out). One run per transaction."""
    session = db.session
    now = now or utcnow()
    cutoff = now - timedelta(days=int(setting("IMPORT_UNDO_DAYS")))
    floor = session.scalar(select(func.min(ImportRun.id)).where(
        or_(ImportRun.finished_at.is_(None), ImportRun.finished_at >= cutoff)))
    if floor is None:
        floor = (session.scalar(select(func.max(ImportRun.id))) or 0) + 1
    deleted = 0
    while True:
        oldest = session.scalar(select(func.min(journal.c.run_id)))
        if oldest is None or oldest >= floor:
            session.commit()
            return deleted
        deleted += session.execute(delete(journal).where(journal.c.run_id == oldest)).rowcount
        session.commit()
