"""A Redis server of a test's own that it may stop and start again empty, and the worker
and scheduler processes the outage tests run against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from redis import Redis

from tests.imports import workers
from webapp.devserver import free_port, start_redis, stop

ROOT = Path(__file__).resolve().parents[2]


class PrivateRedis:
    """A redis-server (no persistence) that a test may stop and start again, empty."""

    def __init__(self, data_dir: Path):
        self.port, self.dir = free_port(), data_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = start_redis(self.port, self.dir)

    def stop(self) -> None:
        stop(self.proc)

    def start(self) -> None:
        self.proc = start_redis(self.port, self.dir)

    def client(self) -> Redis:
        return Redis.from_url(self.url)


def env_for(app_config, database_url, **extra) -> dict:
    return workers.worker_env(
        database_url, app_config["REDIS_URL"], app_config,
        TRIBUTARY_QUEUE_NAMES="periodic,imports,default", TRIBUTARY_WORKER_TTL="20",
        TRIBUTARY_IMPORT_REQUEUE_GRACE_SECONDS="0", **extra)


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=handle,
                            stderr=subprocess.STDOUT)


def scheduler(env: dict, log: Path) -> subprocess.Popen:
    return spawn([sys.executable, "-m", "flask", "--app", "webapp", "scheduler", "run",
                   "--interval", "1"], env, log)


def worker(env: dict, log: Path, *queues: str) -> subprocess.Popen:
    return spawn([sys.executable, "worker.py", *queues], env, log)


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        workers.stop_worker(proc)
