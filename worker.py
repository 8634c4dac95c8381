"""RQ worker entry point (systemd runs it): `python worker.py [--burst] [QUEUE ...]`.

The worker pushes one app context for its lifetime; each forked work horse drops the
pooled database connections it inherited before running a job. It runs only the app's job
functions (JSON jobs, an allow-list), waits out a Redis outage instead of exiting, and on
SIGTERM lets a running import finish its page and hand the run back. It runs at a lower CPU
priority than the web app (TRIBUTARY_WORKER_NICE), so pages stay quick during an import.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from rq import Worker, worker_registration
from rq.serializers import JSONSerializer

from webapp import create_app
from webapp.background import (
    REDIS_DOWN,
    JsonJob,
    JsonQueue,
    queue_names,
    redis_connection,
    request_stop,
)
from webapp.extensions import db
from webapp.jobs import ALLOWED_JOBS


def refusal(job) -> str:
    """Why `job` must not run here ('' when it may): only our functions, no callbacks."""
    try:
        func_name, instance = job.func_name, job.instance
    except Exception:  # not JSON (e.g. a pickled job written straight into Redis)
        return "refused: the job's data is not a JSON Tributary job"
    if instance is not None or func_name not in ALLOWED_JOBS:
        return f"refused: {func_name!r} is not a Tributary job function"
    callbacks = (job._success_callback_name, job._failure_callback_name,
                 job._stopped_callback_name)
    if any(callbacks):
        return "refused: Tributary jobs have no callbacks"
    return ""


class AppWorker(Worker):
    """An RQ worker for Tributary's own jobs, resilient to short Redis outages."""

    max_redis_wait = 30.0

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("serializer", JSONSerializer)
        kwargs.setdefault("job_class", JsonJob)
        kwargs.setdefault("queue_class", JsonQueue)
        super().__init__(*args, **kwargs)

    # --------------------------------------------------------------- allow-list

    def execute_job(self, job, queue):
        reason = refusal(job)
        if reason:
            self.log.warning("Worker %s: job %s %s", self.name, job.id, reason)
            self.handle_job_failure(job, queue=queue, exc_string=reason)
            return
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN:  # the horse ran on; its run row holds the outcome
            self.log.error("Worker %s: Redis failed around job %s", self.name, job.id)
            self._horse_pid = 0
            self.wait_for_redis()

    def main_work_horse(self, job, queue):
        db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)

    # --------------------------------------------------------------- shutdown

    def setup_work_horse_signals(self):
        """In the horse, SIGTERM asks a running import to stop after its page."""
        super().setup_work_horse_signals()
        signal.signal(signal.SIGTERM, lambda _signum, _frame: request_stop())

    def request_stop(self, signum, frame):
        """Warm shutdown: also tell the horse, so an import hands its run back at once."""
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        super().request_stop(signum, frame)

    def teardown(self):
        try:  # stopping during an outage: Redis forgets the worker by its TTL anyway
            super().teardown()
        except REDIS_DOWN:
            pass

    def set_shutdown_requested_date(self):
        try:
            super().set_shutdown_requested_date()
        except REDIS_DOWN:
            pass

    # --------------------------------------------------------------- Redis outages

    def wait_for_redis(self) -> None:
        """Block (with backoff) until Redis answers, then register again if it lost us."""
        wait = 1.0
        while not self._stop_requested:
            try:
                self.connection.ping()
                self.ensure_registered()
                return
            except REDIS_DOWN as exc:
                self.log.error("Worker %s: Redis unreachable (%s); retrying in %.0f s",
                               self.name, type(exc).__name__, wait)
                time.sleep(wait)
                wait = min(wait * 2, self.max_redis_wait)

    def ensure_registered(self) -> None:
        """Re-create this worker's registration when Redis lost it (restart, FLUSHALL)."""
        if self.connection.hexists(self.key, "birth"):
            return
        self.log.warning("Worker %s: registration lost in Redis; registering again", self.name)
        with self.connection.pipeline() as pipe:
            pipe.delete(self.key)
            pipe.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        try:  # a failed heartbeat is not fatal: the dequeue loop retries with backoff
            super().heartbeat(timeout, pipeline)
            self.ensure_registered()
        except REDIS_DOWN as exc:
            self.log.error("Worker %s: heartbeat failed (%s)", self.name, type(exc).__name__)

    def maintain_heartbeats(self, job, execution):
        try:
            super().maintain_heartbeats(job, execution)
            self.ensure_registered()
        except REDIS_DOWN as exc:  # keep watching the horse; heartbeats resume later
            self.log.error("Worker %s: heartbeat failed (%s)", self.name, type(exc).__name__)

    def check_for_suspension(self, burst):
        try:
            super().check_for_suspension(burst)
        except REDIS_DOWN:
            self.wait_for_redis()

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN:
            self.wait_for_redis()

    def set_state(self, state, pipeline=None):
        try:
            super().set_state(state, pipeline)
        except REDIS_DOWN:
            self._state = state


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__)
    parser.add_argument("queues", nargs="*", help="queues to listen on (default: all)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    parser.add_argument("--nice", type=int, help="CPU priority, 0-19 (default: WORKER_NICE)")
    args = parser.parse_args(argv)
    app = create_app({"LOAD_MIGRATIONS": False, "LOAD_VIEWS": False})
    with app.app_context():
        ttl = int(app.config["WORKER_TTL"])
        lower_cpu_priority(int(app.config["WORKER_NICE"] if args.nice is None else args.nice))
        worker = AppWorker(
            args.queues or queue_names(), connection=redis_connection(), name=args.name,
            worker_ttl=ttl, job_monitoring_interval=max(5, min(30, ttl // 2)),
        )
        settle_memory()
        worker.work(burst=args.burst, with_scheduler=False)
    return 0


def lower_cpu_priority(nice: int) -> None:
    """Run at nice `nice` at least (the work horses inherit it), and give this process's
    session the same weight: Linux shares the CPU between sessions (autogroups) before nice
    values count, so a nice value alone yields nothing to the web app's session."""
    if nice <= 0:
        return
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:  # never raise a priority systemd lowered
        os.setpriority(os.PRIO_PROCESS, 0, min(nice, 19))
    if os.getsid(0) != os.getpid():  # started inside a shell's session: the nice value only
        return
    for _ in range(5):
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(min(nice, 19)))
            return
        except BlockingIOError:  # the kernel takes one autogroup change per 100 ms
            time.sleep(0.11)
        except OSError:  # no autogroups here (a kernel without them, or a cgroup decides)
            return


def settle_memory() -> None:
    """Before the first fork: map the models once, then freeze what startup allocated (the
    horses' collections skip it, so they do not copy those pages) and hand the startup's
    freed heap back to the system; each work horse starts from that smaller parent."""
    import ctypes
    import gc

    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    gc.collect()
    gc.freeze()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
