"""The status page tells a busy worker from a dead one, and a late tick that only waits in
the queue from a stale scheduler."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Worker
from rq.utils import utcformat

from webapp.background import (
    PERIODIC_QUEUE,
    SCHEDULER_ALIVE_KEY,
    get_queue,
    redis_connection,
)
from webapp.extensions import db
from webapp.models import Heartbeat
from webapp.models.base import utcnow
from webapp.services.status import TICK_JOB

pytestmark = pytest.mark.redis


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _register(name: str, queues: list[str], state: str = "idle", heartbeat_age: float = 0,
              job: str | None = None) -> Worker:
    """A worker registered in Redis as a real one is; `job`: the description of the job it
    is running (an execution of its own, as RQ records it)."""
    conn = redis_connection()
    worker = Worker([get_queue(q, conn) for q in queues], connection=conn, name=name)
    worker.register_birth()
    worker.set_state(state)
    if job:
        running = get_queue(queues[-1], conn).enqueue("webapp.jobs.ping", "x",
                                                      description=job)
        worker.prepare_execution(running)
    conn.hset(worker.key, "last_heartbeat",
              utcformat(utcnow() - timedelta(seconds=heartbeat_age)))
    return worker


def test_status_tells_a_busy_worker_from_a_dead_one(signed_in, app):
    busy = _register("w-busy", ["periodic", "imports"], "busy", heartbeat_age=5,
                     job="import run 7")
    dead = _register("w-dead", ["imports"], "busy", heartbeat_age=600)
    try:
        html = _text(signed_in.get("/status/"))
        assert "busy: running import run 7" in html
        assert "not responding (no heartbeat for 6" in html  # 600 s and a little
        assert "1 worker alive, 1 not responding" in html
        assert "Something needs attention" in html
    finally:
        busy.register_death()
        dead.register_death()


def test_no_worker_responding_is_a_problem(signed_in, app):
    dead = _register("w-gone", ["imports"], heartbeat_age=900)
    try:
        html = _text(signed_in.get("/status/"))
        assert "No worker is responding" in html
    finally:
        dead.register_death()


def test_a_tick_waiting_behind_busy_workers_is_not_called_stale(signed_in, app):
    db.session.add(Heartbeat(name="scheduler", at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    conn = redis_connection()
    conn.set(SCHEDULER_ALIVE_KEY, "test", ex=60)
    get_queue(PERIODIC_QUEUE).enqueue("webapp.jobs.record_tick", job_id=TICK_JOB)
    worker = _register("w-long-import", ["periodic", "imports"], "busy", heartbeat_age=3,
                       job="import run 1")
    try:
        html = _text(signed_in.get("/status/"))
        assert "Scheduler stale" not in html
        assert "Scheduler running: its tick is waiting for a free worker" in html
        conn.delete(SCHEDULER_ALIVE_KEY)  # the scheduler process is gone: stale it is
        assert "Scheduler stale" in _text(signed_in.get("/status/"))
    finally:
        worker.register_death()
