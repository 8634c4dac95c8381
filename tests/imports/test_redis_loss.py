"""Redis losing its data or going away, with real processes on a Redis of the test's own
(so that stopping it touches no other test): the scheduler re-registers its periodic jobs,
workers survive and re-register, the sweep re-enqueues what vanished, runs complete exactly."""

from __future__ import annotations

import time

import pytest
from redis import Redis
from sqlalchemy import select

from simulators.dataset import generate
from tests.conftest import _config
from tests.imports import sims, workers
from tests.imports.outage import PrivateRedis, env_for, stop_process
from tests.imports.outage import scheduler as scheduler_process
from tests.imports.outage import worker as worker_process
from tests.imports.test_workers import make_integration_import, run_row, wait_for
from tests.providers.cases import load_case
from webapp.background import PERIODIC, make_scheduler, workers_alive
from webapp.extensions import db
from webapp.imports.runs import start_run
from webapp.models import Contact

pytestmark = pytest.mark.redis


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def app_config(database_url, private_redis):
    return _config(database_url, private_redis.url)


def _periodic_registered(conn: Redis) -> bool:
    scheduler = make_scheduler(conn)
    return all(spec.id in scheduler for spec in PERIODIC)


def test_scheduler_registers_its_jobs_again_after_flushall_and_an_empty_restart(
        app, app_config, database_url, private_redis, tmp_path):
    scheduler = scheduler_process(env_for(app_config, database_url), tmp_path / "scheduler.log")
    try:
        conn = private_redis.client()
        wait_for(lambda: _periodic_registered(conn), 30, "the scheduler never registered")
        conn.flushall()
        flushed = time.monotonic()
        wait_for(lambda: _periodic_registered(conn), 15, "not re-registered after FLUSHALL")
        print(f"FLUSHALL -> periodic jobs registered again: {time.monotonic() - flushed:.2f} s")
        private_redis.stop()
        time.sleep(3)  # the scheduler loops against a Redis that is down
        private_redis.start()
        conn = private_redis.client()
        wait_for(lambda: _periodic_registered(conn), 30,
                 "not re-registered after Redis restarted empty")
        assert scheduler.poll() is None, "the scheduler exited during the outage"
    finally:
        stop_process(scheduler)
        print((tmp_path / "scheduler.log").read_text()[-3000:])


def test_run_queued_while_redis_was_down_completes_after_it_returns_empty(
        app, app_config, database_url, private_redis, tmp_path):
    people = generate(300, seed=5)
    case = load_case("shopify")(people)
    running, _sim, config = workers.start_simulator("shopify", people)
    env = env_for(app_config, database_url)
    worker = worker_process(env, tmp_path / "worker.log", "--name", "w-loss")
    scheduler = scheduler_process(env, tmp_path / "scheduler.log")
    try:
        conn = private_redis.client()
        wait_for(lambda: [w.name for w in workers_alive(conn)] == ["w-loss"], 30,
                 "the worker never registered")
        wait_for(lambda: _periodic_registered(conn), 30, "the scheduler never registered")
        imp = make_integration_import("shopify", config, case.group, case.source)
        private_redis.stop()
        run = start_run(imp.id)  # Redis is down: the run is recorded queued, without a job
        assert run.status == "queued" and run.job_id is None
        time.sleep(3)
        private_redis.start()  # back, and empty
        conn = private_redis.client()
        final = wait_for(lambda: (r := run_row(run.id)).status not in ("queued", "running")
                         and r, 90, "the run queued during the outage never finished")
        assert final.status == "completed", final.error  # ~3 % bad emails: normal
        emails = db.session.scalars(select(Contact.email_norm)
                                    .where(Contact.list_id == imp.list_id)).all()
        assert len(emails) == len(set(emails)) == len(sims.expected_emails(case))
        assert final.added == len(emails)
        # The worker that lived through the outage registered itself again.
        wait_for(lambda: [w.name for w in workers_alive(conn)] == ["w-loss"], 30,
                 "the worker did not register again after Redis came back empty")
        assert worker.poll() is None and scheduler.poll() is None
    finally:
        stop_process(worker)
        stop_process(scheduler)
        running.stop()
        print((tmp_path / "worker.log").read_text()[-3000:])


def test_import_now_with_redis_down_says_it_is_queued_not_started(
        app, private_redis, signed_in):
    from tests.test_integrations_support import make_import, make_integration
    from webapp.models import ImportRun

    imp = make_import(make_integration())
    imp.mapping = {"email": "email"}
    db.session.commit()
    private_redis.stop()
    resp = signed_in.post(f"/imports/{imp.id}/run", {"integration": imp.integration_id},
                          htmx=True)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Import started." not in html
    assert "the job queue is unreachable right now" in html
    assert "It will start by itself when the queue is back." in html
    run = db.session.scalar(select(ImportRun).where(ImportRun.import_id == imp.id))
    assert run.status == "queued" and run.job_id is None
