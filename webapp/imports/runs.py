"""Import runs as a service: create (idempotently), enqueue, cancel, execute, sweep.

The run row is the truth. A job carries only the run id; `execute` claims the run with a
lease token, and every page commit re-checks the lease, so a run the sweep handed to a new
worker cannot be written by the old one too.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..background import stop_requested
from ..extensions import db
from ..models import CustomField, ImportRun, Integration, RecurringImport, WorkspaceNotice
from ..models.base import utcnow
from ..providers.base import AuthError, OutcomeUnknown, ProviderError, RateLimited, SchemaError
from . import credentials, journal
from .pipeline import (
    PREVIEW_LIMIT,
    Context,
    LeaseLost,
    Progress,
    commit_page,
    forget_seen,
    load_seen,
    load_suppressions,
    plan_page,
)
from .rules import Mapping, MappingError
from .seen import SeenHashes

log = logging.getLogger(__name__)

DATA_ERRORS = ("syntax_error", "invalid_domain")
# A finished run is "Completed with errors" only when more than this share of the records it
# read had a bad email (syntax or domain) or a value that did not fit its field.
WARN_SHARE = 0.05


def finished_status(progress: Progress) -> str:
    """The one rule for a finished run's status: a few bad emails are normal ("completed");
    suppressed, unsubscribed or duplicate rows never warn; a larger share of data errors or
    of unfit field values means the source or the mapping needs a look."""
    data_errors = sum(progress.reasons.get(r, 0) for r in DATA_ERRORS)
    read = max(progress.fetched - progress.skipped, 1)
    if data_errors / read > WARN_SHARE or progress.warnings / read > WARN_SHARE:
        return "completed_with_errors"
    return "completed"


def setting(name: str) -> Any:
    """An engine setting (`IMPORT_*`): its default is in config.py, TRIBUTARY_<NAME> sets it."""
    return current_app.config[name]


# ------------------------------------------------------------------------- creating


def create_run(import_id: int, trigger: str = "manual", *, scheduled_for: datetime | None = None,
               user_id: int | None = None) -> tuple[ImportRun | None, bool]:
    """Insert a queued run and commit. Returns (run, True), or (the live run, False) when one
    is already queued/running (or this schedule slot exists): double clicks are harmless."""
    run = ImportRun(import_id=import_id, trigger_kind=trigger, status="queued",
                    scheduled_for=scheduled_for, requested_by_id=user_id, queued_at=utcnow())
    db.session.add(run)
    try:
        db.session.commit()
        return run, True
    except IntegrityError:
        db.session.rollback()
    if trigger == "preview":  # pragma: no cover - previews never collide
        return None, False
    live = db.session.scalar(
        select(ImportRun).where(ImportRun.import_id == import_id,
                                ImportRun.status.in_(("queued", "running")),
                                ImportRun.trigger_kind != "preview")
    )
    return live, False


def enqueue(run_id: int, connection=None) -> str:
    """Put the run's job on the imports queue (id only, never secrets); records the job id."""
    from ..background import get_queue

    job_id = f"import-run-{run_id}-{uuid.uuid4().hex[:8]}"
    queue = get_queue(setting("IMPORT_QUEUE"), connection)
    queue.enqueue(
        "webapp.jobs.run_import", run_id, job_id=job_id,
        job_timeout=int(current_app.config.get("JOB_TIMEOUT_SECONDS", 3600)),
        result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600, description=f"import run {run_id}",
    )
    db.session.execute(update(ImportRun).where(ImportRun.id == run_id).values(job_id=job_id))
    db.session.commit()
    return job_id


@dataclass(frozen=True)
class Started:
    """What `start` did: the new run (or the live one), and whether its job is queued."""

    run: ImportRun | None
    created: bool  # False: a run of this import was live already and is returned instead
    queued: bool  # False when Redis is down (the sweep enqueues queued runs without a job)


def start(import_id: int, trigger: str = "manual", *, user_id: int | None = None,
          queue: bool = True) -> Started:
    """"Import now" (or a preview): create the run and enqueue it. Idempotent while live."""
    run, created = create_run(import_id, trigger, user_id=user_id)
    queued = False
    if created and queue:
        try:
            enqueue(run.id)
            queued = True
        except Exception:  # Redis down: the sweep enqueues queued runs that have no job
            log.warning("could not enqueue import run %s: the job queue is unreachable",
                        run.id)
    return Started(run, created, queued)


def start_run(import_id: int, trigger: str = "manual", *, user_id: int | None = None,
              queue: bool = True) -> ImportRun | None:
    """`start`, for callers that need only the run."""
    return start(import_id, trigger, user_id=user_id, queue=queue).run


def cancel_run(run_id: int) -> bool:
    """Cancel a queued run (a running one finishes its page first: not cancelable)."""
    result = db.session.execute(
        update(ImportRun).where(ImportRun.id == run_id, ImportRun.status == "queued")
        .values(status="canceled", finished_at=utcnow(), error="Canceled before it started.")
    )
    db.session.commit()
    if result.rowcount:
        job_id = db.session.scalar(select(ImportRun.job_id).where(ImportRun.id == run_id))
        _cancel_job(job_id)
    return bool(result.rowcount)


def _cancel_job(job_id: str | None) -> None:
    if not job_id:
        return
    try:
        from ..background import fetch_job

        fetch_job(job_id).cancel()
    except Exception:  # the job may be gone already; the run row says canceled anyway
        pass


# ------------------------------------------------------------------------- notices


def notify(key: str, message: str, *, level: str = "warning", integration_id: int | None = None,
           import_id: int | None = None) -> bool:
    """Open a workspace notice unless one with `key` is open (own transaction)."""
    table = WorkspaceNotice.__table__
    try:
        with db.engine.begin() as conn:
            conn.execute(table.insert().values(
                key=key, level=level, message=message[:1000], integration_id=integration_id,
                import_id=import_id, created_at=utcnow()))
    except IntegrityError:
        return False
    return True


# ------------------------------------------------------------------------- executing


def build_provider(integration: Integration, *, on_credentials, refresh_lock):
    """The integration's provider client, with refreshed credentials saved at once."""
    return credentials.client_for(integration, on_credentials=on_credentials,
                                  lock=refresh_lock)


def claim(run_id: int) -> str | None:
    """Take a queued run: status running with a fresh lease token (None if not queued)."""
    token = uuid.uuid4().hex
    now = utcnow()
    result = db.session.execute(
        update(ImportRun).where(ImportRun.id == run_id, ImportRun.status == "queued")
        .values(status="running", lease=token, heartbeat_at=now,
                started_at=func.coalesce(ImportRun.started_at, now))
    )
    db.session.commit()
    return token if result.rowcount == 1 else None


def execute(run_id: int, *, provider_factory=None) -> str | None:
    """Run (or resume) an import run to its end. Returns the final status, or None when the
    run was not queued (canceled, taken by another worker)."""
    lease = claim(run_id)
    if lease is None:
        return None
    try:
        return _execute(run_id, lease, provider_factory or build_provider)
    except LeaseLost:
        log.warning("import run %s was taken over by another worker; stopping", run_id)
        return None


def _execute(run_id: int, lease: str, provider_factory) -> str:
    session = db.session
    run = session.get(ImportRun, run_id)
    imp = run.recurring_import
    integration = imp.integration
    preview = run.trigger_kind == "preview"
    import_id, integration_id = imp.id, integration.id

    if integration.status != "connected":
        reason = integration.status_reason or "it was disconnected"
        return _fail(run_id, lease, import_id, "auth",
                     f"The {integration.provider} connection needs reconnecting: {reason}",
                     count=False)
    try:
        mapping = Mapping.build(imp.mapping, list(session.scalars(select(CustomField))))
    except MappingError as exc:
        _needs_attention(import_id, str(exc))
        return _fail(run_id, lease, import_id, "mapping", str(exc))

    if not preview and run.pages == 0:  # (re)start of the walk: snapshot the import
        run.since, run.start_cursor = imp.high_water, imp.cursor
        session.commit()
    if preview:
        since, cursor = imp.high_water, imp.cursor
    else:
        since = run.since
        cursor = run.cursor if run.pages else run.start_cursor
    high_water_floor = imp.high_water
    emails, domains = load_suppressions(session)
    ctx = Context(
        run_id=run_id, list_id=imp.list_id, criteria=imp.criteria, mapping=mapping,
        consent_source=f"{integration.provider} import #{import_id}"[:64],
        consent_filter=imp.consent_filter or "everyone", consent_field=imp.consent_field or "",
        cycle_id=imp.cycle_id, cycle_day=imp.cycle_start_day if imp.cycle_id else None,
        suppressed_emails=emails, suppressed_domains=domains, collect_samples=preview,
        journal=journal.enabled(),
    )
    progress = Progress.of(run)
    seen = SeenHashes() if preview else load_seen(session, run_id)
    group, source = imp.group, imp.source
    cap = None if preview else int(setting("IMPORT_RUN_CAP"))
    samples: dict[str, list] = {}
    choices: Counter = Counter()  # preview: who each consent filter would take
    fetch = mapping.fetch_fields()
    if ctx.consent_field and ctx.consent_field not in fetch:
        fetch.append(ctx.consent_field)
    session.commit()

    def on_credentials(creds: dict[str, Any]) -> None:
        credentials.save_now(integration_id, creds)

    status = "completed"
    try:
        provider = provider_factory(
            integration, on_credentials=on_credentials,
            refresh_lock=lambda: credentials.refresh_lock(integration_id),
        )
        if not preview and run.pages == 0 and cursor is None:
            _record_source_total(run_id, provider, group, source, since)
        with closing(provider.iter_pages(group, source, since=since, cursor=cursor,
                                         fields=fetch or None)) as pages:
            mark = time.perf_counter()
            for page in pages:
                progress.time("fetch", time.perf_counter() - mark)
                mark = time.perf_counter()
                records = page.records
                if preview:
                    records = records[: max(0, PREVIEW_LIMIT - progress.fetched)]
                plan = plan_page(session, ctx, records, seen, utcnow())
                session.commit()  # end the read transaction before the write one
                progress.time("process", time.perf_counter() - mark)
                if preview:
                    progress.add(plan)
                    choices.update({k: v for k, v in plan.counts.items()
                                    if k.startswith("consent_")})
                    seen.update(plan.seen)
                    for outcome, rows in plan.samples.items():
                        bucket = samples.setdefault(outcome, [])
                        bucket.extend(rows[: 10 - len(bucket)])
                    if progress.fetched >= PREVIEW_LIMIT or page.done:
                        break
                    mark = time.perf_counter()
                    continue
                if cap and progress.written and progress.written + plan.written > cap:
                    status = "capped"  # this page waits for the next run
                    break
                commit_page(session, ctx, plan, page, progress, import_id=import_id,
                            lease=lease, high_water_floor=high_water_floor)
                seen.update(plan.seen)
                if cap and progress.written >= cap and not page.done:
                    status = "capped"
                    break
                if stop_requested() and not page.done:
                    status = "handed_back"  # the worker is shutting down: give the run back
                    break
                mark = time.perf_counter()
    except AuthError as exc:
        session.rollback()
        mark_needs_reconnect(integration_id, exc.reason)
        return _fail(run_id, lease, import_id, "auth",
                     f"The {integration.provider} account refused our credentials "
                     f"({exc.reason}). Reconnect the integration.")
    except SchemaError as exc:
        session.rollback()
        missing = ", ".join(exc.missing) or "a mapped field"
        message = (f"The source field {missing} no longer exists at {integration.provider}; "
                   "nothing was overwritten. Edit the mapping.")
        _needs_attention(import_id, message)
        return _fail(run_id, lease, import_id, "schema", message)
    except RateLimited as exc:
        session.rollback()
        return _fail(run_id, lease, import_id, "rate_limited",
                     f"{integration.provider} kept limiting our requests ({exc.reason}). "
                     "The next run continues where this one stopped.")
    except ProviderError as exc:
        session.rollback()
        return _fail(run_id, lease, import_id, exc.kind, exc.reason)
    except LeaseLost:
        raise
    except Exception:  # a bug or a database failure: say so, keep the cursor
        session.rollback()
        log.exception("import run %s failed", run_id)
        return _fail(run_id, lease, import_id, "internal",
                     "An unexpected error stopped the import; the worker's log has the "
                     f"details (import run {run_id}). The next run continues where this one "
                     "stopped.")

    if status == "handed_back":
        return _hand_back(run_id, lease)
    if preview:
        return _finish_preview(run_id, lease, progress, samples, choices)
    if status == "completed":
        status = finished_status(progress)
    return _finish(run_id, lease, import_id, status, progress)


def _record_source_total(run_id: int, provider, group: str, source: str, since) -> None:
    """Keep the source's own count of what this walk reads (the progress percentage); a
    source that cannot count, or fails to, leaves it unknown and the run goes on, unless
    the credentials are in doubt (rejected, or a refresh whose answer was lost)."""
    counter = getattr(provider, "count_records", None)
    try:
        counted = counter(group, source, since=since) if counter else None
    except (AuthError, OutcomeUnknown):
        raise
    except ProviderError as exc:
        log.info("import run %s: the source could not count its records (%s)", run_id,
                 exc.reason)
        counted = None
    if counted is not None:
        db.session.execute(update(ImportRun).where(ImportRun.id == run_id)
                           .values(source_total=counted.total))
        db.session.commit()


def _finish(run_id: int, lease: str, import_id: int, status: str, progress: Progress) -> str:
    from .forecast import record_overage

    session = db.session
    now = utcnow()
    result = session.execute(
        update(ImportRun).where(ImportRun.id == run_id, ImportRun.lease == lease,
                                ImportRun.status == "running")
        .values(status=status, finished_at=now, heartbeat_at=now, lease=None, error="",
                **progress.values())
    )
    if result.rowcount != 1:
        session.rollback()
        raise LeaseLost(f"run {run_id} was taken over")
    session.execute(
        update(RecurringImport).where(RecurringImport.id == import_id)
        .values(consecutive_failures=0)
    )
    session.execute(
        update(RecurringImport)
        .where(RecurringImport.id == import_id, RecurringImport.state == "needs_attention")
        .values(state="active", state_reason="")
    )
    forget_seen(session, run_id)
    session.commit()
    if progress.added:
        record_overage(run_id)
    return status


def _hand_back(run_id: int, lease: str) -> str:
    """The worker is stopping (SIGTERM): release the run now, queued again, so another worker
    resumes it from its last committed page without waiting for the stale threshold."""
    result = db.session.execute(
        update(ImportRun).where(ImportRun.id == run_id, ImportRun.lease == lease,
                                ImportRun.status == "running")
        .values(status="queued", lease=None, job_id=None, queued_at=utcnow())
    )
    db.session.commit()
    if result.rowcount != 1:
        raise LeaseLost(f"run {run_id} was taken over")
    log.info("import run %s handed back: its worker is shutting down", run_id)
    try:
        enqueue(run_id)
    except Exception:  # Redis down: the sweep enqueues queued runs that have no job
        log.warning("could not enqueue handed-back run %s; the sweep will", run_id)
    return "handed_back"


def _finish_preview(run_id: int, lease: str, progress: Progress, samples: dict,
                    choices: Counter) -> str:
    values = progress.values()
    subscribed = choices["consent_subscribed"]
    summary = {
        # Of the sampled records that pass every other rule: how many each consent filter
        # would import ("everyone" also takes people the source reports no consent for).
        "consent_choices": {"everyone": subscribed + choices["consent_other"],
                            "subscribed": subscribed},
        "would_add": progress.added, "would_update": progress.updated,
        "unchanged": progress.unchanged, "would_skip": progress.skipped,
        "would_reject": progress.rejected, "rejected_by_reason": values["rejected_by_reason"],
        "warnings": progress.warnings, "records": progress.fetched, "samples": samples,
    }
    db.session.execute(
        update(ImportRun).where(ImportRun.id == run_id, ImportRun.lease == lease)
        .values(status="completed", finished_at=utcnow(), lease=None, preview=summary,
                **values)
    )
    db.session.commit()
    return "completed"


def _fail(run_id: int, lease: str, import_id: int, kind: str, message: str, *,
          count: bool = True) -> str:
    """End the run as failed with a plain-words reason; the import keeps its cursor."""
    session = db.session
    result = session.execute(
        update(ImportRun).where(ImportRun.id == run_id, ImportRun.lease == lease)
        .values(status="failed", finished_at=utcnow(), lease=None, error=message,
                error_kind=kind)
    )
    if result.rowcount != 1:
        session.rollback()
        raise LeaseLost(f"run {run_id} was taken over")
    trigger = session.scalar(select(ImportRun.trigger_kind).where(ImportRun.id == run_id))
    forget_seen(session, run_id)
    failures = 0
    if count and trigger != "preview":
        session.execute(update(RecurringImport).where(RecurringImport.id == import_id)
                        .values(consecutive_failures=RecurringImport.consecutive_failures + 1))
        failures = session.scalar(select(RecurringImport.consecutive_failures)
                                  .where(RecurringImport.id == import_id))
    session.commit()
    if failures >= int(setting("IMPORT_FAILURE_NOTICE_AFTER")):
        notify(f"import-failing:{import_id}",
               f"Import #{import_id} failed {failures} times in a row. Last reason: {message}",
               level="error", import_id=import_id)
    return "failed"


def mark_needs_reconnect(integration_id: int, reason: str) -> None:
    """Auth failure: the integration needs reconnecting; one notice, no retries (the one
    place this is done, for runs and the set-up pages alike)."""
    db.session.execute(
        update(Integration).where(Integration.id == integration_id)
        .values(status="needs_reconnect", status_changed_at=utcnow(),
                status_reason=f"The provider refused our credentials: {reason}"[:500])
    )
    db.session.commit()
    provider = db.session.scalar(select(Integration.provider)
                                 .where(Integration.id == integration_id))
    notify(f"reconnect:{integration_id}",
           f"The {provider} integration needs reconnecting: its credentials were refused. "
           "Imports from it are paused until you reconnect.",
           level="error", integration_id=integration_id)


def _needs_attention(import_id: int, reason: str) -> None:
    db.session.execute(update(RecurringImport).where(RecurringImport.id == import_id)
                       .values(state="needs_attention", state_reason=reason[:500]))
    db.session.commit()


# ------------------------------------------------------------------------- sweeping


def _job_alive(job_id: str | None, connection) -> bool:
    if not job_id:
        return False
    from rq.exceptions import NoSuchJobError

    from ..background import fetch_job

    try:
        job = fetch_job(job_id, connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    return str(getattr(status, "value", status)) in ("queued", "started", "deferred",
                                                     "scheduled")


def sweep(now: datetime | None = None, *, stale_seconds: float | None = None,
          grace_seconds: float | None = None, connection=None, queue: bool = True) -> dict:
    """Find runs whose worker died (stale heartbeat) or whose job vanished (Redis flushed)
    and queue them again; they resume from their last committed page."""
    from ..background import redis_connection

    session = db.session
    now = now or utcnow()
    stale = now - timedelta(seconds=stale_seconds if stale_seconds is not None
                            else setting("IMPORT_STALE_SECONDS"))
    grace = now - timedelta(seconds=grace_seconds if grace_seconds is not None
                            else setting("IMPORT_REQUEUE_GRACE_SECONDS"))
    max_attempts = int(setting("IMPORT_MAX_ATTEMPTS"))
    report = {"requeued": [], "given_up": []}

    dead = session.execute(
        select(ImportRun.id, ImportRun.attempts, ImportRun.import_id)
        .where(ImportRun.status == "running",
               or_(ImportRun.heartbeat_at.is_(None), ImportRun.heartbeat_at < stale))
    ).all()
    for run_id, attempts, _import_id in dead:
        if attempts + 1 > max_attempts:
            result = session.execute(
                update(ImportRun).where(ImportRun.id == run_id, ImportRun.status == "running",
                                        or_(ImportRun.heartbeat_at.is_(None),
                                            ImportRun.heartbeat_at < stale))
                .values(status="failed", finished_at=now, lease=None, error_kind="worker",
                        error="The worker running this import stopped repeatedly; "
                              "the next run continues where it stopped.")
            )
            if result.rowcount:
                report["given_up"].append(run_id)
            continue
        result = session.execute(
            update(ImportRun).where(ImportRun.id == run_id, ImportRun.status == "running",
                                    or_(ImportRun.heartbeat_at.is_(None),
                                        ImportRun.heartbeat_at < stale))
            .values(status="queued", lease=None, attempts=attempts + 1, queued_at=now,
                    job_id=None)
        )
        session.commit()
        if result.rowcount and queue:
            enqueue(run_id, connection)
            report["requeued"].append(run_id)
    session.commit()

    if queue:
        connection = connection or redis_connection()
        lost = session.execute(
            select(ImportRun.id, ImportRun.job_id)
            .where(ImportRun.status == "queued", ImportRun.queued_at < grace)
        ).all()
        for run_id, job_id in lost:
            if not _job_alive(job_id, connection):
                session.execute(update(ImportRun).where(ImportRun.id == run_id)
                                .values(attempts=ImportRun.attempts + 1))
                session.commit()
                enqueue(run_id, connection)
                report["requeued"].append(run_id)
    return report
