"""Undo with real worker processes: kill -9 in the middle of undoing a 10,000-contact run,
the sweep queues it again, another worker resumes it and the list ends exactly as before."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tests.factories import make_contacts, make_list
from tests.imports import workers
from tests.imports.fakes import FakeProvider, rec
from tests.imports.test_undo import snapshot
from tests.imports.test_workers import wait_for
from webapp.extensions import db
from webapp.imports import undo as engine
from webapp.models import Contact, ImportUndo, JournalEntry

pytestmark = pytest.mark.redis
N, EXISTING = 10_000, 2_000


def undo_row(undo_id: int) -> ImportUndo:
    db.session.expire_all()
    return db.session.get(ImportUndo, undo_id)


def test_kill_9_mid_undo_resumes_and_ends_exact(app, app_config, database_url, redis_url,
                                                make_import, run_import):
    target = make_list("Ten thousand")
    make_contacts(target, EXISTING, prefix="p")  # p0..p1999@example.com, named "Person i"
    before = snapshot(target.id)
    imp = make_import(contact_list=target)
    records = [rec(i, f"p{i}@example.com", first="Imported", last=str(i)) for i in range(N)]
    run = run_import(imp, FakeProvider(records, page_size=1000))
    assert (run.added, run.updated) == (N - EXISTING, EXISTING)
    assert db.session.scalar(select(func.count()).select_from(JournalEntry)) == N

    env = workers.worker_env(database_url, redis_url, app_config,
                             TRIBUTARY_IMPORT_UNDO_PAGE="500",
                             TRIBUTARY_IMPORT_UNDO_PAUSE_SECONDS="0.1")
    first = workers.start_worker(env)
    second = None
    try:
        started, why = engine.start_undo(run)
        assert started is not None, why
        undo_id = started.id
        wait_for(lambda: undo_row(undo_id).done >= 2000, 60, "the worker never got going")
        workers.kill9(first)
        killed = undo_row(undo_id)
        assert killed.status == "running" and 0 < killed.done < N, killed.done
        assert killed.cursor > 0

        second = workers.start_worker(env)
        time.sleep(1.1)
        assert undo_id in engine.sweep(stale_seconds=1, grace_seconds=1)
        final = wait_for(lambda: (u := undo_row(undo_id)).status not in ("queued", "running")
                         and u, 90, "the resumed undo did not finish")
        assert final.status == "completed", final.error
        assert final.attempts == 1 and final.done == final.total == N
        assert (final.removed, final.restored, final.kept, final.gone) == (
            N - EXISTING, EXISTING, 0, 0)
        assert snapshot(target.id) == before
        assert db.session.scalar(select(func.count(Contact.id))) == EXISTING
    finally:
        workers.stop_worker(first)
        if second:
            workers.stop_worker(second)
