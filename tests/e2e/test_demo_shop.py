"""The demo shop in Chromium with the snippet pointed at a capture server standing in for
Tributary: sign up through its form with consent, view and add a product, view the cart,
check out; the browser sends the Segment events with the public key, and the shop's server
sends "Order Completed" to /v1/track with the server key (retried after a failure)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from simulators import demo_shop
from tests.capture import CaptureServer

SNIPPET = Path(__file__).resolve().parents[2] / "webapp" / "static" / "tributary.js"
PK, SK = "pk_demo_public", "sk_demo_server"


@pytest.fixture
def tracker():
    server = CaptureServer(files={"/static/tributary.js": ("text/javascript",
                                                           SNIPPET.read_bytes())})
    yield server
    server.stop()


@pytest.fixture
def shop(tracker):
    running, state = demo_shop.start(tracker.url, PK, SK, retry_delays=(0.2, 0.4))
    yield running.url, state
    state.close()
    running.stop()


def _browser_events(tracker):
    return [e for r in tracker.posts("/v1/batch") for e in r.json()["batch"]]


def test_a_visitor_signs_up_adds_to_cart_and_orders(page: Page, tracker, shop):
    url, state = shop
    failures = {"left": 1}

    def answer(captured):  # the shop's first call to Tributary fails: it must retry
        if captured.path == "/v1/track" and failures["left"]:
            failures["left"] -= 1
            return 503, 0.0
        return 200, 0.0

    tracker.answer = answer
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    page.get_by_label("Email").fill("dora@example.com")
    page.get_by_label("First name").fill("Dora")
    page.get_by_label("Yes, send me the newsletter").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Thanks for signing up!")).to_be_visible()
    assert state.signups == [{"email": "dora@example.com", "consent": True}]

    page.goto(url + "/")
    page.get_by_role("link", name="Tea sampler").click()
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#added")).to_contain_text("Tea sampler is in your cart (1 items)")
    page.get_by_role("link", name="Cart").click()
    expect(page.locator("#cart-lines")).to_contain_text("1 × Tea sampler — 31.90 EUR")
    page.get_by_label("Email for the receipt").fill("dora@example.com")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()

    tracker.wait_for(lambda t: any(e.get("event") == "Checkout Started"
                                   for e in _browser_events(t)))
    events = _browser_events(tracker)
    named = [e.get("event") or e["type"] for e in events]
    for name in ("page", "Form Submitted", "identify", "Product Viewed", "Product Added",
                 "Cart Viewed", "Checkout Started"):
        assert name in named, (name, named)
    assert "Order Completed" not in named  # server-only: never from the browser
    assert {r.json()["writeKey"] for r in tracker.posts("/v1/batch")} == {PK}
    assert len({e["anonymousId"] for e in events}) == 1
    form = next(e for e in events if e.get("event") == "Form Submitted")
    assert form["properties"]["consent"] is True
    assert form["properties"]["email"] == "dora@example.com"
    added = next(e for e in events if e.get("event") == "Product Added")
    assert added["properties"]["product_id"] == "tea-sampler"
    assert added["properties"]["price"] == 31.9
    started = next(e for e in events if e.get("event") == "Checkout Started")
    assert started["properties"]["products"][0]["quantity"] == 1

    calls = tracker.wait_for(lambda t: len(t.posts("/v1/track")) >= 2 and t.posts("/v1/track"))
    assert [o.attempts for o in state.orders] == [[503, 200]]
    first, retry = calls[:2]
    assert first.body == retry.body  # the same messageId: a retry is not a second order
    auth = base64.b64decode(retry.headers["Authorization"].removeprefix("Basic ")).decode()
    assert auth == f"{SK}:"
    order = retry.json()
    assert order["event"] == "Order Completed" and order["type"] == "track"
    assert order["anonymousId"] == events[0]["anonymousId"]  # stitched to the visitor
    assert order["context"]["traits"]["email"] == "dora@example.com"
    assert order["properties"]["total"] == 31.9 and order["properties"]["currency"] == "EUR"
    assert order["properties"]["products"] == [{"product_id": "tea-sampler",
                                                "sku": "TEA-SAMPLER", "name": "Tea sampler",
                                                "price": 31.9, "quantity": 1}]
    assert page.evaluate("localStorage.getItem('demo_cart')") is None
    assert errors == []


def test_without_keys_the_shop_says_so_and_sends_nothing(page: Page, tracker):
    running, state = demo_shop.start()
    try:
        page.goto(running.url + "/products/blue-mug")
        expect(page.get_by_text("not connected to Tributary yet")).to_be_visible()
        page.get_by_role("button", name="Add to cart").click()
        expect(page.locator("#added")).to_contain_text("Blue mug is in your cart")
        assert page.locator("script[data-key]").count() == 0
        state.configure(tracker.url, PK, SK)  # the keys arrive once the source exists
        page.reload()
        assert page.locator("script[data-key]").get_attribute("data-key") == PK
        tracker.wait_for(lambda t: any(e.get("event") == "Product Viewed"
                                       for e in _browser_events(t)))
    finally:
        state.close()
        running.stop()
