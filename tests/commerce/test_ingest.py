"""Commerce data from events: stubs filled later, newer state never overwritten by older,
paid/refund/cancel lifecycle, and the same state whatever the arrival order or replays."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.commerce.helpers import T0, apply, contact, make_source, minutes, state, store, track
from webapp.commerce.ingest import apply_events
from webapp.extensions import db
from webapp.models import Cart, Order, PageVisit, Product, Shop

pytestmark = pytest.mark.usefixtures("app")


def _product(external_id: str) -> Product:
    db.session.expire_all()
    return db.session.scalar(select(Product).where(Product.external_id == external_id))


def _order(external_id: str) -> Order:
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.external_id == external_id))


def shopify_order(oid: int, *, updated: str, status: str = "pending", refunds=None,
                  cancelled_at=None, email: str = "ann@example.com") -> dict:
    return {
        "id": oid, "email": email, "financial_status": status, "currency": "EUR",
        "total_price": "50.00", "created_at": "2026-11-02T09:00:00Z", "updated_at": updated,
        "cancelled_at": cancelled_at, "checkout_token": f"chk-{oid}",
        "customer": {"email": email, "first_name": "Ann", "last_name": "Lee"},
        "line_items": [
            {"product_id": 11, "variant_id": 111, "title": "Mug", "variant_title": "Blue",
             "quantity": 2, "price": "15.00", "sku": "MUG-B"},
            {"product_id": 12, "variant_id": None, "title": "Tea", "quantity": 1,
             "price": "20.00"},
        ],
        "refunds": refunds or [],
    }


def test_an_order_naming_unknown_products_creates_stubs_that_are_filled_in_later():
    source = make_source("shopify")
    apply([store(source, "order_completed", shopify_order(1, updated="2026-11-02T09:00:00Z"),
                 at=T0, channel="shopify")])
    mug = _product("11")
    assert mug.stub and mug.title == "Mug" and mug.price == Decimal("15.00")
    assert db.session.scalar(select(func.count()).select_from(Shop)) == 1
    # The product's own description arrives later and replaces the stub ...
    apply([track(source, "product_viewed", {"product_id": "11", "name": "Blue mug",
                                            "price": 16, "url": "https://shop.test/mug",
                                            "category": "Kitchen"}, at=T0 + minutes(30))])
    mug = _product("11")
    assert not mug.stub and mug.title == "Blue mug" and mug.category == "Kitchen"
    # ... and neither a late older description nor a later order line (a stub) undoes it.
    apply([track(source, "product_viewed", {"product_id": "11", "name": "Old name",
                                            "price": 9}, at=T0 + minutes(10))])
    apply([store(source, "order_completed", shopify_order(2, updated="2026-11-03T09:00:00Z"),
                 at=T0 + minutes(60 * 24), channel="shopify")])
    mug = _product("11")
    assert (mug.title, mug.price, mug.url) == ("Blue mug", Decimal("16.00"),
                                               "https://shop.test/mug")


def test_order_lifecycle_paid_refund_cancel_sets_revenue():
    source = make_source("shopify")
    ann = contact()
    created = store(source, "order_completed", shopify_order(1, updated="2026-11-02T09:00:00Z"),
                    at=T0, channel="shopify", contact_id=ann.id, email="ann@example.com")
    apply([created])
    order = _order("1")
    assert (order.status, order.revenue, order.total) == ("pending", 0, Decimal("50.00"))
    assert order.customer_name == "Ann Lee" and order.contact_id == ann.id
    paid = store(source, "order_paid",
                 shopify_order(1, updated="2026-11-02T09:05:00Z", status="paid"),
                 at=T0 + minutes(5), channel="shopify", contact_id=ann.id)
    apply([paid])
    assert (_order("1").status, _order("1").revenue) == ("paid", Decimal("50.00"))
    refund = store(source, "order_refunded", {
        "id": 900, "order_id": 1, "created_at": "2026-11-04T10:00:00Z",
        "transactions": [{"amount": "20.00", "kind": "refund", "status": "success"}]},
        at=T0 + minutes(3000), channel="shopify")
    apply([refund])
    apply([refund])  # the same refund again (a replay) counts once
    order = _order("1")
    assert (order.status, order.refunded, order.revenue) == (
        "partially_refunded", Decimal("20.00"), Decimal("30.00"))
    # The order's own later snapshot lists the same refund: still counted once.
    apply([store(source, "order_paid", shopify_order(
        1, updated="2026-11-04T10:00:01Z", status="partially_refunded",
        refunds=[{"id": 900, "transactions": [{"amount": "20.00"}]}]),
        at=T0 + minutes(3001), channel="shopify")])
    assert _order("1").revenue == Decimal("30.00")
    apply([store(source, "order_cancelled", shopify_order(
        1, updated="2026-11-05T10:00:00Z", status="partially_refunded",
        cancelled_at="2026-11-05T10:00:00Z"), at=T0 + minutes(5000), channel="shopify")])
    order = _order("1")
    assert (order.status, order.revenue) == ("cancelled", 0)
    assert order.refunded == Decimal("20.00")


def test_a_late_older_snapshot_never_overwrites_newer_order_state():
    source = make_source("shopify")
    newer = store(source, "order_paid", {**shopify_order(1, updated="2026-11-02T10:00:00Z",
                                                         status="paid"), "total_price": "60.00"},
                  at=T0 + minutes(60), channel="shopify")
    older = store(source, "order_completed", shopify_order(1, updated="2026-11-02T09:00:00Z"),
                  at=T0, channel="shopify")
    apply([newer])
    apply([older])
    order = _order("1")
    assert (order.status, order.total, order.revenue) == ("paid", Decimal("60.00"),
                                                          Decimal("60.00"))


def test_a_refund_before_its_order_makes_a_stub_order_completed_later():
    source = make_source("website")
    apply([track(source, "order_refunded", {"order_id": "A-1", "total": 5}, at=T0 + minutes(9))])
    order = _order("A-1")
    assert order.status == "pending" and order.revenue == 0
    apply([track(source, "order_completed", {
        "order_id": "A-1", "total": 25, "currency": "usd",
        "products": [{"product_id": "p1", "name": "Pen", "price": 5, "quantity": 5}]},
        at=T0)])
    order = _order("A-1")
    assert (order.status, order.total, order.refunded, order.revenue) == (
        "partially_refunded", Decimal("25.00"), Decimal("5.00"), Decimal("20.00"))
    assert order.currency == "USD"


def test_woocommerce_orders_and_their_refunds():
    source = make_source("woocommerce")
    body = {"id": 77, "status": "pending", "currency": "EUR", "total": "30.00",
            "date_created_gmt": "2026-11-02T09:00:00", "date_modified_gmt": "2026-11-02T09:00:00",
            "billing": {"email": "Bob@Example.com", "first_name": "Bob", "last_name": ""},
            "line_items": [{"product_id": 5, "variation_id": 0, "name": "Scarf",
                            "quantity": 2, "total": "30.00"}], "refunds": []}
    apply([store(source, "order_completed", body, at=T0, channel="woocommerce")])
    assert _order("77").status == "pending" and _order("77").email_norm == "bob@example.com"
    apply([store(source, "order_paid", {**body, "status": "processing",
                                        "date_modified_gmt": "2026-11-02T09:10:00",
                                        "date_paid_gmt": "2026-11-02T09:10:00"},
                 at=T0 + minutes(10), channel="woocommerce")])
    assert _order("77").revenue == Decimal("30.00")
    assert _product("5").price == Decimal("15.00")
    apply([store(source, "order_refunded", {**body, "status": "refunded",
                                            "date_modified_gmt": "2026-11-03T09:00:00"},
                 at=T0 + minutes(1440), channel="woocommerce")])
    order = _order("77")
    assert (order.status, order.revenue) == ("refunded", 0)


def test_page_visits_are_kept_once_per_event():
    source = make_source()
    ann = contact()
    page = track(source, "page", {"url": "https://shop.test/sale"}, at=T0, contact_id=ann.id)
    for _ in range(3):
        apply([page])
    visits = db.session.scalars(select(PageVisit)).all()
    assert [(v.url, v.contact_id) for v in visits] == [("https://shop.test/sale", ann.id)]


def test_hostile_payloads_are_skipped_not_raised():
    source = make_source("shopify")
    bad = [
        store(source, "order_completed", {"id": {"x": 1}, "line_items": "nope"}, at=T0,
              channel="shopify"),
        store(source, "order_completed", {"id": 5, "total_price": "1e400",
                                          "line_items": [{"product_id": 1, "quantity": "lots",
                                                          "price": "NaN"}],
                                          "updated_at": "yesterday"}, at=T0, channel="shopify"),
        store(source, "checkout_started", {"token": "x" * 500, "line_items": [None, 3]},
              at=T0, channel="shopify"),
        track(source, "product_added", {"product_id": ["a"], "quantity": 10**30}, at=T0),
        track(source, "order_refunded", {"order_id": True}, at=T0),
    ]
    bad.append(track(source, "product_added", {"cart_id": "big", "product_id": "x",
                                               "price": "9999999999.99", "quantity": 99999},
                     at=T0))
    bad[0].body = "not json"
    apply(bad)
    order = _order("5")
    assert order.total == 0 and order.status == "pending"
    assert str(db.session.scalar(select(Cart.total).where(Cart.external_id == "big"))) == (
        "9999999999.99")  # capped to what the column holds, not an error


def _stream(source_shop, source_api, ann, bob):
    """A mixed history: Shopify orders with refunds, tracked carts, products, pages."""
    ev = []
    ev.append(store(source_shop, "order_completed",
                    shopify_order(1, updated="2026-11-02T09:00:00Z"), at=T0,
                    channel="shopify", contact_id=ann.id))
    ev.append(store(source_shop, "order_paid",
                    shopify_order(1, updated="2026-11-02T09:02:00Z", status="paid"),
                    at=T0 + minutes(2), channel="shopify", contact_id=ann.id))
    ev.append(store(source_shop, "order_refunded", {
        "id": 5, "order_id": 1, "transactions": [{"amount": "7.50"}]},
        at=T0 + minutes(90), channel="shopify"))
    ev.append(store(source_shop, "checkout_started", {
        "token": "chk-1", "email": "ann@example.com", "updated_at": "2026-11-02T08:50:00Z",
        "line_items": [{"product_id": 11, "variant_id": 111, "quantity": 2, "price": "15.00",
                        "title": "Mug"}], "abandoned_checkout_url": "https://shop.test/r/1"},
        at=T0 - minutes(10), channel="shopify", contact_id=ann.id))
    for i, (kind, props) in enumerate([
        ("product_viewed", {"product_id": "p1", "name": "Pen", "price": 3, "category": "Desk"}),
        ("product_added", {"cart_id": "c1", "product_id": "p1", "name": "Pen", "price": 3}),
        ("product_added", {"cart_id": "c1", "product_id": "p2", "name": "Pad", "price": 4,
                           "quantity": 2}),
        ("product_removed", {"cart_id": "c1", "product_id": "p1"}),
        ("cart_viewed", {"cart_id": "c1", "products": [
            {"product_id": "p2", "name": "Pad", "price": 4, "quantity": 3}]}),
        ("product_added", {"cart_id": "c1", "product_id": "p3", "name": "Ink", "price": 9}),
        ("page", {"url": "https://shop.test/ink"}),
        ("product_viewed", {"product_id": "p1", "name": "Pen v2", "price": 3.5}),
    ]):
        ev.append(track(source_api, kind, props, at=T0 + minutes(5 * i), contact_id=bob.id,
                        email="bob@example.com"))
    ev.append(track(source_api, "order_completed", {
        "order_id": "W-9", "cart_id": "c1", "total": 21,
        "products": [{"product_id": "p2", "price": 4, "quantity": 3},
                     {"product_id": "p3", "price": 9, "quantity": 1}]},
        at=T0 + minutes(200), contact_id=bob.id, email="bob@example.com"))
    ev.append(track(source_api, "order_cancelled", {"order_id": "W-10"}, at=T0 + minutes(300)))
    return ev


def test_replayed_ten_times_and_shuffled_gives_identical_state():
    shop, api = make_source("shopify"), make_source("website")
    ann, bob = contact("ann@example.com"), contact("bob@example.com")
    events = _stream(shop, api, ann, bob)
    db.session.commit()
    apply(events)
    expected = state()
    assert expected["orders"] and expected["carts"] and expected["cart_lines"]
    for _ in range(10):
        apply(events)
    assert state() == expected
    # The cart's content: p1 removed, the snapshot's 3 pads, then an ink added after it.
    assert [(c[1], c[2]) for c in expected["cart_lines"] if c[0] == "c1"] == [
        ("p1", 0), ("p2", 3), ("p3", 1)]
    rng = random.Random(12)
    for _ in range(10):
        _wipe_commerce()
        shuffled = events[:]
        rng.shuffle(shuffled)
        cut = sorted(rng.sample(range(1, len(shuffled)), 4))
        for part in [shuffled[a:b] for a, b in zip([0, *cut], [*cut, len(shuffled)],
                                                     strict=True)]:
            apply(part)
        assert state() == expected


def _wipe_commerce() -> None:
    from webapp.models import OrderRefund, ProductVariant

    for model in (PageVisit, Cart, OrderRefund, Order, ProductVariant, Product, Shop):
        db.session.query(model).delete()
    db.session.commit()


def test_apply_events_ignores_other_kinds():
    source = make_source()
    apply_events([track(source, "identify", {"email": "x@example.com"}, at=T0)])
    assert db.session.scalar(select(func.count()).select_from(Shop)) == 0


def test_a_later_line_naming_only_the_variant_keeps_its_title_sku_and_price():
    """An order line that names a variant without its title or SKU (a later cart or order)
    must not blank what an earlier line said about it."""
    from webapp.models import ProductVariant

    source = make_source("shopify")
    apply([store(source, "order_completed", shopify_order(1, updated="2026-11-02T09:00:00Z"),
                 at=T0, channel="shopify")])
    bare = shopify_order(2, updated="2026-11-03T09:00:00Z")
    bare["line_items"][0] = {"product_id": 11, "variant_id": 111, "title": "Mug",
                             "quantity": 1, "price": "15.00"}
    apply([store(source, "order_completed", bare, at=T0 + minutes(60 * 24),
                 channel="shopify")])
    db.session.expire_all()
    variant = db.session.scalar(select(ProductVariant).where(
        ProductVariant.external_id == "111"))
    assert (variant.title, variant.sku, variant.price) == ("Blue", "MUG-B", Decimal("15.00"))
