"""Product recommendations: item-to-item co-purchase, normalised by
cosine (so best-sellers do not win everything) and shrunk for thin evidence, kept in
`product_pairs` by a periodic rebuild; per contact, the products bought together with what
they bought, minus what they have and what is unavailable, each with its evidence, and a
popular-products fallback (last 90 days) for everyone else.

The popularity list lives on the diagonal of `product_pairs` (product_id = other_id,
`orders` = orders in the last 90 days), so a lookup is a few indexed reads."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import Order, OrderLine, Product, ProductPair
from ..models.base import utcnow

COUNTED = ("paid", "partially_refunded")  # orders that say "these were bought together"
NEIGHBOURS = 30  # pairs kept per product
SHRINK = 3.0  # c / (c + SHRINK): one shared order is weak evidence, thirty is strong
MIN_TOGETHER = 2  # a pair seen in one order is chance
MIN_LIFT = 1.5  # bought together half again as often as chance would have it ...
MIN_Z = 3.0  # ... and by more than chance's spread (Poisson: 3 standard deviations)
POPULAR_DAYS = 90
POPULAR_KEPT = 200
MAX_BASKET = 50  # a larger order is a bulk purchase, not evidence of affinity


@dataclass
class Recommendation:
    product_id: int
    title: str
    url: str
    image_url: str
    price: str | None
    currency: str
    score: float
    reason: str  # "bought_together" or "popular"
    evidence: str  # plain words: "Bought together with Mug in 37 orders"
    with_product_id: int | None = None
    orders: int = 0

    def as_json(self) -> dict:
        return {"product_id": self.product_id, "title": self.title, "url": self.url,
                "image_url": self.image_url, "price": self.price, "currency": self.currency,
                "score": round(self.score, 4), "reason": self.reason,
                "evidence": self.evidence, "with_product_id": self.with_product_id,
                "orders": self.orders}


def _baskets():
    """(order id, product id) of counted orders, ordered by order, streamed."""
    stmt = (select(OrderLine.order_id, OrderLine.product_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.status.in_(COUNTED), Order.erased_at.is_(None),
                   OrderLine.product_id.is_not(None))
            .order_by(OrderLine.order_id))
    current, items = None, set()
    for order_id, product_id in db.session.execute(stmt.execution_options(yield_per=20000)):
        if order_id != current:
            if items:
                yield items
            current, items = order_id, set()
        items.add(product_id)
    if items:
        yield items


def compute_pairs() -> tuple[dict[int, list[tuple[int, int, float]]], Counter]:
    """Per product, its NEIGHBOURS best (other, shared orders, score), and order counts."""
    single: Counter = Counter()
    pairs: Counter = Counter()
    slots: Counter = Counter()  # per product, the pairs it took part in
    total_slots = 0
    for basket in _baskets():
        if len(basket) > MAX_BASKET:
            continue
        single.update(basket)
        for item in basket:
            slots[item] += len(basket) - 1
        total_slots += len(basket) * (len(basket) - 1)
        ordered = sorted(basket)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1:]:
                pairs[(a, b)] += 1
    neighbours: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    # Among this many pairs some rare ones meet twice by chance: ask for a Poisson tail
    # probability below 5 % over all of them (Bonferroni).
    log_alpha = math.log(0.05 / max(1, len(pairs)))
    for (a, b), c in pairs.items():
        # Chance co-occurrence given how often each sits in a basket with others (big
        # baskets pair everything with everything, so plain counts would overstate).
        expected = slots[a] * slots[b] / total_slots
        if c < MIN_TOGETHER or c < MIN_LIFT * expected or (
                c - expected < MIN_Z * math.sqrt(expected)):
            continue  # no more often together than two best-sellers by chance
        if c * math.log(expected) - expected - math.lgamma(c + 1) > log_alpha:
            continue  # two rare products that met a few times: could be chance
        score = c / math.sqrt(single[a] * single[b]) * (c / (c + SHRINK))
        neighbours[a].append((b, c, score))
        neighbours[b].append((a, c, score))
    for rows in neighbours.values():
        rows.sort(key=lambda r: (-r[2], -r[1], r[0]))
        del rows[NEIGHBOURS:]
    return neighbours, single


def popular(days: int = POPULAR_DAYS) -> list[tuple[int, int]]:
    """(product id, counted orders in the last `days`), best first."""
    since = utcnow() - timedelta(days=days)
    n = func.count(func.distinct(OrderLine.order_id))
    stmt = (select(OrderLine.product_id, n).join(Order, Order.id == OrderLine.order_id)
            .where(Order.status.in_(COUNTED), Order.erased_at.is_(None),
                   Order.placed_at >= since, OrderLine.product_id.is_not(None))
            .group_by(OrderLine.product_id).order_by(n.desc(), OrderLine.product_id)
            .limit(POPULAR_KEPT))
    return [(p, c) for p, c in db.session.execute(stmt)]


def rebuild() -> dict:
    """Recompute every pair and the popularity diagonal in one transaction (the caller
    commits); returns counts and seconds."""
    started = time.perf_counter()
    neighbours, _single = compute_pairs()
    now = utcnow()
    rows = [{"product_id": a, "other_id": b, "orders": c, "score": s, "built_at": now}
            for a, kept in neighbours.items() for b, c, s in kept]
    rows += [{"product_id": p, "other_id": p, "orders": c, "score": float(c), "built_at": now}
             for p, c in popular()]
    db.session.execute(delete(ProductPair).execution_options(synchronize_session=False))
    table = ProductPair.__table__
    for start in range(0, len(rows), 5000):
        db.session.execute(table.insert(), rows[start:start + 5000])
    return {"pairs": len(rows), "seconds": round(time.perf_counter() - started, 2)}


def bought_by(contact_id: int) -> set[int]:
    return set(db.session.scalars(
        select(OrderLine.product_id).join(Order, Order.id == OrderLine.order_id)
        .where(Order.contact_id == contact_id, OrderLine.product_id.is_not(None))))


def for_contact(contact_id: int, limit: int = 10) -> list[Recommendation]:
    """The contact's recommendations: co-purchase neighbours of what they bought (scores
    summed over their products), then popular products to fill up."""
    return for_products(bought_by(contact_id), limit)


def for_products(bought: set[int], limit: int = 10) -> list[Recommendation]:
    best: dict[int, list] = {}
    if bought:
        stmt = (select(ProductPair.product_id, ProductPair.other_id, ProductPair.orders,
                       ProductPair.score)
                .where(ProductPair.product_id.in_(sorted(bought)),
                       ProductPair.other_id != ProductPair.product_id))
        for source, other, orders, score in db.session.execute(stmt):
            if other in bought:
                continue
            entry = best.setdefault(other, [0.0, source, orders, score])
            entry[0] += score
            if (score, orders) > (entry[3], entry[2]):
                entry[1], entry[2], entry[3] = source, orders, score
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
    popular_rows = db.session.execute(
        select(ProductPair.product_id, ProductPair.orders)
        .where(ProductPair.product_id == ProductPair.other_id)
        .order_by(ProductPair.score.desc(), ProductPair.product_id)
        .limit(limit * 3 + len(bought) + len(ranked[:limit * 3]))).all()
    wanted = [p for p, _ in ranked[:limit * 3]] + [p for p, _ in popular_rows]
    info = _products({*wanted, *(e[1] for _, e in ranked[:limit * 3])})
    out: list[Recommendation] = []
    for other, (total, source, orders, _score) in ranked:
        product = info.get(other)
        if product is None or not product.available:
            continue
        partner = info.get(source)
        name = partner.title if partner and partner.title else "a product they bought"
        out.append(_rec(product, total, "bought_together",
                        f"Bought together with {name} in {orders} order"
                        f"{'s' if orders != 1 else ''}", source, orders))
        if len(out) == limit:
            return out
    chosen = {r.product_id for r in out}
    for product_id, orders in popular_rows:
        product = info.get(product_id)
        if (product_id in bought or product_id in chosen or product is None
                or not product.available):
            continue
        out.append(_rec(product, 0.0, "popular",
                        f"Popular: bought in {orders} order{'s' if orders != 1 else ''} "
                        f"in the last {POPULAR_DAYS} days", None, orders))
        if len(out) == limit:
            break
    return out


def _products(ids: set[int]) -> dict[int, Product]:
    if not ids:
        return {}
    return {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(ids)))}


def _rec(product: Product, score: float, reason: str, evidence: str,
         source: int | None, orders: int) -> Recommendation:
    return Recommendation(product.id, product.title or f"Product {product.external_id}",
                          product.url, product.image_url,
                          None if product.price is None else f"{product.price:.2f}",
                          product.currency, score, reason, evidence, source, orders)
