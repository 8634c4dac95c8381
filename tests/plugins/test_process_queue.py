"""The processing job and its wiring: the allow-listed job, the `plugins` queue, one queueing
mechanism (the two fixed job ids of plugins/nudge.py) used by intake, the event log's replay,
the time-out hand-over and the 30 s sweep; the sweep also queues again when a killed worker
took its job along, and Redis being down never raises."""

from __future__ import annotations

import uuid

import pytest
from redis import Redis
from sqlalchemy import select

from tests.factories import make_list
from tests.plugins import factories as f
from webapp import jobs
from webapp.background import PERIODIC, get_queue
from webapp.extensions import db
from webapp.models import PluginEvent, PluginSource
from webapp.plugins import log, nudge, process

pytestmark = pytest.mark.usefixtures("app")


def _queue(redis_url):
    return get_queue(nudge.QUEUE, connection=Redis.from_url(redis_url))


def _pending_event() -> int:
    """One pending event, stored as intake leaves it but without intake's nudge."""
    source = db.session.scalars(select(PluginSource)).first() or f.make_source(make_list())
    return f.store_segment(source, f.track("Signed Up", email=f"{uuid.uuid4().hex}@x.example")).id


def _taken_by_worker(redis, job_id: str, worker: str, alive: bool = True) -> None:
    """What a worker leaves in Redis when it starts the job: the job out of the queue, its
    hash marked started by that worker, and (while the worker lives) the worker's key."""
    get_queue(nudge.QUEUE, redis).remove(job_id)
    redis.hset(f"rq:job:{job_id}", mapping={"status": "started", "worker_name": worker})
    if alive:
        redis.hset(f"rq:worker:{worker}", "state", "busy")
        redis.expire(f"rq:worker:{worker}", 90)


def test_the_job_is_allow_listed_and_the_sweep_is_periodic(app):
    assert "webapp.jobs.process_plugin_events" in jobs.ALLOWED_JOBS
    assert "webapp.jobs.sweep_plugin_events" in jobs.ALLOWED_JOBS
    [sweep] = [p for p in PERIODIC if p.func == "webapp.jobs.sweep_plugin_events"]
    assert sweep.interval == 30 and sweep.queue == "periodic"
    assert "plugins" in app.config["QUEUE_NAMES"].split(",")


def test_events_pending_and_no_job_the_sweep_queues_one(app, redis_url):
    event_id = _pending_event()  # stored without a nudge (as if Redis had been away)
    queue = _queue(redis_url)
    assert queue.count == 0
    assert jobs.sweep_plugin_events() == 1
    assert queue.job_ids == [nudge.JOB_IDS[0]]
    assert queue.jobs[0].func_name == "webapp.jobs.process_plugin_events"
    assert not queue.jobs[0].args and not queue.jobs[0].kwargs  # ids only, here none
    assert jobs.sweep_plugin_events() == 1 and queue.job_ids == [nudge.JOB_IDS[0]]
    assert jobs.process_plugin_events() == 1
    db.session.expire_all()
    assert db.session.get(PluginEvent, event_id).status == "processed"
    queue.remove(nudge.JOB_IDS[0])  # a worker would have taken it
    assert jobs.sweep_plugin_events() == 0 and queue.count == 0  # nothing pending: nothing
    # No flag of the old mechanism is left behind.
    assert not Redis.from_url(redis_url).keys("tributary:plugins:*")


def test_a_running_job_and_more_events_make_exactly_one_more_wait(app, redis_url):
    redis = Redis.from_url(redis_url)
    _pending_event()
    jobs.sweep_plugin_events()
    _taken_by_worker(redis, nudge.JOB_IDS[0], "worker-1")
    _pending_event()  # committed after the running job read its batch
    for _ in range(3):
        jobs.sweep_plugin_events()
        assert nudge.nudge_now() == nudge.JOB_IDS[1]
    assert _queue(redis_url).job_ids == [nudge.JOB_IDS[1]]
    # Both running (the second took its turn): nothing more is queued, they loop.
    _taken_by_worker(redis, nudge.JOB_IDS[1], "worker-2")
    assert jobs.sweep_plugin_events() == 2 and _queue(redis_url).count == 0


def test_the_sweep_queues_again_when_the_job_vanished_with_its_worker(app, redis_url):
    redis = Redis.from_url(redis_url)
    _pending_event()
    jobs.sweep_plugin_events()
    jobs.sweep_plugin_events()
    _taken_by_worker(redis, nudge.JOB_IDS[0], "killed-1", alive=False)
    nudge.nudge_now()
    _taken_by_worker(redis, nudge.JOB_IDS[1], "killed-2", alive=False)
    assert nudge.nudge_now() is None  # without the sweep's repair: both look running
    assert jobs.sweep_plugin_events() == 1
    queue = _queue(redis_url)
    assert queue.count == 1 and queue.job_ids[0] in nudge.JOB_IDS
    assert queue.jobs[0].get_status() == "queued"


def test_the_sweep_queues_again_a_job_taken_but_never_started(app, redis_url):
    """A worker killed between taking the job off the queue and starting it leaves the job
    marked queued in no queue: the sweep puts it back."""
    _pending_event()
    jobs.sweep_plugin_events()
    queue = _queue(redis_url)
    queue.remove(nudge.JOB_IDS[0])
    Redis.from_url(redis_url).hset(f"rq:job:{nudge.JOB_IDS[0]}", "status", "queued")
    assert nudge.nudge_now() == nudge.JOB_IDS[0] and queue.count == 0  # looks waiting
    jobs.sweep_plugin_events()
    assert queue.count == 1


def test_the_time_out_hand_over_uses_the_same_jobs(app, redis_url):
    redis = Redis.from_url(redis_url)
    source = f.make_source(make_list())
    for n in range(3):
        f.store_segment(source, f.track("Signed Up", email=f"p{n}@example.com"))
    _taken_by_worker(redis, nudge.JOB_IDS[0], "worker-1")  # this very job, running
    assert process.process_pending(max_seconds=-1, size=1) == 1  # out of time at once
    assert _queue(redis_url).job_ids == [nudge.JOB_IDS[1]]  # the rest goes to the other


def test_a_replay_queues_through_the_same_jobs(app, redis_url):
    event_id = _pending_event()
    db.session.get(PluginEvent, event_id).status = "failed"
    db.session.commit()
    assert log.replay([event_id]) == 1
    assert _queue(redis_url).job_ids == [nudge.JOB_IDS[0]]
    assert log.replay([event_id]) == 0  # pending already: no second effect, no second job
    assert _queue(redis_url).job_ids == [nudge.JOB_IDS[0]]


def test_redis_down_never_raises_and_the_sweep_catches_up(app, redis_url):
    real = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    app.extensions.pop("tributary_plugin_redis", None)
    event_id = _pending_event()
    db.session.get(PluginEvent, event_id).status = "failed"
    db.session.commit()
    assert log.replay([event_id]) == 1  # set pending; the queueing failed quietly
    assert nudge.nudge_now() is None
    assert jobs.sweep_plugin_events() == 1
    app.config["REDIS_URL"] = real  # Redis is back: the next sweep queues the work
    app.extensions.pop("tributary_plugin_redis", None)
    assert jobs.sweep_plugin_events() == 1
    assert _queue(redis_url).job_ids == [nudge.JOB_IDS[0]]
    assert jobs.process_plugin_events() == 1
