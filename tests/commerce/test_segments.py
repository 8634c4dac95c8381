"""Segments compiled to one SQL query: each kind of condition, AND/OR groups, negation,
time windows, and refusal of bad definitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.commerce.segment_factories import (
    make_cart,
    make_order,
    make_product,
    make_shop,
    make_visit,
)
from tests.factories import make_contact, make_list
from webapp.commerce import segments
from webapp.commerce.segments import DefinitionError
from webapp.extensions import db
from webapp.models.base import utcnow

pytestmark = pytest.mark.usefixtures("app")


def ids(definition: dict, now=None) -> set[int]:
    cleaned = segments.clean_definition(definition)
    return set(db.session.scalars(segments.members(cleaned, now)))


def both(*conditions, op="and") -> dict:
    return {"op": op, "items": list(conditions)}


@pytest.fixture
def world():
    lst = make_list("Shop customers")
    shop = make_shop(lst)
    mug = make_product(shop, "Mug", "Kitchen")
    shoe = make_product(shop, "Runner", "Shoes")
    now = utcnow()
    old = now - timedelta(days=100)
    ann = make_contact(lst, "ann@example.com", custom={"tier": "Gold"}, origin="plugin",
                       consent_state="subscribed", created_at=old)
    bob = make_contact(lst, "bob@example.com", custom={"tier": "silver"}, origin="import",
                       created_at=old)
    cat = make_contact(lst, "cat@example.com", origin="plugin", created_at=old)
    make_order(shop, ann.id, total="80.00", placed_at=now - timedelta(days=3), products=[shoe])
    make_order(shop, bob.id, total="20.00", placed_at=now - timedelta(days=40), products=[mug])
    make_order(shop, cat.id, total="99.00", placed_at=now - timedelta(days=1), status="pending",
               products=[shoe])
    make_cart(shop, bob.id, abandoned_at=now - timedelta(hours=5))
    make_cart(shop, cat.id, status="recovered", abandoned_at=now - timedelta(hours=2))
    make_visit(shop, cat.id, "https://demo.example.com/products/runner?ref=mail",
               now - timedelta(days=2))
    make_visit(shop, ann.id, "https://demo.example.com/cart", now - timedelta(days=20))
    return {"list": lst, "shop": shop, "mug": mug, "shoe": shoe, "ann": ann.id, "bob": bob.id,
            "cat": cat.id, "now": now}


def test_purchased_anything_product_category_window_and_minimum(world):
    w = world
    assert ids(both({"type": "purchased", "what": "anything", "days": 30})) == {w["ann"]}
    assert ids(both({"type": "purchased", "what": "anything", "days": 60})) == {w["ann"],
                                                                               w["bob"]}
    # The pending order does not count; the minimum applies to one order's revenue.
    assert ids(both({"type": "purchased", "what": "anything", "days": 60,
                     "min_amount": "50"})) == {w["ann"]}
    assert ids(both({"type": "purchased", "what": "product", "product_id": w["mug"].id,
                     "days": 60})) == {w["bob"]}
    assert ids(both({"type": "purchased", "what": "category", "category": "shoes",
                     "days": 7})) == {w["ann"]}


def test_cart_abandoned_not_recovered_within_hours(world):
    w = world
    assert ids(both({"type": "cart_abandoned", "hours": 6})) == {w["bob"]}
    assert ids(both({"type": "cart_abandoned", "hours": 4})) == set()


def test_visited_url_equals_contains_starts_with_wildcard(world):
    w = world
    url = "https://demo.example.com/products/runner?ref=mail"
    assert ids(both({"type": "visited", "match": "equals", "url": url, "days": 7})) == {w["cat"]}
    assert ids(both({"type": "visited", "match": "contains", "url": "RUNNER", "days": 7})) \
        == {w["cat"]}
    assert ids(both({"type": "visited", "match": "starts_with",
                     "url": "https://demo.example.com/", "days": 30})) == {w["cat"], w["ann"]}
    assert ids(both({"type": "visited", "match": "wildcard", "url": "*/products/*?ref=*",
                     "days": 7})) == {w["cat"]}
    # "_" and "%" are literal characters, not LIKE wildcards.
    assert ids(both({"type": "visited", "match": "contains", "url": "%", "days": 30})) == set()


def test_contact_conditions_field_list_origin_consent(world):
    w = world
    assert ids(both({"type": "field", "field": "tier", "compare": "equals", "value": "gold"})) \
        == {w["ann"]}
    assert ids(both({"type": "field", "field": "tier", "compare": "is_not_set"})) == {w["cat"]}
    assert ids(both({"type": "field", "field": "tier", "compare": "not_equals", "value": "gold"})) \
        == {w["bob"], w["cat"]}
    assert ids(both({"type": "origin", "origin": "plugin"})) == {w["ann"], w["cat"]}
    assert ids(both({"type": "consent", "state": "subscribed"})) == {w["ann"]}
    vip = make_list("VIP")
    vip_bob = make_contact(vip, "bob@example.com")
    # The person is on the list: their row there and their rows elsewhere.
    assert ids(both({"type": "list", "list_id": vip.id})) == {w["bob"], vip_bob.id}
    assert ids(both({"type": "list", "list_id": vip.id, "negate": True})) == {w["ann"],
                                                                             w["cat"]}


def test_and_or_groups_nest(world):
    w = world
    definition = both(
        {"op": "or", "items": [{"type": "cart_abandoned", "hours": 24},
                               {"type": "visited", "match": "contains", "url": "runner",
                                "days": 7}]},
        {"op": "and", "items": [{"type": "origin", "origin": "plugin"}]},
    )
    assert ids(definition) == {w["cat"]}
    definition["op"] = "or"
    assert ids(definition) == {w["ann"], w["bob"], w["cat"]}


def test_time_windows_follow_now(world):
    """The same definition at a past moment: orders after that moment do not count yet."""
    w = world
    definition = both({"type": "purchased", "what": "anything", "days": 30})
    assert ids(definition, w["now"] - timedelta(days=10)) == {w["bob"]}
    # A contact created after that moment was no member then.
    assert ids(both({"type": "origin", "origin": "plugin"}), w["now"] - timedelta(days=200)) \
        == set()


def test_count_and_sample_are_single_queries(world):
    cleaned = segments.clean_definition(both({"type": "origin", "origin": "plugin"}))
    assert segments.count(cleaned) == 2
    assert [row.email for row in segments.sample(cleaned)] == ["cat@example.com",
                                                               "ann@example.com"]
    compiled = str(segments.members(segments.clean_definition(both(
        {"type": "purchased", "what": "anything", "days": 3},
        {"type": "visited", "match": "contains", "url": "x", "days": 3},
        {"type": "cart_abandoned", "hours": 3}))))
    assert compiled.count("SELECT") == 4  # the outer select and one semi-join each


@pytest.mark.parametrize("bad, where", [
    ({"op": "xor", "items": [{"type": "origin", "origin": "plugin"}]}, "g"),
    ({"op": "and", "items": []}, "g"),
    ({"op": "and", "items": [{"type": "purchased", "what": "anything", "days": "0"}]}, "g0"),
    ({"op": "and", "items": [{"type": "purchased", "what": "anything", "days": "x"}]}, "g0"),
    ({"op": "and", "items": [{"type": "purchased", "what": "anything", "days": 3,
                              "min_amount": "NaN"}]}, "g0"),
    ({"op": "and", "items": [{"type": "visited", "match": "regex", "url": "a", "days": 1}]},
     "g0"),
    ({"op": "and", "items": [{"op": "and", "items": [{"type": "nope"}]}]}, "g0_c0"),
    ({"op": "and", "items": [{"type": "purchased"}], "extra": 1}, "g0"),
    ({"op": "and", "items": [{"type": "field", "field": "a\x00", "compare": "is_set"}]}, "g0"),
    ({"op": "and", "items": [{"type": "origin", "origin": "moon"}]}, "g0"),
    ("not a tree", "g"),
])
def test_bad_definitions_are_refused_in_plain_words(bad, where):
    with pytest.raises(DefinitionError) as caught:
        segments.clean_definition(bad)
    assert caught.value.where == where
    assert "Traceback" not in caught.value.message


def test_save_refuses_a_taken_name(world):
    definition = both({"type": "origin", "origin": "plugin"})
    segments.save("Buyers", definition)
    db.session.commit()
    with pytest.raises(DefinitionError):
        segments.save("buyers", definition)
    assert db.session.scalars(select(segments.Segment.name)).all() == ["Buyers"]
