"""Real RQ worker processes on the real Redis: crash recovery and locks."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from simulators.dataset import generate
from tests.factories import make_list
from tests.imports import sims, workers
from tests.providers.cases import load_case
from webapp.extensions import db
from webapp.imports import credentials
from webapp.imports.runs import start_run, sweep
from webapp.models import Contact, ImportRun, Integration, RecurringImport

pytestmark = pytest.mark.redis
N = 10_000


def make_integration_import(name: str, config: dict, group: str, source: str):
    integration = Integration(provider=name, name=name, settings=config["settings"])
    credentials.store(integration, config["credentials"])
    db.session.add(integration)
    target = make_list(f"{name} customers")
    imp = RecurringImport(integration=integration, list_id=target.id, group=group,
                          source=source, mapping={"email": "email", "Full name": "name"})
    db.session.add(imp)
    db.session.commit()
    return imp


def wait_for(predicate, timeout: float, message: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message)


def run_row(run_id: int) -> ImportRun:
    db.session.expire_all()
    return db.session.get(ImportRun, run_id)


@pytest.mark.parametrize("name", ["shopify", "zoho"])
def test_kill_9_mid_import_resumes_without_duplicates(app, app_config, database_url,
                                                      redis_url, name):
    people = generate(N, seed=3)
    case = load_case(name)(people)
    running, sim, config = workers.start_simulator(name, people, delay=0.02)
    env = workers.worker_env(database_url, redis_url, app_config)
    first = workers.start_worker(env)
    second = None
    try:
        imp = make_integration_import(name, config, case.group, case.source)
        run_id = start_run(imp.id).id
        wait_for(lambda: run_row(run_id).pages >= 5, 60, "the worker never got going")
        workers.kill9(first)
        killed_at = run_row(run_id)
        assert killed_at.status == "running" and killed_at.fetched < N
        committed_pages = killed_at.pages

        second = workers.start_worker(env)
        time.sleep(1.1)
        report = sweep(stale_seconds=1, grace_seconds=1)
        assert run_id in report["requeued"]
        final = wait_for(lambda: (r := run_row(run_id)).status not in ("queued", "running")
                         and r, 90, "the resumed run did not finish")
        assert final.status == "completed", final.error  # ~3 % bad emails: normal
        assert final.attempts == 1 and final.pages > committed_pages

        emails = db.session.scalars(select(Contact.email_norm)
                                    .where(Contact.list_id == imp.list_id)).all()
        assert len(emails) == len(set(emails))
        assert set(emails) == sims.expected_emails(case)
        assert final.added == len(emails) and final.fetched == N
        assert final.rejected_by_reason.get("already_in_queue") == 1
        # Only the page in flight at the kill may have been fetched twice.
        assert sim.repeated_list_requests() <= 1, sim.repeated_list_requests()
    finally:
        workers.stop_worker(first)
        if second:
            workers.stop_worker(second)
        running.stop()


def test_run_after_redis_flush_is_requeued_by_the_sweep(app, app_config, database_url,
                                                        redis_url):
    from redis import Redis

    people = generate(300, seed=5)
    case = load_case("shopify")(people)
    running, _sim, config = workers.start_simulator("shopify", people)
    env = workers.worker_env(database_url, redis_url, app_config)
    worker = None
    try:
        imp = make_integration_import("shopify", config, case.group, case.source)
        run_id = start_run(imp.id).id
        Redis.from_url(redis_url).flushdb()  # the job is gone; the run row says queued
        worker = workers.start_worker(env)
        time.sleep(0.5)
        assert run_row(run_id).status == "queued"
        report = sweep(grace_seconds=0)
        assert report["requeued"] == [run_id]
        final = wait_for(lambda: (r := run_row(run_id)).status not in ("queued", "running")
                         and r, 60, "the re-queued run did not finish")
        assert final.status == "completed", final.error  # ~3 % bad emails: normal
        assert db.session.scalar(select(func.count(Contact.id))) == len(
            sims.expected_emails(case))
    finally:
        if worker:
            workers.stop_worker(worker)
        running.stop()
