"""Redis, RQ queues, and the periodic-job registry run by rq-scheduler.

Periodic work is data: PERIODIC lists every repeating job with a fixed id; registration is
idempotent, so restarts and a second scheduler process never duplicate a job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq_scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    id: str  # RQ job ids: letters, digits, "_" and "-" only
    func: str  # dotted path, resolved by the worker
    interval: int  # seconds
    queue: str = "default"
    timeout: int = 300

    @property
    def result_ttl(self) -> int:
        # Longer than the interval, or rq-scheduler loses the repeating job between runs.
        return self.interval * 10 + 60


PERIODIC: tuple[PeriodicJob, ...] = (
    PeriodicJob(id="tributary-scheduler-tick", func="webapp.jobs.record_tick", interval=60),
    PeriodicJob(id="tributary-imports-dispatch", func="webapp.jobs.dispatch_imports",
                interval=60),
    PeriodicJob(id="tributary-imports-sweep", func="webapp.jobs.sweep_imports", interval=60),
)


def redis_connection() -> Redis:
    return Redis.from_url(current_app.config["REDIS_URL"])


def queue_names() -> list[str]:
    return [q.strip() for q in current_app.config["QUEUE_NAMES"].split(",") if q.strip()]


def get_queue(name: str = "default", connection: Redis | None = None) -> Queue:
    return Queue(name, connection=connection or redis_connection())


def register_periodic(scheduler: Scheduler, jobs: tuple[PeriodicJob, ...] = PERIODIC) -> int:
    """Schedule each periodic job once; a job already there with the same settings is kept,
    a changed one is replaced. Returns how many were (re)scheduled."""
    changed = 0
    for spec in jobs:
        if spec.id in scheduler:
            job = Job.fetch(spec.id, connection=scheduler.connection)
            same = (
                job.func_name == spec.func
                and job.meta.get("interval") == spec.interval
                and job.origin == spec.queue
            )
            if same:
                continue
            scheduler.cancel(spec.id)
        scheduler.schedule(
            scheduled_time=datetime.now(UTC),
            func=spec.func,
            interval=spec.interval,
            repeat=None,
            result_ttl=spec.result_ttl,
            timeout=spec.timeout,
            id=spec.id,
            queue_name=spec.queue,
        )
        changed += 1
    return changed


def make_scheduler(connection: Redis | None = None, interval: int = 5) -> Scheduler:
    return Scheduler(
        queue_name="default", connection=connection or redis_connection(), interval=interval
    )


def workers_alive(connection: Redis | None = None) -> list[Worker]:
    return Worker.all(connection=connection or redis_connection())


@click.group("scheduler", help="The rq-scheduler process that enqueues periodic jobs.")
def scheduler_cli() -> None:
    pass


@scheduler_cli.command("run")
@click.option("--interval", default=5, show_default=True, help="Seconds between polls.")
@click.option("--burst", is_flag=True, help="Register, enqueue what is due, and exit.")
@with_appcontext
def run_scheduler(interval: int, burst: bool) -> None:
    """Register the periodic jobs (idempotently) and run the scheduler loop."""
    scheduler = make_scheduler(interval=interval)
    changed = register_periodic(scheduler)
    click.echo(f"scheduler: {len(PERIODIC)} periodic jobs, {changed} newly scheduled")
    scheduler.run(burst=burst)
