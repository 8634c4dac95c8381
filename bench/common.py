"""Helpers the benchmarks share: a simulator in its own process, and peak-RSS polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Simulator:
    """A simulator in its own process (so the client and server don't share a GIL)."""

    def __init__(self, name: str, records: int, seed: int = 1, nice: int = 0):
        """`nice` > 0: in a session of its own at that CPU priority (as worker.py runs)."""
        lowered = {}
        if nice > 0:
            from worker import lower_cpu_priority

            lowered = {"start_new_session": True, "preexec_fn": lambda: lower_cpu_priority(nice)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", name, "--records", str(records),
             "--seed", str(seed)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, **lowered,
        )
        self.banner = self.proc.stdout.readline().strip()
        self.config = json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class PeakRSS:
    """Polls the worker and its work horses; keeps the peak RSS of any one process (MB)."""

    def __init__(self, pid: int, interval: float = 0.01):
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_horse = 0.0
        self.peak_horse_uss = 0.0
        self.peak_worker = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.peak_worker = max(self.peak_worker, self.proc.memory_info().rss / 2**20)
                for child in self.proc.children(recursive=True):
                    try:
                        rss = child.memory_info().rss / 2**20
                        if rss > self.peak_horse:  # smaps is costly: read USS at new peaks
                            self.peak_horse = rss
                            uss = child.memory_full_info().uss / 2**20
                            self.peak_horse_uss = max(self.peak_horse_uss, uss)
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def make_import(provider: str, settings: dict, credentials: dict, list_name: str, group: str):
    """An integration, a fresh list and a recurring import of it (email and name mapped),
    committed; inside an app context."""
    from webapp.extensions import db
    from webapp.imports import credentials as stored
    from webapp.models import ContactList, Integration, RecurringImport

    integration = Integration(provider=provider, name=provider, settings=settings)
    stored.store(integration, credentials)
    target = ContactList(name=list_name)
    db.session.add_all([integration, target])
    db.session.flush()
    imp = RecurringImport(integration=integration, list_id=target.id, group=group,
                          source="all", mapping={"email": "email", "Full name": "name"})
    db.session.add(imp)
    db.session.commit()
    return imp


def sqlite_env(tmp: Path, name: str, redis_port: int, **extra: str) -> dict:
    """The environment of a benchmark's own processes: this one's, plus a fresh SQLite
    database `name` in `tmp`, the benchmark's Redis and new keys."""
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update({
        "TRIBUTARY_ENV": "test", "TRIBUTARY_DATABASE_URL": f"sqlite:///{tmp / name}",
        "TRIBUTARY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "TRIBUTARY_SECRET_KEY": os.urandom(16).hex(),
        "TRIBUTARY_ENCRYPTION_KEY": Fernet.generate_key().decode(), **extra,
    })
    return env
