"""Workers and the scheduler against a real Redis server and separate processes."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis

from webapp.background import (
    PERIODIC,
    JsonJob,
    PeriodicJob,
    cancel_undefined,
    get_queue,
    make_scheduler,
    register_periodic,
)
from webapp.extensions import db
from webapp.models import Heartbeat

from .conftest import ROOT, process_env

pytestmark = pytest.mark.redis


def _wait(predicate, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def test_job_enqueued_by_the_app_runs_in_a_separate_worker_process(app, app_config):
    job = get_queue("default").enqueue("webapp.jobs.ping", "t1", job_timeout=30)
    assert job.get_status() == "queued"
    worker = subprocess.Popen(
        [sys.executable, "worker.py", "--name", "test-worker"],
        cwd=ROOT, env=process_env(app_config),
    )
    try:
        assert _wait(lambda: job.get_status(refresh=True) == "finished"), job.get_status()
        assert job.return_value() == "pong:t1"
        db.session.expire_all()
        beat = db.session.get(Heartbeat, "ping:t1")
        assert beat is not None, "the job did not write through the worker's app context"
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert worker.returncode == 0  # warm shutdown on SIGTERM


def test_scheduler_registers_periodic_jobs_once_across_two_starts(app, app_config, redis_url):
    env = process_env(app_config)
    for _ in range(2):  # two starts of the scheduler process
        out = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "webapp", "scheduler", "run", "--burst"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
    conn = Redis.from_url(redis_url)
    scheduler = make_scheduler(conn)
    scheduled = [job.id for job in scheduler.get_jobs()]
    assert sorted(scheduled) == sorted(spec.id for spec in PERIODIC)
    for spec in PERIODIC:
        job = JsonJob.fetch(spec.id, connection=conn)
        assert job.meta["interval"] == spec.interval
        assert job.result_ttl > spec.interval


def test_register_periodic_is_idempotent_and_replaces_changed_jobs(app, redis_url):
    conn = Redis.from_url(redis_url)
    scheduler = make_scheduler(conn)
    assert register_periodic(scheduler) == len(PERIODIC)
    assert register_periodic(make_scheduler(conn)) == 0
    changed = tuple(
        type(spec)(id=spec.id, func=spec.func, interval=spec.interval * 2) for spec in PERIODIC
    )
    assert register_periodic(scheduler, changed) == len(PERIODIC)
    assert len(list(scheduler.get_jobs())) == len(PERIODIC)
    stored = JsonJob.fetch(PERIODIC[0].id, connection=conn)
    assert stored.meta["interval"] == PERIODIC[0].interval * 2


def test_scheduler_tick_reaches_the_status_data(app, app_config):
    env = process_env(app_config)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "webapp", "scheduler", "run", "--burst"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=60,
    )
    subprocess.run(
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env=env, check=True, timeout=60
    )
    db.session.expire_all()
    tick = db.session.get(Heartbeat, "scheduler")
    assert tick is not None


def test_scheduler_cancels_periodic_jobs_that_are_no_longer_defined(app, app_config,
                                                                    redis_url):
    conn = Redis.from_url(redis_url)
    scheduler = make_scheduler(conn)
    retired = PeriodicJob(id="tributary-retired-job", func="webapp.jobs.record_tick",
                          interval=60)
    register_periodic(scheduler, PERIODIC + (retired,))
    once = scheduler.enqueue_at(datetime.now(UTC) + timedelta(hours=1), "webapp.jobs.ping",
                                "later")  # a one-off scheduled job is not periodic: it stays
    conn.zadd(scheduler.scheduled_jobs_key, {"tributary-pickled-job": 1})  # unreadable
    conn.hset(JsonJob.key_for("tributary-pickled-job"), "data", b"\x80\x04junk")
    assert retired.id in scheduler

    out = subprocess.run(  # a new version's scheduler starts without the retired job
        [sys.executable, "-m", "flask", "--app", "webapp", "scheduler", "run", "--burst"],
        cwd=ROOT, env=process_env(app_config), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    scheduled = sorted(job_id.decode() for job_id in
                       conn.zrange(scheduler.scheduled_jobs_key, 0, -1))
    assert scheduled == sorted([spec.id for spec in PERIODIC] + [once.id])
    assert not conn.exists(JsonJob.key_for(retired.id))
    assert not conn.exists(JsonJob.key_for("tributary-pickled-job"))
    assert cancel_undefined(scheduler) == []  # nothing left to cancel
