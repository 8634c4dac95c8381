"""Hand stored events to the workers: enqueue `process_plugin_events` on the plugins queue,
at most one waiting at a time. Never fails the request: when Redis is away the periodic
sweep picks the pending events up."""

from __future__ import annotations

import logging

from flask import current_app

log = logging.getLogger(__name__)

QUEUE = "plugins"
JOB = "webapp.jobs.process_plugin_events"
# Two fixed ids: one may be running while the other waits, so events committed after a
# running job read its batch still get a job; a third nudge finds one waiting and stops.
JOB_IDS = ("plugin-events-a", "plugin-events-b")
WAITING = frozenset({"queued", "deferred", "scheduled"})


def nudge(connection=None) -> str | None:
    """Make sure a processing job is waiting; returns its id (None when Redis failed or
    both jobs run). One round trip when a job waits already (the usual case under load)."""
    from redis.exceptions import RedisError

    from ..background import get_queue

    try:
        redis = connection or _connection()
        pipe = redis.pipeline(transaction=False)
        for job_id in JOB_IDS:
            pipe.hget(f"rq:job:{job_id}", "status")  # RQ's job hash; absent: no such job
        statuses = [s.decode() if isinstance(s, bytes) else s for s in pipe.execute()]
        free = []
        for job_id, status in zip(JOB_IDS, statuses, strict=True):
            if status in WAITING:
                return job_id
            if status != "started":
                free.append(job_id)
        if not free:
            return None  # both running: they loop until nothing is pending
        get_queue(QUEUE, redis).enqueue(
            JOB, job_id=free[0], result_ttl=60, failure_ttl=7 * 24 * 3600,
            job_timeout=int(current_app.config.get("JOB_TIMEOUT_SECONDS", 3600)),
            description="process received plugin events")
        return free[0]
    except (RedisError, OSError):
        log.warning("could not queue plugin event processing; the sweep will pick it up")
        return None


def _connection():
    """One Redis client per app (its pool reused across requests), with short timeouts:
    an acknowledgement must not wait on a Redis that hangs."""
    from redis import Redis

    ext = current_app.extensions
    if "tributary_plugin_redis" not in ext:
        ext["tributary_plugin_redis"] = Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=1)
    return ext["tributary_plugin_redis"]
