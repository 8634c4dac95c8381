"""RQ job functions. They take ids (never objects or secrets) and build their own context."""

from __future__ import annotations

from contextlib import nullcontext

from flask import has_app_context

from .extensions import db
from .models import Heartbeat
from .models.base import utcnow


def app_context():
    """The running app's context (the worker pushes one), else a fresh app's."""
    if has_app_context():
        return nullcontext()
    from . import create_app

    return create_app().app_context()


def beat(name: str) -> None:
    """Record that `name` reported in now (an upsert of one heartbeat row)."""
    row = db.session.get(Heartbeat, name)
    if row is None:
        db.session.add(Heartbeat(name=name, at=utcnow()))
    else:
        row.at = utcnow()
    db.session.commit()


def record_tick() -> str:
    """Periodic: the scheduler's tick, shown on the status page."""
    with app_context():
        beat("scheduler")
    return "tick"


def ping(name: str) -> str:
    """A no-op job that proves a worker runs jobs against the database (status page, tests)."""
    with app_context():
        beat(f"ping:{name}")
    return f"pong:{name}"


# ---------------------------------------------------------------------- import engine


def run_import(run_id: int) -> str | None:
    """Execute (or resume) one import run; the run row holds everything else."""
    with app_context():
        from .imports.runs import execute

        try:
            return execute(run_id)
        finally:
            db.session.remove()


def dispatch_imports() -> int:
    """Periodic: start the recurring imports that are due."""
    with app_context():
        from .imports.schedule import dispatch_due

        return len(dispatch_due())


def sweep_imports() -> dict:
    """Periodic: re-queue runs (and undos) whose worker died or whose job vanished; drop
    the undo journal of runs past the undo window."""
    with app_context():
        from .imports import undo
        from .imports.runs import sweep

        report = sweep()
        report["undos_requeued"] = undo.sweep()
        report["journal_purged"] = undo.purge()
        return report


def run_undo(undo_id: int) -> str | None:
    """Execute (or resume) the undo of an import run; the undo row holds everything else."""
    with app_context():
        from .imports.undo import execute

        try:
            return execute(undo_id)
        finally:
            db.session.remove()


# --------------------------------------------------------------- plugin events


def process_plugin_events() -> int:
    """Process pending plugin events in batches until none is left; returns how many."""
    with app_context():
        from .plugins.process import process_pending

        try:
            return process_pending()
        finally:
            db.session.remove()


def sweep_plugin_events() -> int:
    """Periodic: queue processing when events are pending (a lost nudge, a killed worker)."""
    with app_context():
        from .plugins.process import sweep

        try:
            return sweep()
        finally:
            db.session.remove()


# --------------------------------------------------------------- e-commerce


def sweep_abandoned_carts() -> dict:
    """Periodic: mark carts abandoned once their shop's delay passed (and lost later)."""
    with app_context():
        from .commerce.carts import sweep

        try:
            result = sweep()
            db.session.commit()
            return result
        finally:
            db.session.remove()


def rebuild_recommendations() -> dict:
    """Periodic: recompute the co-purchase pairs and the popular products."""
    with app_context():
        from .commerce.recommend import rebuild

        try:
            result = rebuild()
            db.session.commit()
            return result
        finally:
            db.session.remove()


def import_order_history(run_id: int) -> str | None:
    """Execute (or resume) one order history import; the run row holds everything else."""
    with app_context():
        from .commerce.history import execute

        try:
            return execute(run_id)
        finally:
            db.session.remove()


# ---------------------------------------------------------------------- automations


def evaluate_automations() -> dict:
    """Periodic: every enabled automation over all contacts (time-based conditions)."""
    with app_context():
        from .commerce.automations import evaluate_all

        try:
            return {str(k): v for k, v in evaluate_all().items()}
        finally:
            db.session.remove()


def evaluate_automation(automation_id: int) -> int:
    """One automation over all contacts (queued when it is switched on)."""
    with app_context():
        from .commerce.automations import evaluate

        try:
            return evaluate(automation_id).entered
        finally:
            db.session.remove()


def evaluate_touched_contacts() -> int:
    """Drain the contacts that events touched and evaluate the automations over them."""
    with app_context():
        from .background import redis_connection
        from .commerce.automations import drain_touched

        try:
            return drain_touched(redis_connection())
        finally:
            db.session.remove()


# The only functions a Tributary worker runs; any other job is failed without being imported.
JOB_FUNCTIONS = (record_tick, ping, run_import, dispatch_imports, sweep_imports, run_undo,
                 process_plugin_events, sweep_plugin_events, sweep_abandoned_carts,
                 rebuild_recommendations, import_order_history, evaluate_automations,
                 evaluate_automation, evaluate_touched_contacts)
ALLOWED_JOBS: frozenset[str] = frozenset(f"{f.__module__}.{f.__name__}" for f in JOB_FUNCTIONS)
