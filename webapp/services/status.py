"""System status: database, Redis, workers, the scheduler's tick and periodic jobs.

Every check catches its own failure and says it in plain words; none raises, so the page
renders (never a 500) when Redis or the database is down. A worker is busy (on a job, fresh
heartbeat), idle, or not responding (stale heartbeat); a late tick that is only waiting in
the queue for a free worker is not called stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..background import (
    PERIODIC,
    PERIODIC_QUEUE,
    fetch_job,
    make_scheduler,
    scheduler_alive,
    workers_alive,
)
from ..extensions import db
from ..models import Heartbeat
from ..models.base import utcnow

STALE_AFTER = timedelta(minutes=3)
TICK_JOB = next(job.id for job in PERIODIC if job.func == "webapp.jobs.record_tick")


@dataclass
class Check:
    ok: bool
    summary: str
    detail: str = ""


@dataclass
class Status:
    database: Check
    redis: Check
    scheduler: Check
    workers: list[dict] = field(default_factory=list)
    workers_check: Check | None = None
    periodic: list[dict] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        checks = [self.database, self.redis, self.scheduler, self.workers_check]
        return all(c is None or c.ok for c in checks)


def _redis() -> Redis:
    # Short timeouts: an unreachable Redis must not hold the page for long.
    return Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=1,
                          socket_timeout=2)


def check_database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
        dialect = db.session.get_bind().dialect.name
        return Check(True, f"Database reachable ({dialect})")
    except SQLAlchemyError as exc:
        db.session.rollback()
        return Check(False, "Database unreachable", _plain(exc))


def check_scheduler(waiting: str = "") -> Check:
    """The scheduler's last tick; `waiting` explains a late tick that sits in the queue
    (the scheduler runs, workers are busy), which is then not reported stale."""
    try:
        beat = db.session.get(Heartbeat, "scheduler")
    except SQLAlchemyError:
        db.session.rollback()
        return Check(False, "Scheduler tick unknown: the database is unreachable")
    if beat is None:
        return Check(False, "The scheduler has never ticked (is `flask scheduler run` running?)")
    age = utcnow() - beat.at
    when = beat.at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if age > STALE_AFTER:
        minutes = int(age.total_seconds() // 60)
        if waiting:
            return Check(True, f"Scheduler running: its tick is waiting for a free worker "
                               f"(last tick {when}, {minutes} minutes ago)", waiting)
        return Check(False, f"Scheduler stale: last tick {when}, {minutes} minutes ago")
    return Check(True, f"Scheduler ticking: last tick {when}")


def worker_stale_after() -> timedelta:
    """How long a worker may go without a heartbeat: idle workers report in every
    WORKER_TTL - 15 s, busy ones every 30 s at most."""
    return timedelta(seconds=max(int(current_app.config.get("WORKER_TTL", 60)), 30) + 15)


def _job_or_none(job_id: str | None, conn: Redis):
    if not job_id:
        return None
    try:
        return fetch_job(job_id, conn)
    except Exception:  # gone already
        return None


def describe_worker(worker, now) -> dict:
    state = str(getattr(worker.get_state(), "value", worker.get_state()))
    beat = worker.last_heartbeat
    age = (now - beat).total_seconds() if beat else None
    responding = age is not None and age <= worker_stale_after().total_seconds()
    if not responding:
        seen = f"no heartbeat for {int(age)} s" if age is not None else "no heartbeat"
        label = f"not responding ({seen}): stopped or cut off from Redis"
    elif state == "busy":
        job_id = worker.get_current_job_id()
        job = _job_or_none(job_id, worker.connection)
        label = f"busy: running {job.description or job_id}" if job else "busy"
    else:
        label = state
    return {"name": worker.name, "queues": ", ".join(worker.queue_names()), "state": label,
            "last_heartbeat": beat, "responding": responding, "busy": state == "busy",
            "periodic": PERIODIC_QUEUE in worker.queue_names()}


def _tick_waiting(conn: Redis, workers: list[dict]) -> str:
    """Why a late tick is only waiting ('' when it is not queued or no scheduler runs)."""
    if not scheduler_alive(conn):
        return ""
    try:
        status = fetch_job(TICK_JOB, conn).get_status(refresh=False)
    except Exception:  # no such job (yet)
        return ""
    if str(getattr(status, "value", status)) != "queued":
        return ""
    serving = [w for w in workers if w["responding"] and w["periodic"]]
    if serving and all(w["busy"] for w in serving):
        return "every worker serving the periodic queue is busy"
    return ""


def current_status() -> Status:
    status = Status(database=check_database(), redis=Check(False, "Redis unreachable"),
                    scheduler=check_scheduler())
    status.periodic = [
        {"id": job.id, "func": job.func, "interval": job.interval, "queue": job.queue,
         "scheduled": None}
        for job in PERIODIC
    ]
    url = current_app.config["REDIS_URL"]
    try:
        conn = _redis()
        conn.ping()
    except (RedisError, OSError) as exc:
        status.redis = Check(False, "Redis unreachable",
                             f"{url.split('@')[-1]} did not answer: {_plain(exc)}")
        status.workers_check = Check(False, "Workers unknown: Redis unreachable")
        return status
    status.redis = Check(True, "Redis reachable")
    now = utcnow()
    try:
        status.workers = [describe_worker(w, now) for w in workers_alive(conn)]
        scheduler = make_scheduler(conn)
        for job in status.periodic:
            job["scheduled"] = job["id"] in scheduler
        waiting = _tick_waiting(conn, status.workers)
    except (RedisError, OSError) as exc:
        status.workers_check = Check(False, "Workers unknown: Redis failed mid-check",
                                     _plain(exc))
        return status
    if waiting:
        status.scheduler = check_scheduler(waiting)
    alive = sum(1 for w in status.workers if w["responding"])
    silent = len(status.workers) - alive
    if not status.workers:
        status.workers_check = Check(False, "No worker is running")
    elif not alive:
        status.workers_check = Check(False, f"No worker is responding ({silent} registered "
                                            "without a recent heartbeat)")
    else:
        summary = f"{alive} worker{'s' if alive != 1 else ''} alive"
        if silent:
            summary += f", {silent} not responding"
        status.workers_check = Check(not silent, summary)
    return status


def _plain(exc: BaseException) -> str:
    """What went wrong in words for the page (the log keeps the exception itself)."""
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "it took too long to answer."
    if isinstance(exc, OSError) or "connection" in type(exc).__name__.lower():
        return "the connection was refused or broke off."
    return "it answered with an error."
