"""The processing job and its wiring: the allow-listed job, the `plugins` queue, at most one
job waiting, the 30 s sweep that queues processing for pending events (also when a killed
worker took the announced job along), and Redis being down never raising."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis

from tests.factories import make_list
from tests.plugins import factories as f
from webapp import jobs
from webapp.background import PERIODIC, get_queue
from webapp.extensions import db
from webapp.models import PluginEvent
from webapp.models.base import utcnow
from webapp.plugins import process

pytestmark = pytest.mark.usefixtures("app")


def test_the_job_is_allow_listed_and_the_sweep_is_periodic(app):
    assert "webapp.jobs.process_plugin_events" in jobs.ALLOWED_JOBS
    assert "webapp.jobs.sweep_plugin_events" in jobs.ALLOWED_JOBS
    [sweep] = [p for p in PERIODIC if p.func == "webapp.jobs.sweep_plugin_events"]
    assert sweep.interval == 30 and sweep.queue == "periodic"
    assert "plugins" in app.config["QUEUE_NAMES"].split(",")


def test_one_job_waits_at_a_time_and_the_job_processes_everything(app, redis_url):
    redis = Redis.from_url(redis_url)
    source = f.make_source(make_list())
    event_id = f.store_segment(source, f.track("Signed Up", email="ann@example.com")).id
    assert jobs.sweep_plugin_events() == 1
    queue = get_queue(process.QUEUE, connection=redis)
    assert queue.count == 1 and queue.jobs[0].func_name == "webapp.jobs.process_plugin_events"
    assert not process.enqueue_processing(redis)  # one is waiting already
    assert queue.count == 1
    assert jobs.process_plugin_events() == 1
    assert not redis.exists(process.QUEUED_KEY)  # events stored from now on queue again
    db.session.expire_all()
    assert db.session.get(PluginEvent, event_id).status == "processed"
    assert jobs.sweep_plugin_events() == 0 and queue.count == 1  # nothing pending: nothing


def test_the_sweep_queues_again_when_the_announced_job_is_gone(app, redis_url):
    redis = Redis.from_url(redis_url)
    source = f.make_source(make_list())
    f.store_segment(source, f.track("Signed Up", email="ann@example.com"),
                    received_at=utcnow() - timedelta(seconds=45))
    redis.set(process.QUEUED_KEY, "1", ex=120)  # announced, but its worker died with it
    assert jobs.sweep_plugin_events() == 1
    assert get_queue(process.QUEUE, connection=redis).count == 1


def test_redis_down_never_raises(app):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    source = f.make_source(make_list())
    f.store_segment(source, f.track("Signed Up", email="ann@example.com"))
    assert process.enqueue_processing() is False
    assert jobs.sweep_plugin_events() == 1
