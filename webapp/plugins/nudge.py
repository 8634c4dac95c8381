"""Hand stored events to the workers: enqueue `process_plugin_events` on the plugins queue,
at most one waiting at a time, under two fixed job ids (no flag to go stale). The one
queueing mechanism: intake, the event log's replay, a job's time-out hand-over and the
periodic sweep all come through here. Never fails a request, and never delays its answer:
the request only flags "work committed", and a thread per web process turns the flags into
Redis calls (one per round trip however many requests came in meanwhile). When Redis is
away, or the process dies first, the periodic sweep picks the pending events up."""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import current_app

log = logging.getLogger(__name__)

QUEUE = "plugins"
JOB = "webapp.jobs.process_plugin_events"
# Two fixed ids: one may be running while the other waits, so events committed after a
# running job read its batch still get a job; a later nudge finds one waiting and stops.
JOB_IDS = ("plugin-events-a", "plugin-events-b")
WAITING = frozenset({"queued", "deferred", "scheduled"})
NUDGE_EVERY = 0.05  # seconds between two nudges of one process


def nudge_now(connection=None, *, repair: bool = False) -> str | None:
    """Make sure a processing job is waiting; returns its id (None when Redis failed or
    both jobs run). One round trip when a job waits already (the usual case under load).
    `repair` (the periodic sweep): a job whose worker vanished, or that is marked queued
    but is in no queue, is dropped and queued afresh."""
    from redis.exceptions import RedisError

    from ..background import get_queue

    try:
        redis = connection or _connection()
        queue = get_queue(QUEUE, redis)
        pipe = redis.pipeline(transaction=False)
        for job_id in JOB_IDS:
            pipe.hget(f"rq:job:{job_id}", "status")  # RQ's job hash; absent: no such job
        statuses = [s.decode() if isinstance(s, bytes) else s for s in pipe.execute()]
        if repair:
            statuses = [_unless_vanished(redis, queue, job_id, status)
                        for job_id, status in zip(JOB_IDS, statuses, strict=True)]
        free = []
        for job_id, status in zip(JOB_IDS, statuses, strict=True):
            if status in WAITING:
                return job_id
            if status != "started":
                free.append(job_id)
        if not free:
            return None  # both running: they loop until nothing is pending
        queue.enqueue(
            JOB, job_id=free[0], result_ttl=60, failure_ttl=7 * 24 * 3600,
            job_timeout=int(current_app.config.get("JOB_TIMEOUT_SECONDS", 3600)),
            description="process received plugin events")
        return free[0]
    except (RedisError, OSError):
        log.warning("could not queue plugin event processing; the sweep will pick it up")
        return None


def _unless_vanished(redis, queue, job_id: str, status: str | None) -> str | None:
    """The job's status, or None after dropping it when it can never run or finish: marked
    started by a worker that is gone (killed: its heartbeat key expired), or marked queued
    while in no queue (a worker killed between taking it and starting it)."""
    key = f"rq:job:{job_id}"
    if status == "started":
        worker = redis.hget(key, "worker_name")
        worker = worker.decode() if isinstance(worker, bytes) else worker
        if worker and redis.exists(f"rq:worker:{worker}"):
            return status
    elif status == "queued":
        if redis.lpos(queue.key, job_id) is not None:
            return status
    else:
        return status
    log.warning("plugin event job %s vanished with its worker; queueing it again", job_id)
    from rq.exceptions import NoSuchJobError

    from ..background import fetch_job

    try:
        fetch_job(job_id, redis).delete()  # out of the started registry too
    except NoSuchJobError:
        pass
    redis.delete(key)
    return None


class _Nudger:
    """One daemon thread per process: `wanted` is set by requests after their commit; the
    thread clears it, then nudges, so every commit is followed by a nudge that started
    after it. `app` is the app of the latest request (one per process outside tests)."""

    def __init__(self, app):
        self.app = app
        self.wanted = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name="plugin-nudge", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = -NUDGE_EVERY
        while True:
            self.wanted.wait()
            self.idle.clear()
            # At most one Redis round trip per NUDGE_EVERY: under load a job is waiting
            # anyway, and one nudge per request cost more than the request's own write.
            pause = last + NUDGE_EVERY - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            last = time.monotonic()
            self.wanted.clear()
            try:
                with self.app.app_context():
                    nudge_now()
            except Exception:  # noqa: BLE001 - the thread must outlive any failure
                log.exception("plugin nudge failed")
            finally:
                if not self.wanted.is_set():
                    self.idle.set()


_nudger: _Nudger | None = None
_lock = threading.Lock()


def nudge() -> None:
    """After committing events: ask for a processing job, without waiting for Redis."""
    global _nudger
    app = current_app._get_current_object()
    with _lock:
        if _nudger is None or _nudger.pid != os.getpid() or not _nudger.thread.is_alive():
            _nudger = _Nudger(app)  # first use in this (possibly forked) process
        _nudger.app = app
        _nudger.idle.clear()
        _nudger.wanted.set()


def wait_idle(timeout: float = 5.0) -> bool:
    """Tests and shutdown: wait until every asked-for nudge has been made."""
    return _nudger is None or _nudger.idle.wait(timeout)


def _connection():
    """One Redis client per app (its pool reused across requests), with short timeouts."""
    from redis import Redis

    ext = current_app.extensions
    if "tributary_plugin_redis" not in ext:
        ext["tributary_plugin_redis"] = Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=1)
    return ext["tributary_plugin_redis"]
