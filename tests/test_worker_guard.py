"""A real worker runs only Tributary's job functions: foreign or pickled jobs are refused."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
from redis import Redis

from webapp.background import JsonJob, get_queue
from webapp.extensions import db
from webapp.models import Heartbeat

from .conftest import ROOT, process_env

pytestmark = pytest.mark.redis


class _MakesADirectoryWhenUnpickled:
    """A pickle payload that runs code on load (os.mkdir): the attack JSON jobs prevent."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _put_pickled_job(conn: Redis, job_id: str, marker: str) -> None:
    """Write a job hash and queue entry straight into Redis, as an attacker with access would."""
    payload = pickle.dumps(("webapp.jobs.ping", None, (_MakesADirectoryWhenUnpickled(marker),),
                            {}))
    conn.hset(f"rq:job:{job_id}", mapping={
        "data": payload, "origin": "default", "status": "queued", "description": "evil",
        "created_at": "2026-01-01T00:00:00.000000Z", "enqueued_at": "2026-01-01T00:00:00.000000Z",
        "timeout": 30,
    })
    conn.sadd("rq:queues", "rq:queue:default")
    conn.rpush("rq:queue:default", job_id)


def _burst_worker(app_config) -> None:
    subprocess.run([sys.executable, "worker.py", "--burst"], cwd=ROOT,
                   env=process_env(app_config), check=True, timeout=120,
                   capture_output=True)


def test_worker_refuses_foreign_functions_and_still_runs_ours(app, app_config, tmp_path):
    queue = get_queue("default")
    marker = tmp_path / "written-by-a-foreign-job"
    foreign = queue.enqueue("os.mkdir", str(marker), job_timeout=30)
    builtin = queue.enqueue("os.getpid", job_timeout=30)
    ours = queue.enqueue("webapp.jobs.ping", "guard", job_timeout=30)

    _burst_worker(app_config)

    assert not marker.exists(), "a foreign function ran in the worker"
    for job in (foreign, builtin):
        assert job.get_status(refresh=True) == "failed"
        assert job.return_value() is None
    assert ours.get_status(refresh=True) == "finished"
    assert ours.return_value() == "pong:guard"
    db.session.expire_all()
    assert db.session.get(Heartbeat, "ping:guard") is not None


def test_worker_never_unpickles_a_job_put_directly_into_redis(app, app_config, redis_url,
                                                             tmp_path):
    conn = Redis.from_url(redis_url)
    marker = tmp_path / "unpickled"
    _put_pickled_job(conn, "evil-pickle", str(marker))
    ours = get_queue("default").enqueue("webapp.jobs.ping", "after-evil", job_timeout=30)

    _burst_worker(app_config)

    assert not marker.exists(), "the worker unpickled a job's data"
    assert JsonJob.fetch("evil-pickle", connection=conn).get_status(refresh=True) == "failed"
    assert ours.get_status(refresh=True) == "finished"


def test_jobs_are_stored_as_json(app, redis_url):
    job = get_queue("imports").enqueue("webapp.jobs.ping", "json", job_timeout=30)
    raw = Redis.from_url(redis_url).hget(f"rq:job:{job.id}", "data")
    import json
    import zlib

    assert json.loads(zlib.decompress(raw)) == ["webapp.jobs.ping", None, ["json"], {}]
