"""Abandoned carts on a fake clock: 59 min open, 61 min abandoned, an order at 3 h recovers,
an emptied cart is never abandoned, an order before its cart event leaves none."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.commerce.helpers import T0, apply, contact, make_source, minutes, track
from webapp.commerce.carts import attach_visitor, sweep
from webapp.extensions import db
from webapp.models import Cart, PageVisit, Shop

pytestmark = pytest.mark.usefixtures("app")


def _cart(external_id: str = "c1") -> Cart:
    db.session.expire_all()
    return db.session.scalar(select(Cart).where(Cart.external_id == external_id))


def _sweep(at):
    result = sweep(now=at)
    db.session.commit()
    return result


def _add(source, at, who=None, cart="c1", product="p1", **kw):
    return track(source, "product_added", {"cart_id": cart, "product_id": product,
                                           "name": "Pen", "price": 12.5, "quantity": 2},
                 at=at, contact_id=who.id if who else None,
                 email=who.email_norm if who else None, **kw)


def test_timeline_59_minutes_open_61_abandoned_order_at_3_hours_recovers():
    source, ann = make_source(), contact()
    apply([_add(source, T0, ann)])
    cart = _cart()
    assert (cart.status, str(cart.total)) == ("open", "25.00")
    assert _sweep(T0 + minutes(59)) == {"abandoned": 0, "lost": 0}
    assert _cart().status == "open"
    assert _sweep(T0 + minutes(61))["abandoned"] == 1
    cart = _cart()
    assert cart.status == "abandoned" and cart.abandoned_at == T0 + minutes(61)
    assert _sweep(T0 + minutes(62))["abandoned"] == 0  # once
    apply([track(source, "order_completed", {"order_id": "o1", "total": 25, "products": [
        {"product_id": "p1", "price": 12.5, "quantity": 2}]}, at=T0 + minutes(180),
        contact_id=ann.id, email=ann.email_norm)])
    cart = _cart()
    assert cart.status == "recovered" and cart.recovered_at == T0 + minutes(180)
    assert cart.order_id is not None
    _sweep(T0 + minutes(60 * 24 * 30))
    assert _cart().status == "recovered"


def test_an_emptied_cart_is_never_abandoned():
    source, ann = make_source(), contact()
    apply([_add(source, T0, ann),
           track(source, "product_removed", {"cart_id": "c1", "product_id": "p1"},
                 at=T0 + minutes(3), contact_id=ann.id)])
    assert _cart().status == "emptied"
    _sweep(T0 + minutes(600))
    assert _cart().status == "emptied"
    # Emptying an already abandoned cart cancels it too.
    apply([_add(source, T0 + minutes(700), ann, cart="c2")])
    _sweep(T0 + minutes(800))
    assert _cart("c2").status == "abandoned"
    apply([track(source, "cart_viewed", {"cart_id": "c2", "products": []},
                 at=T0 + minutes(810), contact_id=ann.id)])
    assert _cart("c2").status == "emptied"


def test_an_order_before_its_cart_event_leaves_no_abandoned_cart():
    source, ann = make_source(), contact()
    apply([track(source, "order_completed", {"order_id": "o1", "cart_id": "c1", "total": 25},
                 at=T0 + minutes(10), contact_id=ann.id)])
    apply([_add(source, T0, ann)])  # arrives late
    assert _cart().status == "converted"
    _sweep(T0 + minutes(500))
    cart = _cart()
    assert cart.status == "converted" and cart.abandoned_at is None


def test_an_order_with_the_cart_token_recovers_it_whoever_ordered():
    source, ann = make_source(), contact()
    apply([_add(source, T0, ann, cart="tok-9")])
    _sweep(T0 + minutes(90))
    apply([track(source, "order_completed", {"order_id": "o7", "cart_id": "tok-9", "total": 25},
                 at=T0 + minutes(300))])  # a guest checkout, no contact
    assert _cart("tok-9").status == "recovered"


def test_an_order_by_the_same_person_before_the_cart_began_does_not_convert_it():
    source, ann = make_source(), contact()
    apply([track(source, "order_completed", {"order_id": "o1", "total": 5},
                 at=T0 - minutes(60), contact_id=ann.id)])
    apply([_add(source, T0, ann)])
    assert _cart().status == "open"
    _sweep(T0 + minutes(61))
    assert _cart().status == "abandoned"


def test_guest_carts_wait_for_identify_and_the_shop_delay_is_used():
    source, ann = make_source(), contact()
    apply([_add(source, T0, None, anonymous_id="anon-1"),
           track(source, "page", {"url": "https://shop.test/p1"}, at=T0,
                 anonymous_id="anon-1")])
    db.session.execute(update(Shop).values(abandon_after_minutes=30))
    db.session.commit()
    _sweep(T0 + minutes(45))
    assert _cart().status == "open"  # no email: nobody to remind
    assert attach_visitor(source.id, "anon-1", ann.id) == 1
    db.session.commit()
    assert _cart().contact_id == ann.id
    assert db.session.scalar(select(PageVisit.contact_id)) == ann.id
    _sweep(T0 + minutes(45))
    assert _cart().status == "abandoned"


def test_activity_after_abandonment_reopens_and_lost_after_a_week():
    source, ann = make_source(), contact()
    apply([_add(source, T0, ann)])
    _sweep(T0 + minutes(61))
    apply([_add(source, T0 + minutes(70), ann, product="p2")])
    assert _cart().status == "open" and _cart().abandoned_at is None
    _sweep(T0 + minutes(131))
    assert _cart().status == "abandoned"
    _sweep(T0 + minutes(131 + 7 * 24 * 60))
    assert _cart().status == "lost"


def test_the_sweep_and_the_rebuild_are_allow_listed_periodic_jobs():
    from webapp import jobs
    from webapp.background import PERIODIC
    from webapp.models.base import utcnow

    specs = {spec.func: spec for spec in PERIODIC}
    assert specs["webapp.jobs.sweep_abandoned_carts"].interval <= 60
    assert "webapp.jobs.rebuild_recommendations" in specs
    assert {"webapp.jobs.sweep_abandoned_carts",
            "webapp.jobs.rebuild_recommendations"} <= jobs.ALLOWED_JOBS
    source, ann = make_source(), contact()
    apply([_add(source, utcnow() - minutes(62), ann)])
    assert jobs.sweep_abandoned_carts() == {"abandoned": 1, "lost": 0}
    assert _cart().status == "abandoned"
    assert jobs.rebuild_recommendations()["pairs"] == 0  # no paid orders yet
