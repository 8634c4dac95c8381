"""History import ("backfill"): orders a shop already had, written through the same
writers as live events but flagged `Order.backfill`, so they count in revenue, carts and
recommendations and never fire automations. This module writes pages of Shopify Admin API
order objects; fetching them (GET /admin/api/…/orders.json, paged) is the caller's part."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import Contact, PluginSource
from ..models.base import utcnow
from . import carts
from .facts import read
from .ingest import ensure_shops, write_orders, write_products


@dataclass
class _Row:
    """What the writers read of an event, for an order that came from the history."""

    source_id: int
    body: str
    email_norm: str | None
    contact_id: int | None
    occurred_at: datetime
    received_at: datetime
    id: int | None = None
    anonymous_id: str | None = None
    kind: str = "order_completed"
    channel: str = "shopify"
    dedup_key: str = ""


def import_shopify_orders(source_id: int, orders: list[dict]) -> int:
    """Write one page of Shopify order objects as backfilled orders (contacts matched by
    email in the source's list). No commit. Returns how many orders were written."""
    source = db.session.get(PluginSource, source_id)
    if source is None or not orders:
        return 0
    now = utcnow()
    emails = {}
    for order in orders:
        raw = order.get("email") or (order.get("customer") or {}).get("email")
        if isinstance(raw, str) and "@" in raw:
            emails[id(order)] = raw.strip().lower()[:254]
    known = dict(db.session.execute(select(Contact.email_norm, Contact.id).where(
        Contact.list_id == source.list_id, Contact.email_norm.in_(set(emails.values())))).all())
    parsed = []
    for order in orders:
        email = emails.get(id(order))
        row = _Row(source_id, json.dumps(order, separators=(",", ":")), email,
                   known.get(email), now, now, dedup_key=f"backfill:{order.get('id')}"[:200])
        facts = read(row)
        if facts.order is not None:
            parsed.append((row, facts))
    if not parsed:
        return 0
    shops = ensure_shops({source_id})
    products = write_products(shops, parsed)
    order_ids = write_orders(shops, products, parsed, backfill=True)
    carts.settle(order_ids=order_ids)
    return len(parsed)
