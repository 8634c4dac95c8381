"""Periodic jobs never wait behind imports: they have a queue of their own, served first by
every worker and by a light worker of its own (as `make run` and systemd start them)."""

from __future__ import annotations

import pytest

from simulators.dataset import generate
from tests.imports import workers
from tests.imports.outage import env_for, scheduler, stop_process, worker
from tests.imports.test_workers import make_integration_import, run_row, wait_for
from tests.providers.cases import load_case
from webapp.background import PERIODIC, PERIODIC_QUEUE, queue_names
from webapp.extensions import db
from webapp.imports.runs import start_run
from webapp.models import Heartbeat
from webapp.services.status import current_status

pytestmark = pytest.mark.redis


def test_periodic_jobs_have_their_own_queue_served_first(app):
    assert {job.queue for job in PERIODIC} == {PERIODIC_QUEUE}
    app.config["QUEUE_NAMES"] = "imports,default,periodic"
    assert queue_names()[0] == PERIODIC_QUEUE


def test_tick_runs_while_an_import_keeps_the_main_worker_busy(app, app_config, database_url,
                                                             tmp_path):
    people = generate(3000, seed=9)
    case = load_case("shopify")(people)
    running, _sim, config = workers.start_simulator("shopify", people, delay=1.0)
    env = env_for(app_config, database_url)
    main = worker(env, tmp_path / "main.log", "--name", "w-main")
    light = worker(env, tmp_path / "periodic.log", PERIODIC_QUEUE, "--name", "w-periodic")
    sched = None
    try:
        imp = make_integration_import("shopify", config, case.group, case.source)
        run_id = start_run(imp.id).id
        wait_for(lambda: run_row(run_id).pages >= 1, 60, "the import never started")
        sched = scheduler(env, tmp_path / "scheduler.log")  # its first tick is due at once
        wait_for(lambda: db.session.get(Heartbeat, "scheduler"), 30,
                 "the tick waited behind the import")
        assert run_row(run_id).status == "running", "the import ended before the tick ran"

        status = current_status()
        assert status.scheduler.ok and "Scheduler ticking" in status.scheduler.summary
        states = {w["name"]: w["state"] for w in status.workers}
        assert states["w-main"] == f"busy: running import run {run_id}"
        assert status.workers_check.ok and "2 workers alive" in status.workers_check.summary
    finally:
        for proc in (sched, main, light):
            stop_process(proc)
        running.stop()
