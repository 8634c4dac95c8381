"""A plausible shop history for `make demo`, written through `apply_events` like real
events: products, 30 days of orders (some bought together, a refund), a cart abandoned and
then recovered by an order, one still abandoned; then the sweep and the recommendations."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import Contact, PluginEvent, PluginSource
from ..models.base import utcnow
from . import carts, recommend
from .ingest import apply_events

CATALOGUE = [
    ("tent", "Two-person tent", "Camping", "189.00"),
    ("pegs", "Tent pegs (20)", "Camping", "12.00"),
    ("mat", "Sleeping mat", "Camping", "45.00"), ("bag", "Sleeping bag", "Camping", "95.00"),
    ("stove", "Camping stove", "Cooking", "59.00"), ("gas", "Gas canister", "Cooking", "7.50"),
    ("mug", "Enamel mug", "Cooking", "9.00"), ("lamp", "Head lamp", "Light", "29.00"),
    ("batt", "Batteries (4)", "Light", "6.00"), ("map", "Trail map", "Books", "14.00"),
]
TOGETHER = [("tent", "pegs"), ("stove", "gas"), ("lamp", "batt")]


def _event(source: PluginSource, kind: str, props: dict, at: datetime,
           contact: Contact | None, n: int) -> PluginEvent:
    body = {"type": "page" if kind == "page" else "track", "properties": props,
            "timestamp": at.isoformat(), "messageId": f"demo-{source.id}-{n}"}
    raw = json.dumps(body, separators=(",", ":"))
    return PluginEvent(
        source_id=source.id, channel="api", topic=kind, kind=kind, body=raw,
        dedup_key="demo:" + hashlib.sha256(raw.encode()).hexdigest()[:40],
        email_norm=contact.email_norm if contact else None, occurred_at=at,
        received_at=at, status="processed", processed_at=at,
        contact_id=contact.id if contact else None)


def seed_history(source_id: int, shoppers: int = 12, seed: int = 12,
                 now: datetime | None = None) -> dict:
    """Write the demo history for `source_id` (its list gets demo shoppers) once; a second
    call does nothing. Commits."""
    if db.session.scalar(select(PluginEvent.id).where(PluginEvent.source_id == source_id,
                                                      PluginEvent.dedup_key.like("demo:%"))):
        return {"events": 0}
    now = now or utcnow()
    rng = random.Random(seed)
    source = db.session.get(PluginSource, source_id)
    people = []
    for i in range(shoppers):
        email = f"shopper{i + 1}@example.com"
        row = db.session.scalar(select(Contact).where(Contact.list_id == source.list_id,
                                                      Contact.email_norm == email))
        if row is None:
            row = Contact(list_id=source.list_id, email=email, email_norm=email,
                          name=f"Shopper {i + 1}", origin="plugin")
            db.session.add(row)
        people.append(row)
    db.session.flush()
    price = {pid: float(p) for pid, _t, _c, p in CATALOGUE}
    events, n = [], 0

    def add(kind, props, at, who):
        nonlocal n
        n += 1
        events.append(_event(source, kind, props, at, who, n))

    for pid, title, category, amount in CATALOGUE:
        add("product_viewed", {"product_id": pid, "name": title, "category": category,
                               "price": float(amount), "currency": "EUR",
                               "url": f"https://demo-shop.test/products/{pid}"},
            now - timedelta(days=31), None)
    for k in range(60):
        who = people[k % len(people)]
        at = now - timedelta(days=30) + timedelta(hours=12 * k)
        a, b = rng.choice(TOGETHER)
        basket = {a, b} if rng.random() < 0.7 else {a}
        basket.add(rng.choice(CATALOGUE)[0])
        lines = [{"product_id": p, "price": price[p], "quantity": 1} for p in sorted(basket)]
        add("page", {"url": f"https://demo-shop.test/products/{a}"}, at - timedelta(minutes=5),
            who)
        add("order_completed", {"order_id": f"D{1000 + k}", "currency": "EUR",
                                "total": sum(price[p] for p in basket), "products": lines},
            at, who)
    add("order_refunded", {"order_id": "D1003", "total": 12.0}, now - timedelta(days=20),
        None)
    # A cart abandoned yesterday and recovered by an order three hours later ...
    ann, bob = people[0], people[1]
    cart_at = now - timedelta(days=1)
    add("product_added", {"cart_id": "demo-cart-1", "product_id": "bag", "name": "Sleeping bag",
                          "price": 95.0, "currency": "EUR",
                          "cart_url": "https://demo-shop.test/cart/1"},
        cart_at, ann)
    # ... and one abandoned an hour and a half ago, still waiting.
    add("product_added", {"cart_id": "demo-cart-2", "product_id": "mat", "name": "Sleeping mat",
                          "price": 45.0, "currency": "EUR",
                          "cart_url": "https://demo-shop.test/cart/2"},
        now - timedelta(minutes=90), bob)
    db.session.add_all(events)
    db.session.flush()
    apply_events(events)
    carts.sweep(now=cart_at + timedelta(minutes=65))
    later = [_event(source, "order_completed", {
        "order_id": "D2000", "cart_id": "demo-cart-1", "currency": "EUR", "total": 95.0,
        "products": [{"product_id": "bag", "price": 95.0, "quantity": 1}]},
        cart_at + timedelta(hours=3), ann, 10_000)]
    db.session.add_all(later)
    db.session.flush()
    apply_events(later)
    swept = carts.sweep(now=now)
    built = recommend.rebuild()
    db.session.commit()
    return {"events": len(events) + 1, "abandoned_now": swept["abandoned"], **built}
