"""Redis, RQ queues, and the periodic-job registry run by rq-scheduler.

Periodic work is data: PERIODIC lists every repeating job with a fixed id; registration is
idempotent, so restarts and a second scheduler process never duplicate a job. Every job is
stored with RQ's JSON serializer (never pickle), and the scheduler re-registers its jobs
when Redis lost them (a restart without persistence, a FLUSHALL).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq_scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    id: str  # RQ job ids: letters, digits, "_" and "-" only
    func: str  # dotted path, resolved by the worker
    interval: int  # seconds
    queue: str = "periodic"
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
    PeriodicJob(id="tributary-plugins-sweep", func="webapp.jobs.sweep_plugin_events",
                interval=30),
    # Abandoned carts are detected within a minute of their shop's delay passing.
    PeriodicJob(id="tributary-carts-sweep", func="webapp.jobs.sweep_abandoned_carts",
                interval=60),
    PeriodicJob(id="tributary-recommendations", func="webapp.jobs.rebuild_recommendations",
                interval=900, timeout=600),
    # Time-based segment conditions ("within 30 days") move on: re-evaluated every minute.
    PeriodicJob(id="tributary-automations-evaluate", func="webapp.jobs.evaluate_automations",
                interval=60),
)


PERIODIC_QUEUE = "periodic"
SCHEDULER_ALIVE_KEY = "tributary:scheduler:alive"  # set by the scheduler loop, with a TTL
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)  # what a Redis outage raises

# Set in a work horse when its worker is shutting down: an import stops after its page.
_stop_requested = threading.Event()


def request_stop() -> None:
    _stop_requested.set()


def stop_requested() -> bool:
    """True once this process was asked to stop (an import then hands its run back)."""
    return _stop_requested.is_set()


class JsonJob(Job):
    """An RQ job that is always stored as JSON: reading one never unpickles anything."""

    def __init__(self, id: str | None = None, connection: Redis | None = None,
                 serializer=None):
        super().__init__(id, connection=connection, serializer=JSONSerializer)


class JsonQueue(Queue):
    """An RQ queue of JSON jobs."""

    job_class = JsonJob

    def __init__(self, name: str = "default", *args, **kwargs):
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = JsonJob
        super().__init__(name, *args, **kwargs)


def redis_connection() -> Redis:
    # A bounded connect: an unreachable Redis fails fast instead of holding a request.
    return Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=5)


def queue_names() -> list[str]:
    """The queues a worker serves, in order; the periodic queue always comes first."""
    names = [q.strip() for q in current_app.config["QUEUE_NAMES"].split(",") if q.strip()]
    return sorted(names, key=lambda name: name != PERIODIC_QUEUE)


def get_queue(name: str = "default", connection: Redis | None = None) -> Queue:
    return JsonQueue(name, connection=connection or redis_connection())


def fetch_job(job_id: str, connection: Redis | None = None) -> Job:
    """A job by id, read as JSON (raises NoSuchJobError)."""
    return JsonJob.fetch(job_id, connection=connection or redis_connection())


def register_periodic(scheduler: Scheduler, jobs: tuple[PeriodicJob, ...] = PERIODIC) -> int:
    """Schedule each periodic job once; a job already there with the same settings is kept,
    a changed one is replaced, one no longer defined is canceled. Returns how many were
    (re)scheduled."""
    cancel_undefined(scheduler, jobs)
    changed = 0
    for spec in jobs:
        if spec.id in scheduler:
            try:
                job = JsonJob.fetch(spec.id, connection=scheduler.connection)
                same = (
                    job.func_name == spec.func
                    and job.meta.get("interval") == spec.interval
                    and job.origin == spec.queue
                )
            except Exception:  # gone, or stored by an older version (pickle): replace it
                same = False
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


def cancel_undefined(scheduler: Scheduler, jobs: tuple[PeriodicJob, ...] = PERIODIC) -> list[str]:
    """Cancel the repeating jobs Redis holds that `jobs` no longer defines (a job renamed or
    removed in a new version), and any it cannot read; one-off scheduled jobs stay."""
    defined = {spec.id for spec in jobs}
    canceled = []
    for raw in scheduler.connection.zrange(scheduler.scheduled_jobs_key, 0, -1):
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        if job_id in defined:
            continue
        try:
            job = JsonJob.fetch(job_id, connection=scheduler.connection)
            repeating = job.meta.get("interval") is not None or not job.func_name
        except Exception:  # gone, or stored by an older version (pickle): it cannot run
            repeating = True
        if not repeating:
            continue
        scheduler.cancel(job_id)
        scheduler.connection.delete(JsonJob.key_for(job_id))
        canceled.append(job_id)
    if canceled:
        log.info("scheduler: canceled periodic jobs no longer defined: %s", ", ".join(canceled))
    return canceled


def missing_periodic(scheduler: Scheduler, jobs: tuple[PeriodicJob, ...] = PERIODIC) -> list[str]:
    """Ids of periodic jobs that Redis no longer holds (its data was lost)."""
    missing = []
    for spec in jobs:
        if spec.id not in scheduler or not JsonJob.exists(spec.id, scheduler.connection):
            missing.append(spec.id)
    return missing


class AppScheduler(Scheduler):
    """rq-scheduler with JSON jobs that checks its periodic jobs on every loop (re-registering
    what a Redis restart lost) and waits out a Redis outage instead of exiting."""

    job_class = JsonJob
    queue_class = JsonQueue
    max_backoff = 30.0

    def __init__(self, *args, periodic: tuple[PeriodicJob, ...] = PERIODIC, **kwargs):
        super().__init__(*args, **kwargs)
        self.periodic = periodic

    def ensure_periodic(self) -> int:
        """Re-register the periodic jobs if any is gone; returns how many were scheduled."""
        missing = missing_periodic(self, self.periodic)
        if not missing:
            return 0
        log.warning("periodic jobs missing from Redis (%s); registering them again",
                    ", ".join(missing))
        return register_periodic(self, self.periodic)

    def _report_in(self) -> None:
        """The scheduler's own key (re-created after a flush) and the alive key."""
        with self.connection.pipeline() as pipe:
            pipe.hsetnx(self.key, "birth", time.time())
            pipe.expire(self.key, int(self._interval) + 10)
            pipe.set(SCHEDULER_ALIVE_KEY, self.name, ex=int(self._interval) + 10)
            pipe.execute()

    def _install_signal_handlers(self) -> None:
        def stop(_signum, _frame):
            raise SystemExit(0)  # the loop's `finally` removes the lock, Redis permitting

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def run(self, burst: bool = False) -> None:
        self._install_signal_handlers()
        backoff, registered = 1.0, False
        try:
            while True:
                start = time.time()
                try:
                    self._report_in()
                    if self.acquire_lock():
                        if registered:
                            self.ensure_periodic()
                        else:
                            changed = register_periodic(self, self.periodic)
                            log.info("scheduler: %d periodic jobs, %d newly scheduled",
                                     len(self.periodic), changed)
                            registered = True
                        self.enqueue_jobs()
                        self.heartbeat()
                        self.remove_lock()
                        if burst:
                            break
                    backoff = 1.0
                except REDIS_DOWN as exc:
                    self._lock_acquired = False
                    log.error("scheduler: Redis unreachable (%s); retrying in %.0f s",
                              type(exc).__name__, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                time.sleep(max(0.0, self._interval - (time.time() - start)))
        finally:
            try:
                self.remove_lock()
                self.register_death()
            except REDIS_DOWN:
                pass


def make_scheduler(connection: Redis | None = None, interval: int = 5) -> AppScheduler:
    return AppScheduler(
        queue_name=PERIODIC_QUEUE, connection=connection or redis_connection(),
        interval=interval,
    )


def scheduler_alive(connection: Redis) -> bool:
    """Whether a scheduler process has reported in within its polling interval."""
    return bool(connection.exists(SCHEDULER_ALIVE_KEY))


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    click.echo(f"scheduler: {len(PERIODIC)} periodic jobs, checked on every loop")
    make_scheduler(interval=interval).run(burst=burst)
