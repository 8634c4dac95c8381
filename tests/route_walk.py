"""Shared pieces of the route-walking tests (no tests here): one sample row per kind of id,
URLs for every rule, and a guard that keeps every request on loopback."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, url_for

from tests.factories import make_contact, make_cycle, make_field, make_list, make_suppression
from tests.factories import make_user as _make_user
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.models import (
    Automation,
    Cart,
    CartLine,
    ImportRun,
    Order,
    OrderLine,
    OrderRefund,
    Product,
    ProductVariant,
    RecurringImport,
    Segment,
    Shop,
)
from webapp.models.base import utcnow
from webapp.models.plugins import PluginSource
from webapp.services import team

ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass
class Samples:
    """Ids of real rows for every `<…_id>` a route takes, plus string arguments."""

    values: dict

    def for_rule(self, rule) -> dict:
        return {name: self.values[name] for name in rule.arguments}


def make_samples(tag: str, shop_config: dict) -> Samples:
    """A fresh row of each kind (names suffixed with `tag`), so a destructive request in one
    walk does not take the row away from the next."""
    lst = make_list(f"List {tag}")
    contact = make_contact(lst, email=f"ann-{tag}@example.com")
    cycle = make_cycle(lst, name=f"Cycle {tag}")
    field = make_field(name=f"field_{tag}")
    entry = make_suppression(value=f"spam-{tag}@example.com")
    integration = make_integration("shopify", shop_config["settings"]["shop"],
                                   settings=shop_config["settings"],
                                   credentials=shop_config["credentials"])
    imp = RecurringImport(integration_id=integration.id, list_id=lst.id, group="customers",
                          source="all", state="active")
    db.session.add(imp)
    db.session.commit()
    run = ImportRun(import_id=imp.id, trigger_kind="manual", status="completed")
    db.session.add(run)
    segment = Segment(name=f"Segment {tag}", definition={"op": "and", "items": [
        {"type": "origin", "origin": "plugin"}]})
    db.session.add(segment)
    db.session.flush()
    automation = Automation(name=f"Automation {tag}", segment_id=segment.id,
                            action={"kind": "add_to_list", "list_id": lst.id})
    db.session.add(automation)
    target = _make_user(email=f"target-{tag}@example.com", password="x" * 12, is_admin=True)
    credential = team.reset_password(target, {"how": "link"})
    db.session.commit()
    from webapp.plugins import keys as plugin_keys

    plugin = PluginSource(kind="website", name=f"Site {tag}", list_id=lst.id,
                          allowed_origins=["https://shop.example"])
    db.session.add(plugin)
    db.session.flush()
    for kind in ("server", "public", "signing"):
        plugin_keys.create(plugin, kind)
    db.session.commit()
    event = _plugin_samples(lst, tag, plugin)
    shop = _shop_samples(tag, plugin, contact)
    return Samples({
        "list_id": lst.id, "contact_id": contact.id, "cycle_id": cycle.id,
        "field_id": field.id, "entry_id": entry.id, "integration_id": integration.id,
        "import_id": imp.id, "run_id": run.id, "user_id": target.id,
        "provider": "shopify", "token": credential.token, "filename": "favicon.svg",
        "source_id": plugin.id, "event_id": event.id,
        "segment_id": segment.id, "automation_id": automation.id, **shop,
    })


def _plugin_samples(lst, tag: str, source):
    """One received event of the sample source (a data request with its export built)."""
    from webapp.models import PluginEvent, PrivacyRequest

    event = PluginEvent(source_id=source.id, channel="api", topic="track", kind="custom",
                        name="Sample", dedup_key=f"sample-{tag}", status="failed",
                        body='{"type": "track", "event": "Sample"}', error="sample")
    db.session.add(event)
    db.session.flush()
    db.session.add(PrivacyRequest(kind="export", source_id=source.id, event_id=event.id,
                                  export_json="{}"))
    db.session.commit()
    return event


def _shop_samples(tag: str, source, contact) -> dict:
    """A shop with a product (a variant, a hostile title), an order of it with a refund,
    and the cart that order recovered: ids for the order, product and cart pages."""
    now = utcnow()
    shop = Shop(source_id=source.id, name=f"Shop {tag}", currency="EUR")
    db.session.add(shop)
    db.session.flush()
    product = Product(shop_id=shop.id, external_id=f"p-{tag}", title="<script>x</script>",
                      price=10, currency="EUR", url="https://shop.example/p",
                      image_url="https://cdn.shop.example/p.jpg")
    db.session.add(product)
    db.session.flush()
    variant = ProductVariant(product_id=product.id, external_id="v1", title="Blue", price=10)
    order = Order(shop_id=shop.id, external_id=f"o-{tag}", contact_id=contact.id,
                  email_norm=contact.email_norm, status="partially_refunded", currency="EUR",
                  total=20, refunded=5, revenue=15, placed_at=now - timedelta(hours=2),
                  paid_at=now - timedelta(hours=2))
    db.session.add_all([variant, order])
    db.session.flush()
    cart = Cart(shop_id=shop.id, external_id=f"c-{tag}", contact_id=contact.id,
                email_norm=contact.email_norm, status="recovered", currency="EUR", total=20,
                cart_url="https://shop.example/cart", order_id=order.id,
                last_activity_at=now - timedelta(hours=4),
                abandoned_at=now - timedelta(hours=3), recovered_at=order.placed_at)
    db.session.add(cart)
    db.session.flush()
    db.session.add_all([
        OrderLine(order_id=order.id, product_id=product.id, variant_id=variant.id,
                  title=product.title, quantity=2, price=10),
        OrderRefund(order_id=order.id, external_id="r1", amount=5, refunded_at=now),
        CartLine(cart_id=cart.id, product_id=product.id, variant_id=variant.id, quantity=2,
                 price=10, title=product.title),
    ])
    db.session.commit()
    return {"order_id": order.id, "product_id": product.id, "cart_id": cart.id}


def rules(app: Flask):
    """Every rule of the app with the methods it answers (HEAD and OPTIONS left out)."""
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def build(app: Flask, rule, values: dict) -> str:
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def raw_url(rule, value_for) -> str:
    """The rule's path with each argument replaced verbatim (hostile values included)."""
    return ARG.sub(lambda m: value_for(m.group(1)), rule.rule)


def _loopback_only(real):
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None:
            try:
                if not ipaddress.ip_address(host).is_loopback:
                    raise OSError(f"test guard: no traffic to {host}")
            except ValueError:
                raise OSError(f"test guard: no traffic to {host}") from None
        return real(self, address)

    return connect


def guard_network(monkeypatch) -> None:
    """Refuse any connection off loopback (hostile form values must never reach the net),
    and retry connect-time calls without waiting in between."""
    from webapp.providers.http import HttpClient
    from webapp.services import integrations

    def interactive_http(provider: str) -> HttpClient:
        client = real_interactive_http(provider)
        client.sleep = lambda _seconds: None
        return client

    real_interactive_http = integrations.interactive_http
    monkeypatch.setattr(integrations, "interactive_http", interactive_http)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost", "127.0.0.1", "::1"):
            try:
                if not ipaddress.ip_address(name).is_loopback:
                    raise socket.gaierror(f"test guard: no lookup of {name}")
            except ValueError:
                raise socket.gaierror(f"test guard: no lookup of {name}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
