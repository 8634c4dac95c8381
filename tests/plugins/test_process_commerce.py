"""The event processor feeds the e-commerce data in the same batch: orders and carts of the
events it resolved, a guest's cart joining the contact when the guest identifies, the
touched contacts queued for automations, and an erasure reaching the orders."""

from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import select

from tests.factories import make_list
from tests.plugins import factories as f
from webapp.commerce.automations import TOUCHED_KEY
from webapp.extensions import db
from webapp.models import Cart, Contact, Order, PageVisit, PluginEvent
from webapp.plugins.privacy import erase_person
from webapp.plugins.process import process_pending

pytestmark = pytest.mark.usefixtures("app")


def _contact(lst, email: str) -> Contact:
    db.session.expire_all()
    return db.session.scalar(select(Contact).where(Contact.list_id == lst.id,
                                                   Contact.email_norm == email))


def test_a_shopify_order_becomes_an_order_of_the_contact(app):
    lst = make_list()
    source = f.make_source(lst, kind="shopify")
    f.store_shopify(source, "customers/create",
                    f.shopify_customer("ann@example.com", consent="subscribed"))
    f.store_shopify(source, "orders/paid", f.shopify_order("ann@example.com", total="80.00"))
    assert process_pending() == 2
    ann = _contact(lst, "ann@example.com")
    [order] = db.session.scalars(select(Order)).all()
    assert order.contact_id == ann.id and order.status == "paid"
    assert float(order.revenue) == 80.0
    touched = Redis.from_url(app.config["REDIS_URL"]).smembers(TOUCHED_KEY)
    assert str(ann.id).encode() in touched  # automations will look at Ann within seconds


def test_a_guest_cart_and_visits_join_the_contact_when_the_guest_signs_up():
    lst = make_list()
    source = f.make_source(lst, kind="website")
    f.store_segment(source, f.page("anon-7", path="/tent"))
    f.store_segment(source, f.track("Product Added", anonymous_id="anon-7", cart_id="c-7",
                                    product_id="tent", name="Tent", price=120, quantity=1))
    assert process_pending() == 2
    cart = db.session.scalar(select(Cart))
    assert cart is not None and cart.contact_id is None and cart.anonymous_id == "anon-7"
    f.store_segment(source, f.track("Signed Up", anonymous_id="anon-7",
                                    email="guest@example.com"))
    assert process_pending() == 1
    guest = _contact(lst, "guest@example.com")
    assert guest is not None
    db.session.expire_all()
    assert db.session.get(Cart, cart.id).contact_id == guest.id
    visits = db.session.scalars(select(PageVisit)).all()
    assert visits and {v.contact_id for v in visits} == {guest.id}


def test_erasing_a_person_clears_their_orders_personal_fields_and_carts():
    lst = make_list()
    source = f.make_source(lst, kind="shopify")
    f.store_shopify(source, "customers/create",
                    f.shopify_customer("bob@example.com", consent="subscribed"))
    f.store_shopify(source, "orders/paid", f.shopify_order("bob@example.com", total="50.00"))
    assert process_pending() == 2
    erase_person("bob@example.com", requested_by="test")
    db.session.commit()
    db.session.expire_all()
    [order] = db.session.scalars(select(Order)).all()
    assert order.contact_id is None and order.email_norm is None and order.customer_name == ""
    assert float(order.revenue) == 50.0  # the shop's totals keep the amount
    assert _contact(lst, "bob@example.com") is None


# ------------------------------------------------------------ refunds without an email


def _shopify_refund(order_id, amount: str, refund_id: int = 881, **extra) -> dict:
    """A `refunds/create` payload (API 2025-01): it names the order, not the buyer."""
    return {"id": refund_id, "order_id": order_id, "created_at": "2026-11-30T13:00:00Z",
            "note": "Damaged", "restock": True, "refund_line_items": [],
            "transactions": [{"id": 1, "order_id": order_id, "kind": "refund",
                              "status": "success", "amount": amount}], **extra}


def _event(event_id) -> PluginEvent:
    db.session.expire_all()
    return db.session.get(PluginEvent, event_id)


def _order(external_id) -> Order:
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.external_id == str(external_id)))


def test_a_shopify_refund_without_an_email_adjusts_its_order_and_joins_the_buyer():
    lst = make_list()
    source = f.make_source(lst, kind="shopify")
    f.store_shopify(source, "customers/create",
                    f.shopify_customer("ann@example.com", consent="subscribed"))
    order = f.shopify_order("ann@example.com", total="80.00")
    f.store_shopify(source, "orders/paid", order)
    assert process_pending() == 2
    refund = f.store(source, channel="shopify", topic="refunds/create", kind="order_refunded",
                     body=_shopify_refund(order["id"], "30.00"))
    assert refund.email_norm is None
    assert process_pending() == 1
    stored = _order(order["id"])
    assert stored.status == "partially_refunded"
    assert (float(stored.refunded), float(stored.revenue)) == (30.0, 50.0)
    ann = _contact(lst, "ann@example.com")
    assert stored.email_norm == "ann@example.com" and stored.contact_id == ann.id
    event = _event(refund.id)
    assert event.status == "processed" and event.verdict["outcome"] == "refunded"
    assert str(order["id"]) in event.verdict["why"]
    assert event.contact_id == ann.id  # on Ann's timeline, from her order


def test_a_woocommerce_refunded_update_without_an_email_keeps_the_buyer():
    lst = make_list()
    source = f.make_source(lst, kind="woocommerce")
    body = {"id": 4711, "status": "processing", "total": "40.00", "currency": "EUR",
            "billing": {"email": "bo@example.com", "first_name": "Bo", "last_name": "Li"},
            "date_created_gmt": "2026-11-30T10:00:00", "date_modified_gmt": "2026-11-30T10:00:00",
            "date_paid_gmt": "2026-11-30T10:00:00", "line_items": [], "refunds": []}
    f.store_woo(source, "order.created", body)
    assert process_pending() == 1
    refunded = {**body, "status": "refunded", "billing": {"email": "", "first_name": ""},
                "date_modified_gmt": "2026-11-30T12:00:00",
                "refunds": [{"id": 12, "reason": "", "total": "-40.00"}]}
    event = f.store(source, channel="woocommerce", topic="order.updated", kind="order_refunded",
                    dedup_key="order:4711:2026-11-30T12:00:00", body=refunded)
    assert process_pending() == 1
    stored = _order(4711)
    assert stored.status == "refunded" and float(stored.revenue) == 0.0
    assert stored.email_norm == "bo@example.com" and stored.customer_name == "Bo Li"
    assert _event(event.id).verdict["outcome"] == "refunded"


def test_a_tracking_order_refunded_with_no_email_refunds_the_order():
    lst = make_list()
    source = f.make_source(lst, kind="website")
    f.store_segment(source, f.track("Order Completed", "anon-9", email="cy@example.com",
                                    order_id="o-9", total=20, currency="EUR"))
    assert process_pending() == 1
    body = f.segment("track", user_id="shop-user-9", event="Order Refunded",
                     properties={"order_id": "o-9", "total": 20, "currency": "EUR"})
    refund = f.store_segment(source, body)
    assert refund.email_norm is None and refund.anonymous_id is None
    assert process_pending() == 1
    assert _order("o-9").status == "refunded" and float(_order("o-9").revenue) == 0.0
    assert _event(refund.id).status == "processed"


def test_a_refund_with_a_malformed_email_still_adjusts_its_order():
    lst = make_list()
    source = f.make_source(lst, kind="shopify")
    order = f.shopify_order("dee@example.com", total="10.00")
    f.store_shopify(source, "orders/paid", order)
    assert process_pending() == 1
    refund = f.store(source, channel="shopify", topic="refunds/create", kind="order_refunded",
                     body=_shopify_refund(order["id"], "10.00"), email_norm="not an email")
    assert process_pending() == 1
    assert _order(order["id"]).status == "refunded"
    assert _event(refund.id).status == "processed"


def test_a_refund_of_an_order_not_arrived_yet_is_kept_until_it_does():
    lst = make_list()
    source = f.make_source(lst, kind="shopify")
    f.store_shopify(source, "customers/create",
                    f.shopify_customer("eve@example.com", consent="subscribed"))
    order = f.shopify_order("eve@example.com", total="60.00")
    refund = f.store(source, channel="shopify", topic="refunds/create", kind="order_refunded",
                     body=_shopify_refund(order["id"], "15.00"))
    assert process_pending() == 2
    event = _event(refund.id)
    assert event.status == "processed" and event.verdict["outcome"] == "refund_waiting"
    assert "has not arrived yet" in event.verdict["why"]
    assert float(_order(order["id"]).revenue) == 0.0  # nothing counts before the order
    f.store_shopify(source, "orders/paid", order)  # the order arrives after its refund
    assert process_pending() == 1
    stored = _order(order["id"])
    assert stored.status == "partially_refunded"
    assert (float(stored.total), float(stored.refunded), float(stored.revenue)) == (
        60.0, 15.0, 45.0)
    assert stored.contact_id == _contact(lst, "eve@example.com").id
    # A second refund of it, now known, is applied at once.
    again = f.store(source, channel="shopify", topic="refunds/create", kind="order_refunded",
                    body=_shopify_refund(order["id"], "45.00", refund_id=882))
    assert process_pending() == 1
    assert _order(order["id"]).status == "refunded"
    assert _event(again.id).verdict["outcome"] == "refunded"


def test_a_refund_naming_no_order_is_recorded_with_a_plain_verdict():
    lst = make_list()
    source = f.make_source(lst, kind="shopify")
    refund = f.store(source, channel="shopify", topic="refunds/create", kind="order_refunded",
                     body={"id": 5, "transactions": []})
    assert process_pending() == 1
    event = _event(refund.id)
    assert event.status == "ignored" and "names no order id" in event.verdict["why"]
    assert db.session.scalar(select(Order)) is None
