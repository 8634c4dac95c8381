"""Commerce state from plugin events, written set-based inside the processor's batch
transaction (the caller commits). Arrival order does not matter: products named by an
order are created as stubs and filled in later, a snapshot only replaces state older than
itself, paid/cancelled/refunds are facts merged from every event, and a replay changes
nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import (
    Order,
    OrderLine,
    OrderRefund,
    PageVisit,
    PluginSource,
    Product,
    ProductVariant,
    Shop,
)
from ..models.base import utcnow
from . import carts as cart_writer
from .facts import EventFacts, OrderFact, ProductFact, read

CHUNK = 500


def dialect_insert(model):
    """INSERT … ON CONFLICT for the session's database, on the model's table (Core: run
    with a list of rows, it is compiled once and sent as multi-row batches)."""
    name = db.session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(model.__table__)


def chunks(rows: list, size: int = CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def apply_events(events: list) -> None:
    """Write what `events` (PluginEvent rows, contact_id already resolved) say about shops,
    products, orders, carts and page visits. No commit: the caller's transaction."""
    parsed = [(event, read(event)) for event in events]
    parsed = [(e, f) for e, f in parsed if f.products or f.order or f.cart or f.page_url]
    if not parsed:
        return
    shops = ensure_shops({e.source_id for e, _ in parsed})
    products = write_products(shops, parsed)
    order_ids = write_orders(shops, products, parsed)
    cart_ids = cart_writer.write_carts(shops, products, parsed)
    cart_writer.settle(cart_ids=cart_ids, order_ids=order_ids)
    write_page_visits(parsed)


def ensure_shops(source_ids: set[int]) -> dict[int, int]:
    """Shop id per source id, creating the missing shops (race-free)."""
    found = dict(db.session.execute(
        select(Shop.source_id, Shop.id).where(Shop.source_id.in_(source_ids))).all())
    missing = source_ids - found.keys()
    if missing:
        names = dict(db.session.execute(select(PluginSource.id, PluginSource.name)
                                        .where(PluginSource.id.in_(missing))).all())
        rows = [{"source_id": sid, "name": names.get(sid, ""), "currency": "USD",
                 "abandon_after_minutes": 60, "domain": "", "created_at": utcnow()}
                for sid in missing if sid in names]
        if rows:
            db.session.execute(dialect_insert(Shop).on_conflict_do_nothing(
                index_elements=["source_id"]), rows)
        found.update(db.session.execute(
            select(Shop.source_id, Shop.id).where(Shop.source_id.in_(missing))).all())
    return found


# ------------------------------------------------------------------ products


def _product_rank(fact: ProductFact) -> tuple:
    # A full description beats a stub; then the newest; then a fixed tie-break.
    return (not fact.stub, fact.ts, fact.title, str(fact.price))


def write_products(shops: dict[int, int], parsed) -> dict[tuple[int, str], int]:
    """Upsert products and variants; returns product id per (shop id, external id)."""
    best: dict[tuple[int, str], ProductFact] = {}
    variants: dict[tuple[int, str, str], ProductFact] = {}
    for event, facts in parsed:
        shop_id = shops.get(event.source_id)
        if shop_id is None:
            continue
        for fact in _all_products(facts):
            key = (shop_id, fact.external_id)
            if key not in best or _product_rank(fact) > _product_rank(best[key]):
                best[key] = fact
            if fact.variant_id:
                vkey = (shop_id, fact.external_id, fact.variant_id)
                if vkey not in variants or _product_rank(fact) > _product_rank(variants[vkey]):
                    variants[vkey] = fact
    if not best:
        return {}
    now = utcnow()
    rows = [{
        "shop_id": shop_id, "external_id": ext, "title": f.title, "category": f.category,
        "url": f.url, "image_url": f.image_url, "price": f.price, "currency": f.currency,
        "available": True if f.available is None else f.available, "stub": f.stub,
        "source_updated_at": f.ts, "created_at": now, "updated_at": now,
    } for (shop_id, ext), f in sorted(best.items())]
    if rows:
        stmt = dialect_insert(Product)
        ex = stmt.excluded
        newer = or_(Product.source_updated_at.is_(None),
                    ex.source_updated_at > Product.source_updated_at,
                    and_(ex.source_updated_at == Product.source_updated_at,
                         ex.title > Product.title))
        # A full description replaces a stub or an older description; a stub only an
        # older stub. The winner's fields replace all (merging fields would depend on the
        # arrival order).
        applies = or_(and_(ex.stub.is_(False), or_(Product.stub.is_(True), newer)),
                      and_(Product.stub.is_(True), newer))
        keep = {c: getattr(ex, c) for c in ("title", "category", "url", "image_url", "currency")}
        stmt = stmt.on_conflict_do_update(
            index_elements=["shop_id", "external_id"],
            set_={**keep, "price": ex.price,
                  "available": ex.available, "stub": ex.stub,
                  "source_updated_at": ex.source_updated_at, "updated_at": ex.updated_at},
            where=applies,
        )
        db.session.execute(stmt, rows)
    ids = _product_ids(list(best))
    vrows = [{"product_id": ids[(s, p)], "external_id": v, "sku": f.sku,
              "title": f.variant_title, "price": f.price,
              "available": True if f.available is None else f.available,
              "source_updated_at": f.ts}
             for (s, p, v), f in sorted(variants.items()) if (s, p) in ids]
    if vrows:
        stmt = dialect_insert(ProductVariant)
        ex = stmt.excluded
        stored = ProductVariant.__table__.c
        # A newer line that only names the variant (an order or cart line without its
        # title, SKU or price) updates what it says and never blanks what it does not.
        stmt = stmt.on_conflict_do_update(
            index_elements=["product_id", "external_id"],
            set_={"sku": case((ex.sku != "", ex.sku), else_=stored.sku),
                  "title": case((ex.title != "", ex.title), else_=stored.title),
                  "price": func.coalesce(ex.price, stored.price),
                  "available": ex.available, "source_updated_at": ex.source_updated_at},
            where=or_(ProductVariant.source_updated_at.is_(None),
                      ex.source_updated_at > ProductVariant.source_updated_at),
        )
        db.session.execute(stmt, vrows)
    return ids


def _all_products(facts: EventFacts):
    yield from facts.products
    if facts.cart:
        yield from facts.cart.removed


def _product_ids(keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    for part in chunks(keys):
        found.update(((s, e), i) for s, e, i in db.session.execute(
            select(Product.shop_id, Product.external_id, Product.id)
            .where(tuple_(Product.shop_id, Product.external_id).in_(part))))
    return found


def variant_ids(keys: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Variant id per (product id, variant external id)."""
    found: dict[tuple[int, str], int] = {}
    for part in chunks(sorted(keys)):
        found.update(((p, e), i) for p, e, i in db.session.execute(
            select(ProductVariant.product_id, ProductVariant.external_id, ProductVariant.id)
            .where(tuple_(ProductVariant.product_id, ProductVariant.external_id).in_(part))))
    return found


# ------------------------------------------------------------------ orders


def _order_rank(fact: OrderFact) -> tuple:
    return (fact.ts, len(fact.lines), str(fact.total))


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def write_orders(shops: dict[int, int], products: dict, parsed,
                 backfill: bool = False) -> set[int]:
    """Upsert orders, their lines and refunds; recompute status and revenue. Returns the
    ids of the orders touched."""
    snap: dict[tuple[int, str], tuple[Any, OrderFact]] = {}
    flags: dict[tuple[int, str], dict] = defaultdict(
        lambda: {"paid_at": None, "cancelled_at": None, "refunds": {}, "event": None,
                 "ts": None})
    for event, facts in parsed:
        fact = facts.order
        shop_id = shops.get(event.source_id)
        if fact is None or shop_id is None:
            continue
        key = (shop_id, fact.external_id)
        merged = flags[key]
        merged["paid_at"] = _min(merged["paid_at"], fact.paid_at)
        merged["cancelled_at"] = _min(merged["cancelled_at"], fact.cancelled_at)
        for rid, amount, at in fact.refunds:
            merged["refunds"][rid] = (amount, at)
        if merged["event"] is None or fact.ts < merged["ts"]:
            merged["event"], merged["ts"] = event, fact.ts
        if fact.snapshot and (key not in snap or _order_rank(fact) > _order_rank(snap[key][1])):
            snap[key] = (event, fact)
    if not flags:
        return set()
    existing = {(s, e): (i, ts, paid, cancelled) for s, e, i, ts, paid, cancelled in _select_in(
        select(Order.shop_id, Order.external_id, Order.id, Order.source_updated_at,
               Order.paid_at, Order.cancelled_at),
        tuple_(Order.shop_id, Order.external_id), list(flags))}
    now = utcnow()
    inserts, updates, replaced = [], [], []
    for key, merged in flags.items():
        event, fact = snap.get(key, (merged["event"], None))
        if key not in existing:
            inserts.append(_order_row(key, event, fact, merged, now, backfill))
            if fact is not None:
                replaced.append(key)
            continue
        oid, stored_ts, paid, cancelled = existing[key]
        values = {}
        if fact is not None and (stored_ts is None or fact.ts > stored_ts):
            values.update(_snapshot_values(event, fact))
            replaced.append(key)
        new_paid = _min(paid, merged["paid_at"])
        new_cancelled = _min(cancelled, merged["cancelled_at"])
        if new_paid != paid:
            values["paid_at"] = new_paid
        if new_cancelled != cancelled:
            values["cancelled_at"] = new_cancelled
        if values:
            updates.append((oid, values))
    if inserts:
        db.session.execute(dialect_insert(Order).on_conflict_do_nothing(
            index_elements=["shop_id", "external_id"]), inserts)
    for oid, values in updates:
        db.session.execute(update(Order).where(Order.id == oid).values(**values))
    ids = {(s, e): i for s, e, i in _select_in(
        select(Order.shop_id, Order.external_id, Order.id),
        tuple_(Order.shop_id, Order.external_id), list(flags))}
    _replace_lines(ids, products, {k: snap[k][1] for k in replaced if k in snap})
    refund_rows = [{"order_id": ids[key], "external_id": rid, "amount": amount,
                    "refunded_at": at}
                   for key, merged in flags.items() if key in ids
                   for rid, (amount, at) in sorted(merged["refunds"].items())]
    if refund_rows:
        db.session.execute(dialect_insert(OrderRefund).on_conflict_do_nothing(
            index_elements=["order_id", "external_id"]), refund_rows)
    touched = set(ids.values())
    recompute_orders(touched)
    return touched


def _select_in(stmt, column, keys: list):
    for part in chunks(keys):
        yield from db.session.execute(stmt.where(column.in_(part))).all()


def _snapshot_values(event, fact: OrderFact) -> dict:
    values = {
        "email_norm": fact.email or event.email_norm,
        "customer_name": fact.customer_name, "currency": fact.currency or "USD",
        "total": fact.total, "placed_at": fact.placed_at or fact.ts,
        "cart_token": fact.cart_token, "source_updated_at": fact.ts, "event_id": event.id,
    }
    if event.contact_id is not None:
        values["contact_id"] = event.contact_id
    # A snapshot without an email or a name (a store's refund update often carries none)
    # keeps the order's: it changes amounts and states, never who bought.
    if values["email_norm"] is None:
        del values["email_norm"]
    if not values["customer_name"]:
        del values["customer_name"]
    return values


def _order_row(key, event, fact: OrderFact | None, merged: dict, now: datetime,
               backfill: bool) -> dict:
    shop_id, external_id = key
    row = {"shop_id": shop_id, "external_id": external_id, "contact_id": event.contact_id,
           "email_norm": event.email_norm, "customer_name": "", "cart_token": None,
           "status": "pending", "currency": "USD", "total": Decimal(0),
           "refunded": Decimal(0), "revenue": Decimal(0), "placed_at": merged["ts"],
           "source_updated_at": None, "backfill": backfill, "event_id": event.id,
           "created_at": now, "paid_at": merged["paid_at"],
           "cancelled_at": merged["cancelled_at"]}
    if fact is not None:
        row.update(_snapshot_values(event, fact))
        row["contact_id"] = event.contact_id
    return row


def _replace_lines(ids: dict, products: dict, snapshots: dict) -> None:
    order_ids = [ids[k] for k in snapshots if k in ids]
    if not order_ids:
        return
    for part in chunks(order_ids):
        db.session.execute(delete(OrderLine).where(OrderLine.order_id.in_(part)))
    wanted = {(products[(k[0], ln.product.external_id)], ln.product.variant_id)
              for k, fact in snapshots.items() for ln in fact.lines
              if ln.product and ln.product.variant_id and (k[0], ln.product.external_id)
              in products}
    variants = variant_ids(wanted) if wanted else {}
    rows = []
    for key, fact in sorted(snapshots.items()):
        if key not in ids:
            continue
        for line in fact.lines:
            pid = products.get((key[0], line.product.external_id)) if line.product else None
            vid = variants.get((pid, line.product.variant_id)) if pid else None
            rows.append({"order_id": ids[key], "product_id": pid, "variant_id": vid,
                         "title": line.title, "quantity": line.quantity, "price": line.price})
    for part in chunks(rows):
        db.session.execute(OrderLine.__table__.insert(), part)


def recompute_orders(order_ids: set[int]) -> None:
    """Status, refunded and revenue from the order's facts (same answer whatever order the
    facts came in): cancelled > refunded > partially refunded > paid > pending."""
    if not order_ids:
        return
    rows = list(_select_in(select(Order.id, Order.total, Order.paid_at, Order.cancelled_at,
                                  Order.status, Order.refunded, Order.revenue),
                           Order.id, sorted(order_ids)))
    refunds: dict[int, list] = defaultdict(list)
    for oid, amount in _select_in(select(OrderRefund.order_id, OrderRefund.amount),
                                  OrderRefund.order_id, sorted(order_ids)):
        refunds[oid].append(amount)
    changes = []
    for oid, total, paid_at, cancelled_at, status, refunded, revenue in rows:
        amounts = refunds.get(oid, [])
        if any(a is None for a in amounts):
            back = total
        else:
            back = min(total, sum(amounts, Decimal(0)))
        if cancelled_at is not None:
            new_status, new_revenue = "cancelled", Decimal(0)
        elif paid_at is None:
            new_status, new_revenue = "pending", Decimal(0)
        elif amounts and back >= total:
            new_status, new_revenue = "refunded", Decimal(0)
        elif back > 0:
            new_status, new_revenue = "partially_refunded", total - back
        else:
            new_status, new_revenue = "paid", total
        if (new_status, back, new_revenue) != (status, refunded, revenue):
            changes.append({"oid": oid, "s": new_status, "r": back, "v": new_revenue})
    if not changes:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":  # one statement, not one per order
        connection.exec_driver_sql(_PG_RECOMPUTE, {
            "ids": [c["oid"] for c in changes], "s": [c["s"] for c in changes],
            "r": [c["r"] for c in changes], "v": [c["v"] for c in changes]})
        return
    db.session.execute(
        update(Order.__table__).where(Order.__table__.c.id == bindparam("oid"))
        .values(status=bindparam("s"), refunded=bindparam("r"), revenue=bindparam("v")),
        changes)


_PG_RECOMPUTE = """
UPDATE orders AS o SET status = v.s, refunded = v.r, revenue = v.v
FROM unnest(%(ids)s::bigint[], %(s)s::text[], %(r)s::numeric[], %(v)s::numeric[])
  AS v(id, s, r, v)
WHERE o.id = v.id AND o.id = ANY(%(ids)s::bigint[])"""


# ------------------------------------------------------------------ page visits


def write_page_visits(parsed) -> None:
    rows = [{"source_id": e.source_id, "contact_id": e.contact_id,
             "anonymous_id": e.anonymous_id, "url": f.page_url,
             "visited_at": e.occurred_at or e.received_at, "event_id": e.id}
            for e, f in parsed if f.page_url]
    if rows:
        db.session.execute(dialect_insert(PageVisit).on_conflict_do_nothing(
            index_elements=["event_id"]), rows)
