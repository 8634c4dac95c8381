"""Worker shutdown and Redis outages while an import runs, with real processes: SIGTERM to
the worker (systemd's KillMode=mixed) hands the run back at once; a 10-second Redis outage
mid-import neither kills the worker nor the run."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import select

from simulators.dataset import generate
from tests.conftest import _config
from tests.imports import sims, workers
from tests.imports.outage import PrivateRedis, env_for, stop_process
from tests.imports.outage import worker as worker_process
from tests.imports.test_workers import make_integration_import, run_row, wait_for
from tests.providers.cases import load_case
from webapp.background import get_queue
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


def _contacts(list_id: int) -> list[str]:
    return db.session.scalars(select(Contact.email_norm).where(Contact.list_id == list_id)).all()


def _log(path) -> str:
    return path.read_text()[-3000:] if path.exists() else ""


def test_sigterm_to_the_worker_hands_the_running_import_back_at_once(
        app, app_config, database_url, private_redis, tmp_path):
    people = generate(3000, seed=7)
    case = load_case("shopify")(people)
    running, sim, config = workers.start_simulator("shopify", people, delay=0.5)
    env = env_for(app_config, database_url)
    first = worker_process(env, tmp_path / "first.log", "imports")
    second = None
    try:
        imp = make_integration_import("shopify", config, case.group, case.source)
        run_id = start_run(imp.id).id
        wait_for(lambda: run_row(run_id).pages >= 2, 60, "the worker never got going")
        os.kill(first.pid, signal.SIGTERM)  # the main process only, as KillMode=mixed does
        started = time.monotonic()
        first.wait(timeout=20)
        assert first.returncode == 0
        stopped_in = time.monotonic() - started
        print(f"SIGTERM -> worker exited, run handed back: {stopped_in:.2f} s")
        assert stopped_in < 10, "the worker waited for the whole import"
        handed = run_row(run_id)
        assert handed.status == "queued" and handed.lease is None, handed.status
        assert handed.job_id, "the handed-back run was not enqueued again"
        assert 2 <= handed.pages and handed.fetched < len(people)

        second = worker_process(env, tmp_path / "second.log", "imports")
        final = wait_for(lambda: (r := run_row(run_id)).status not in ("queued", "running")
                         and r, 90, "the handed-back run did not finish")
        assert final.status == "completed", final.error  # ~3 % bad emails: normal
        assert final.attempts == 0 and final.fetched == len(people)
        emails = _contacts(imp.list_id)
        assert len(emails) == len(set(emails)) and set(emails) == sims.expected_emails(case)
        assert final.added == len(emails)
        assert sim.repeated_list_requests() == 0, "a committed page was fetched twice"
    finally:
        stop_process(first)
        stop_process(second)
        running.stop()
        print(_log(tmp_path / "first.log"))


def test_worker_lives_through_a_redis_outage_mid_import_and_runs_the_next_job(
        app, app_config, database_url, private_redis, tmp_path):
    people = generate(3000, seed=8)
    case = load_case("shopify")(people)
    running, _sim, config = workers.start_simulator("shopify", people, delay=1.0)
    env = env_for(app_config, database_url)
    worker = worker_process(env, tmp_path / "worker.log")
    try:
        imp = make_integration_import("shopify", config, case.group, case.source)
        run_id = start_run(imp.id).id
        wait_for(lambda: run_row(run_id).pages >= 1, 60, "the worker never got going")
        private_redis.stop()
        time.sleep(10)
        assert worker.poll() is None, "the worker quit during the Redis outage"
        private_redis.start()  # back, and empty
        final = wait_for(lambda: (r := run_row(run_id)).status not in ("queued", "running")
                         and r, 90, "the run did not finish after the outage")
        assert final.status == "completed", final.error  # ~3 % bad emails: normal
        emails = _contacts(imp.list_id)
        assert len(emails) == len(set(emails)) and set(emails) == sims.expected_emails(case)
        assert final.added == len(emails)

        job = get_queue("default").enqueue("webapp.jobs.ping", "after-outage", job_timeout=30)
        wait_for(lambda: job.get_status(refresh=True) == "finished", 60,
                 "the worker did not run a job after Redis came back")
        assert worker.poll() is None
    finally:
        stop_process(worker)
        running.stop()
        print(_log(tmp_path / "worker.log"))
