"""System status: database, Redis, workers, the scheduler's tick and periodic jobs.

Every check catches its own failure and says it in plain words; none raises, so the page
renders (never a 500) when Redis or the database is down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..background import PERIODIC, make_scheduler, workers_alive
from ..extensions import db
from ..models import Heartbeat
from ..models.base import utcnow

STALE_AFTER = timedelta(minutes=3)


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
        return Check(False, "Database unreachable", type(exc).__name__)


def check_scheduler() -> Check:
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
        return Check(False, f"Scheduler stale: last tick {when}, {minutes} minutes ago")
    return Check(True, f"Scheduler ticking: last tick {when}")


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
        status.redis = Check(False, "Redis unreachable", f"{url.split('@')[-1]}: "
                             f"{type(exc).__name__}")
        status.workers_check = Check(False, "Workers unknown: Redis unreachable")
        return status
    status.redis = Check(True, "Redis reachable")
    try:
        for worker in workers_alive(conn):
            status.workers.append({
                "name": worker.name,
                "queues": ", ".join(worker.queue_names()),
                "state": str(getattr(worker.get_state(), "value", worker.get_state())),
                "last_heartbeat": worker.last_heartbeat,
            })
        scheduler = make_scheduler(conn)
        for job in status.periodic:
            job["scheduled"] = job["id"] in scheduler
    except (RedisError, OSError) as exc:
        status.workers_check = Check(False, "Workers unknown: Redis failed mid-check",
                                     type(exc).__name__)
        return status
    count = len(status.workers)
    status.workers_check = (Check(True, f"{count} worker{'s' if count != 1 else ''} alive")
                            if count else Check(False, "No worker is running"))
    return status
