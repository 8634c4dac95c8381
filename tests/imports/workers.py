"""Real worker processes and instrumented simulators for the worker tests and the bench."""

from __future__ import annotations

import importlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from simulators.server import serve

ROOT = Path(__file__).resolve().parents[2]
LIST_REQUEST = re.compile(
    r"customers\.json$|/query(/[^/]+)?$|/crm/v\d+/(Contacts|Leads)$|customers/search$")


class Instrumented:
    """WSGI middleware: logs every request (method, path, query, body), optional delay."""

    def __init__(self, app, delay: float = 0.0):
        self.app, self.delay = app, delay
        self.log: list[tuple[str, str, str, bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        key = (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
               environ.get("QUERY_STRING", ""), body)
        with self._lock:
            self.log.append(key)
        if self.delay and LIST_REQUEST.search(key[1]):
            time.sleep(self.delay)
        return self.app(environ, start_response)

    def list_requests(self) -> list[tuple]:
        with self._lock:
            return [k for k in self.log if LIST_REQUEST.search(k[1])]

    def repeated_list_requests(self) -> int:
        counts = Counter(self.list_requests())
        return sum(n - 1 for n in counts.values() if n > 1)


def start_simulator(name: str, people, delay: float = 0.0):
    """(running server, instrumented app, demo config) for provider `name`."""
    module = importlib.import_module(f"simulators.{name}")
    app = module.create_app(people)
    wrapped = Instrumented(app, delay)
    running = serve(wrapped)
    return running, wrapped, module.demo_config(app, running.url)


def worker_env(database_url: str, redis_url: str, config: dict, **extra: str) -> dict:
    env = dict(os.environ)
    env.update({
        "TRIBUTARY_ENV": "test",
        "TRIBUTARY_DATABASE_URL": database_url,
        "TRIBUTARY_REDIS_URL": redis_url,
        "TRIBUTARY_SECRET_KEY": config["SECRET_KEY"],
        "TRIBUTARY_ENCRYPTION_KEY": config["ENCRYPTION_KEY"],
        "TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS": "1",
        "TRIBUTARY_QUEUE_NAMES": "imports",
        **extra,
    })
    return env


def start_worker(env: dict) -> subprocess.Popen:
    """`python worker.py imports` in its own process group (so kill -9 takes the horse too)."""
    return subprocess.Popen([sys.executable, "worker.py", "imports"], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its work horse (RQ puts the horse in a session of its own)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        kill9(proc)
