"""Helpers for the commerce tests: a plugin source and stored events as the receivers and
the processor leave them (kind set, contact resolved), then `apply_events`."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.factories import make_contact, make_list
from webapp.commerce.ingest import apply_events
from webapp.extensions import db
from webapp.models import (
    Cart,
    CartLine,
    Order,
    OrderLine,
    OrderRefund,
    PluginEvent,
    PluginSource,
    Product,
    ProductVariant,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_seq = itertools.count(1)

TRACK = {
    "product_viewed": "Product Viewed", "product_added": "Product Added",
    "product_removed": "Product Removed", "cart_viewed": "Cart Viewed",
    "checkout_started": "Checkout Started", "order_completed": "Order Completed",
    "order_refunded": "Order Refunded", "order_cancelled": "Order Cancelled",
}


def make_source(kind: str = "website", name: str = "Shop") -> PluginSource:
    lst = make_list(f"List {name} {next(_seq)}")
    source = PluginSource(kind=kind, name=name, list_id=lst.id)
    db.session.add(source)
    db.session.commit()
    return source


def contact(email: str = "ann@example.com"):
    return make_contact(make_list(f"People {next(_seq)}"), email=email)


def store(source, kind: str, body: dict, *, at: datetime, channel: str = "api",
          contact_id: int | None = None, email: str | None = None,
          anonymous_id: str | None = None, topic: str = "") -> PluginEvent:
    """One stored, processed event (as intake + the processor leave it)."""
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True)
    event = PluginEvent(
        source_id=source.id, channel=channel, topic=topic or kind, kind=kind,
        dedup_key=hashlib.sha256(raw.encode()).hexdigest(), body=raw, email_norm=email,
        anonymous_id=anonymous_id, occurred_at=at, received_at=at, status="processed",
        contact_id=contact_id,
    )
    db.session.add(event)
    db.session.flush()
    return event


def track(source, kind: str, props: dict, *, at: datetime, **kw) -> PluginEvent:
    body = {"type": "page" if kind == "page" else "track", "event": TRACK.get(kind, ""),
            "properties": props, "timestamp": at.isoformat(),
            "messageId": f"m-{next(_seq)}"}
    if kw.get("anonymous_id"):
        body["anonymousId"] = kw["anonymous_id"]
    return store(source, kind, body, at=at, **kw)


def apply(events) -> None:
    apply_events(list(events))
    db.session.commit()


def state() -> dict:
    """Everything commerce writes, without row ids or write times (to compare replays)."""
    db.session.expire_all()
    products = {p.id: p.external_id for p in db.session.scalars(select(Product))}
    orders = {o.id: o.external_id for o in db.session.scalars(select(Order))}
    carts = {c.id: c.external_id for c in db.session.scalars(select(Cart))}
    return {
        "products": sorted((p.external_id, p.title, p.category, p.url, str(p.price),
                            p.available, p.stub, p.source_updated_at)
                           for p in db.session.scalars(select(Product))),
        "variants": sorted((products[v.product_id], v.external_id, v.title, str(v.price))
                           for v in db.session.scalars(select(ProductVariant))),
        "orders": sorted((o.external_id, o.contact_id, o.email_norm, o.status, str(o.total),
                          str(o.refunded), str(o.revenue), o.placed_at, o.paid_at,
                          o.cancelled_at, o.cart_token, o.source_updated_at)
                         for o in db.session.scalars(select(Order))),
        "lines": sorted((orders[ln.order_id], products.get(ln.product_id), ln.title,
                         ln.quantity, str(ln.price))
                        for ln in db.session.scalars(select(OrderLine))),
        "refunds": sorted((orders[r.order_id], r.external_id, str(r.amount))
                          for r in db.session.scalars(select(OrderRefund))),
        "carts": sorted((c.external_id, c.contact_id, c.email_norm, c.status, str(c.total),
                         c.last_activity_at, c.abandoned_at, c.recovered_at,
                         orders.get(c.order_id), c.created_at)
                        for c in db.session.scalars(select(Cart))),
        "cart_lines": sorted((carts[ln.cart_id], products.get(ln.product_id), ln.quantity,
                              str(ln.price), ln.source_updated_at)
                             for ln in db.session.scalars(select(CartLine))),
    }


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
