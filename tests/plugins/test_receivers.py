"""Shopify and WooCommerce webhook receivers: signatures over the raw body, de-duplication,
the ping, bad-signature counting; and the Shopify webhook subscription through the
simulator's Admin API on enable, disable, disconnect and app/uninstalled."""

from __future__ import annotations

import uuid

import pytest
from werkzeug.datastructures import MultiDict

from simulators.shopify import CLIENT_SECRET
from tests.factories import make_list
from tests.plugins.conftest import (
    BASE_URL,
    SHOPIFY_SECRET,
    b64_hmac,
    compact,
    make_source,
    stored,
)
from tests.route_walk import guard_network
from tests.security.servers import dead_port
from tests.test_integrations_support import make_integration, sim_fixture
from webapp.extensions import db
from webapp.models.plugins import PluginSource
from webapp.plugins import refusals, sources
from webapp.providers.shopify.webhooks import TOPICS
from webapp.services.errors import FormError

shopify = sim_fixture("shopify")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture
def shop_source(app, shopify):
    shopify.app.state.webhooks.clear()
    cfg = shopify.config()
    integration = make_integration("shopify", cfg["settings"]["shop"], settings=cfg["settings"],
                                   credentials=cfg["credentials"])
    source, _ = make_source("shopify", integration_id=str(integration.id))
    return source, integration


def shopify_headers(body: bytes, secret: str = CLIENT_SECRET, topic="customers/create",
                    webhook_id=None, event_id=None) -> dict:
    headers = {"X-Shopify-Hmac-Sha256": b64_hmac(secret, body), "X-Shopify-Topic": topic,
               "X-Shopify-Shop-Domain": "tributary-demo.myshopify.com",
               "X-Shopify-API-Version": "2025-01",
               "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
               "X-Shopify-Triggered-At": "2026-11-30T10:00:00.123Z",
               "Content-Type": "application/json"}
    if event_id:
        headers["X-Shopify-Event-Id"] = event_id
    return headers


CUSTOMER = {"id": 706405506930370084, "email": "Ann@Example.com", "first_name": "Ann",
            "updated_at": "2026-11-30T05:00:00-05:00", "note": "<script>alert(1)</script>"}


def test_enabling_a_shopify_source_subscribes_every_topic_to_its_url(app, shop_source, shopify):
    source, _ = shop_source
    subs = shopify.app.state.webhook_subscriptions()
    url = f"{BASE_URL}/hooks/shopify/{source.id}"
    assert sorted(s["topic"] for s in subs) == sorted(TOPICS)
    assert {s["address"] for s in subs} == {url} and url.endswith(f"/hooks/shopify/{source.id}")
    assert {s["api_version"] for s in subs} == {"2025-01"}
    assert source.status == "enabled"
    assert sorted(s["id"] for s in source.subscriptions) == sorted(s["id"] for s in subs)
    # Enabling again does not double them.
    with app.test_request_context(base_url=BASE_URL):
        sources.enable(source)
    assert len(shopify.app.state.webhook_subscriptions()) == len(TOPICS)


def test_disable_and_disconnect_remove_the_subscriptions(app, shop_source, shopify):
    source, integration = shop_source
    sources.disable(source)
    assert shopify.app.state.webhook_subscriptions() == []
    assert source.status == "disabled" and source.subscriptions == []
    with app.test_request_context(base_url=BASE_URL):
        sources.enable(source)
    assert len(shopify.app.state.webhook_subscriptions()) == len(TOPICS)
    assert sources.integration_disconnecting(integration.id) == 1
    assert shopify.app.state.webhook_subscriptions() == []
    assert db.session.get(PluginSource, source.id).status == "disabled"


def test_shopify_delivery_verified_stored_and_deduplicated(client, shop_source):
    source, _ = shop_source
    body = compact(CUSTOMER)
    headers = shopify_headers(body, event_id="evt-1")
    for _ in range(3):  # Shopify's retries of one delivery
        resp = client.post(f"/hooks/shopify/{source.id}", data=body, headers=headers)
        assert resp.status_code == 200
    rows = stored(source.id)
    assert len(rows) == 1
    row = rows[0]
    assert (row.kind, row.channel, row.topic) == ("signed_up", "shopify", "customers/create")
    assert row.email_norm == "ann@example.com" and row.body == body.decode()
    assert row.user_id == str(CUSTOMER["id"])
    assert row.occurred_at.isoformat().startswith("2026-11-30T10:00:00")


def test_same_webhook_id_without_event_id_is_stored_once(client, shop_source):
    source, _ = shop_source
    body = compact(CUSTOMER)
    hook = str(uuid.uuid4())
    for _ in range(3):
        resp = client.post(f"/hooks/shopify/{source.id}", data=body,
                           headers=shopify_headers(body, webhook_id=hook))
        assert resp.status_code == 200
    assert len(stored(source.id)) == 1


def test_a_body_changed_by_one_byte_gets_401_is_counted_and_not_stored(client, shop_source):
    source, _ = shop_source
    body = compact(CUSTOMER)
    headers = shopify_headers(body)
    tampered = body.replace(b"Ann", b"Anm", 1)
    assert len(tampered) == len(body)
    resp = client.post(f"/hooks/shopify/{source.id}", data=tampered, headers=headers)
    assert resp.status_code == 401 and resp.is_json
    wrong = client.post(f"/hooks/shopify/{source.id}", data=body,
                        headers=shopify_headers(body, secret="someone-else"))
    missing = client.post(f"/hooks/shopify/{source.id}", data=body,
                          headers={"X-Shopify-Topic": "customers/create"})
    assert wrong.status_code == 401 and missing.status_code == 401
    refusals.fold()  # the counts kept in Redis onto the row
    db.session.expire_all()
    row = db.session.get(PluginSource, source.id)
    assert row.bad_signatures == 3 and row.last_bad_signature_at is not None
    assert stored(source.id) == []


def test_topics_map_to_kinds_and_uninstall_disables_the_source(client, shop_source, shopify):
    source, integration = shop_source
    order = compact({"id": 1, "email": "b@example.com", "customer": {"id": 5}})
    for topic, kind in (("orders/create", "order_completed"), ("orders/paid", "order_paid"),
                        ("refunds/create", "order_refunded"),
                        ("customers_email_marketing_consent/update", "consent_updated"),
                        ("customers/redact", "redact")):
        resp = client.post(f"/hooks/shopify/{source.id}", data=order,
                           headers=shopify_headers(order, topic=topic))
        assert resp.status_code == 200
        assert stored(source.id)[-1].kind == kind
    shop = compact({"id": 548380009, "domain": "tributary-demo.myshopify.com"})
    resp = client.post(f"/hooks/shopify/{source.id}", data=shop,
                       headers=shopify_headers(shop, topic="app/uninstalled"))
    assert resp.status_code == 200
    db.session.expire_all()
    assert db.session.get(PluginSource, source.id).status == "disabled"
    assert "uninstalled" in db.session.get(PluginSource, source.id).status_reason
    # A disabled source still takes the privacy topics, and refuses the rest.
    redact = compact({"shop_id": 1, "customer": {"id": 5, "email": "b@example.com"}})
    assert client.post(f"/hooks/shopify/{source.id}", data=redact, headers=shopify_headers(
        redact, topic="customers/redact")).status_code == 200
    assert client.post(f"/hooks/shopify/{source.id}", data=order, headers=shopify_headers(
        order, topic="orders/create")).status_code == 403


def test_token_connected_store_needs_the_custom_app_secret(app, client, monkeypatch):
    guard_network(monkeypatch)
    integration = make_integration("shopify", "custom.myshopify.com", settings={
        "shop": "custom.myshopify.com", "api_base": f"http://127.0.0.1:{dead_port()}/custom"},
        credentials={"access_token": "shpat_x"})
    lst = make_list("Custom")
    form = MultiDict({"name": "Custom", "list_id": str(lst.id),
                      "integration_id": str(integration.id)})
    with pytest.raises(FormError) as problem:
        sources.create("shopify", form)
    assert problem.value.field == "api_secret"
    db.session.rollback()
    form["api_secret"] = SHOPIFY_SECRET
    with app.test_request_context(base_url=BASE_URL):
        made = sources.create("shopify", form)  # the store is unreachable: stays disabled
    source = made.source
    assert source.status == "disabled" and "Shopify" in source.status_reason
    assert SHOPIFY_SECRET not in (source.secret_encrypted or "")
    source.status = "enabled"
    db.session.commit()
    body = compact(CUSTOMER)
    ok = client.post(f"/hooks/shopify/{source.id}", data=body,
                     headers=shopify_headers(body, secret=SHOPIFY_SECRET))
    assert ok.status_code == 200 and len(stored(source.id)) == 1


def test_unknown_source_is_404_json(client, app):
    resp = client.post("/hooks/shopify/999999", data=b"{}")
    assert resp.status_code == 404 and resp.is_json
    assert client.post("/hooks/woocommerce/999999", data=b"{}").status_code == 404


# ------------------------------------------------------------------------ WooCommerce


@pytest.fixture
def woo(app):
    return make_source("woocommerce")


def woo_headers(body: bytes, secret: str, topic="customer.created", delivery=None) -> dict:
    resource, _, action = topic.partition(".")
    return {"X-WC-Webhook-Signature": b64_hmac(secret, body), "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": action,
            "X-WC-Webhook-ID": "12", "X-WC-Webhook-Source": "https://woo.example/",
            "X-WC-Webhook-Delivery-ID": delivery or uuid.uuid4().hex,
            "Content-Type": "application/json"}


def test_woocommerce_ping_is_answered_and_not_stored(client, woo):
    source, _ = woo
    resp = client.post(f"/hooks/woocommerce/{source.id}", data={"webhook_id": "12"})
    assert resp.status_code == 200
    raw = client.post(f"/hooks/woocommerce/{source.id}", data=b"webhook_id=12",
                      content_type="text/plain")
    assert raw.status_code == 200
    assert stored(source.id) == []


def test_woocommerce_dedup_on_resource_id_and_modification_time(client, woo):
    source, keys = woo
    secret = keys["signing"]
    first = compact({"id": 77, "email": "Cy@Example.com", "date_modified_gmt":
                     "2026-11-30T10:00:00"})
    later = compact({"id": 77, "email": "cy@example.com", "date_modified_gmt":
                     "2026-11-30T10:05:00"})
    # The same delivery id for different changes (it collides within a second) and
    # different delivery ids for the same change: neither decides.
    for body, delivery in ((first, "same"), (later, "same"), (first, "other")):
        resp = client.post(f"/hooks/woocommerce/{source.id}", data=body,
                           headers=woo_headers(body, secret, delivery=delivery))
        assert resp.status_code == 200
    rows = stored(source.id)
    assert [r.dedup_key for r in rows] == ["customer:77:2026-11-30T10:00:00",
                                           "customer:77:2026-11-30T10:05:00"]
    assert rows[0].kind == "signed_up" and rows[0].email_norm == "cy@example.com"
    assert rows[0].channel == "woocommerce"


@pytest.mark.parametrize("status, kind", [("processing", "order_paid"),
                                          ("completed", "order_paid"),
                                          ("cancelled", "order_cancelled"),
                                          ("refunded", "order_refunded"),
                                          ("on-hold", "custom")])
def test_woocommerce_order_updates_by_status(client, woo, status, kind):
    source, keys = woo
    body = compact({"id": 9, "status": status, "customer_id": 3,
                    "billing": {"email": "d@example.com"},
                    "date_modified_gmt": "2026-11-30T11:00:00"})
    resp = client.post(f"/hooks/woocommerce/{source.id}", data=body,
                       headers=woo_headers(body, keys["signing"], topic="order.updated"))
    assert resp.status_code == 200
    row = stored(source.id)[0]
    assert row.kind == kind and row.email_norm == "d@example.com" and row.user_id == "3"


def test_woocommerce_bad_signature_401_counted(client, woo):
    source, keys = woo
    body = compact({"id": 1, "date_modified_gmt": "2026-11-30T10:00:00"})
    headers = woo_headers(body, keys["signing"])
    resp = client.post(f"/hooks/woocommerce/{source.id}", data=body + b" ", headers=headers)
    assert resp.status_code == 401
    refusals.fold()  # the counts kept in Redis onto the row
    db.session.expire_all()
    assert db.session.get(PluginSource, source.id).bad_signatures == 1
    assert stored(source.id) == []


def test_woocommerce_secret_rotation_accepts_both_for_a_day(client, woo):
    source, keys = woo
    new = sources.rotate_key(source, "signing").secret
    for n, secret in enumerate((keys["signing"], new)):
        body = compact({"id": n, "date_modified_gmt": "2026-11-30T10:00:00"})
        assert client.post(f"/hooks/woocommerce/{source.id}", data=body,
                           headers=woo_headers(body, secret)).status_code == 200
    assert len(stored(source.id)) == 2


@pytest.mark.parametrize("body", [b"{oops", b"\xff\xff", b"[1,2]", b'{"no_id": true}',
                                  b"[" * 3000 + b"]" * 3000])
def test_hostile_signed_woocommerce_bodies_get_400(client, woo, body):
    source, keys = woo
    resp = client.post(f"/hooks/woocommerce/{source.id}", data=body,
                       headers=woo_headers(body, keys["signing"]))
    assert resp.status_code == 400 and resp.is_json
    assert stored(source.id) == []


def test_webhook_bodies_over_the_cap_get_413_json(client, woo):
    source, keys = woo
    body = b'{"id": 1, "x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    resp = client.post(f"/hooks/woocommerce/{source.id}", data=body,
                       headers=woo_headers(body, keys["signing"]))
    assert resp.status_code == 413 and "1 MB" in resp.get_json()["error"]


def test_disable_tolerates_a_subscription_removed_in_the_store(app, shop_source, shopify):
    source, _ = shop_source
    first = shopify.app.state.webhook_subscriptions()[0]
    del shopify.app.state.webhooks[first["id"]]  # a merchant deleted it by hand
    sources.disable(source)
    assert shopify.app.state.webhook_subscriptions() == []
    assert source.status == "disabled" and "could not" not in source.status_reason


def test_simulator_refuses_unknown_topics_and_doubles(shopify):
    import requests

    cfg = shopify.config()
    url = f"{cfg['settings']['api_base']}/admin/api/2025-01/webhooks.json"
    headers = {"X-Shopify-Access-Token": cfg["credentials"]["access_token"]}
    shopify.app.state.webhooks.clear()
    bad = requests.post(url, json={"webhook": {"topic": "nope/never", "address":
                                               "https://x.example/h"}}, headers=headers)
    assert bad.status_code == 422 and "topic" in bad.json()["errors"]
    hook = {"webhook": {"topic": "orders/paid", "address": "https://x.example/h"}}
    assert requests.post(url, json=hook, headers=headers).status_code == 201
    again = requests.post(url, json=hook, headers=headers)
    assert again.status_code == 422 and "address" in again.json()["errors"]
    listed = requests.get(url, headers=headers).json()["webhooks"]
    assert [w["topic"] for w in listed] == ["orders/paid"]
    shopify.app.state.webhooks.clear()
