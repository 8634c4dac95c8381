"""Webhook emitters that sign and deliver like Shopify and WooCommerce do, for tests, the demo
and benchmarks of Tributary's receivers.

Shopify: compact UTF-8 JSON of API 2025-01 payloads, `X-Shopify-Hmac-Sha256` (base64
HMAC-SHA256 of the raw body), topic/shop/version/webhook id/event id/triggered-at headers; a
failed delivery (non-2xx, or no answer within 5 s) is retried 8 times over 4 hours with the
same ids and body, the schedule compressed by `time_factor`. WooCommerce: `wp_json_encode`
bodies, `X-WC-Webhook-*` headers, the `webhook_id=<n>` ping on creation, delivery ids that
collide within a second (as WooCommerce's `wp_hash(id . time())` does), no automatic retry
and the webhook disabled after 5 failures in a row.

CLI: python -m simulators.webhook_emitter shopify|woocommerce --url URL --secret SECRET
     --scenario signup|order|cart|mixed --count N
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from .dataset import Person, generate

SHOPIFY_API_VERSION = "2025-01"
SHOPIFY_SHOP = "tributary-demo.myshopify.com"
SHOPIFY_TOPICS = (
    "customers/create", "customers/update", "customers_email_marketing_consent/update",
    "orders/create", "orders/paid", "orders/cancelled", "refunds/create",
    "checkouts/create", "checkouts/update", "app/uninstalled",
    "customers/data_request", "customers/redact", "shop/redact",
)
# Shopify retries a failed delivery 8 times over the next 4 hours (seconds after each try).
SHOPIFY_BACKOFF = (60, 120, 300, 600, 1200, 2400, 3600, 6120)
SHOPIFY_TIMEOUT = 5.0
SHOP_ID = 548380009
WOO_TOPICS = ("customer.created", "customer.updated", "order.created", "order.updated")
WOO_MAX_FAILURES = 5  # WooCommerce disables a webhook after this many failures in a row
WOO_UA = "WooCommerce/9.5.1 Hookshot (WordPress/6.7.1)"
PRODUCTS = (
    {"product_id": 632910392, "variant_id": 808950810, "title": "Blue mug", "sku": "MUG-BLUE",
     "price": "12.50", "vendor": "Tributary Goods"},
    {"product_id": 632910393, "variant_id": 808950811, "title": "Café tote bag",
     "sku": "TOTE-CAFE", "price": "24.00", "vendor": "Tributary Goods"},
    {"product_id": 632910394, "variant_id": 808950812, "title": "Tea sampler",
     "sku": "TEA-SAMPLER", "price": "31.90", "vendor": "Leaf & Co"},
)
CONSENT_STATES = {"subscribed": "subscribed", "opted_out": "unsubscribed",
                  "unknown": "not_subscribed"}


@dataclass
class Delivery:
    """One webhook as it goes on the wire; retries send exactly these bytes and headers."""

    topic: str
    headers: dict[str, str]
    body: bytes
    path: str = ""


@dataclass
class Attempt:
    """One try: the HTTP status, or None when the connection failed or timed out."""

    status: int | None
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def hmac_base64(body: bytes, secret: str) -> str:
    """Base64 HMAC-SHA256 of the raw body: Shopify's and WooCommerce's signature scheme."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Attempt:
    """POST exactly these headers and bytes; no redirects followed, no answer in time fails."""
    parts = urlsplit(url)
    conn_class = (http.client.HTTPSConnection if parts.scheme == "https"
                  else http.client.HTTPConnection)
    started = time.monotonic()
    conn = conn_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers={**headers,
                                                      "Content-Length": str(len(body))})
        response = conn.getresponse()
        response.read()
        return Attempt(response.status, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(None, time.monotonic() - started, type(exc).__name__)
    finally:
        conn.close()


def _iso(moment: datetime) -> str:
    """Shopify's timestamps: ISO 8601 with the shop's offset (UTC here)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _gid(kind: str, ident: int) -> str:
    return f"gid://shopify/{kind}/{ident}"


# --- Shopify payloads (API 2025-01 shapes, the fields a receiver relies on) -------------

def shopify_customer(person: Person, *, with_consent: bool = True,
                     updated_at: datetime | None = None) -> dict:
    """A customer as customers/create sends it; customers/update carries no consent in
    2025-01 (it comes from customers_email_marketing_consent/update)."""
    customer = {
        "id": 7000000000 + person.id, "email": person.email,
        "created_at": _iso(person.created_at), "updated_at": _iso(updated_at or person.updated_at),
        "first_name": person.first_name, "last_name": person.last_name, "state": "enabled",
        "note": person.note or None, "verified_email": True, "multipass_identifier": None,
        "tax_exempt": False, "tags": ", ".join(person.tags), "currency": "EUR",
        "phone": person.phone, "addresses": [], "tax_exemptions": [],
        "admin_graphql_api_id": _gid("Customer", 7000000000 + person.id),
        "default_address": None,
    }
    if with_consent:
        customer["email_marketing_consent"] = _consent(person)
        customer["sms_marketing_consent"] = None
    return customer


def _consent(person: Person) -> dict:
    state = CONSENT_STATES.get(person.consent, "not_subscribed")
    return {"state": state, "opt_in_level": "single_opt_in" if state == "subscribed" else None,
            "consent_updated_at": _iso(person.consent_at) if person.consent_at else None}


def shopify_consent_update(person: Person, state: str | None = None) -> dict:
    """customers_email_marketing_consent/update: the customer id and address, new state."""
    consent = _consent(person)
    if state is not None:
        consent["state"] = state
        consent["consent_updated_at"] = _iso(datetime.now(UTC))
    return {"customer_id": 7000000000 + person.id, "email_address": person.email,
            "email_marketing_consent": {**consent, "consent_collected_from": "SHOPIFY"}}


def _lines(items: list[dict], base_id: int) -> list[dict]:
    return [{"id": base_id + i, "product_id": p["product_id"], "variant_id": p["variant_id"],
             "title": p["title"], "name": p["title"], "sku": p["sku"], "vendor": p["vendor"],
             "quantity": p.get("quantity", 1), "price": p["price"], "variant_title": None,
             "requires_shipping": True, "taxable": True, "gift_card": False,
             "admin_graphql_api_id": _gid("LineItem", base_id + i)}
            for i, p in enumerate(items)]


def _total(items: list[dict]) -> str:
    return f"{sum(float(p['price']) * p.get('quantity', 1) for p in items):.2f}"


def shopify_order(person: Person, order_id: int, items: list[dict], *,
                  financial_status: str = "pending", at: datetime | None = None,
                  cancelled: bool = False, cart_token: str | None = None) -> dict:
    """An order as orders/create|paid|cancelled send it."""
    at = at or datetime.now(UTC)
    total = _total(items)
    return {
        "id": order_id, "admin_graphql_api_id": _gid("Order", order_id),
        "name": f"#{order_id % 100000}", "order_number": order_id % 100000,
        "email": person.email, "contact_email": person.email,
        "created_at": _iso(at), "updated_at": _iso(at), "processed_at": _iso(at),
        "cancelled_at": _iso(at) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "currency": "EUR", "presentment_currency": "EUR", "total_price": total,
        "subtotal_price": total, "total_tax": "0.00", "total_discounts": "0.00",
        "financial_status": "voided" if cancelled else financial_status,
        "fulfillment_status": None, "buyer_accepts_marketing": person.consent == "subscribed",
        "cart_token": cart_token, "checkout_token": cart_token, "test": False,
        "line_items": _lines(items, order_id * 10),
        "customer": shopify_customer(person, with_consent=False),
    }


def shopify_refund(order: dict, at: datetime | None = None) -> dict:
    """refunds/create: the whole order refunded (no email in the payload, only order_id)."""
    at = at or datetime.now(UTC)
    refund_id = order["id"] + 500000
    return {
        "id": refund_id, "order_id": order["id"], "created_at": _iso(at),
        "processed_at": _iso(at), "note": "Returned", "restock": True, "user_id": None,
        "admin_graphql_api_id": _gid("Refund", refund_id),
        "refund_line_items": [{"id": refund_id + i, "line_item_id": line["id"],
                               "quantity": line["quantity"], "restock_type": "return",
                               "subtotal": line["price"], "total_tax": "0.00",
                               "line_item": line} for i, line in enumerate(order["line_items"])],
        "transactions": [{"id": refund_id + 90, "order_id": order["id"], "kind": "refund",
                          "status": "success", "amount": order["total_price"],
                          "currency": order["currency"], "gateway": "bogus"}],
    }


def shopify_checkout(person: Person, checkout_id: int, items: list[dict], *,
                     at: datetime | None = None, token: str | None = None) -> dict:
    """checkouts/create|update: a cart with an email, and the URL that restores it."""
    at = at or datetime.now(UTC)
    token = token or uuid.uuid4().hex
    total = _total(items)
    return {
        "id": checkout_id, "token": token, "cart_token": token, "email": person.email,
        "created_at": _iso(at), "updated_at": _iso(at), "completed_at": None,
        "currency": "EUR", "presentment_currency": "EUR", "total_price": total,
        "subtotal_price": total, "total_tax": "0.00",
        "buyer_accepts_marketing": person.consent == "subscribed",
        "abandoned_checkout_url": f"https://{SHOPIFY_SHOP}/checkouts/{token}/recover",
        "line_items": [{"product_id": p["product_id"], "variant_id": p["variant_id"],
                        "title": p["title"], "sku": p["sku"], "vendor": p["vendor"],
                        "quantity": p.get("quantity", 1), "price": p["price"],
                        "key": f"{p['variant_id']}:{token[:8]}"} for p in items],
        "customer": shopify_customer(person, with_consent=False),
    }


def shopify_privacy(topic: str, person: Person | None = None, orders: Iterable[int] = ()) -> dict:
    """customers/data_request, customers/redact, shop/redact and app/uninstalled."""
    if topic == "app/uninstalled":
        return {"id": SHOP_ID, "name": "Tributary Demo", "email": "owner@example.com",
                "domain": SHOPIFY_SHOP, "myshopify_domain": SHOPIFY_SHOP}
    body = {"shop_id": SHOP_ID, "shop_domain": SHOPIFY_SHOP}
    if topic == "shop/redact" or person is None:
        return body
    body["customer"] = {"id": 7000000000 + person.id, "email": person.email,
                        "phone": person.phone}
    if topic == "customers/redact":
        body["orders_to_redact"] = list(orders)
    else:
        body["orders_requested"] = list(orders)
        body["data_request"] = {"id": 9000 + person.id}
    return body


@dataclass
class ShopifyEmitter:
    """Signs and delivers Shopify webhooks to one address, as Shopify does."""

    url: str
    secret: str
    shop: str = SHOPIFY_SHOP
    api_version: str = SHOPIFY_API_VERSION
    time_factor: float = 1.0  # 0.001 turns Shopify's 4 hours of retries into 14 s
    timeout: float = SHOPIFY_TIMEOUT
    backoff: tuple[int, ...] = SHOPIFY_BACKOFF
    sleep: Callable[[float], None] = time.sleep
    log: list[tuple[Delivery, Attempt]] = field(default_factory=list)

    def delivery(self, topic: str, payload: dict, *, event_id: str | None = None,
                 triggered_at: datetime | None = None) -> Delivery:
        """The wire form of one webhook: raw compact UTF-8 JSON and its signed headers."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        when = (triggered_at or datetime.now(UTC)).astimezone(UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "Accept": "*/*",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": hmac_base64(body, self.secret),
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": when.isoformat(timespec="microseconds")
                                      .replace("+00:00", "Z"),
        }
        return Delivery(topic, headers, body)

    def attempt(self, delivery: Delivery) -> Attempt:
        """One try of this delivery (the same bytes and ids every time)."""
        result = post(self.url, delivery.headers, delivery.body, self.timeout)
        self.log.append((delivery, result))
        return result

    def deliver(self, delivery: Delivery, retry: bool = True) -> list[Attempt]:
        """Try until a 2xx answer, retrying on Shopify's schedule (scaled by time_factor)."""
        attempts = [self.attempt(delivery)]
        for wait in self.backoff if retry else ():
            if attempts[-1].ok:
                break
            self.sleep(wait * self.time_factor)
            attempts.append(self.attempt(delivery))
        return attempts

    def send(self, topic: str, payload: dict, **kw) -> list[Attempt]:
        return self.deliver(self.delivery(topic, payload, **kw))

    def deliver_all(self, deliveries: list[Delivery], order: str = "given",
                    seed: int = 1) -> list[list[Attempt]]:
        """Deliver several webhooks in the given, "reversed" or "shuffled" order (Shopify
        does not promise order: receivers must rely on X-Shopify-Triggered-At)."""
        sequence = list(deliveries)
        if order == "reversed":
            sequence.reverse()
        elif order == "shuffled":
            random.Random(seed).shuffle(sequence)
        return [self.deliver(d) for d in sequence]


def shopify_scenario(name: str, people: list[Person], seed: int = 1) -> list[tuple[str, dict]]:
    """(topic, payload) pairs for `people`: signup, order, cart or mixed (every topic)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out: list[tuple[str, dict]] = []
    for n, person in enumerate(people):
        items = [dict(p, quantity=rng.randint(1, 3)) for p in rng.sample(PRODUCTS, 2)]
        order_id, at = 450789469 + person.id, now + timedelta(seconds=n)
        kind = name if name != "mixed" else ("signup", "order", "cart", "all")[n % 4]
        if kind in ("signup", "all"):
            out.append(("customers/create", shopify_customer(person)))
            out.append(("customers_email_marketing_consent/update",
                        shopify_consent_update(person)))
        if kind in ("cart", "order", "all"):
            token = uuid.UUID(int=rng.getrandbits(128)).hex
            checkout = shopify_checkout(person, 901414060 + person.id, items[:1], at=at,
                                        token=token)
            out.append(("checkouts/create", checkout))
            out.append(("checkouts/update", shopify_checkout(
                person, checkout["id"], items, at=at + timedelta(seconds=30), token=token)))
        if kind in ("order", "all"):
            order = shopify_order(person, order_id, items, at=at, cart_token=token)
            out.append(("orders/create", order))
            out.append(("orders/paid", {**order, "financial_status": "paid"}))
        if kind == "all":
            out.append(("customers/update", shopify_customer(person, with_consent=False,
                                                             updated_at=at)))
            if n % 8 == 3:
                out.append(("refunds/create", shopify_refund(order, at)))
            else:
                out.append(("orders/cancelled", shopify_order(person, order_id, items, at=at,
                                                              cancelled=True)))
    return out


# --- WooCommerce --------------------------------------------------------------------

def wp_json(payload) -> bytes:
    """`wp_json_encode` as WooCommerce calls it: compact, ASCII with \\u escapes, "\\/"."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def _wc_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat()


def _wc_address(person: Person, email: bool) -> dict:
    address = {"first_name": person.first_name, "last_name": person.last_name, "company": "",
               "address_1": "1 Main Street", "address_2": "", "city": "Springfield",
               "state": "", "postcode": "12345", "country": person.country or "US",
               "phone": person.phone or ""}
    if email:
        address["email"] = person.email or ""
    return address


def woo_customer(person: Person, modified: datetime) -> dict:
    """A customer resource (WC REST v3 shape) as customer.created|updated send it."""
    return {
        "id": 100 + person.id, "date_created": _wc_time(person.created_at),
        "date_created_gmt": _wc_time(person.created_at), "date_modified": _wc_time(modified),
        "date_modified_gmt": _wc_time(modified), "email": person.email or "",
        "first_name": person.first_name, "last_name": person.last_name, "role": "customer",
        "username": (person.email or f"user{person.id}").split("@")[0],
        "billing": _wc_address(person, True), "shipping": _wc_address(person, False),
        "is_paying_customer": False, "avatar_url": "https://secure.gravatar.com/avatar/?s=96",
        "meta_data": [],
    }


def woo_order(person: Person, order_id: int, items: list[dict], status: str,
              created: datetime, modified: datetime) -> dict:
    """An order resource as order.created|updated send it (status drives the meaning)."""
    total = _total(items)
    paid = status in ("processing", "completed", "refunded")
    return {
        "id": order_id, "parent_id": 0, "status": status, "currency": "EUR",
        "version": "9.5.1", "prices_include_tax": False,
        "date_created": _wc_time(created), "date_created_gmt": _wc_time(created),
        "date_modified": _wc_time(modified), "date_modified_gmt": _wc_time(modified),
        "discount_total": "0.00", "shipping_total": "0.00", "total": total, "total_tax": "0.00",
        "customer_id": 100 + person.id, "order_key": f"wc_order_{order_id:08d}",
        "billing": _wc_address(person, True), "shipping": _wc_address(person, False),
        "payment_method": "bacs", "payment_method_title": "Direct bank transfer",
        "customer_note": "", "date_paid": _wc_time(modified) if paid else None,
        "date_paid_gmt": _wc_time(modified) if paid else None,
        "date_completed": _wc_time(modified) if status == "completed" else None,
        "number": str(order_id), "created_via": "checkout", "meta_data": [],
        "line_items": [{"id": order_id * 10 + i, "name": p["title"],
                        "product_id": p["product_id"], "variation_id": 0,
                        "quantity": p.get("quantity", 1), "sku": p["sku"],
                        "price": float(p["price"]),
                        "subtotal": f"{float(p['price']) * p.get('quantity', 1):.2f}",
                        "total": f"{float(p['price']) * p.get('quantity', 1):.2f}"}
                       for i, p in enumerate(items)],
    }


@dataclass
class WooCommerceEmitter:
    """Delivers WooCommerce webhooks for one webhook (id, secret, delivery URL)."""

    url: str
    secret: str
    webhook_id: int = 1
    site: str = "https://woo.example/"
    timeout: float = SHOPIFY_TIMEOUT  # WooCommerce's own default is 5 s too
    clock: Callable[[], float] = time.time
    salt: bytes = b"demo-wp-auth-salt"
    failures: int = 0
    status: str = "active"
    log: list[tuple[Delivery, Attempt]] = field(default_factory=list)

    def delivery_id(self) -> str:
        """`wp_hash($webhook_id . strtotime('now'))`: the same for every delivery of this
        webhook within one second, which is why receivers must never de-duplicate on it."""
        data = f"{self.webhook_id}{int(self.clock())}".encode()
        return hmac.new(self.salt, data, hashlib.md5).hexdigest()

    def ping(self) -> Attempt:
        """The delivery WooCommerce makes when the webhook is created: a form body, no
        signature; receivers answer it 200 and store nothing."""
        body = f"webhook_id={self.webhook_id}".encode()
        headers = {"User-Agent": WOO_UA, "Content-Type": "application/x-www-form-urlencoded"}
        result = post(self.url, headers, body, self.timeout)
        self.log.append((Delivery("ping", headers, body), result))
        return result

    def delivery(self, topic: str, payload: dict) -> Delivery:
        resource, event = topic.split(".", 1)
        body = wp_json(payload)
        headers = {
            "User-Agent": WOO_UA, "Content-Type": "application/json",
            "X-WC-Webhook-Source": self.site, "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": hmac_base64(body, self.secret),
            "X-WC-Webhook-ID": str(self.webhook_id),
            "X-WC-Webhook-Delivery-ID": self.delivery_id(),
        }
        return Delivery(topic, headers, body)

    def deliver(self, delivery: Delivery) -> Attempt:
        """One delivery (WooCommerce does not retry by itself); 5 failures in a row disable
        the webhook, after which nothing is sent."""
        if self.status != "active":
            return Attempt(None, 0.0, "webhook disabled")
        result = post(self.url, delivery.headers, delivery.body, self.timeout)
        self.log.append((delivery, result))
        self.failures = 0 if result.ok else self.failures + 1
        if self.failures >= WOO_MAX_FAILURES:
            self.status = "disabled"
        return result

    def send(self, topic: str, payload: dict) -> Attempt:
        return self.deliver(self.delivery(topic, payload))

    def redeliver(self, delivery: Delivery) -> Attempt:
        """The same payload delivered again later (a resend): a new delivery id, the same
        resource id and date_modified_gmt."""
        return self.send(delivery.topic, json.loads(delivery.body))


def woo_scenario(name: str, people: list[Person], seed: int = 1) -> list[tuple[str, dict]]:
    """(topic, payload) pairs: signup, order (created then paid), cart (an unpaid order that
    is cancelled), mixed (all of them, plus updates, refunds and the same order updated
    twice within one second)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    out: list[tuple[str, dict]] = []
    for n, person in enumerate(people):
        items = [dict(p, quantity=rng.randint(1, 3)) for p in rng.sample(PRODUCTS, 2)]
        at, order_id = now + timedelta(seconds=n * 10), 2000 + person.id
        kind = name if name != "mixed" else ("signup", "order", "cart", "all")[n % 4]
        if kind in ("signup", "all"):
            out.append(("customer.created", woo_customer(person, at)))
        if kind in ("order", "all"):
            out.append(("order.created", woo_order(person, order_id, items, "pending", at, at)))
            paid = at + timedelta(seconds=2)
            out.append(("order.updated", woo_order(person, order_id, items, "processing",
                                                   at, paid)))
        if kind == "cart":
            out.append(("order.created", woo_order(person, order_id, items, "pending", at, at)))
            out.append(("order.updated", woo_order(person, order_id, items, "cancelled", at,
                                                   at + timedelta(minutes=60))))
        if kind == "all":
            done = at + timedelta(seconds=5)
            out.append(("customer.updated", woo_customer(person, done)))
            out.append(("order.updated", woo_order(person, order_id, items, "completed", at,
                                                   done)))
            # changed again within the same second: same date_modified_gmt
            out.append(("order.updated", woo_order(person, order_id, items, "completed", at,
                                                   done)))
            if n % 8 == 3:
                out.append(("order.updated", woo_order(person, order_id, items, "refunded",
                                                       at, done + timedelta(days=1))))
    return out


# --- CLI ------------------------------------------------------------------------------

def sample_people(count: int, seed: int) -> list[Person]:
    """`count` generated people that have an email (the dataset's nasty cases included)."""
    people = [p for p in generate(count * 2 + 10, seed=seed) if p.email]
    return people[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.webhook_emitter",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("provider", choices=("shopify", "woocommerce"))
    parser.add_argument("--url", required=True, help="the receiver's delivery URL")
    parser.add_argument("--secret", required=True, help="the HMAC secret")
    parser.add_argument("--scenario", choices=("signup", "order", "cart", "mixed"),
                        default="mixed")
    parser.add_argument("--count", type=int, default=10, help="people in the scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--order", choices=("given", "reversed", "shuffled"), default="given",
                        help="delivery order (Shopify)")
    parser.add_argument("--duplicates", type=float, default=0.0,
                        help="share of deliveries sent a second time (0-1)")
    parser.add_argument("--time-factor", type=float, default=0.001,
                        help="scale of Shopify's retry schedule (1 = real 4 hours)")
    parser.add_argument("--timeout", type=float, default=SHOPIFY_TIMEOUT)
    parser.add_argument("--shop", default=SHOPIFY_SHOP)
    parser.add_argument("--webhook-id", type=int, default=1, help="WooCommerce webhook id")
    args = parser.parse_args(argv)

    people = sample_people(max(args.count, 0), args.seed)
    rng = random.Random(args.seed)
    ok = failed = repeated = 0
    if args.provider == "shopify":
        shop = ShopifyEmitter(args.url, args.secret, shop=args.shop,
                              time_factor=args.time_factor, timeout=args.timeout)
        start = datetime.now(UTC)
        deliveries = [shop.delivery(topic, payload, triggered_at=start + timedelta(
            milliseconds=i)) for i, (topic, payload) in
            enumerate(shopify_scenario(args.scenario, people, args.seed))]
        for attempts in shop.deliver_all(deliveries, args.order, args.seed):
            ok, failed = ok + attempts[-1].ok, failed + (not attempts[-1].ok)
        for d in deliveries:
            if rng.random() < args.duplicates:
                repeated += 1
                shop.deliver(d)
        tries = len(shop.log)
    else:
        woo = WooCommerceEmitter(args.url, args.secret, webhook_id=args.webhook_id)
        ping = woo.ping()
        print(f"ping: {ping.status or ping.error}")
        sent = []
        for topic, payload in woo_scenario(args.scenario, people, args.seed):
            delivery = woo.delivery(topic, payload)
            sent.append(delivery)
            result = woo.deliver(delivery)
            ok, failed = ok + result.ok, failed + (not result.ok)
        for d in sent:
            if rng.random() < args.duplicates:
                repeated += 1
                woo.redeliver(d)
        tries = len(woo.log) - 1
        if woo.status != "active":
            print(f"WooCommerce disabled the webhook after {WOO_MAX_FAILURES} failures.")
    print(f"{args.provider} {args.scenario}: {ok + failed} deliveries, {ok} acknowledged, "
          f"{failed} failed, {tries} attempts, {repeated} sent twice")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
