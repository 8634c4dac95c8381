"""Several imports at once on PostgreSQL: 4 imports × 25,000 contacts (4 simulators, 4 lists)
run by 1 and by 2 RQ workers on a fresh database each time; wall time for all four, and every
list checked exact (each holds exactly the rows its run added, no duplicates).

    python bench/parallel.py [--imports 4] [--size 25000] [--workers 1,2]

Needs TRIBUTARY_BENCH_DATABASE_URL (a PostgreSQL role that may create databases).
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

from bench.common import Simulator  # noqa: E402
from bench.imports import GROUPS, PG_HELP, create_database, drop_database, pg_admin_url  # noqa: E402

PROVIDER = "salesforce"


def _pass(admin_url: str, imports: int, size: int, worker_count: int) -> dict:
    from flask_migrate import upgrade
    from redis import Redis
    from rq import Worker
    from sqlalchemy import func, select

    from tests.imports import workers
    from webapp import create_app
    from webapp.devserver import free_port, start_redis, stop
    from webapp.extensions import db
    from webapp.imports import credentials
    from webapp.imports.runs import start_run
    from webapp.models import Contact, ContactList, ImportRun, Integration, RecurringImport

    url = create_database(admin_url, f"parallel_{os.getpid()}")
    tmp = Path(tempfile.mkdtemp(prefix="tributary-parallel-"))
    port = free_port()
    redis = start_redis(port, tmp / "redis")
    env = dict(os.environ)
    env.update({
        "TRIBUTARY_ENV": "test", "TRIBUTARY_DATABASE_URL": url,
        "TRIBUTARY_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "TRIBUTARY_SECRET_KEY": os.urandom(16).hex(),
        "TRIBUTARY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS": "1", "TRIBUTARY_QUEUE_NAMES": "imports",
        "TRIBUTARY_IMPORT_RUN_CAP": str(size + 1),
    })
    sims = [Simulator(PROVIDER, size, seed=100 + i) for i in range(imports)]
    procs = []
    try:
        app = create_app({"DATABASE_URL": url, "REDIS_URL": env["TRIBUTARY_REDIS_URL"],
                          "ENV": "test", "SECRET_KEY": env["TRIBUTARY_SECRET_KEY"],
                          "ENCRYPTION_KEY": env["TRIBUTARY_ENCRYPTION_KEY"]})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            imps = []
            for i, sim in enumerate(sims):
                integration = Integration(provider=PROVIDER, name=f"{PROVIDER} {i}",
                                          settings=sim.config["settings"])
                credentials.store(integration, sim.config["credentials"])
                target = ContactList(name=f"parallel {i}")
                db.session.add_all([integration, target])
                db.session.flush()
                imps.append(RecurringImport(integration=integration, list_id=target.id,
                                            group=GROUPS[PROVIDER], source="all",
                                            mapping={"email": "email", "Full name": "name"}))
            db.session.add_all(imps)
            db.session.commit()
            procs = [workers.start_worker(env) for _ in range(worker_count)]
            conn = Redis.from_url(env["TRIBUTARY_REDIS_URL"])
            deadline = time.monotonic() + 30
            while len(Worker.all(connection=conn)) < worker_count and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.perf_counter()
            run_ids = [start_run(imp.id).id for imp in imps]
            while True:
                db.session.expire_all()
                runs = [db.session.get(ImportRun, r) for r in run_ids]
                if all(r.status not in ("queued", "running") for r in runs):
                    break
                time.sleep(0.2)
            wall = time.perf_counter() - started
            exact = []
            for imp, run in zip(imps, runs, strict=True):
                rows, distinct = db.session.execute(
                    select(func.count(), func.count(func.distinct(Contact.email_norm)))
                    .where(Contact.list_id == imp.list_id)).one()
                exact.append(run.status.startswith("completed") and rows == distinct
                             == run.added and run.fetched == size)
            added = sum(r.added for r in runs)
            db.session.remove()
            db.engine.dispose()
        return {"workers": worker_count, "imports": imports, "size": size,
                "seconds": round(wall, 2), "rows_per_s": round(added / wall),
                "statuses": [r.status for r in runs], "every_list_exact": all(exact)}
    finally:
        for proc in procs:
            workers.stop_worker(proc)
        for sim in sims:
            sim.stop()
        stop(redis)
        drop_database(admin_url, url)


def run(imports: int = 4, size: int = 25_000, worker_counts: tuple[int, ...] = (1, 2)) -> dict:
    admin = pg_admin_url()
    if not admin:
        return {"skipped": PG_HELP}
    return {"passes": [_pass(admin, imports, size, n) for n in worker_counts]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=4)
    parser.add_argument("--size", type=int, default=25_000)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    result = run(args.imports, args.size, tuple(int(n) for n in args.workers.split(",")))
    if "skipped" in result:
        print(result["skipped"])
        return 0
    print(f"{args.imports} imports × {args.size:,} contacts on PostgreSQL (fresh database each)")
    for p in result["passes"]:
        print(f"  {p['workers']} worker(s): {p['seconds']:7.2f} s for all four, "
              f"{p['rows_per_s']:,} rows/s; every list exact: {p['every_list_exact']} "
              f"({', '.join(sorted(set(p['statuses'])))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
