"""Recommendations: co-purchase normalised (a best-seller in every basket does not win),
bought and unavailable products left out, evidence in words, popular fallback, the same
answer after replays; erasing a person takes their orders out of the counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.commerce.helpers import apply, contact, make_source, minutes, track
from webapp.commerce import erase_contact_data
from webapp.commerce.recommend import for_contact, rebuild
from webapp.extensions import db
from webapp.models import Cart, Order, PageVisit, Product, ProductPair
from webapp.models.base import utcnow

pytestmark = pytest.mark.usefixtures("app")

T0 = utcnow().replace(microsecond=0) - timedelta(days=3)  # inside the 90-day window


def _order(source, n, products, who=None, at=None):
    return track(source, "order_completed", {
        "order_id": f"o{n}", "total": 10,
        "products": [{"product_id": p, "name": p.title(), "price": 5} for p in products]},
        at=at or T0 + minutes(n), contact_id=who.id if who else None,
        email=who.email_norm if who else None)


def _history(source):
    """'bag' is in most orders; 'tent' goes with 'pegs' (8 orders together)."""
    baskets = [["tent", "pegs", "bag"]] * 3 + [["tent", "pegs"]] * 5 + [["tent", "bag"]] * 2
    extras = ["cup", "map", "stove", "lamp", "knife", "rope"]
    baskets += [["bag", extras[i % len(extras)]] for i in range(17)]
    return [_order(source, n, products) for n, products in enumerate(baskets, 1)]


def _titles(recs):
    return [r.title for r in recs]


def test_co_purchase_beats_the_best_seller_with_evidence_and_exclusions():
    source = make_source()
    apply(_history(source))
    ann = contact()
    apply([_order(source, 99, ["tent"], ann, at=T0 + minutes(500))])
    rebuild()
    db.session.commit()
    recs = for_contact(ann.id)
    assert recs[0].title == "Pegs" and recs[0].reason == "bought_together"
    assert recs[0].evidence == "Bought together with Tent in 8 orders"
    assert "Tent" not in _titles(recs)  # already bought
    assert _titles(recs).index("Pegs") < _titles(recs).index("Bag")
    # Unavailable products are left out.
    db.session.execute(update(Product).where(Product.external_id == "pegs")
                       .values(available=False))
    db.session.commit()
    assert "Pegs" not in _titles(for_contact(ann.id))


def test_contacts_without_orders_get_popular_products():
    source = make_source()
    apply(_history(source))
    rebuild()
    db.session.commit()
    bob = contact("bob@example.com")
    recs = for_contact(bob.id)
    assert recs[0].title == "Bag" and recs[0].reason == "popular"
    assert recs[0].evidence == "Popular: bought in 22 orders in the last 90 days"
    assert len(recs) == 9  # every product once


def test_recommendations_are_the_same_after_replays():
    source = make_source()
    events = _history(source)
    ann = contact()
    events.append(_order(source, 99, ["tent"], ann))
    apply(events)
    rebuild()
    db.session.commit()
    first = [r.as_json() for r in for_contact(ann.id)]
    for _ in range(3):
        apply(reversed(events))
    rebuild()
    db.session.commit()
    assert [r.as_json() for r in for_contact(ann.id)] == first


def test_erasing_a_person_removes_them_from_orders_carts_visits_and_counts():
    source = make_source()
    ann = contact()
    # Ann bought tent with pegs twice more.
    events = _history(source) + [_order(source, 50, ["tent", "pegs"], ann),
                                 _order(source, 51, ["tent", "pegs"], ann)]
    events.append(track(source, "product_added", {"cart_id": "c-ann", "product_id": "cup",
                                                  "price": 2}, at=T0, contact_id=ann.id,
                        email=ann.email_norm))
    events.append(track(source, "page", {"url": "https://shop.test/"}, at=T0,
                        contact_id=ann.id))
    apply(events)
    rebuild()
    db.session.commit()
    tent, pegs = (db.session.scalar(select(Product.id).where(Product.external_id == e))
                  for e in ("tent", "pegs"))

    def together():
        return db.session.scalar(select(ProductPair.orders).where(
            ProductPair.product_id == tent, ProductPair.other_id == pegs))

    assert together() == 10
    result = erase_contact_data([ann.id])
    db.session.commit()
    assert result["orders"] == 2
    db.session.expire_all()
    assert together() == 8
    assert db.session.scalar(select(Order).where(Order.email_norm == ann.email_norm)) is None
    kept = db.session.scalars(select(Order).where(Order.external_id.in_(["o50", "o51"]))).all()
    assert [(o.contact_id, o.customer_name, o.erased_at is not None) for o in kept] == [
        (None, "", True)] * 2
    assert db.session.scalar(select(Cart)) is None
    assert db.session.scalar(select(PageVisit)) is None
