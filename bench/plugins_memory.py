"""Web memory over many received events: gunicorn as deployed (SQLite, a real Redis)
receives `--events` events through the tracking API in /v1/batch requests of `--batch`
events; the RSS of each gunicorn worker is printed at the start and after each quarter, and
its growth over the second half (flat = no growth with the number of events once warm); the
database count must equal the events sent.

    .venv/bin/python bench/run.py plugins-memory [--events 1000000] [--batch 100]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import sqlite_env  # noqa: E402
from bench.plugins_ack import _gunicorn, _stop, _wait_port, drive  # noqa: E402

WARM_ROUNDS = 12


def _batch_request(key: str, size: int):
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    def make(n: int):
        events = [{"type": "track", "userId": f"u{(n * size + i) % 20000}",
                   "event": "Product Viewed", "messageId": str(uuid.uuid4()),
                   "properties": {"sku": f"SKU-{i % 300}", "price": 19.5},
                   "timestamp": "2026-12-01T10:00:00Z"} for i in range(size)]
        return "/v1/batch", json.dumps({"batch": events}).encode(), {
            "Authorization": auth, "Content-Type": "application/json"}
    return make


def _worker_rss(proc) -> dict[int, float]:
    """RSS (MB) of each gunicorn worker, by pid (so that samples compare worker by worker)."""
    import psutil

    return {c.pid: round(c.memory_info().rss / 2**20, 1)
            for c in psutil.Process(proc.pid).children(recursive=True)}


def run(events: int, batch: int) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from tests.factories import make_list
    from webapp import create_app
    from webapp.devserver import free_port, start_redis, stop
    from webapp.extensions import db
    from webapp.models.plugins import PluginEvent, PluginSource
    from webapp.plugins import keys

    tmp = Path(tempfile.mkdtemp(prefix="tributary-webmem-"))
    redis_port = free_port()
    redis = start_redis(redis_port, tmp / "redis")
    env = sqlite_env(tmp, "mem.sqlite", redis_port)
    proc = None
    try:
        app = create_app({"DATABASE_URL": env["TRIBUTARY_DATABASE_URL"], "ENV": "test",
                          "REDIS_URL": env["TRIBUTARY_REDIS_URL"],
                          "SECRET_KEY": env["TRIBUTARY_SECRET_KEY"],
                          "ENCRYPTION_KEY": env["TRIBUTARY_ENCRYPTION_KEY"]})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            site = PluginSource(kind="website", name="Memory", list_id=make_list("M").id)
            db.session.add(site)
            db.session.flush()
            key = keys.create(site, "server").secret
            db.session.commit()
            site_id = site.id
        port = free_port()
        proc = _gunicorn("wsgi:app", env, port)
        _wait_port(port)
        make = _batch_request(key, batch)
        # Warm up until every worker has served requests on all its threads (and their
        # database connections): keep-alive senders stay with the worker that accepted them,
        # so the first burst may all land on one; a thread first used late would otherwise
        # show as growth. Rounds of fresh senders, more than the threads, until each worker's
        # memory has moved from where it started.
        idle = _worker_rss(proc)
        warm = {"sent": 0, "ok": 0}
        for _round in range(WARM_ROUNDS):
            part = drive(port, make, 200, 1, 32)
            warm = {k: warm[k] + part[k] for k in warm}
            now = _worker_rss(proc)
            if all(now.get(pid, 0) > rss + 5 for pid, rss in idle.items()):
                break
        requests = events // batch
        samples = {"idle": idle, "start": _worker_rss(proc)}
        started = time.perf_counter()
        sent = ok = 0
        for quarter in (1, 2, 3, 4):  # as fast as it answers, a quarter at a time
            part = drive(port, make, 10_000, 0.0001 + (requests * quarter // 4 - sent // batch)
                         / 10_000, 8)
            sent, ok = sent + part["sent"] * batch, ok + part["ok"] * batch
            samples[f"{quarter * 25} %"] = _worker_rss(proc)
        seconds = time.perf_counter() - started
        with app.app_context():
            stored = db.session.scalar(select(func.count(PluginEvent.id))
                                       .where(PluginEvent.source_id == site_id))
        return {"events": sent + warm["sent"] * batch, "acknowledged": ok + warm["ok"] * batch,
                "stored": stored, "seconds": seconds, "rss": samples, "warm_rounds": _round + 1}
    finally:
        if proc is not None:
            _stop(proc)
        stop(redis)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    r = run(args.events, args.batch)
    print(f"web memory over {r['events']:,} events in batches of {args.batch} "
          f"({r['seconds']:.0f} s, {r['events'] / r['seconds']:,.0f} events/s): "
          f"acknowledged {r['acknowledged']:,}, stored {r['stored']:,}, "
          f"lost {r['acknowledged'] - r['stored']:,}")
    pids = sorted(r["rss"]["start"])
    print(f"  warm-up: {r['warm_rounds']} rounds of 200 requests from 32 fresh keep-alive "
          f"senders (until every worker had moved from its idle RSS)")
    for when, values in r["rss"].items():
        print(f"  gunicorn workers' RSS at {when}: "
              f"{', '.join(f'{values.get(pid, 0)} MB' for pid in pids)}")
    half, end = r["rss"]["50 %"], r["rss"]["100 %"]
    growth = [round(end.get(pid, 0) - half.get(pid, 0), 1) for pid in pids]
    print(f"  growth over the second half (flat = about 0), worker by worker: "
          f"{', '.join(f'{g:+} MB' for g in growth)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
