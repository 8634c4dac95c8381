"""Plugin-event processing: a real `worker.py plugins` against a real Redis and database.

    .venv/bin/python bench/run.py plugins-process [--events 100000] [--rate 100]
                                                  [--seconds 20] [--db sqlite|pg]

1. Throughput: `--events` stored events (a visit, a consenting form sign-up that adds and
   stitches, a product view and an order per person) processed by one worker from a cold
   start; events/s, and the work horse's RSS at the start, middle and end (flat = no growth
   with the number of events).
2. Latency: events stored at `--rate` per second for `--seconds` (inserted straight into the
   database and nudged as intake does); the time from storing an event to its being on its
   contact's timeline (processed, contact set: what the contact page reads), p50/p95/max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bench.imports import PG_HELP, create_database, drop_database, pg_admin_url  # noqa: E402


def _env(database_url: str, redis_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update({"TRIBUTARY_ENV": "test", "TRIBUTARY_DATABASE_URL": database_url,
                "TRIBUTARY_REDIS_URL": redis_url, "TRIBUTARY_SECRET_KEY": os.urandom(32).hex(),
                "TRIBUTARY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "TRIBUTARY_QUEUE_NAMES": "plugins", "PYTHONPATH": str(ROOT)})
    return env


class HorseRSS:
    """Samples the RSS (MB) of the worker's work horses while the worker runs."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)
        self.latest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                sizes = [c.memory_info().rss / 2**20 for c in self.proc.children(recursive=True)]
                if sizes and max(sizes) > 0:  # a horse that just exited reads 0
                    self.latest = max(sizes)
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _prepare(database_url: str, env: dict):
    os.environ.update({k: v for k, v in env.items() if k.startswith("TRIBUTARY_")})
    from webapp import create_app

    app = create_app({"DATABASE_URL": database_url})
    ctx = app.app_context()
    ctx.push()
    from flask_migrate import upgrade

    upgrade(directory=str(ROOT / "migrations"))
    return app, ctx


def _pending(db, events_t) -> int:
    from sqlalchemy import func, select

    value = db.session.scalar(select(func.count()).select_from(events_t)
                              .where(events_t.c.status == "pending"))
    db.session.commit()
    return value or 0


def throughput(args, env: dict) -> dict:
    from redis import Redis

    from tests.factories import make_list
    from tests.plugins import factories as f
    from webapp.extensions import db
    from webapp.plugins import nudge, process

    source = f.make_source(make_list("Bench throughput"))
    people = args.events // 4
    started = time.perf_counter()
    for start in range(0, people, 5000):
        f.insert_rows(f.bulk_rows(source.id, range(start, min(start + 5000, people)),
                                  domain="tp.example"))
    stored = time.perf_counter() - started
    total = people * 4
    worker = subprocess.Popen([sys.executable, "worker.py", "plugins"], cwd=ROOT, env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    rss = HorseRSS(worker.pid)
    redis = Redis.from_url(env["TRIBUTARY_REDIS_URL"])
    try:
        nudge.nudge_now(redis)
        samples: dict[str, float] = {}
        first_at = None
        while True:
            left = _pending(db, process.events_t)
            done = total - left
            if done and first_at is None:
                first_at = time.perf_counter()
            if done and "start" not in samples and rss.latest:
                samples["start"] = rss.latest
            if done >= total // 2 and "middle" not in samples:
                samples["middle"] = rss.latest
            if not left:
                samples["end"] = rss.latest
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - (first_at or started)
    finally:
        rss.stop()
        worker.terminate()
        worker.wait(timeout=30)
    return {"events": total, "store_seconds": round(stored, 1),
            "process_seconds": round(seconds, 2), "events_per_s": round(total / seconds),
            "horse_rss_mb": {k: round(v, 1) for k, v in samples.items()}}


def latency(args, env: dict) -> dict:
    import json
    import uuid

    from redis import Redis
    from sqlalchemy import insert, select

    from tests.factories import make_list
    from tests.plugins import factories as f
    from webapp.extensions import db
    from webapp.models import PluginEvent
    from webapp.models.base import utcnow
    from webapp.plugins import nudge

    source = f.make_source(make_list("Bench latency"))
    redis = Redis.from_url(env["TRIBUTARY_REDIS_URL"])
    worker = subprocess.Popen([sys.executable, "worker.py", "plugins"], cwd=ROOT, env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(3)  # the worker is up, as in production
    stored: dict[int, float] = {}
    seen: dict[int, float] = {}
    try:
        n = args.rate * args.seconds
        started = time.perf_counter()
        for i in range(n):
            due = started + i / args.rate
            while time.perf_counter() < due:
                time.sleep(0.001)
            email = f"lat{i}@bench.example"
            body = f.track("Form Submitted", f"anon-lat-{i}", email=email, consent=True)
            row = {"source_id": source.id, "channel": "browser", "topic": "track",
                   "kind": "form_submitted", "name": "Form Submitted",
                   "dedup_key": str(uuid.uuid4()), "body": json.dumps(body),
                   "email_norm": email, "anonymous_id": f"anon-lat-{i}",
                   "received_at": utcnow(), "status": "pending", "attempts": 0,
                   "verdict": {}, "error": ""}
            event_id = db.session.execute(insert(PluginEvent).returning(PluginEvent.id),
                                          [row]).scalar()
            db.session.commit()
            stored[event_id] = time.perf_counter()
            nudge.nudge_now(redis)  # intake's nudge
            if i % 10 == 0:
                _poll(db, PluginEvent, stored, seen, select)
        deadline = time.perf_counter() + 30
        while len(seen) < len(stored) and time.perf_counter() < deadline:
            _poll(db, PluginEvent, stored, seen, select)
            time.sleep(0.02)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    waits = sorted(seen[i] - stored[i] for i in seen)
    p95 = waits[int(len(waits) * 0.95) - 1] if waits else None
    return {"events": len(stored), "visible": len(seen), "rate_per_s": args.rate,
            "p50_s": round(statistics.median(waits), 3) if waits else None,
            "p95_s": round(p95, 3) if p95 is not None else None,
            "max_s": round(waits[-1], 3) if waits else None}


def _poll(db, model, stored: dict, seen: dict, select) -> None:
    """Mark events that are on their contact's timeline now (processed, contact set)."""
    waiting = [i for i in stored if i not in seen]
    if not waiting:
        return
    now = time.perf_counter()
    for (event_id,) in db.session.execute(select(model.id).where(
            model.id.in_(waiting), model.status == "processed", model.contact_id.is_not(None))):
        seen[event_id] = now
    db.session.commit()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench plugins-process")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    args = parser.parse_args(argv)
    from webapp.devserver import free_port, start_redis, stop

    tmp = Path(tempfile.mkdtemp(prefix="tributary-bench-plugins-"))
    admin = pg_admin_url()
    if args.db == "pg" and not admin:
        print(PG_HELP)
        return
    database_url = create_database(admin, "plugins") if args.db == "pg" else \
        f"sqlite:///{tmp / 'bench.sqlite'}"
    port = free_port()
    redis = start_redis(port, tmp)
    env = _env(database_url, f"redis://127.0.0.1:{port}/0")
    _app, ctx = _prepare(database_url, env)
    try:
        from webapp.plugins.process import batch_size

        print(f"database: {args.db}; one `worker.py plugins`; batches of {batch_size()}",
              flush=True)
        result = throughput(args, env)
        print(f"throughput: {result['events']:,} events processed in "
              f"{result['process_seconds']} s = {result['events_per_s']:,} events/s "
              f"(floor asked: 1,000/s); stored in {result['store_seconds']} s", flush=True)
        print(f"work horse RSS (MB) start/middle/end: {result['horse_rss_mb']}", flush=True)
        lat = latency(args, env)
        print(f"latency at {lat['rate_per_s']} events/s for {args.seconds} s: "
              f"{lat['visible']}/{lat['events']} on their contact's timeline; p50 "
              f"{lat['p50_s']} s, p95 {lat['p95_s']} s (asked: ≤ 2 s), max {lat['max_s']} s",
              flush=True)
    finally:
        ctx.pop()
        stop(redis)
        if args.db == "pg":
            drop_database(admin, database_url)
