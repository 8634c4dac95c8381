"""History import: Shopify Admin API orders become backfilled orders (revenue counts,
contacts matched by email); a later live event for the same order keeps the flag."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.commerce.helpers import T0, apply, make_source, store
from tests.commerce.test_ingest import shopify_order
from tests.factories import make_contact
from webapp.commerce.backfill import import_shopify_orders
from webapp.extensions import db
from webapp.models import ContactList, Order

pytestmark = pytest.mark.usefixtures("app")


def test_backfilled_orders_are_flagged_and_count_as_revenue():
    source = make_source("shopify")
    ann = make_contact(db.session.get(ContactList, source.list_id), email="ann@example.com")
    page = [shopify_order(1, updated="2026-10-01T09:00:00Z", status="paid"),
            shopify_order(2, updated="2026-10-02T09:00:00Z", status="paid",
                          email="guest@example.com")]
    assert import_shopify_orders(source.id, page) == 2
    db.session.commit()
    orders = {o.external_id: o for o in db.session.scalars(select(Order))}
    assert all(o.backfill for o in orders.values())
    assert orders["1"].contact_id == ann.id and orders["2"].contact_id is None
    assert orders["1"].revenue == Decimal("50.00")
    # The same order arriving live later keeps its history flag (automations stay quiet).
    apply([store(source, "order_paid", shopify_order(1, updated="2026-10-03T09:00:00Z",
                                                     status="paid"),
                 at=T0, channel="shopify", contact_id=ann.id)])
    db.session.expire_all()
    assert db.session.scalar(select(Order.backfill).where(Order.external_id == "1")) is True
