"""Carts: lines merged last-writer-wins per line (so arrival order does not matter),
linking carts to the orders that convert or recover them, the abandoned-cart sweep, and
attaching guest carts when the visitor identifies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, delete, func, or_, select, text, tuple_, update

from ..extensions import db
from ..models import Cart, CartLine, Order, Shop
from ..models.base import utcnow
from .facts import MAX_MONEY, CartFact, LineFact

# An order by the same person recovers a cart begun before it, up to this long after.
RECOVERY_WINDOW = timedelta(days=30)
# An abandoned cart no order recovered within this long counts as lost.
LOST_AFTER = timedelta(days=7)
OPEN = ("open", "abandoned", "lost", "emptied")


@dataclass
class _Merged:
    first: datetime
    last: datetime
    events: list = field(default_factory=list)  # (event, CartFact)


def _chunks(rows, size=500):
    rows = list(rows)
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def write_carts(shops: dict[int, int], products: dict, parsed) -> set[int]:
    """Upsert the carts the events name and merge their lines; returns the cart ids."""
    from .ingest import dialect_insert, variant_ids

    merged: dict[tuple[int, str], _Merged] = {}
    for event, facts in parsed:
        cart, shop_id = facts.cart, shops.get(event.source_id)
        if cart is None or shop_id is None:
            continue
        key = (shop_id, cart.external_id)
        if key not in merged:
            merged[key] = _Merged(cart.ts, cart.ts)
        m = merged[key]
        m.first, m.last = min(m.first, cart.ts), max(m.last, cart.ts)
        m.events.append((event, cart))
    if not merged:
        return set()
    for m in merged.values():
        m.events.sort(key=lambda ec: (ec[1].ts, ec[0].id or 0))
    existing = {}
    for part in _chunks(merged):
        for row in db.session.execute(select(Cart).where(
                tuple_(Cart.shop_id, Cart.external_id).in_(part))).scalars():
            existing[(row.shop_id, row.external_id)] = row
    new_rows = []
    for key, m in merged.items():
        latest = _latest(m)
        snapshot_ts = max((c.ts for _, c in m.events if c.snapshot is not None), default=None)
        row = existing.get(key)
        if row is None:
            new_rows.append({
                "shop_id": key[0], "external_id": key[1], "status": "open",
                "contact_id": latest["contact_id"], "anonymous_id": latest["anonymous_id"],
                "email_norm": latest["email"], "currency": latest["currency"] or "USD",
                "total": Decimal(0), "cart_url": latest["cart_url"],
                "last_activity_at": m.last, "source_updated_at": snapshot_ts,
                "created_at": m.first,
            })
            continue
        row.created_at = min(row.created_at, m.first)
        if m.last >= row.last_activity_at:
            for attr, name in (("contact_id", "contact_id"), ("anonymous_id", "anonymous_id"),
                               ("email_norm", "email"), ("cart_url", "cart_url")):
                if latest[name]:
                    setattr(row, attr, latest[name])
        else:
            for attr, name in (("contact_id", "contact_id"), ("email_norm", "email")):
                if getattr(row, attr) is None and latest[name]:
                    setattr(row, attr, latest[name])
        row.last_activity_at = max(row.last_activity_at, m.last)
        if snapshot_ts and (row.source_updated_at is None or snapshot_ts > row.source_updated_at):
            row.source_updated_at = snapshot_ts
    if new_rows:
        db.session.execute(dialect_insert(Cart).on_conflict_do_nothing(
            index_elements=["shop_id", "external_id"]), new_rows)
    db.session.flush()
    ids = {}
    for part in _chunks(merged):
        ids.update(((s, e), (i, sut)) for s, e, i, sut in db.session.execute(
            select(Cart.shop_id, Cart.external_id, Cart.id, Cart.source_updated_at)
            .where(tuple_(Cart.shop_id, Cart.external_id).in_(part))))
    wanted = {(products[(k[0], ln.product.external_id)], ln.product.variant_id)
              for k, m in merged.items() for _, c in m.events
              for ln in [*c.added, *(c.snapshot or [])]
              if ln.product and ln.product.variant_id
              and (k[0], ln.product.external_id) in products}
    variants = variant_ids(wanted) if wanted else {}
    _merge_lines(merged, ids, products, variants)
    return {i for i, _ in ids.values()}


def _latest(m: _Merged) -> dict:
    """The newest non-empty value of each personal field among the events of one cart."""
    out = {"contact_id": None, "anonymous_id": None, "email": None, "currency": "",
           "cart_url": ""}
    for event, cart in m.events:  # oldest first: later values win
        out["contact_id"] = event.contact_id or out["contact_id"]
        out["anonymous_id"] = event.anonymous_id or out["anonymous_id"]
        out["email"] = cart.email or event.email_norm or out["email"]
        out["currency"] = cart.currency or out["currency"]
        out["cart_url"] = cart.cart_url or out["cart_url"]
    return out


def _line_key(shop_id: int, line_product, products, variants):
    pid = products.get((shop_id, line_product.external_id))
    if pid is None:
        return None
    vid = variants.get((pid, line_product.variant_id)) if line_product.variant_id else None
    return (pid, vid)


def _merge_lines(merged, ids, products, variants) -> None:
    """Per line, the newest statement wins: an add, a removal, or a whole-cart snapshot
    (which also removes every line it does not hold, if older than itself)."""
    cart_ids = [i for i, _ in ids.values()]
    current: dict[int, dict] = defaultdict(dict)
    for part in _chunks(cart_ids):
        for line in db.session.execute(select(CartLine).where(CartLine.cart_id.in_(part))
                                       ).scalars():
            current[line.cart_id][(line.product_id, line.variant_id)] = (
                line.source_updated_at, line.quantity, line.price, line.title)
    deletes, inserts = [], []
    for key, m in merged.items():
        if key not in ids:
            continue
        cart_id, snapshot_ts = ids[key]
        stored = current.get(cart_id, {})
        cands: dict[tuple, list] = defaultdict(list)
        for k, value in stored.items():
            cands[k].append(value)
        newest_snapshot: CartFact | None = None
        for _, c in m.events:
            for ln in c.added:
                k = _line_key(key[0], ln.product, products, variants)
                if k:
                    cands[k].append((c.ts, ln.quantity, ln.price, ln.title))
            for product in c.removed:
                k = _line_key(key[0], product, products, variants)
                if k:
                    cands[k].append((c.ts, 0, Decimal(0), product.title))
            if c.snapshot is not None and (newest_snapshot is None
                                           or c.ts >= newest_snapshot.ts):
                newest_snapshot = c
        snap_lines: dict[tuple, LineFact] = {}
        if newest_snapshot is not None and newest_snapshot.ts == snapshot_ts:
            for ln in newest_snapshot.snapshot or []:
                k = _line_key(key[0], ln.product, products, variants) if ln.product else None
                if k:
                    snap_lines[k] = ln
            for k, ln in snap_lines.items():
                cands[k].append((snapshot_ts, ln.quantity, ln.price, ln.title))
        final = {}
        for k, values in cands.items():
            best = max(values, key=lambda v: (v[0] or _EPOCH, v[1], str(v[2]), v[3]))
            if snapshot_ts and k not in snap_lines and (best[0] is None or best[0] < snapshot_ts):
                # The latest snapshot does not hold this line and nothing newer added it.
                in_snapshot = k in stored and stored[k][0] == snapshot_ts and stored[k][1] > 0
                if not in_snapshot:
                    best = (snapshot_ts, 0, Decimal(0), best[3])
            final[k] = best
        if final != stored:
            deletes.append(cart_id)
            inserts.extend({"cart_id": cart_id, "product_id": k[0], "variant_id": k[1],
                            "source_updated_at": v[0], "quantity": v[1], "price": v[2],
                            "title": v[3]} for k, v in sorted(final.items(), key=_sort_key))
    for part in _chunks(deletes):
        db.session.execute(delete(CartLine).where(CartLine.cart_id.in_(part)))
    for part in _chunks(inserts):
        db.session.execute(CartLine.__table__.insert(), part)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sort_key(item):
    (pid, vid), _ = item
    return (pid, vid or 0)


# ------------------------------------------------------------------ orders ↔ carts


def settle(cart_ids: set[int] = frozenset(), order_ids: set[int] = frozenset()) -> None:
    """Link open carts to the orders that convert them (same cart token, or the same
    person ordering after the cart began) and recompute the touched carts' status."""
    cart_ids, order_ids = set(cart_ids), set(order_ids)
    orders = _orders(Order.id.in_, order_ids)
    carts = _carts(Cart.id.in_, cart_ids)
    # Carts the touched orders may convert, and orders the touched carts may be converted by.
    if orders:
        carts.update(_carts_for(orders.values()))
    open_carts = [c for c in carts.values() if c["order_id"] is None]
    if open_carts:
        orders.update(_orders_for(open_carts))
    links = []
    for cart in open_carts:
        match = _best_order(cart, orders.values())
        if match is not None:
            links.append({"cid": cart["id"], "oid": match["id"]})
            cart["order_id"] = match["id"]
    if links:
        db.session.execute(update(Cart.__table__).where(Cart.__table__.c.id == bindparam("cid"))
                           .values(order_id=bindparam("oid")), links)
    recompute_carts(set(carts))


def _orders(where, ids) -> dict[int, dict]:
    if not ids:
        return {}
    out = {}
    cols = (Order.id, Order.shop_id, Order.contact_id, Order.email_norm, Order.cart_token,
            Order.placed_at)
    for part in _chunks(sorted(ids)):
        for row in db.session.execute(select(*cols).where(where(part))).mappings():
            out[row["id"]] = dict(row)
    return out


def _carts(where, ids) -> dict[int, dict]:
    if not ids:
        return {}
    out = {}
    cols = (Cart.id, Cart.shop_id, Cart.external_id, Cart.contact_id, Cart.email_norm,
            Cart.created_at, Cart.order_id)
    for part in _chunks(sorted(ids)):
        for row in db.session.execute(select(*cols).where(where(part))).mappings():
            out[row["id"]] = dict(row)
    return out


def _carts_for(orders) -> dict[int, dict]:
    tokens = {(o["shop_id"], o["cart_token"]) for o in orders if o["cart_token"]}
    contacts = {o["contact_id"] for o in orders if o["contact_id"]}
    emails = {o["email_norm"] for o in orders if o["email_norm"]}
    found: dict[int, dict] = {}
    cols = (Cart.id, Cart.shop_id, Cart.external_id, Cart.contact_id, Cart.email_norm,
            Cart.created_at, Cart.order_id)
    for cond, keys in ((lambda p: tuple_(Cart.shop_id, Cart.external_id).in_(p), tokens),
                       (Cart.contact_id.in_, contacts), (Cart.email_norm.in_, emails)):
        for part in _chunks(sorted(keys)):
            for row in db.session.execute(select(*cols).where(
                    cond(part), Cart.order_id.is_(None))).mappings():
                found[row["id"]] = dict(row)
    return found


def _orders_for(carts) -> dict[int, dict]:
    tokens = {(c["shop_id"], c["external_id"]) for c in carts}
    contacts = {c["contact_id"] for c in carts if c["contact_id"]}
    emails = {c["email_norm"] for c in carts if c["email_norm"]}
    earliest = min(c["created_at"] for c in carts)
    found: dict[int, dict] = {}
    cols = (Order.id, Order.shop_id, Order.contact_id, Order.email_norm, Order.cart_token,
            Order.placed_at)
    for cond, keys, timed in (
            (lambda p: tuple_(Order.shop_id, Order.cart_token).in_(p), tokens, False),
            (Order.contact_id.in_, contacts, True), (Order.email_norm.in_, emails, True)):
        for part in _chunks(sorted(keys)):
            stmt = select(*cols).where(cond(part))
            if timed:
                stmt = stmt.where(Order.placed_at >= earliest)
            for row in db.session.execute(stmt).mappings():
                found[row["id"]] = dict(row)
    return found


def _best_order(cart: dict, orders) -> dict | None:
    matches = []
    for order in orders:
        if order["shop_id"] != cart["shop_id"]:
            continue
        if order["cart_token"] and order["cart_token"] == cart["external_id"]:
            matches.append(order)
            continue
        same_person = (cart["contact_id"] and order["contact_id"] == cart["contact_id"]) or (
            cart["email_norm"] and order["email_norm"] == cart["email_norm"])
        if same_person and cart["created_at"] <= order["placed_at"] <= (
                cart["created_at"] + RECOVERY_WINDOW):
            matches.append(order)
    return min(matches, key=lambda o: (o["placed_at"], o["id"])) if matches else None


def recompute_carts(cart_ids: set[int]) -> None:
    """Status and total from the cart's lines, order and abandonment: an order makes it
    converted (or recovered, if it had been abandoned), no lines left makes it emptied."""
    if not cart_ids:
        return
    live = func.sum(CartLine.quantity * CartLine.price).filter(CartLine.quantity > 0)
    lines = {}
    for part in _chunks(sorted(cart_ids)):
        lines.update((cid, (n or 0, total)) for cid, n, total in db.session.execute(
            select(CartLine.cart_id, func.count().filter(CartLine.quantity > 0), live)
            .where(CartLine.cart_id.in_(part)).group_by(CartLine.cart_id)))
    changes = []
    for part in _chunks(sorted(cart_ids)):
        rows = db.session.execute(
            select(Cart.id, Cart.status, Cart.total, Cart.abandoned_at, Cart.recovered_at,
                   Cart.last_activity_at, Order.placed_at)
            .outerjoin(Order, Order.id == Cart.order_id).where(Cart.id.in_(part))).all()
        for cid, status, total, abandoned_at, recovered_at, last, placed in rows:
            n, value = lines.get(cid, (0, None))
            value = min(Decimal(value or 0), MAX_MONEY).quantize(Decimal("0.01"))
            new = {"status": status, "abandoned_at": abandoned_at, "recovered_at": recovered_at}
            if placed is not None:
                if abandoned_at is not None and abandoned_at <= placed:
                    new.update(status="recovered", recovered_at=placed)
                else:
                    new.update(status="converted", abandoned_at=None, recovered_at=None)
            elif n == 0:
                new["status"] = "emptied"
            elif status == "emptied":
                new["status"] = "open"
            elif status in ("abandoned", "lost") and abandoned_at and last > abandoned_at:
                new.update(status="open", abandoned_at=None)  # the shopper came back
            if (new["status"], new["abandoned_at"], new["recovered_at"], value) != (
                    status, abandoned_at, recovered_at, total):
                changes.append({"cid": cid, "s": new["status"], "a": new["abandoned_at"],
                                "r": new["recovered_at"], "t": value})
    if changes:
        t = Cart.__table__
        db.session.execute(update(t).where(t.c.id == bindparam("cid")).values(
            status=bindparam("s"), abandoned_at=bindparam("a"), recovered_at=bindparam("r"),
            total=bindparam("t")), changes)


# ------------------------------------------------------------------ sweep, identify


def sweep(now: datetime | None = None) -> dict:
    """Mark carts abandoned once their shop's delay passed without activity or an order
    (a cart needs an email or a contact); abandoned carts unrecovered for LOST_AFTER are
    lost. One UPDATE per shop over the (status, last_activity_at) index. No commit."""
    now = now or utcnow()
    abandoned = 0
    for shop_id, minutes in db.session.execute(select(Shop.id, Shop.abandon_after_minutes)):
        cutoff = now - timedelta(minutes=minutes)
        abandoned += db.session.execute(
            update(Cart).where(
                Cart.status == "open", Cart.last_activity_at <= cutoff,
                Cart.shop_id == shop_id, Cart.order_id.is_(None),
                or_(Cart.email_norm.is_not(None), Cart.contact_id.is_not(None)))
            .values(status="abandoned", abandoned_at=now)
            .execution_options(synchronize_session=False)).rowcount
    lost = db.session.execute(
        update(Cart).where(Cart.status == "abandoned", Cart.abandoned_at <= now - LOST_AFTER)
        .values(status="lost").execution_options(synchronize_session=False)).rowcount
    return {"abandoned": abandoned, "lost": lost}


def attach_visitor(source_id: int, anonymous_id: str, contact_id: int) -> int:
    """A guest identified: give their carts and page visits the contact, and let an order
    of that contact convert the carts. No commit (the processor's transaction)."""
    return attach_visitors([(source_id, anonymous_id, contact_id)])


# Page visits found through their events (the (source_id, anonymous_id) index of
# plugin_events, then the unique event_id of page_visits): page_visits has no index of its own
# on the visitor, and a scan per identified visitor grows with the shop's history.
# SQLite. `+contact_id`: not the (contact_id, visited_at) index, which would walk every guest
# visit (contact_id IS NULL) per visitor; the unique event_id index finds the few visits.
_VISITS = """
UPDATE page_visits SET contact_id = :cid
WHERE +contact_id IS NULL AND event_id IN (
  SELECT id FROM plugin_events WHERE source_id = :sid AND anonymous_id = :anon)"""
_PG_VISITS = """
UPDATE page_visits AS p SET contact_id = v.cid
FROM unnest(%(sids)s::int[], %(anons)s::text[], %(cids)s::int[]) AS v(sid, anon, cid)
JOIN plugin_events AS e ON e.source_id = v.sid AND e.anonymous_id = v.anon
WHERE p.event_id = e.id AND p.contact_id IS NULL"""
_PG_CARTS = """
UPDATE carts AS c SET contact_id = v.cid
FROM unnest(%(sids)s::int[], %(anons)s::text[], %(cids)s::int[]) AS v(sid, anon, cid)
JOIN shops AS s ON s.source_id = v.sid
WHERE c.shop_id = s.id AND c.anonymous_id = v.anon AND c.contact_id IS NULL
RETURNING c.id"""


def attach_visitors(visitors: list[tuple[int, str, int]]) -> int:
    """`attach_visitor` for many (source id, anonymous id, contact id) at once: a few
    statements per batch whatever its size (PostgreSQL: two). Returns the carts attached."""
    if not visitors:
        return 0
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        arrays = {"sids": [v[0] for v in visitors], "anons": [v[1] for v in visitors],
                  "cids": [v[2] for v in visitors]}
        connection.exec_driver_sql(_PG_VISITS, arrays)
        ids = {row[0] for row in connection.exec_driver_sql(_PG_CARTS, arrays)}
    else:
        db.session.execute(text(_VISITS), [{"sid": s, "anon": a, "cid": c}
                                          for s, a, c in visitors])
        ids = _attach_carts(visitors)
    if ids:
        settle(cart_ids=ids)
    return len(ids)


def _attach_carts(visitors: list[tuple[int, str, int]]) -> set[int]:
    """The guests' carts take their contact (a read, then one update per contact)."""
    shops = dict(db.session.execute(select(Shop.source_id, Shop.id).where(
        Shop.source_id.in_({s for s, _a, _c in visitors}))).all())
    wanted = {(shops[s], a): c for s, a, c in visitors if s in shops}
    if not wanted:
        return set()
    by_contact: dict[int, set[int]] = defaultdict(set)
    for cart_id, shop_id, anon in db.session.execute(
            select(Cart.id, Cart.shop_id, Cart.anonymous_id).where(
                Cart.shop_id.in_({s for s, _a in wanted}),
                Cart.anonymous_id.in_({a for _s, a in wanted}), Cart.contact_id.is_(None))):
        if (shop_id, anon) in wanted:
            by_contact[wanted[(shop_id, anon)]].add(cart_id)
    for contact_id, ids in by_contact.items():
        db.session.execute(update(Cart).where(Cart.id.in_(ids)).values(contact_id=contact_id)
                           .execution_options(synchronize_session=False))
    return {i for ids in by_contact.values() for i in ids}
