"""E-commerce benchmarks: recommendation quality and speed on a generated order history
(planted co-purchase pairs plus popularity-skewed noise; see `generate`), and the
abandoned-cart sweep.

    .venv/bin/python bench/run.py commerce [--orders 100000] [--products 5000] [--sample 2000]
                                           [--carts 100000] [--pg]

Quality: each customer's last order is held out; the model is built on the rest; hit rate
at 10 = share of customers whose held-out order holds one of their 10 recommendations,
against the popularity baseline (the 10 most-bought products they do not have). Goals:
≥ 1.2× the baseline, ≥ 90 % of planted pairs in each other's top 10, build ≤ 60 s, lookup
≤ 50 ms; sweep over 100,000 open carts ≤ 2 s. SQLite by default; `--pg` with
TRIBUTARY_BENCH_DATABASE_URL (a role that may create databases) measures PostgreSQL in a
fresh `tributary_bench_commerce` database, dropped after.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _app(url: str):
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app({"DATABASE_URL": url, "ENV": "test", "SECRET_KEY": "bench",
                      "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                      "REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return app


def generate(rng: random.Random, n_orders: int, n_products: int):
    """Planted pairs bought together, plus popularity-weighted noise (1–3 products per
    order, Zipf). A customer's order either starts a pair (both halves in the basket half
    the time, else one) or, when an earlier order left a pair half-bought, often completes
    it. Returns (pairs, each customer's orders as lists of product indexes, oldest first)."""
    products = list(range(n_products))
    weights = [1 / (i + 1) ** 0.9 for i in products]
    shuffled = products[:]
    rng.shuffle(shuffled)
    n_pairs = max(10, n_products // 20)
    pairs = [(shuffled[2 * i], shuffled[2 * i + 1]) for i in range(n_pairs)]
    customers = []
    made = 0
    while made < n_orders:
        count = min(rng.randint(2, 6), n_orders - made)
        orders, open_halves = [], []
        for _ in range(count):
            basket = set(rng.choices(products, weights, k=rng.randint(1, 3)))
            if open_halves and rng.random() < 0.6:
                basket.add(open_halves.pop(rng.randrange(len(open_halves))))
            elif rng.random() < 0.6:
                a, b = rng.choice(pairs)
                if rng.random() < 0.5:
                    a, b = b, a
                basket.add(a)
                if rng.random() < 0.5:
                    basket.add(b)
                else:
                    open_halves.append(b)
            orders.append(sorted(basket))
        customers.append(orders)
        made += count
    return pairs, customers


def load(pairs, customers, n_products: int):
    """Write the products, contacts and all but each customer's last order."""
    from sqlalchemy import insert, select

    from webapp.extensions import db
    from webapp.models import Contact, ContactList, Order, OrderLine, PluginSource, Product, Shop
    from webapp.models.base import utcnow

    now = utcnow()
    lst = ContactList(name="Bench shoppers")
    db.session.add(lst)
    db.session.flush()
    source = PluginSource(kind="shopify", name="Bench shop", list_id=lst.id)
    db.session.add(source)
    db.session.flush()
    shop = Shop(source_id=source.id, name="Bench shop")
    db.session.add(shop)
    db.session.flush()
    db.session.execute(insert(Product), [
        {"shop_id": shop.id, "external_id": f"p{i}", "title": f"Product {i}",
         "price": Decimal("10.00"), "currency": "USD", "available": True, "stub": False,
         "created_at": now, "updated_at": now} for i in range(n_products)])
    pid = dict(db.session.execute(select(Product.external_id, Product.id)).all())
    pid = {int(k[1:]): v for k, v in pid.items()}
    rows = [{"list_id": lst.id, "email": f"c{i}@example.com", "email_norm": f"c{i}@example.com",
             "name": "", "custom": {}, "origin": "manual", "status": "subscribed",
             "consent_state": "unknown", "consent_source": "", "unsubscribed_locally": False,
             "created_at": now, "updated_at": now, "note": ""} for i in range(len(customers))]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Contact), rows[start:start + 5000])
    cid = {int(e[1:].split("@")[0]): i for e, i in db.session.execute(
        select(Contact.email_norm, Contact.id).where(Contact.list_id == lst.id))}
    order_rows, held_out, n = [], {}, 0
    history: dict[int, list[list[int]]] = {}
    for c, orders in enumerate(customers):
        history[cid[c]] = orders[:-1]
        held_out[cid[c]] = {pid[p] for p in orders[-1]}
        for k, basket in enumerate(orders[:-1]):
            n += 1
            placed = now - timedelta(days=60) + timedelta(days=k * 10, seconds=c)
            order_rows.append(({"shop_id": shop.id, "external_id": f"o{n}", "contact_id": cid[c],
                                "email_norm": f"c{c}@example.com", "customer_name": "",
                                "status": "paid", "currency": "USD",
                                "total": Decimal(10 * len(basket)), "refunded": 0,
                                "revenue": Decimal(10 * len(basket)), "placed_at": placed,
                                "paid_at": placed, "backfill": True, "created_at": now},
                               basket))
    for start in range(0, len(order_rows), 5000):
        part = order_rows[start:start + 5000]
        db.session.execute(insert(Order), [r for r, _ in part])
        ids = dict(db.session.execute(select(Order.external_id, Order.id).where(
            Order.external_id.in_([r["external_id"] for r, _ in part]))).all())
        db.session.execute(insert(OrderLine), [
            {"order_id": ids[r["external_id"]], "product_id": pid[p], "title": f"Product {p}",
             "quantity": 1, "price": Decimal("10.00")} for r, basket in part for p in basket])
    db.session.commit()
    return shop.id, pid, held_out, history, len(order_rows)


def quality(pairs, pid, held_out, history, sample: int, rng: random.Random) -> dict:
    from sqlalchemy import select

    from webapp.commerce.recommend import for_contact
    from webapp.extensions import db
    from webapp.models import ProductPair

    eligible = [c for c, h in history.items() if h]
    chosen = rng.sample(eligible, min(sample, len(eligible)))
    popular = [p for p, in db.session.execute(
        select(ProductPair.product_id).where(ProductPair.product_id == ProductPair.other_id)
        .order_by(ProductPair.score.desc(), ProductPair.product_id))]
    hits = base_hits = 0
    times = []
    for contact_id in chosen:
        started = time.perf_counter()
        recs = for_contact(contact_id)
        times.append((time.perf_counter() - started) * 1000)
        target = held_out[contact_id]
        if target & {r.product_id for r in recs}:
            hits += 1
        bought = {pid[p] for basket in history[contact_id] for p in basket}
        baseline = [p for p in popular if p not in bought][:10]
        if target & set(baseline):
            base_hits += 1
    found = 0
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            top = set(db.session.scalars(
                select(ProductPair.other_id).where(ProductPair.product_id == pid[x],
                                                   ProductPair.other_id != pid[x])
                .order_by(ProductPair.score.desc()).limit(10)))
            found += pid[y] in top
    times.sort()
    return {"customers": len(chosen), "hit_rate": hits / len(chosen),
            "baseline_hit_rate": base_hits / len(chosen),
            "planted_found": found / (2 * len(pairs)),
            "lookup_p50_ms": statistics.median(times),
            "lookup_p95_ms": times[int(len(times) * 0.95) - 1], "lookup_max_ms": times[-1]}


def sweep_bench(shop_id: int, n_carts: int) -> dict:
    from sqlalchemy import insert

    from webapp.commerce.carts import sweep
    from webapp.extensions import db
    from webapp.models import Cart
    from webapp.models.base import utcnow

    now = utcnow()
    rows = [{"shop_id": shop_id, "external_id": f"cart{i}", "email_norm": f"c{i}@example.com",
             "status": "open", "currency": "USD", "total": Decimal("20.00"), "cart_url": "",
             "last_activity_at": now - timedelta(minutes=(i % 120)), "created_at": now}
            for i in range(n_carts)]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Cart), rows[start:start + 5000])
    db.session.commit()
    started = time.perf_counter()
    result = sweep(now=now)
    db.session.commit()
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = sweep(now=now + timedelta(minutes=1))
    db.session.commit()
    return {"open_carts": n_carts, "abandoned": result["abandoned"], "sweep_s": first,
            "second_sweep_s": time.perf_counter() - started,
            "second_abandoned": again["abandoned"]}


def ingest_bench(n_events: int) -> dict:
    """Events per second through `apply_events` (batches of 500, committed), a mix of
    product views, cart adds, checkouts and orders from 1,000 visitors."""
    import json

    from sqlalchemy import select

    from webapp.commerce.ingest import apply_events
    from webapp.extensions import db
    from webapp.models import ContactList, PluginEvent, PluginSource
    from webapp.models.base import utcnow

    lst = ContactList(name="Bench ingest")
    db.session.add(lst)
    db.session.flush()
    source = PluginSource(kind="website", name="Bench ingest", list_id=lst.id)
    db.session.add(source)
    db.session.commit()
    now = utcnow()
    kinds = ("product_viewed", "product_added", "checkout_started", "order_completed")
    rows = []
    for i in range(n_events):
        kind, visitor = kinds[i % 4], i // 4 % 1000
        props = {"product_id": f"p{i % 500}", "name": f"P {i % 500}", "price": 5,
                 "cart_id": f"cart-{i // 4}", "order_id": f"order-{i // 4}",
                 "products": [{"product_id": f"p{i % 500}", "price": 5, "quantity": 1}]}
        rows.append(PluginEvent(source_id=source.id, channel="api", topic=kind, kind=kind,
                                dedup_key=f"b{i}", body=json.dumps({"properties": props}),
                                email_norm=f"v{visitor}@example.com",
                                anonymous_id=f"anon-{visitor}", occurred_at=now,
                                received_at=now, status="processed"))
    db.session.add_all(rows)
    db.session.commit()
    ids = [r.id for r in rows]
    db.session.expunge_all()
    started = time.perf_counter()
    for start in range(0, len(ids), 500):
        # As the processor does: load a batch, apply it, commit.
        batch = db.session.scalars(select(PluginEvent).where(
            PluginEvent.id.in_(ids[start:start + 500])).order_by(PluginEvent.id)).all()
        apply_events(batch)
        db.session.commit()
    seconds = time.perf_counter() - started
    return {"events": n_events, "seconds": seconds, "per_second": n_events / seconds}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench commerce")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--carts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    from bench.imports import PG_HELP, create_database, drop_database, pg_admin_url

    admin = pg_admin_url()
    if args.pg and not admin:
        print(PG_HELP)
        return
    tmp = tempfile.mkdtemp(prefix="bench-commerce-")
    url = create_database(admin, "commerce") if args.pg else f"sqlite:///{tmp}/bench.sqlite"
    try:
        _run(args, url)
    finally:
        if args.pg:
            drop_database(admin, url)


def _run(args, url: str) -> None:
    app = _app(url)
    rng = random.Random(args.seed)
    with app.app_context():
        from webapp.commerce.recommend import rebuild
        from webapp.extensions import db

        print(f"database: {db.engine.dialect.name}", flush=True)
        started = time.perf_counter()
        pairs, customers = generate(rng, args.orders, args.products)
        shop_id, pid, held_out, history, loaded = load(pairs, customers, args.products)
        print(f"history: {args.orders:,} orders ({loaded:,} loaded, one per customer held "
              f"out), {len(customers):,} customers, {args.products:,} products, "
              f"{len(pairs)} planted pairs; generated and written in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        built = rebuild()
        db.session.commit()
        build_s = time.perf_counter() - started
        print(f"build: {build_s:.1f} s ({built['pairs']:,} pair rows)  goal <= 60 s "
              f"{'OK' if build_s <= 60 else 'MISSED'}", flush=True)
        q = quality(pairs, pid, held_out, history, args.sample, rng)
        ratio = q["hit_rate"] / q["baseline_hit_rate"] if q["baseline_hit_rate"] else float("inf")
        print(f"hit rate @10: {q['hit_rate']:.3f} vs popularity {q['baseline_hit_rate']:.3f} "
              f"= {ratio:.2f}x over {q['customers']:,} customers  goal >= 1.2x "
              f"{'OK' if ratio >= 1.2 else 'MISSED'}")
        print(f"planted pairs in each other's top 10: {q['planted_found']:.1%}  goal >= 90 % "
              f"{'OK' if q['planted_found'] >= 0.9 else 'MISSED'}")
        print(f"lookup: p50 {q['lookup_p50_ms']:.1f} ms, p95 {q['lookup_p95_ms']:.1f} ms, "
              f"max {q['lookup_max_ms']:.1f} ms  goal <= 50 ms "
              f"{'OK' if q['lookup_p95_ms'] <= 50 else 'MISSED'}", flush=True)
        s = sweep_bench(shop_id, args.carts)
        print(f"abandoned-cart sweep: {s['sweep_s']:.2f} s over {s['open_carts']:,} open carts "
              f"({s['abandoned']:,} abandoned); next sweep {s['second_sweep_s']:.2f} s "
              f"({s['second_abandoned']:,})  goal <= 2 s "
              f"{'OK' if s['sweep_s'] <= 2 else 'MISSED'}")
        i = ingest_bench(args.events)
        print(f"apply_events: {i['events']:,} events in {i['seconds']:.1f} s = "
              f"{i['per_second']:,.0f} events/s (batches of 500)")
        db.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
