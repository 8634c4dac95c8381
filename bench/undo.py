"""Undo benchmark: what the run journal costs an import, and how fast an undo runs.

    python bench/undo.py [--journal-size 100000] [--undo-sizes 10000,100000] [--db sqlite,pg]

1. The journal's cost: the same 100,000-record import (simulator on loopback, real RQ
   worker, fresh list) with the journal off and on, each on a fresh database of its own;
   end-to-end time and the work horse's peak RSS. Goals: ≤ 15 % time, ≤ 10 MB.
2. Undo: a run into a list that already held a fifth of its emails (so the undo removes
   four fifths and restores the names of the rest), undone by a real worker; time from
   the request to completed. Goals: 10,000 ≤ 3 s, 100,000 ≤ 20 s.
SQLite always; PostgreSQL too when TRIBUTARY_BENCH_DATABASE_URL is set (see bench/imports.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bench.common import PeakRSS, Simulator, make_import  # noqa: E402
from bench.imports import (  # noqa: E402
    GROUPS,
    PG_HELP,
    create_database,
    drop_database,
    pg_admin_url,
)

SHARE_EXISTING = 0.2


class Bench:
    """A Redis of its own and fresh databases (SQLite files, or PostgreSQL databases)."""

    def __init__(self, admin_url: str | None):
        from webapp.devserver import free_port, start_redis

        self.tmp = Path(tempfile.mkdtemp(prefix="tributary-bench-undo-"))
        self.port = free_port()
        self.redis = start_redis(self.port, self.tmp / "redis")
        self.admin_url = admin_url
        self.created: list[str] = []
        self.secret, self.key = os.urandom(16).hex(), Fernet.generate_key().decode()

    def database(self, name: str) -> str:
        from flask_migrate import upgrade

        from webapp import create_app

        if self.admin_url:
            url = create_database(self.admin_url, f"undo_{name}_{os.getpid()}")
            self.created.append(url)
        else:
            url = f"sqlite:///{self.tmp / (name + '.sqlite')}"
        app = create_app(self.config(url))
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            from webapp.extensions import db

            db.engine.dispose()
        return url

    def config(self, url: str) -> dict:
        return {"DATABASE_URL": url, "REDIS_URL": f"redis://127.0.0.1:{self.port}/0",
                "ENV": "test", "SECRET_KEY": self.secret, "ENCRYPTION_KEY": self.key,
                "IMPORT_RUN_CAP": 10**9}

    def env(self, url: str, **extra: str) -> dict:
        env = dict(os.environ)
        env.update({
            "TRIBUTARY_ENV": "test", "TRIBUTARY_DATABASE_URL": url,
            "TRIBUTARY_REDIS_URL": f"redis://127.0.0.1:{self.port}/0",
            "TRIBUTARY_SECRET_KEY": self.secret, "TRIBUTARY_ENCRYPTION_KEY": self.key,
            "TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS": "1", "TRIBUTARY_QUEUE_NAMES": "imports",
            "TRIBUTARY_IMPORT_RUN_CAP": str(10**9), **extra,
        })
        return env

    def close(self) -> None:
        from webapp.devserver import stop

        stop(self.redis)
        for url in self.created:
            drop_database(self.admin_url, url)


def _worker(env: dict):
    from redis import Redis
    from rq import Worker

    from tests.imports import workers

    proc = workers.start_worker(env)
    conn = Redis.from_url(env["TRIBUTARY_REDIS_URL"])
    deadline = time.monotonic() + 20
    while not Worker.all(connection=conn) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def _wait(get, live=("queued", "running")):
    from webapp.extensions import db

    while True:
        db.session.expire_all()
        row = get()
        if row.status not in live:
            return row
        time.sleep(0.05)


def journal_cost(bench: Bench, size: int, provider: str, rounds: int = 2) -> dict:
    """The same import with the journal off and on, each on a fresh database, in rounds
    ordered off-on, on-off, … (so a busy machine favours neither); the best time of each
    and the highest memory peak of each are compared."""
    from tests.imports import workers
    from webapp import create_app
    from webapp.extensions import db
    from webapp.imports.runs import start_run
    from webapp.models import ImportRun

    sim = Simulator(provider, size, seed=size)
    results: dict = {"size": size, "rounds": rounds}
    tried: dict[str, list[dict]] = {"off": [], "on": []}
    order = [v for i in range(rounds) for v in (("off", "on") if i % 2 == 0 else ("on", "off"))]
    try:
        for n, variant in enumerate(order):
            url = bench.database(f"journal_{variant}_{n}")
            env = bench.env(url, TRIBUTARY_IMPORT_JOURNAL="1" if variant == "on" else "0")
            worker = _worker(env)
            app = create_app(bench.config(url))
            try:
                with app.app_context():
                    imp = make_import(provider, sim.config["settings"],
                                      sim.config["credentials"], f"journal {variant}",
                                      GROUPS[provider])
                    with PeakRSS(worker.pid) as memory:
                        started = time.perf_counter()
                        run_id = start_run(imp.id).id
                        run = _wait(lambda run_id=run_id: db.session.get(ImportRun, run_id))
                        elapsed = time.perf_counter() - started
                    tried[variant].append({
                        "seconds": round(elapsed, 2), "status": run.status,
                        "added": run.added, "write_s": (run.timings or {}).get("write", 0),
                        "peak_mb": round(memory.peak_horse, 1),
                        "peak_uss_mb": round(memory.peak_horse_uss, 1)})
                    db.session.remove()
                    db.engine.dispose()
            finally:
                workers.stop_worker(worker)
    finally:
        sim.stop()
    for variant, runs in tried.items():
        best = dict(min(runs, key=lambda r: r["seconds"]))
        best["peak_mb"] = max(r["peak_mb"] for r in runs)
        best["peak_uss_mb"] = max(r["peak_uss_mb"] for r in runs)
        best["all_seconds"] = [r["seconds"] for r in runs]
        results[variant] = best
    off, on = results["off"], results["on"]
    results["time_overhead_pct"] = round((on["seconds"] / off["seconds"] - 1) * 100, 1)
    results["write_overhead_pct"] = round((on["write_s"] / off["write_s"] - 1) * 100, 1) \
        if off["write_s"] else None
    results["memory_overhead_mb"] = round(on["peak_mb"] - off["peak_mb"], 1)
    return results


def undo_speed(bench: Bench, sizes: tuple[int, ...]) -> list[dict]:
    """Import `size` records (a fifth already on the list) in process, then time the undo
    by a real worker, and check the list is back to what it was."""
    from sqlalchemy import func, insert, select

    from tests.imports import workers
    from tests.imports.fakes import rec
    from webapp import create_app
    from webapp.extensions import db
    from webapp.imports import undo as engine
    from webapp.imports.runs import create_run, execute
    from webapp.models import Contact, ImportUndo
    from webapp.models.base import utcnow
    from webapp.providers.base import Page

    url = bench.database("undo")
    env = bench.env(url)
    worker = _worker(env)
    app = create_app(bench.config(url))
    out = []
    try:
        with app.app_context():
            for size in sizes:
                imp = make_import("shopify", {}, {}, f"undo {size}", "g")
                target = imp.list
                now, existing = utcnow(), int(size * SHARE_EXISTING)
                rows = [{"list_id": target.id, "email": f"u{size}-{i}@example.com",
                         "email_norm": f"u{size}-{i}@example.com", "name": f"Before {i}",
                         "custom": {}, "origin": "manual", "created_at": now,
                         "updated_at": now} for i in range(existing)]
                for start in range(0, len(rows), 5000):
                    db.session.execute(insert(Contact), rows[start:start + 5000])
                db.session.commit()
                records = [rec(i, f"u{size}-{i}@example.com", first="After", last=str(i))
                           for i in range(size)]
                pages = [Page(records[i:i + 1000], {"offset": i + 1000}, None,
                              done=i + 1000 >= size) for i in range(0, size, 1000)]

                class Replay:
                    def iter_pages(self, *args, _pages=pages, **kwargs):
                        yield from _pages

                run, _ = create_run(imp.id)
                run_id = run.id
                execute(run_id, provider_factory=lambda *a, **k: Replay())
                with PeakRSS(worker.pid) as memory:
                    started = time.perf_counter()
                    undo, why = engine.start_undo(db.session.get(type(run), run_id))
                    assert undo is not None, why
                    undo_id = undo.id
                    done = _wait(lambda undo_id=undo_id: db.session.get(ImportUndo, undo_id))
                    elapsed = time.perf_counter() - started
                left = db.session.scalar(select(func.count(Contact.id))
                                         .where(Contact.list_id == target.id))
                renamed = db.session.scalar(select(func.count(Contact.id)).where(
                    Contact.list_id == target.id, Contact.name.like("Before %")))
                out.append({"size": size, "seconds": round(elapsed, 2), "status": done.status,
                            "removed": done.removed, "restored": done.restored,
                            "kept": done.kept, "peak_mb": round(memory.peak_horse, 1),
                            "exact": left == existing == renamed})
            db.session.remove()
            db.engine.dispose()
    finally:
        workers.stop_worker(worker)
    return out


def _print(label: str, cost: dict | None, undos: list[dict]) -> None:
    print(f"undo benchmark — {label}")
    if cost:
        off, on = cost["off"], cost["on"]
        print(f"  journal cost, {cost['size']:,}-record import (simulator, real worker, a "
              f"fresh database each, {cost['rounds']} rounds, best time, highest peak):")
        for name, r in (("without journal", off), ("with journal", on)):
            runs = ", ".join(f"{x:.2f}" for x in r["all_seconds"])
            print(f"    {name:>16}: {r['seconds']:6.2f} s end to end (runs: {runs}; "
                  f"{r['status']}, "
                  f"added {r['added']:,}; write stage {r['write_s']:.2f} s), worker peak "
                  f"RSS {r['peak_mb']} MB (USS {r['peak_uss_mb']} MB)")
        print(f"    overhead: time {cost['time_overhead_pct']:+.1f} % (goal ≤ 15 %), write "
              f"stage {cost['write_overhead_pct']:+.1f} %, memory "
              f"{cost['memory_overhead_mb']:+.1f} MB (goal ≤ 10 MB)")
    for r in undos:
        goal = 3 if r["size"] <= 10_000 else 20
        print(f"  undo of a {r['size']:,}-contact run: {r['seconds']:.2f} s (goal ≤ {goal} s),"
              f" {r['status']}: removed {r['removed']:,}, restored {r['restored']:,}, "
              f"kept {r['kept']:,}; list back exactly: {r['exact']}; worker peak RSS "
              f"{r['peak_mb']} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal-size", type=int, default=100_000,
                        help="records of the journal-cost import (0: skip)")
    parser.add_argument("--undo-sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=2,
                        help="journal off/on pairs (alternating order)")
    parser.add_argument("--provider", default="salesforce", choices=sorted(GROUPS))
    parser.add_argument("--db", default="sqlite,pg")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.undo_sizes.split(",") if s)
    targets = []
    if "sqlite" in args.db.split(","):
        targets.append(("SQLite", None))
    if "pg" in args.db.split(","):
        if pg_admin_url():
            targets.append(("PostgreSQL", pg_admin_url()))
        else:
            print(PG_HELP)
    for label, admin in targets:
        bench = Bench(admin)
        try:
            cost = journal_cost(bench, args.journal_size, args.provider, args.rounds) \
                if args.journal_size else None
            undos = undo_speed(bench, sizes)
        finally:
            bench.close()
        _print(label, cost, undos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
