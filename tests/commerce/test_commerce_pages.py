"""The shop pages: dashboard figures and chart, products, orders, abandoned carts with
revenue recovered, the contact page's card, the API keys and the recommendations API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.commerce.helpers import apply, contact, make_source, minutes, track
from webapp.commerce.carts import sweep
from webapp.commerce.recommend import rebuild
from webapp.extensions import db
from webapp.models.base import utcnow


@pytest.fixture
def shop_history(app):
    """Ann: an abandoned cart recovered by her order; Bob: two paid orders, one refunded
    in part; a pending order; tent+pegs bought together often (recommendations)."""
    now = utcnow().replace(microsecond=0)
    source = make_source()
    ann, bob = contact("ann@example.com"), contact("bob@example.com")
    t = now - timedelta(days=2)
    apply([track(source, "product_added", {"cart_id": "cart-ann", "product_id": "tent",
                                           "name": "Tent", "price": 120},
                 at=t, contact_id=ann.id, email=ann.email_norm)])
    sweep(now=t + minutes(61))
    db.session.commit()
    events = [track(source, "order_completed", {
        "order_id": "A1", "total": 120, "currency": "EUR",
        "products": [{"product_id": "tent", "name": "Tent", "price": 120}]},
        at=t + minutes(180), contact_id=ann.id, email=ann.email_norm)]
    for n in range(6):
        events.append(track(source, "order_completed", {
            "order_id": f"B{n}", "total": 30, "currency": "EUR",
            "products": [{"product_id": "tent", "name": "Tent", "price": 20},
                         {"product_id": "pegs", "name": "Pegs", "price": 10}]},
            at=t + minutes(200 + n), contact_id=bob.id, email=bob.email_norm))
    for n in range(6):
        events.append(track(source, "order_completed", {
            "order_id": f"C{n}", "total": 5, "currency": "EUR",
            "products": [{"product_id": f"misc{n}", "name": f"Misc {n}", "price": 3},
                         {"product_id": "bag", "name": "Bag", "price": 2}]},
            at=t + minutes(300 + n)))
    events.append(track(source, "order_refunded", {"order_id": "B0", "total": 10},
                        at=t + minutes(400)))
    apply(events)
    rebuild()
    db.session.commit()
    return {"ann": ann, "bob": bob}


def _html(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def test_dashboard_shows_revenue_orders_carts_chart_and_top_products(signed_in, shop_history):
    html = _html(signed_in.get("/shop/?period=7d"))
    # 120 + 6×30 − 10 refunded + 6×5 = 320
    assert re.search(r'id="revenue">320\.00 EUR<', html)
    assert "1 abandoned · 1 recovered" in html
    assert "120.00 EUR recovered" in html
    assert html.count("<rect ") == 8  # one bar per day of the 7-day period (+ today)
    assert "Tent" in html and "Pegs" in html


def test_products_orders_and_carts_pages(signed_in, shop_history):
    products = _html(signed_in.get("/shop/products?q=peg"))
    assert "Pegs" in products and "Tent" not in products
    orders = _html(signed_in.get("/shop/orders?status=partially_refunded"))
    # The order ids as link text (a bare "B1" can turn up inside the page's random CSRF token).
    assert ">B0</a>" in orders and ">B1</a>" not in orders
    carts = _html(signed_in.get("/shop/carts?status=recovered&period=30d"))
    assert re.search(r'id="revenue-recovered">120\.00 EUR<', carts)
    assert "ann@example.com" in carts and "recovered" in carts
    partial = signed_in.htmx_get("/shop/orders")
    assert "<html" not in partial.get_data(as_text=True)


def test_contact_page_shows_orders_carts_lifetime_value_and_recommendations(
        signed_in, shop_history):
    ann = shop_history["ann"]
    html = _html(signed_in.get(f"/contacts/{ann.id}"))
    assert re.search(r'id="lifetime-value">120\.00 EUR<', html)
    assert "A1" in html and "recovered" in html
    assert "Pegs" in html and "Bought together with Tent in 6 orders" in html


def test_money_is_never_summed_across_currencies(signed_in, shop_history):
    """Two USD orders beside the EUR history: every figure is in one currency (EUR, the most
    used, unless the page is asked for another), and lifetime value is given per currency."""
    source = make_source()
    ann, bob = shop_history["ann"], shop_history["bob"]
    t = utcnow().replace(microsecond=0) - timedelta(days=1)
    apply([track(source, "order_completed", {
        "order_id": f"U{n}", "total": 50, "currency": "USD",
        "products": [{"product_id": "lamp", "name": "Lamp", "price": 50}]},
        at=t + minutes(n), contact_id=ann.id, email=ann.email_norm) for n in range(2)]
        + [track(source, "product_added", {"cart_id": "cart-bob-usd", "product_id": "lamp",
                                           "name": "Lamp", "price": 50, "currency": "USD"},
                 at=t, contact_id=bob.id, email=bob.email_norm)])
    sweep(now=t + minutes(61))
    db.session.commit()

    euro = _html(signed_in.get("/shop/?period=7d"))
    assert re.search(r'id="revenue">320\.00 EUR<', euro)  # not 420: USD is not added in
    assert '<option value="USD">USD</option>' in euro and 'id="currency-note"' in euro
    dollars = _html(signed_in.get("/shop/?period=7d&currency=USD"))
    assert re.search(r'id="revenue">100\.00 USD<', dollars)
    assert "50.00 USD" in dollars  # the average order value of the two
    assert "Lamp" in dollars and ">Tent</a>" not in dollars
    # Carts are counted in every currency; recovered revenue and the amounts in abandoned
    # carts are listed per currency.
    assert "2 abandoned · 1 recovered" in dollars and "120.00 EUR recovered" in dollars
    assert _html(signed_in.get("/shop/?period=7d&currency=XYZ")).count("320.00 EUR") >= 1
    carts = _html(signed_in.get("/shop/carts?period=30d"))
    assert "50.00 USD · 0.00 EUR in them" not in carts and "50.00 USD in them" in carts
    assert re.search(r'id="revenue-recovered">120\.00 EUR<', carts)

    html = _html(signed_in.get(f"/contacts/{ann.id}"))
    assert re.search(r'id="lifetime-value">100\.00 USD · 120\.00 EUR<', html)
    assert "from 3 paid orders" in html


def test_a_contact_page_reads_the_shops_main_currency_only_without_paid_orders(
        signed_in, shop_history, monkeypatch):
    """The main currency is a scan of every order: a contact with paid orders labels its
    lifetime value with its own currency; one without orders shows 0.00 in the main one."""
    from webapp.commerce import stats

    ann = shop_history["ann"]
    calls = []
    real = stats.main_currency
    monkeypatch.setattr(stats, "main_currency", lambda: calls.append(1) or real())
    assert "120.00 EUR" in _html(signed_in.get(f"/contacts/{ann.id}"))
    assert calls == []
    nobody = contact("nobody@example.com")
    assert re.search(r'id="lifetime-value">0\.00 EUR<', _html(signed_in.get(
        f"/contacts/{nobody.id}")))
    assert calls == [1]


def test_api_keys_are_shown_once_and_open_the_recommendations_api(signed_in, client,
                                                                  shop_history):
    ann = shop_history["ann"]
    url = f"/api/contacts/{ann.id}/recommendations"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer tk_nope"}).status_code == 401
    page = _html(signed_in.post("/shop/api-keys", {"name": "Mailer"}))
    key = re.search(r'id="new-key">(tk_[^<]+)<', page).group(1)
    assert key not in _html(signed_in.get("/shop/api-keys"))  # shown once
    resp = client.get(url, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    body = resp.get_json()
    first = body["recommendations"][0]
    assert first["title"] == "Pegs" and first["reason"] == "bought_together"
    assert first["evidence"] == "Bought together with Tent in 6 orders"
    assert client.get("/api/contacts/999999/recommendations",
                      headers={"Authorization": f"Bearer {key}"}).status_code == 404
    key_id = re.search(r'name="key_id" value="(\d+)"',
                       _html(signed_in.get("/shop/api-keys"))).group(1)
    signed_in.post("/shop/api-keys/revoke", {"key_id": key_id})
    assert client.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 401
