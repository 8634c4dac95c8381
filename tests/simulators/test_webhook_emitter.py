"""The webhook emitters put exactly Shopify's and WooCommerce's wire format on the wire (checked
at a capture server): raw compact JSON, signatures over the raw bytes, the headers; Shopify's
retries of the same delivery on its compressed schedule, a 5-second timeout counted as a
failure, out-of-order delivery; WooCommerce's ping, its colliding delivery ids and the same
resource changed twice within a second; the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from simulators import webhook_emitter as we
from simulators.dataset import generate
from tests.capture import CaptureServer
from tests.conftest import ROOT

SECRET = "shpss_0123456789abcdef"
WOO_SECRET = "woo secret with spaces & ünïcode"


@pytest.fixture
def receiver():
    server = CaptureServer()
    yield server
    server.stop()


def _people(n=4):
    people = [p for p in generate(200, seed=3) if p.email]
    # one with a non-ASCII name, so the body's UTF-8 (Shopify) or \u escapes (Woo) show
    odd = next(p for p in people if not p.first_name.isascii())
    return [odd, *people[: n - 1]]


def _expected_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_shopify_delivery_is_raw_compact_utf8_json_signed_over_the_raw_bytes(receiver):
    person = _people()[0]
    shop = we.ShopifyEmitter(receiver.url + "/hooks/shopify/7", SECRET)
    at = datetime(2026, 12, 1, 13, 0, 5, 123456, tzinfo=UTC)
    attempts = shop.send("customers/create", we.shopify_customer(person), event_id="evt-1",
                         triggered_at=at)
    assert [a.status for a in attempts] == [200]
    (got,) = receiver.posts()
    assert got.path == "/hooks/shopify/7"
    assert got.body == json.dumps(json.loads(got.body), ensure_ascii=False,
                                  separators=(",", ":")).encode("utf-8")
    assert person.first_name.encode("utf-8") in got.body  # UTF-8, not \u escapes
    h = got.headers
    assert h["X-Shopify-Hmac-Sha256"] == _expected_hmac(got.body, SECRET)
    assert h["Content-Type"] == "application/json"
    assert h["X-Shopify-Topic"] == "customers/create"
    assert h["X-Shopify-Shop-Domain"] == "tributary-demo.myshopify.com"
    assert h["X-Shopify-Api-Version"] == "2025-01"
    assert h["X-Shopify-Event-Id"] == "evt-1"
    assert len(h["X-Shopify-Webhook-Id"]) == 36
    assert h["X-Shopify-Triggered-At"] == "2026-12-01T13:00:05.123456Z"
    assert int(h["Content-Length"]) == len(got.body)
    customer = got.json()
    assert customer["email"] == person.email
    assert customer["email_marketing_consent"]["state"] in ("subscribed", "unsubscribed",
                                                            "not_subscribed")
    assert customer["admin_graphql_api_id"] == f"gid://shopify/Customer/{customer['id']}"


def test_shopify_payload_shapes_of_every_topic():
    people = _people(8)
    pairs = we.shopify_scenario("mixed", people)
    by_topic: dict[str, list[dict]] = {}
    for topic, payload in pairs:
        by_topic.setdefault(topic, []).append(payload)
    for topic in ("app/uninstalled", "customers/data_request", "customers/redact",
                  "shop/redact"):
        by_topic[topic] = [we.shopify_privacy(topic, people[0], orders=[1, 2])]
    assert set(by_topic) == set(we.SHOPIFY_TOPICS)
    assert all("email_marketing_consent" not in c for c in by_topic["customers/update"])
    consent = by_topic["customers_email_marketing_consent/update"][0]
    assert set(consent) == {"customer_id", "email_address", "email_marketing_consent"}
    order = by_topic["orders/create"][0]
    assert order["financial_status"] == "pending" and order["line_items"]
    total = sum(float(i["price"]) * i["quantity"] for i in order["line_items"])
    assert order["total_price"] == f"{total:.2f}"
    assert by_topic["orders/paid"][0]["financial_status"] == "paid"
    assert by_topic["orders/paid"][0]["id"] == order["id"]
    assert by_topic["orders/cancelled"][0]["cancelled_at"]
    refund = by_topic["refunds/create"][0]
    assert "email" not in refund and refund["transactions"][0]["kind"] == "refund"
    created, updated = by_topic["checkouts/create"][0], by_topic["checkouts/update"][0]
    assert created["token"] == updated["token"] and created["email"]
    assert updated["abandoned_checkout_url"].endswith(f"/checkouts/{created['token']}/recover")
    assert len(updated["line_items"]) > len(created["line_items"])
    assert by_topic["customers/redact"][0]["orders_to_redact"] == [1, 2]
    assert by_topic["customers/data_request"][0]["customer"]["email"] == people[0].email
    assert set(by_topic["shop/redact"][0]) == {"shop_id", "shop_domain"}


def test_shopify_retries_the_same_delivery_on_its_backoff_until_acknowledged(receiver):
    receiver.answer = lambda c: (500, 0.0) if len(receiver.requests) <= 2 else (200, 0.0)
    shop = we.ShopifyEmitter(receiver.url, SECRET, time_factor=0.002)
    attempts = shop.send("orders/paid", we.shopify_order(_people()[0], 1, [we.PRODUCTS[0]]))
    assert [a.status for a in attempts] == [500, 500, 200]
    got = receiver.posts()
    assert len({r.body for r in got}) == 1
    for key in ("X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Hmac-Sha256",
                "X-Shopify-Triggered-At"):
        assert len({r.headers[key] for r in got}) == 1, key
    gaps = [b.at - a.at for a, b in zip(got, got[1:], strict=False)]
    assert 0.12 <= gaps[0] < 0.5 and 0.24 <= gaps[1] < 0.8, gaps  # 60 s, 120 s × 0.002


def test_shopify_gives_up_after_eight_retries_over_four_hours():
    waits: list[float] = []
    shop = we.ShopifyEmitter("http://127.0.0.1:9/", SECRET, sleep=waits.append, timeout=0.2)
    attempts = shop.send("shop/redact", we.shopify_privacy("shop/redact"))
    assert len(attempts) == 9 and not any(a.ok for a in attempts)
    assert all(a.status is None for a in attempts)  # refused connection: a failure
    assert waits == list(we.SHOPIFY_BACKOFF) and sum(waits) == 4 * 3600


def test_an_answer_later_than_the_timeout_counts_as_a_failure_and_is_retried(receiver):
    receiver.answer = lambda c: (200, 0.6) if len(receiver.requests) == 1 else (200, 0.0)
    shop = we.ShopifyEmitter(receiver.url, SECRET, timeout=0.3, sleep=lambda s: None)
    attempts = shop.send("customers/create", we.shopify_customer(_people()[0]))
    assert attempts[0].status is None and attempts[0].error == "TimeoutError"
    assert attempts[0].seconds < 0.55
    assert [a.status for a in attempts[1:]] == [200]
    assert we.ShopifyEmitter("http://x", SECRET).timeout == 5.0  # Shopify's 5 seconds


def test_out_of_order_delivery_keeps_the_triggered_at_of_each_event(receiver):
    shop = we.ShopifyEmitter(receiver.url, SECRET)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    pairs = we.shopify_scenario("order", _people(3))
    deliveries = [shop.delivery(t, p, triggered_at=start + timedelta(seconds=i))
                  for i, (t, p) in enumerate(pairs)]
    shop.deliver_all(deliveries, order="shuffled", seed=5)
    got = [r.headers["X-Shopify-Triggered-At"] for r in receiver.posts()]
    assert sorted(got) == [d.headers["X-Shopify-Triggered-At"] for d in deliveries]
    assert got != sorted(got)
    receiver.requests.clear()
    shop.deliver_all(deliveries, order="reversed")
    assert [r.body for r in receiver.posts()] == [d.body for d in reversed(deliveries)]


def test_woocommerce_ping_then_signed_deliveries(receiver):
    woo = we.WooCommerceEmitter(receiver.url + "/hooks/woocommerce/3", WOO_SECRET,
                                webhook_id=42, site="https://woo.example/")
    assert woo.ping().status == 200
    ping = receiver.posts()[0]
    assert ping.body == b"webhook_id=42"
    assert ping.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-Wc-Webhook-Signature" not in ping.headers
    person = _people()[0]
    modified = datetime(2026, 12, 1, 13, 5, 9, tzinfo=UTC)
    assert woo.send("customer.created", we.woo_customer(person, modified)).status == 200
    got = receiver.posts()[1]
    h = got.headers
    assert h["X-Wc-Webhook-Signature"] == _expected_hmac(got.body, WOO_SECRET)
    assert (h["X-Wc-Webhook-Topic"], h["X-Wc-Webhook-Resource"], h["X-Wc-Webhook-Event"]) == (
        "customer.created", "customer", "created")
    assert h["X-Wc-Webhook-Id"] == "42" and h["X-Wc-Webhook-Source"] == "https://woo.example/"
    assert len(h["X-Wc-Webhook-Delivery-Id"]) == 32
    assert h["User-Agent"].startswith("WooCommerce/")
    assert got.body.isascii() and b"\\/" in got.body  # wp_json_encode: \u escapes, "\/"
    assert b'":' in got.body and b'": ' not in got.body
    customer = got.json()
    assert customer["date_modified_gmt"] == "2026-12-01T13:05:09"
    assert customer["email"] == person.email and customer["first_name"] == person.first_name


def test_woocommerce_delivery_ids_collide_within_a_second_and_not_across(receiver):
    now = [1796130000.2]
    woo = we.WooCommerceEmitter(receiver.url, WOO_SECRET, clock=lambda: now[0])
    person, other = _people(2)
    at = datetime(2026, 12, 1, 13, 0, 0, tzinfo=UTC)
    first = woo.delivery("order.created", we.woo_order(person, 11, [we.PRODUCTS[0]],
                                                        "pending", at, at))
    now[0] += 0.5
    second = woo.delivery("order.created", we.woo_order(other, 12, [we.PRODUCTS[1]],
                                                         "pending", at, at))
    # two different orders in one second: the same delivery id (WooCommerce's collision)
    assert first.headers["X-WC-Webhook-Delivery-ID"] == second.headers[
        "X-WC-Webhook-Delivery-ID"]
    assert first.body != second.body
    # the same order changed twice within one second, the second delivered a second later:
    # different delivery ids, the same resource id and date_modified_gmt
    changed = at + timedelta(seconds=5)
    update = woo.delivery("order.updated", we.woo_order(person, 11, [we.PRODUCTS[0]],
                                                         "processing", at, changed))
    now[0] += 1.0
    again = woo.delivery("order.updated", we.woo_order(person, 11, [we.PRODUCTS[0]],
                                                        "processing", at, changed))
    assert update.headers["X-WC-Webhook-Delivery-ID"] != again.headers[
        "X-WC-Webhook-Delivery-ID"]
    a, b = json.loads(update.body), json.loads(again.body)
    assert (a["id"], a["date_modified_gmt"]) == (b["id"], b["date_modified_gmt"])
    now[0] += 3.0
    woo.deliver(update)
    woo.redeliver(update)  # a resend later: new delivery id, same payload
    got = receiver.posts()
    assert got[0].body == got[1].body
    assert got[0].headers["X-Wc-Webhook-Delivery-Id"] != got[1].headers[
        "X-Wc-Webhook-Delivery-Id"]
    assert got[1].headers["X-Wc-Webhook-Signature"] == _expected_hmac(got[1].body, WOO_SECRET)


def test_woocommerce_disables_the_webhook_after_five_failures_in_a_row(receiver):
    receiver.answer = lambda c: (500, 0.0)
    woo = we.WooCommerceEmitter(receiver.url, WOO_SECRET)
    person = _people()[0]
    results = [woo.send("customer.updated", we.woo_customer(person, datetime.now(UTC)))
               for _ in range(7)]
    assert [r.status for r in results] == [500] * 5 + [None, None]
    assert woo.status == "disabled" and len(receiver.posts()) == 5


def test_woocommerce_scenarios_carry_status_changes_and_same_second_updates():
    pairs = we.woo_scenario("mixed", _people(8))
    topics = {t for t, _ in pairs}
    assert topics == set(we.WOO_TOPICS)
    statuses = {p["status"] for t, p in pairs if t == "order.updated"}
    assert {"processing", "completed", "cancelled", "refunded"} <= statuses
    keys = [(t.split(".")[0], p["id"], p["date_modified_gmt"]) for t, p in pairs]
    assert len(keys) > len(set(keys))  # the same resource changed within one second
    assert all(p["billing"]["email"] for t, p in pairs)


@pytest.mark.parametrize("provider", ["shopify", "woocommerce"])
def test_cli_delivers_a_scenario(receiver, provider):
    out = subprocess.run(
        [sys.executable, "-m", "simulators.webhook_emitter", provider, "--url",
         receiver.url + f"/hooks/{provider}/1", "--secret", SECRET, "--scenario", "mixed",
         "--count", "4", "--duplicates", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    posts = receiver.posts()
    bodies = [r for r in posts if r.body != b"webhook_id=1"]
    expected = len((we.shopify_scenario if provider == "shopify" else we.woo_scenario)(
        "mixed", we.sample_people(4, 1)))
    assert len(bodies) == 2 * expected  # every delivery, then each once more
    for r in bodies:
        header = "X-Shopify-Hmac-Sha256" if provider == "shopify" else "X-Wc-Webhook-Signature"
        assert r.headers[header] == _expected_hmac(r.body, SECRET)
    assert f"{expected} deliveries, {expected} acknowledged, 0 failed" in out.stdout
    if provider == "shopify":
        ids = [r.headers["X-Shopify-Webhook-Id"] for r in bodies]
        assert len(set(ids)) == expected  # the repeats are the same deliveries
    else:
        assert posts[0].body == b"webhook_id=1" and "ping: 200" in out.stdout
