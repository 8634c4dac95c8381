"""Order history import of a Shopify plugin source: walk the shop's orders.json and write
each page as backfilled orders (backfill.py), so past orders count in revenue, carts and
recommendations but start no automation. The run row is the truth the page reads."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Integration, OrderHistoryRun, PluginSource
from ..models.base import utcnow
from ..providers.errors import ProviderError
from . import backfill

log = logging.getLogger(__name__)

LIVE = ("queued", "running")
# A live run that has not moved for this long lost its worker (or its job): a new start
# marks it failed and takes over from its cursor.
STALE_AFTER = timedelta(minutes=15)
LOST = "The previous import stopped without finishing (its worker went away)."


class LeaseLost(Exception):
    """Another worker took the run over: this one stops without writing."""


def latest(source_id: int) -> OrderHistoryRun | None:
    return db.session.scalar(select(OrderHistoryRun).where(
        OrderHistoryRun.source_id == source_id).order_by(OrderHistoryRun.id.desc()).limit(1))


def is_stale(run: OrderHistoryRun) -> bool:
    """A live run that has not moved for STALE_AFTER: its worker or job is gone."""
    return run.status in LIVE and (run.updated_at or run.created_at) < utcnow() - STALE_AFTER


def integration_of(source: PluginSource) -> Integration | None:
    """The source's connected Shopify store, or None."""
    if source.kind != "shopify" or not source.integration_id:
        return None
    integration = db.session.get(Integration, source.integration_id)
    if integration is None or integration.status != "connected":
        return None
    return integration


def why_not(source: PluginSource) -> str:
    """Plain words for why history cannot be imported now ("" when it can)."""
    if source.kind != "shopify":
        return "Order history can be imported from Shopify stores only."
    if integration_of(source) is None:
        return "Connect the Shopify store on the Integrations page first."
    return ""


def start(source: PluginSource) -> tuple[OrderHistoryRun | None, str]:
    """Queue a history run (resuming from the cursor of a run that failed); (None, why)
    when refused. One live run per source: the insert fails on the unique index."""
    reason = why_not(source)
    if reason:
        return None, reason
    now = utcnow()
    db.session.execute(update(OrderHistoryRun).where(
        OrderHistoryRun.source_id == source.id, OrderHistoryRun.status.in_(LIVE),
        OrderHistoryRun.updated_at < now - STALE_AFTER,
    ).values(status="failed", error=LOST, lease=None, finished_at=now))
    db.session.commit()
    previous = latest(source.id)
    resume = previous is not None and previous.status == "failed" and previous.cursor
    run = OrderHistoryRun(
        source_id=source.id, status="queued",
        cursor=dict(previous.cursor) if resume else {},
        pages=previous.pages if resume else 0,
        orders_imported=previous.orders_imported if resume else 0)
    try:
        with db.session.begin_nested():
            db.session.add(run)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None, "An order history import of this store is already running."
    try:
        enqueue(run.id)
    except Exception:  # Redis down: say so now rather than leave a run nobody picks up
        log.warning("could not enqueue order history run %s", run.id)
        finish(run.id, None, "failed", "The job queue could not be reached; try again in a "
                                       "minute.")
        return None, "The job queue could not be reached; try again in a minute."
    return run, ""


def enqueue(run_id: int, connection=None) -> str:
    """The run's job on the imports queue (its id only)."""
    from ..background import get_queue
    from ..imports.runs import setting

    job_id = f"order-history-{run_id}-{uuid.uuid4().hex[:8]}"
    get_queue(setting("IMPORT_QUEUE"), connection).enqueue(
        "webapp.jobs.import_order_history", run_id, job_id=job_id,
        job_timeout=int(current_app.config.get("JOB_TIMEOUT_SECONDS", 3600)),
        result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
        description=f"order history {run_id}")
    return job_id


def claim(run_id: int) -> str | None:
    """Take a queued run: running, with a fresh lease (None if it is not queued)."""
    token = uuid.uuid4().hex
    now = utcnow()
    result = db.session.execute(update(OrderHistoryRun).where(
        OrderHistoryRun.id == run_id, OrderHistoryRun.status == "queued",
    ).values(status="running", lease=token, started_at=now, updated_at=now))
    db.session.commit()
    return token if result.rowcount == 1 else None


def finish(run_id: int, lease: str | None, status: str, error: str = "") -> None:
    """End the run (done or failed, with the reason in plain words)."""
    guard = OrderHistoryRun.lease == lease if lease else or_(OrderHistoryRun.lease.is_(None),
                                                             OrderHistoryRun.lease == "")
    db.session.execute(update(OrderHistoryRun).where(OrderHistoryRun.id == run_id, guard)
                       .values(status=status, error=error[:500], lease=None,
                               finished_at=utcnow()))
    db.session.commit()


def _client(integration: Integration):
    from ..imports.credentials import client_for

    return client_for(integration)


def execute(run_id: int, *, client_factory: Callable | None = None) -> str | None:
    """Run (or resume) a history run to its end; the final status, or None when the run
    was not queued (taken by another worker, or marked lost)."""
    from ..providers.shopify.orders import iter_order_pages

    lease = claim(run_id)
    if lease is None:
        return None
    run = db.session.get(OrderHistoryRun, run_id)
    source = db.session.get(PluginSource, run.source_id)
    integration = integration_of(source) if source is not None else None
    if integration is None:
        finish(run_id, lease, "failed", "The Shopify store is no longer connected: connect "
                                        "it again on the Integrations page, then retry.")
        return "failed"
    after_id = int((run.cursor or {}).get("last_id") or 0)
    try:
        client = (client_factory or _client)(integration)
        for page in iter_order_pages(client, after_id=after_id, limit=client.page_size):
            commit_page(run_id, lease, source.id, page.orders, page.last_id)
    except LeaseLost:
        db.session.rollback()
        log.warning("order history run %s was taken over; stopping", run_id)
        return None
    except ProviderError as exc:
        db.session.rollback()
        finish(run_id, lease, "failed", exc.reason)
        return "failed"
    except Exception:
        db.session.rollback()
        log.exception("order history run %s failed", run_id)
        finish(run_id, lease, "failed", "Something went wrong while importing the orders. "
                                        "Start the import again: it resumes where it stopped.")
        return "failed"
    finish(run_id, lease, "done")
    return "done"


def commit_page(run_id: int, lease: str, source_id: int, orders: list[dict],
                last_id: int) -> int:
    """One transaction: the page's orders, the run's counts and its cursor together, only
    while this worker holds the lease. Returns how many orders were written."""
    written = backfill.import_shopify_orders(source_id, orders) if orders else 0
    result = db.session.execute(update(OrderHistoryRun).where(
        OrderHistoryRun.id == run_id, OrderHistoryRun.lease == lease,
        OrderHistoryRun.status == "running",
    ).values(cursor={"last_id": int(last_id)}, pages=OrderHistoryRun.pages + 1,
             orders_imported=OrderHistoryRun.orders_imported + written,
             updated_at=utcnow()))
    if result.rowcount != 1:
        db.session.rollback()
        raise LeaseLost(run_id)
    db.session.commit()
    return written
