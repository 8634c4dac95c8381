"""The hand-over to the workers: committed events queue one `process_plugin_events` job on
the plugins queue (never more than one waiting), and a Redis that is away never fails or
delays the acknowledgement."""

from __future__ import annotations

import json
import time
import uuid

from redis import Redis

from tests.plugins.conftest import basic, stored
from webapp.background import fetch_job, get_queue
from webapp.plugins import nudge


def _send(client, key, n=1):
    batch = [{"type": "track", "event": "Signed Up", "anonymousId": "a",
              "messageId": str(uuid.uuid4())} for _ in range(n)]
    return client.post("/v1/batch", data=json.dumps({"batch": batch}),
                       content_type="application/json", headers=basic(key))


def test_events_queue_one_processing_job(client, website, redis_url):
    _, keys = website
    for _ in range(5):
        assert _send(client, keys["server"]).status_code == 200
    assert nudge.wait_idle()
    queue = get_queue(nudge.QUEUE, Redis.from_url(redis_url))
    assert queue.job_ids == [nudge.JOB_IDS[0]]
    job = fetch_job(nudge.JOB_IDS[0], Redis.from_url(redis_url))
    assert job.func_name == "webapp.jobs.process_plugin_events" and not job.args


def test_a_running_job_gets_one_follower(client, website, redis_url):
    _, keys = website
    conn = Redis.from_url(redis_url)
    _send(client, keys["server"])
    assert nudge.wait_idle()
    conn.hset(f"rq:job:{nudge.JOB_IDS[0]}", "status", "started")  # a worker took it
    get_queue(nudge.QUEUE, conn).remove(nudge.JOB_IDS[0])
    for _ in range(3):
        _send(client, keys["server"])
    assert nudge.wait_idle()
    assert get_queue(nudge.QUEUE, conn).job_ids == [nudge.JOB_IDS[1]]


def test_redis_away_does_not_fail_or_slow_the_answer(app, client, website):
    source, keys = website
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    app.extensions.pop("tributary_plugin_redis", None)
    started = time.perf_counter()
    resp = _send(client, keys["server"], n=3)
    assert resp.status_code == 200 and time.perf_counter() - started < 1.0
    assert nudge.wait_idle()
    assert len(stored(source.id)) == 3
    app.extensions.pop("tributary_plugin_redis", None)
