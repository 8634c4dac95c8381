"""Two runs finishing at once: the settings row and the overage ledger are created by two
processes in the same instant (a barrier holds each INSERT until both reach it)."""

from __future__ import annotations

import multiprocessing
import threading
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from tests.factories import make_contacts, make_list
from webapp.extensions import db
from webapp.models import OverageEntry, WorkspaceSettings

RACED_TABLES = ("workspace_settings", "overage_ledger")


def _finish_together(config: dict, task: str, barrier, results) -> None:
    """In a separate process: run `task`, holding each INSERT on a raced table at the
    barrier so that both processes write at once, after both have read."""
    from webapp import create_app

    app = create_app(config)
    with app.app_context():
        held: set[str] = set()

        def hold(_conn, _cursor, statement, *_args):
            text = " ".join(statement.split()).lower()
            for table in RACED_TABLES:
                if text.startswith(f"insert into {table}") and table not in held:
                    held.add(table)
                    try:
                        barrier.wait(timeout=20)
                    except threading.BrokenBarrierError:
                        pass

        event.listen(db.engine, "before_cursor_execute", hold)
        try:
            if task == "settings":
                WorkspaceSettings.get()
                db.session.commit()
            else:
                from webapp.imports.forecast import record_overage

                record_overage(run_id=None)
            results.put((task, "ok"))
        except Exception as exc:  # reported to the test, which fails on it
            results.put((task, f"{type(exc).__name__}: {str(exc)[:300]}"))


def _race(config: dict, task: str) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_finish_together, args=(config, task, barrier, results))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=90)[1] for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    return outcomes


@pytest.fixture
def committed_app(app):
    """The app with nothing open in the test's own session while the processes race."""
    db.session.commit()
    return app


def test_settings_row_created_by_two_processes_at_once(committed_app, app_config):
    assert db.session.get(WorkspaceSettings, 1) is None
    db.session.rollback()
    assert _race(app_config, "settings") == ["ok", "ok"]
    db.session.expire_all()
    assert db.session.scalar(select(WorkspaceSettings.subscriber_limit)) == 2500


def test_overage_ledger_entry_created_by_two_processes_at_once(committed_app, app_config):
    settings = WorkspaceSettings.get()
    settings.subscriber_limit, settings.extension_price = 10, Decimal("15")
    make_contacts(make_list(), 25)
    db.session.commit()
    assert _race(app_config, "overage") == ["ok", "ok"]
    db.session.expire_all()
    entries = db.session.scalars(select(OverageEntry)).all()
    assert len(entries) == 1
    assert (entries[0].peak_count, entries[0].over, entries[0].blocks) == (25, 15, 1)
    assert Decimal(str(entries[0].fee)) == Decimal("15")
