"""Segments and automations: a segment count with 3 conditions over 100,000 contacts,
1,000,000 page visits and 200,000 orders (goal ≤ 200 ms), and automation evaluation
under 500 events/s for 60 s (goal: no growing backlog).

    make bench BENCH_ARGS="segments [--contacts N] [--seconds S] [--db sqlite|pg|both]"

SQLite always; PostgreSQL too when TRIBUTARY_BENCH_DATABASE_URL names a server database
the bench may create a database next to. The indexes the count uses are printed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent

DEFINITION = {"op": "and", "items": [
    {"type": "purchased", "what": "anything", "days": 30, "min_amount": "50"},
    {"type": "visited", "match": "contains", "url": "/products/shoe-7", "days": 7},
    {"type": "consent", "state": "subscribed"},
]}
INDEXES = ("orders: ix_orders_contact_id_placed_at_paid (contact_id, placed_at, status, "
           "revenue, backfill) — covering, migration 000f",
           "page_visits: ix_page_visits_contact_id_visited_at (contact_id, visited_at)",
           "carts: ix_carts_contact_id",
           "automation_entries: unique (automation_id, contact_id, round)",
           "contacts: scanned once (consent/origin/custom are columns of the row)")


def _fill(contacts: int, visits: int, orders: int, seed: int = 7) -> None:
    """Contacts, a shop, page visits over 90 days and paid orders over a year (one DBAPI
    executemany per chunk, as the import engine writes)."""
    from webapp.extensions import db
    from webapp.imports.upsert import BulkStatement
    from webapp.models import Contact, ContactList, PluginSource
    from webapp.models.base import utcnow
    from webapp.models.commerce import Order, PageVisit, Shop

    rng = random.Random(seed)
    now = utcnow()
    lst = ContactList(name="Bench")
    db.session.add(lst)
    db.session.flush()
    source = PluginSource(kind="shopify", name="Bench shop", list_id=lst.id)
    db.session.add(source)
    db.session.flush()
    shop = Shop(source_id=source.id, name="Bench shop")
    db.session.add(shop)
    db.session.commit()
    old = now - timedelta(days=400)
    statements: dict = {}

    def insert(model):
        table = model.__table__

        def write(rows):
            connection = db.session.connection()
            keys = list(rows[0])
            if table.name not in statements:
                statements[table.name] = BulkStatement(connection, table.insert(), table, keys)
            statements[table.name].execute(connection, rows)
        return write

    states = ("subscribed", "unknown", "opted_out")
    for start in range(0, contacts, 20_000):
        insert(Contact)([
            {"list_id": lst.id, "email": f"p{i}@example.com", "email_norm": f"p{i}@example.com",
             "name": "", "custom": {}, "origin": "plugin", "status": "subscribed",
             "consent_state": states[i % 3], "consent_source": "", "unsubscribed_locally": False,
             "created_at": old, "updated_at": old, "note": ""}
            for i in range(start, min(contacts, start + 20_000))])
    db.session.commit()
    first = db.session.query(Contact.id).order_by(Contact.id).first()[0]
    for start in range(0, visits, 50_000):
        insert(PageVisit)([
            {"source_id": source.id, "contact_id": first + rng.randrange(contacts),
             "url": f"https://shop.example.com/products/shoe-{rng.randrange(500)}",
             "visited_at": now - timedelta(seconds=rng.randrange(90 * 86400))}
            for _ in range(start, min(visits, start + 50_000))])
        db.session.commit()
    for start in range(0, orders, 50_000):
        rows = []
        for n in range(start, min(orders, start + 50_000)):
            total = rng.randrange(5, 300)
            rows.append({"shop_id": shop.id, "external_id": f"o{n}",
                         "contact_id": first + rng.randrange(contacts), "status": "paid",
                         "currency": "USD", "total": total, "refunded": 0, "revenue": total,
                         "placed_at": now - timedelta(seconds=rng.randrange(365 * 86400)),
                         "backfill": False, "customer_name": "", "created_at": now})
        insert(Order)(rows)
        db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()


def _count_timing(repeats: int = 7) -> dict:
    from webapp.commerce import segments

    cleaned = segments.clean_definition(DEFINITION)
    times, result = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        result = segments.count(cleaned)
        times.append((time.perf_counter() - started) * 1000)
    return {"count": result, "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1)}


def _events_load(seconds: int, rate: int, seed: int = 9) -> dict:
    """Each second: `rate` new paid orders committed (as the event processor would), the
    touched contacts evaluated against two enabled automations. Backlog = work not done
    when the next second's events arrive."""
    from sqlalchemy import func, insert, select

    from webapp.commerce import automations, segments
    from webapp.extensions import db
    from webapp.models import Contact
    from webapp.models.base import utcnow
    from webapp.models.commerce import Automation, AutomationEntry, Order, Shop

    rng = random.Random(seed)
    shop_id = db.session.scalar(select(Shop.id))
    low, high = db.session.execute(select(func.min(Contact.id), func.max(Contact.id))).one()
    for name, definition, action in (
        ("Big spenders", {"op": "and", "items": [
            {"type": "purchased", "what": "anything", "days": 1, "min_amount": "250"}]},
         {"kind": "set_field", "field": "vip", "value": "yes"}),
        ("Shoe browsers who buy", {"op": "and", "items": [
            {"type": "purchased", "what": "anything", "days": 1},
            {"type": "visited", "match": "contains", "url": "shoe-1", "days": 7}]},
         {"kind": "set_field", "field": "shoes", "value": "yes"}),
    ):
        segment = segments.save(name, definition)
        db.session.flush()
        db.session.add(Automation(name=name, segment_id=segment.id, action=action,
                                  enabled=True, enabled_at=utcnow()))
    db.session.commit()
    per_second, backlog, behind = [], [], 0.0
    serial = 0
    for _second in range(seconds):
        tick = time.perf_counter()
        touched = []
        rows = []
        now = utcnow()
        for _ in range(rate):
            contact_id = rng.randint(low, high)
            total = rng.randrange(5, 300)
            serial += 1
            rows.append({"shop_id": shop_id, "external_id": f"live{serial}",
                         "contact_id": contact_id, "status": "paid", "currency": "USD",
                         "total": total, "refunded": 0, "revenue": total, "placed_at": now,
                         "backfill": False, "customer_name": "", "created_at": now})
            touched.append(contact_id)
        db.session.execute(insert(Order), rows)
        db.session.commit()
        started = time.perf_counter()
        automations.evaluate_contacts(sorted(set(touched)))
        per_second.append(time.perf_counter() - started)
        spent = time.perf_counter() - tick
        behind = max(0.0, behind + spent - 1.0)
        backlog.append(behind)
        time.sleep(max(0.0, 1.0 - spent))
    entries = db.session.scalar(select(func.count()).select_from(AutomationEntry))
    return {"seconds": seconds, "events_per_s": rate,
            "evaluate_median_s": round(statistics.median(per_second), 3),
            "evaluate_max_s": round(max(per_second), 3),
            "backlog_end_s": round(backlog[-1], 2), "backlog_max_s": round(max(backlog), 2),
            "entries": entries,
            "orders": db.session.scalar(select(func.count()).select_from(Order))}


def run(database_url: str | None, contacts: int, visits: int, orders: int,
        seconds: int) -> dict:
    from flask_migrate import upgrade

    from webapp import create_app

    tmp = Path(tempfile.mkdtemp(prefix="tributary-bench-segments-"))
    url = database_url or f"sqlite:///{tmp / 'bench.sqlite'}"
    app = create_app({"DATABASE_URL": url, "ENV": "test", "SECRET_KEY": os.urandom(8).hex(),
                      "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                      "REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        from webapp.extensions import db

        upgrade(directory=str(ROOT / "migrations"))
        started = time.perf_counter()
        _fill(contacts, visits, orders)
        filled = time.perf_counter() - started
        result = {"database": db.engine.dialect.name, "fill_s": round(filled, 1),
                  "contacts": contacts, "visits": visits, "orders": orders,
                  "count": _count_timing()}
        result["load"] = _events_load(seconds, 500)
        db.session.remove()
        db.engine.dispose()
    return result


def _print(r: dict) -> None:
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[r["database"]]
    c, load = r["count"], r["load"]
    print(f"segments benchmark — {label}: {r['contacts']:,} contacts, {r['visits']:,} page "
          f"visits, {r['orders']:,} orders (filled in {r['fill_s']} s)")
    print(f"  segment count, 3 conditions (purchased ≥ 50 in 30 days AND visited a URL "
          f"containing … in 7 days AND consent subscribed): {c['count']:,} contacts, "
          f"median {c['median_ms']} ms, max {c['max_ms']} ms (goal ≤ 200 ms)")
    print(f"  automation evaluation under {load['events_per_s']} events/s for "
          f"{load['seconds']} s, 2 automations: evaluate median {load['evaluate_median_s']} s, "
          f"max {load['evaluate_max_s']} s per second of events; backlog at the end "
          f"{load['backlog_end_s']} s, at most {load['backlog_max_s']} s (goal: not growing); "
          f"{load['entries']:,} entries")
    print("  indexes used: " + "; ".join(INDEXES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    args = parser.parse_args(argv or [])
    sizes = (args.contacts, args.visits, args.orders, args.seconds)
    if args.db in ("sqlite", "both"):
        _print(run(None, *sizes))
    admin = os.environ.get("TRIBUTARY_BENCH_DATABASE_URL")
    if args.db in ("pg", "both"):
        if not admin:
            print("PostgreSQL: not measured (set TRIBUTARY_BENCH_DATABASE_URL).")
            return 0
        from bench.imports import create_database, drop_database

        url = create_database(admin, f"segments_{os.getpid()}")
        try:
            _print(run(url, *sizes))
        finally:
            drop_database(admin, url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
