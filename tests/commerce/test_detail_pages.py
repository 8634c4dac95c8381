"""The order, product and cart detail pages: what they show, where they link, 404s for
unknown ids, untrusted product fields shown as text, and a query count that stays flat
however many lines an order has."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import event, select

from tests.commerce.helpers import apply, contact, make_source, minutes, track
from webapp.commerce.backfill import import_shopify_orders
from webapp.commerce.carts import sweep
from webapp.commerce.recommend import rebuild
from webapp.extensions import db
from webapp.models import Cart, Order, Product
from webapp.models.base import utcnow


@pytest.fixture
def history(app):
    """Ann: a described tent (variant, page, image), a cart abandoned then recovered by
    order A1 (tent in a variant + pegs, named only by orders), refunded in part by a guest
    event; Bob: six tent+pegs orders, so the pair is evidence."""
    now = utcnow().replace(microsecond=0)
    source = make_source()
    ann, bob = contact("ann@example.com"), contact("bob@example.com")
    t = now - timedelta(days=2)
    apply([track(source, "product_viewed", {
        "product_id": "tent", "name": "Tent", "price": 120, "currency": "EUR",
        "url": "https://shop.example/tent", "image_url": "https://cdn.shop.example/tent.jpg",
        "variant_id": "tent-green", "variant": "Green", "sku": "T-G"}, at=t - minutes(5)),
        track(source, "product_added", {"cart_id": "cart-ann", "product_id": "tent",
                                        "name": "Tent", "price": 120, "variant_id": "tent-green",
                                        "variant": "Green", "sku": "T-G",
                                        "currency": "EUR",
                                        "cart_url": "https://shop.example/cart/ann"},
              at=t, contact_id=ann.id, email=ann.email_norm)])
    sweep(now=t + minutes(61))
    db.session.commit()
    placed = track(source, "order_completed", {
        "order_id": "A1", "cart_id": "cart-ann", "total": 135, "currency": "EUR",
        "products": [{"product_id": "tent", "name": "Tent", "price": 120,
                      "variant_id": "tent-green", "variant": "Green", "sku": "T-G"},
                     {"product_id": "pegs", "name": "Pegs", "price": 5, "quantity": 3}]},
        at=t + minutes(180), contact_id=ann.id, email=ann.email_norm)
    refund = track(source, "order_refunded", {"order_id": "A1", "total": 15},
                   at=t + minutes(400))
    events = [placed, refund]
    for n in range(6):
        events.append(track(source, "order_completed", {
            "order_id": f"B{n}", "total": 30, "currency": "EUR",
            "products": [{"product_id": "tent", "name": "Tent", "price": 20},
                         {"product_id": "pegs", "name": "Pegs", "price": 10}]},
            at=t + minutes(200 + n), contact_id=bob.id, email=bob.email_norm))
    for n in range(6):  # other baskets, so tent+pegs stands out from chance
        events.append(track(source, "order_completed", {
            "order_id": f"C{n}", "total": 5, "currency": "EUR",
            "products": [{"product_id": f"misc{n}", "name": f"Misc {n}", "price": 3},
                         {"product_id": "bag", "name": "Bag", "price": 2}]},
            at=t + minutes(300 + n)))
    apply(events)
    rebuild()
    db.session.commit()
    ids = {o.external_id: o.id for o in db.session.scalars(select(Order))}
    products = {p.external_id: p.id for p in db.session.scalars(select(Product))}
    cart = db.session.scalar(select(Cart).where(Cart.external_id == "cart-ann"))
    return {"ann": ann, "source": source, "orders": ids, "products": products,
            "cart_id": cart.id, "placed": placed.id, "refund": refund.id}


def _html(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_order_page_shows_contact_lifecycle_lines_refunds_events_and_cart(signed_in,
                                                                         history):
    oid, pid = history["orders"]["A1"], history["products"]
    html = _html(signed_in.get(f"/shop/orders/{oid}"))
    text = _text(html)
    assert f'href="/contacts/{history["ann"].id}"' in html
    assert "Paid, refunded in part" in text
    assert re.search(r"Placed \d{4}-\d\d-\d\d \d\d:\d\d UTC · 135\.00 EUR", text)
    assert re.search(r"Paid \d{4}-.*Refunded in part \d{4}-\d\d-\d\d \d\d:\d\d UTC · 15\.00 EUR",
                     text)
    # Lines: product links, variant, quantity, unit price, line total; items and totals.
    assert f'href="/shop/products/{pid["tent"]}"' in html
    assert f'href="/shop/products/{pid["pegs"]}"' in html
    assert "Tent Green 1 120.00 EUR 120.00 EUR" in text
    assert "Pegs — 3 5.00 EUR 15.00 EUR" in text
    assert "Items 135.00 EUR" in text
    assert re.search(r'id="order-revenue">120\.00 EUR', html)
    assert "Live events from the shop" in text
    # The events that built it (the order and the guest's refund), linked to the log.
    assert f'href="/plugins/events/{history["placed"]}"' in html
    assert f'href="/plugins/events/{history["refund"]}"' in html
    # The cart it recovered.
    assert f'href="/shop/carts/{history["cart_id"]}"' in html
    assert "this order recovered it" in text


def test_order_from_the_history_import_says_so(signed_in, history):
    import_shopify_orders(history["source"].id, [{
        "id": 9001, "email": "ann@example.com", "currency": "EUR", "total_price": "40.00",
        "financial_status": "paid", "created_at": "2026-10-01T10:00:00Z",
        "line_items": [{"product_id": 77, "title": "Stove", "price": "40.00", "quantity": 1}]}])
    db.session.commit()
    oid = db.session.scalar(select(Order.id).where(Order.external_id == "9001"))
    text = _text(_html(signed_in.get(f"/shop/orders/{oid}")))
    assert "The history import (backfill)" in text and "never starts automations" in text
    assert "Imported from the shop's history, not from events" in text


def test_order_ids_link_from_the_orders_list_and_the_contact_page(signed_in, history):
    oid = history["orders"]["A1"]
    assert f'href="/shop/orders/{oid}"' in _html(signed_in.get("/shop/orders"))
    contact_page = _html(signed_in.get(f"/contacts/{history['ann'].id}"))
    assert f'href="/shop/orders/{oid}"' in contact_page
    assert f'href="/shop/carts/{history["cart_id"]}"' in contact_page
    products = _html(signed_in.get("/shop/products"))
    assert f'href="/shop/products/{history["products"]["tent"]}"' in products
    carts = _html(signed_in.get("/shop/carts?status=recovered"))
    assert f'href="/shop/carts/{history["cart_id"]}"' in carts


def test_product_page_shows_variants_image_sales_and_bought_together(signed_in, history):
    pid = history["products"]
    resp = signed_in.get(f"/shop/products/{pid['tent']}")
    html = _html(resp)
    text = _text(html)
    assert "Green T-G 120.00 EUR yes" in text
    assert '<img class="product-image" src="https://cdn.shop.example/tent.jpg"' in html
    assert "https://cdn.shop.example" in resp.headers["Content-Security-Policy"]
    assert 'href="https://shop.example/tent"' in html
    # A1 (120) and B0..B5 (6 × 20): 7 paid orders, 240.00 EUR in both windows.
    assert "Last 30 days 7 240.00 EUR" in text and "Last 90 days 7 240.00 EUR" in text
    assert f'href="/shop/products/{pid["pegs"]}"' in html
    assert "Bought together in 7 orders" in text
    assert "Details pending" not in text
    assert f'href="/shop/orders/{history["orders"]["B5"]}"' in html  # latest orders with it
    stub = _text(_html(signed_in.get(f"/shop/products/{pid['pegs']}")))
    assert "Details pending" in stub and "Bought together in 7 orders" in stub


def test_product_sales_leave_out_orders_older_than_the_window(signed_in, history):
    order = db.session.get(Order, history["orders"]["B0"])
    order.placed_at = utcnow() - timedelta(days=45)
    db.session.commit()
    text = _text(_html(signed_in.get(f"/shop/products/{history['products']['tent']}")))
    assert "Last 30 days 6 220.00 EUR" in text and "Last 90 days 7 240.00 EUR" in text


def test_untrusted_product_fields_are_text_and_odd_images_are_not_shown(signed_in, history):
    tent = db.session.get(Product, history["products"]["tent"])
    tent.title = "<script>alert(1)</script>"
    tent.image_url = "javascript:alert(1)"
    tent.url = "javascript:alert(2)"
    db.session.commit()
    for url in (f"/shop/products/{tent.id}", f"/shop/orders/{history['orders']['B1']}",
                "/shop/products", "/shop/"):
        html = _html(signed_in.get(url))
        assert "<script>alert(1)" not in html, url
    resp = signed_in.get(f"/shop/products/{tent.id}")
    html = _html(resp)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and 'href="javascript:' not in html
    assert "img-src 'self' data:;" in resp.headers["Content-Security-Policy"]
    tent.image_url = "https://cdn.example/x.jpg; script-src *"
    db.session.commit()
    resp = signed_in.get(f"/shop/products/{tent.id}")
    assert "script-src *" not in resp.headers["Content-Security-Policy"]


def test_cart_page_shows_lines_url_history_and_recovering_order(signed_in, history):
    html = _html(signed_in.get(f"/shop/carts/{history['cart_id']}"))
    text = _text(html)
    assert "Tent Green 1 120.00 EUR 120.00 EUR" in text
    assert re.search(r'id="cart-total">120\.00 EUR', html)
    assert 'href="https://shop.example/cart/ann"' in html
    assert re.search(r"Started \d{4}-.*Abandoned \d{4}-.*Recovered \d{4}-", text)
    assert "No activity and no order for 1 hour (the shop's delay)" in text
    assert f'href="/shop/orders/{history["orders"]["A1"]}"' in html
    assert re.search(r'id="cart-status">Recovered<', html)


def test_emptied_cart_history_says_cancelled(signed_in, history):
    source, ann = history["source"], history["ann"]
    at = utcnow() - timedelta(hours=5)
    apply([track(source, "product_added", {"cart_id": "cart-2", "product_id": "tent",
                                           "price": 120}, at=at, contact_id=ann.id,
                 email=ann.email_norm),
           track(source, "product_removed", {"cart_id": "cart-2", "product_id": "tent"},
                 at=at + minutes(2), contact_id=ann.id, email=ann.email_norm)])
    cart_id = db.session.scalar(select(Cart.id).where(Cart.external_id == "cart-2"))
    text = _text(_html(signed_in.get(f"/shop/carts/{cart_id}")))
    assert "Emptied (cancelled)" in text and "Abandoned 20" not in text
    assert "No items left in this cart" in text


@pytest.mark.parametrize("path", ["/shop/orders/999999", "/shop/products/999999",
                                  "/shop/carts/999999"])
def test_unknown_ids_are_404_in_plain_words(signed_in, history, path):
    resp = signed_in.get(path)
    assert resp.status_code == 404
    assert "Page not found." in resp.get_data(as_text=True)
    assert "Traceback" not in resp.get_data(as_text=True)


def _queries_for(signed_in, url: str) -> int:
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    signed_in.get(url)  # warm: session, user and template caches
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        _html(signed_in.get(url))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_query_count_stays_flat_with_50_lines(signed_in, history):
    source, ann = history["source"], history["ann"]
    at = utcnow() - timedelta(hours=3)
    apply([track(source, "order_completed", {
        "order_id": "ONE", "total": 1, "currency": "EUR",
        "products": [{"product_id": "p0", "name": "P0", "price": 1}]},
        at=at, contact_id=ann.id, email=ann.email_norm),
        track(source, "order_completed", {
            "order_id": "FIFTY", "total": 50, "currency": "EUR",
            "products": [{"product_id": f"p{n}", "name": f"P{n}", "price": 1,
                          "variant_id": f"v{n}"} for n in range(50)]},
        at=at + minutes(1), contact_id=ann.id, email=ann.email_norm)])
    ids = {o.external_id: o.id for o in db.session.scalars(select(Order))}
    one = _queries_for(signed_in, f"/shop/orders/{ids['ONE']}")
    fifty = _queries_for(signed_in, f"/shop/orders/{ids['FIFTY']}")
    assert fifty == one, (one, fifty)
    assert one <= 12, one
    assert _text(_html(signed_in.get(f"/shop/orders/{ids['FIFTY']}"))).count("1.00 EUR") >= 100
