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
from webapp.models import Cart, Contact, Order, PageVisit
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
