"""Import engine benchmark: a simulator on loopback, the real worker path (enqueue → RQ worker
→ run completed), 10,000 and 100,000 contacts; and the floor: the same records fetched by the
same client and written with plain executemany upserts (sqlite3, or psycopg on PostgreSQL).

    python bench/imports.py [--provider salesforce] [--sizes 10000,100000] [--db sqlite,pg]

SQLite always; PostgreSQL too when TRIBUTARY_BENCH_DATABASE_URL names a database there (any
database of a role that may create databases: each run gets a fresh one, dropped after).

Goals: 10k ≤ 2 s, 100k ≤ 15 s end to end; write stage ≥ 20,000 rows/s; worker peak memory
≤ 100 MB at 100k and ≤ 20 MB above the 10k figure. `run()` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bench.common import PeakRSS, Simulator, make_import  # noqa: E402

GROUPS = {"shopify": "customers", "zoho": "Contacts", "magento": "customers",
          "salesforce": "Contact"}


PG_HELP = ("PostgreSQL: not measured. Set TRIBUTARY_BENCH_DATABASE_URL="
           "postgresql+psycopg://USER:PASSWORD@127.0.0.1:5432/postgres (a role that may "
           "create databases) to run this on PostgreSQL too; start the local PostgreSQL 15 "
           "with `sudo pg_ctlcluster 15 main start` (or `sudo systemctl start postgresql`).")


def pg_admin_url() -> str | None:
    return os.environ.get("TRIBUTARY_BENCH_DATABASE_URL") or None


def create_database(admin_url: str, suffix: str) -> str:
    """A fresh database `tributary_bench_<suffix>` on the server of `admin_url`; its URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"tributary_bench_{suffix}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")
    engine.dispose()


def _floor_connection(database_url: str, tmp: Path, n: int):
    """(DBAPI connection, upsert SQL) for the floor's plain upserts."""
    columns = ("CREATE TABLE floor_contacts (id {pk}, list_id INT, email TEXT, email_norm TEXT, "
               "name TEXT, custom TEXT, UNIQUE (list_id, email_norm))")
    upsert = ("INSERT INTO floor_contacts (list_id, email, email_norm, name, custom) "
              "VALUES (1, {p}, {p}, {p}, '{{}}') ON CONFLICT (list_id, email_norm) DO UPDATE "
              "SET name = excluded.name")
    if database_url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False))
        conn.execute("DROP TABLE IF EXISTS floor_contacts")
        conn.execute(columns.format(pk="SERIAL PRIMARY KEY"))
        conn.commit()
        return conn, upsert.format(p="%s")
    conn = sqlite3.connect(tmp / f"floor-{n}.sqlite")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(columns.format(pk="INTEGER PRIMARY KEY"))
    return conn, upsert.format(p="?")


def _floor(provider_name: str, config: dict, n: int, tmp: Path, database_url: str) -> dict:
    """Fetch with the same client and write with plain executemany upserts."""
    from webapp.imports.rules import normalise_email
    from webapp.providers import get_provider_class

    cls = get_provider_class(provider_name)
    provider = cls(config["settings"], config["credentials"], allow_loopback=True)
    conn, sql = _floor_connection(database_url, tmp, n)
    cursor = conn.cursor()
    started = time.perf_counter()
    fetched = written = 0
    for page in provider.iter_pages(GROUPS[provider_name], "all"):
        rows = {}
        for r in page.records:
            fetched += 1
            if r.email:
                norm = normalise_email(r.email)
                rows[norm] = (r.email, norm, f"{r.first_name or ''} {r.last_name or ''}")
        cursor.executemany(sql, list(rows.values()))
        conn.commit()
        written += len(rows)
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": round(seconds, 3), "fetched": fetched, "written": written}


def _write_stage(provider_name: str, config: dict, env: dict, tmp: Path) -> dict:
    """The write stage alone: the same records pre-fetched into memory, judged and
    upserted by the engine into a fresh list (no HTTP)."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.imports import credentials
    from webapp.imports.runs import create_run, execute
    from webapp.models import ContactList, ImportRun, Integration, RecurringImport
    from webapp.providers import get_provider_class

    provider = get_provider_class(provider_name)(config["settings"], config["credentials"],
                                                 allow_loopback=True)
    pages = list(provider.iter_pages(GROUPS[provider_name], "all"))

    class Replay:
        def iter_pages(self, *args, **kwargs):
            yield from pages

    app = create_app({"DATABASE_URL": env["TRIBUTARY_DATABASE_URL"], "ENV": "test",
                      "SECRET_KEY": "x", "ENCRYPTION_KEY": env["TRIBUTARY_ENCRYPTION_KEY"],
                      "IMPORT_RUN_CAP": 10**9})
    with app.app_context():
        integration = Integration(provider=provider_name, settings={})
        credentials.store(integration, {})
        target = ContactList(name=f"write stage {len(pages)} {time.time()}")
        db.session.add_all([integration, target])
        db.session.flush()
        imp = RecurringImport(integration=integration, list_id=target.id, group="g",
                              source="all", mapping={"email": "email", "Full name": "name"})
        db.session.add(imp)
        db.session.commit()
        run, _ = create_run(imp.id)
        run_id = run.id
        execute(run_id, provider_factory=lambda *a, **k: Replay())
        run = db.session.get(ImportRun, run_id)
        seconds = run.timings.get("write", 0.0)
        return {"rows": run.added, "seconds": round(seconds, 3),
                "rows_per_s": round(run.added / seconds) if seconds else 0}


def _one(size: int, provider_name: str, env: dict, tmp: Path) -> dict:
    from redis import Redis
    from rq import Worker

    from tests.imports import workers
    from webapp import create_app
    from webapp.extensions import db
    from webapp.imports.runs import start_run
    from webapp.models import ImportRun

    # The simulator runs in its own process, as a real API would: sharing this process's
    # interpreter lock with the polling loop below would slow it down.
    sim = Simulator(provider_name, size, seed=size)
    config = sim.config
    app = create_app({"DATABASE_URL": env["TRIBUTARY_DATABASE_URL"],
                      "REDIS_URL": env["TRIBUTARY_REDIS_URL"], "ENV": "test",
                      "SECRET_KEY": env["TRIBUTARY_SECRET_KEY"],
                      "ENCRYPTION_KEY": env["TRIBUTARY_ENCRYPTION_KEY"]})
    worker = workers.start_worker(env)
    try:
        with app.app_context():
            conn = Redis.from_url(env["TRIBUTARY_REDIS_URL"])
            deadline = time.monotonic() + 20
            while not Worker.all(connection=conn) and time.monotonic() < deadline:
                time.sleep(0.05)
            imp = make_import(provider_name, config["settings"], config["credentials"],
                              f"bench {size}", GROUPS[provider_name])
            with PeakRSS(worker.pid) as memory:
                started = time.perf_counter()
                run_id = start_run(imp.id).id
                while True:
                    db.session.expire_all()
                    run = db.session.get(ImportRun, run_id)
                    if run.status not in ("queued", "running"):
                        break
                    time.sleep(0.1)  # a page polling its progress reads far less often
                elapsed = time.perf_counter() - started
            timings = run.timings or {}
            result = {
                "size": size, "status": run.status, "seconds": round(elapsed, 3),
                "fetched": run.fetched, "added": run.added, "rejected": run.rejected,
                "pages": run.pages, "timings": timings,
                "write_rows_per_s": round(run.added / timings["write"]) if timings.get(
                    "write") else None,
                "worker_peak_mb": round(memory.peak_horse, 1),
                "worker_peak_uss_mb": round(memory.peak_horse_uss, 1),
                "worker_parent_peak_mb": round(memory.peak_worker, 1),
            }
        result["floor"] = _floor(provider_name, config, size, tmp,
                                 env["TRIBUTARY_DATABASE_URL"])
        result["write_stage"] = _write_stage(provider_name, config, env, tmp)
        result["engine_over_floor"] = round(result["seconds"] / result["floor"]["seconds"], 2)
        return result
    finally:
        workers.stop_worker(worker)
        sim.stop()


def run(sizes: tuple[int, ...] = (10_000, 100_000), provider: str = "salesforce",
        database_url: str | None = None) -> dict:
    """Run the benchmark on a fresh database (SQLite file, or `database_url`); returns the
    figures (also printed by main)."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.devserver import free_port, start_redis, stop

    tmp = Path(tempfile.mkdtemp(prefix="tributary-bench-"))
    port = free_port()
    redis = start_redis(port, tmp / "redis")
    env = dict(os.environ)
    env.update({
        "TRIBUTARY_ENV": "test",
        "TRIBUTARY_DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.sqlite'}",
        "TRIBUTARY_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "TRIBUTARY_SECRET_KEY": os.urandom(16).hex(),
        "TRIBUTARY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS": "1",
        "TRIBUTARY_QUEUE_NAMES": "imports",
        "TRIBUTARY_IMPORT_RUN_CAP": str(max(sizes) + 1),  # measure the engine, not the cap
    })
    try:
        app = create_app({"DATABASE_URL": env["TRIBUTARY_DATABASE_URL"], "ENV": "test",
                          "SECRET_KEY": "x", "ENCRYPTION_KEY": env["TRIBUTARY_ENCRYPTION_KEY"]})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            from webapp.extensions import db

            database = db.engine.dialect.name
            db.engine.dispose()
        results = {"provider": provider, "database": database,
                   "runs": [_one(n, provider, env, tmp) for n in sizes]}
    finally:
        stop(redis)
    by_size = {r["size"]: r for r in results["runs"]}
    if 10_000 in by_size and 100_000 in by_size:
        results["memory_growth_mb_10k_to_100k"] = round(
            by_size[100_000]["worker_peak_mb"] - by_size[10_000]["worker_peak_mb"], 1)
    return results


def run_postgresql(sizes: tuple[int, ...], provider: str, admin_url: str) -> dict:
    """`run` on a fresh PostgreSQL database created for it and dropped after."""
    url = create_database(admin_url, f"imports_{os.getpid()}")
    try:
        return run(sizes, provider, url)
    finally:
        drop_database(admin_url, url)


def _print(results: dict) -> None:
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[results["database"]]
    print(f"import engine benchmark — {results['provider']} simulator, {label}, real worker")
    for r in results["runs"]:
        print(f"  {r['size']:>7,} records: {r['seconds']:6.2f} s end to end ({r['status']}), "
              f"added {r['added']:,}, rejected {r['rejected']:,}, {r['pages']} pages")
        t = r["timings"]
        print(f"           stages: fetch {t.get('fetch', 0):.2f} s, process "
              f"{t.get('process', 0):.2f} s, write {t.get('write', 0):.2f} s "
              f"({r['write_rows_per_s'] or 0:,} rows/s)")
        print(f"           worker peak RSS {r['worker_peak_mb']} MB (work horse; "
              f"{r['worker_peak_uss_mb']} MB of it its own, USS), "
              f"{r['worker_parent_peak_mb']} MB (worker)")
        w = r["write_stage"]
        print(f"           write stage alone (pages in memory, no HTTP): "
              f"{w['rows']:,} rows in {w['seconds']:.2f} s = {w['rows_per_s']:,} rows/s")
        f = r["floor"]
        driver = "psycopg" if results["database"] == "postgresql" else "sqlite3"
        print(f"           floor (same client + {driver} executemany): {f['seconds']:.2f} s; "
              f"engine/floor {r['engine_over_floor']}× (goal ≤ 2×)")
    if "memory_growth_mb_10k_to_100k" in results:
        print(f"  memory growth 10k → 100k: {results['memory_growth_mb_10k_to_100k']} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="salesforce", choices=sorted(GROUPS))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", default="sqlite,pg",
                        help="sqlite, pg or both (pg needs TRIBUTARY_BENCH_DATABASE_URL)")
    parser.add_argument("--json", action="store_true", help="print the dicts as JSON only")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    wanted = args.db.split(",")
    everything = []
    if "sqlite" in wanted:
        everything.append(run(sizes, args.provider))
    if "pg" in wanted:
        admin = pg_admin_url()
        if admin:
            everything.append(run_postgresql(sizes, args.provider, admin))
        elif not args.json:
            print(PG_HELP)
    if args.json:
        print(json.dumps(everything, indent=2))
        return 0
    for results in everything:
        _print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
