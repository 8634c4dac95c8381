"""Plugin sources and stored events as intake leaves them (kind, email_norm, dedup_key…),
with bodies shaped like the real payloads: Segment spec events, Shopify webhooks of API
2025-01, WooCommerce webhooks. The processing tests start from these rows."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

from webapp.extensions import db
from webapp.models import PluginEvent, PluginSource

_ids = itertools.count(706405506930370084)
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def make_source(contact_list, kind: str = "website", **kw) -> PluginSource:
    values = {"name": f"{kind} source", "add_events": ["signed_up", "form_submitted"],
              "allowed_origins": [], "subscriptions": [], **kw}
    source = PluginSource(kind=kind, list_id=contact_list.id, **values)
    db.session.add(source)
    db.session.commit()
    return source


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ Segment (api, browser)


def segment(type_: str, *, anonymous_id: str | None = None, user_id: str | None = None,
            at: datetime = T0, **fields) -> dict:
    body = {"type": type_, "messageId": str(uuid.uuid4()), "timestamp": _stamp(at),
            "context": {"page": {"url": "https://shop.example.com/", "path": "/",
                                 "referrer": "", "title": "Shop"},
                        "userAgent": "Mozilla/5.0"},
            **fields}
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    if user_id:
        body["userId"] = user_id
    return body


def identify(email: str, anonymous_id: str | None = None, **traits) -> dict:
    return segment("identify", anonymous_id=anonymous_id, traits={"email": email, **traits})


def track(event: str, anonymous_id: str | None = None, email: str | None = None,
          **properties) -> dict:
    body = segment("track", anonymous_id=anonymous_id, event=event, properties=properties)
    if email:
        body["context"]["traits"] = {"email": email}
    return body


def page(anonymous_id: str, path: str = "/", title: str = "Shop") -> dict:
    return segment("page", anonymous_id=anonymous_id, name=title,
                   properties={"path": path, "title": title,
                               "url": f"https://shop.example.com{path}"})


_SEGMENT_KINDS = {"Signed Up": "signed_up", "Form Submitted": "form_submitted",
                  "Product Viewed": "product_viewed", "Product Added": "product_added",
                  "Product Removed": "product_removed", "Cart Viewed": "cart_viewed",
                  "Checkout Started": "checkout_started", "Order Completed": "order_completed",
                  "Order Refunded": "order_refunded", "Order Cancelled": "order_cancelled"}


def _segment_email(body: dict) -> str | None:
    for holder in (body.get("traits") or {}, (body.get("context") or {}).get("traits") or {},
                   body.get("properties") or {}):
        if isinstance(holder.get("email"), str):
            return holder["email"].strip().lower()
    return None


def store_segment(source, body: dict, channel: str = "api", **kw) -> PluginEvent:
    """A tracking-API event as intake stores it (kind, email_norm, messageId…)."""
    type_ = body["type"]
    kind = {"identify": "identify", "page": "page"}.get(type_) or \
        _SEGMENT_KINDS.get(body.get("event"), "custom")
    return store(source, channel=channel, topic=type_, kind=kind,
                 name=body.get("event", "") if type_ == "track" else "",
                 dedup_key=body["messageId"], body=body, email_norm=_segment_email(body),
                 anonymous_id=body.get("anonymousId"), user_id=body.get("userId"),
                 occurred_at=datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")),
                 **kw)


# ------------------------------------------------------------------ Shopify (API 2025-01)


def shopify_customer(email: str, first: str = "Bob", last: str = "Biller",
                     consent: str | None = "subscribed", at: datetime = T0) -> dict:
    body = {"id": next(_ids), "email": email, "created_at": _stamp(at), "updated_at": _stamp(at),
            "first_name": first, "last_name": last, "orders_count": 0, "state": "enabled",
            "total_spent": "0.00", "last_order_id": None, "note": None, "verified_email": True,
            "multipass_identifier": None, "tax_exempt": False, "tags": "", "currency": "USD",
            "phone": None, "addresses": [], "tax_exemptions": [],
            "admin_graphql_api_id": "gid://shopify/Customer/1", "default_address": None}
    if consent is not None:
        body["email_marketing_consent"] = {"state": consent, "opt_in_level": "single_opt_in",
                                           "consent_updated_at": _stamp(at)}
    return body


def shopify_consent(customer_id: int, email: str, state: str, at: datetime = T0) -> dict:
    return {"customer_id": customer_id, "email_address": email,
            "email_marketing_consent": {"state": state, "opt_in_level": "confirmed_opt_in",
                                        "consent_updated_at": _stamp(at),
                                        "consent_collected_from": "OTHER"}}


def shopify_order(email: str, total: str = "199.00", at: datetime = T0) -> dict:
    order_id = next(_ids)
    return {"id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "email": email, "contact_email": email, "created_at": _stamp(at),
            "updated_at": _stamp(at), "currency": "USD", "total_price": total,
            "financial_status": "paid", "name": "#9999", "order_number": 1234,
            "line_items": [{"id": next(_ids), "product_id": 632910392, "title": "IPod Nano - 8GB",
                            "quantity": 1, "price": total, "sku": "IPOD2008PINK"}],
            "customer": {"id": next(_ids), "email": email, "first_name": "John",
                         "last_name": "Smith"}}


def shopify_redact(email: str) -> dict:
    return {"shop_id": 954889, "shop_domain": "demo.myshopify.com",
            "customer": {"id": 191167, "email": email, "phone": "555-625-1199"},
            "orders_to_redact": [299938, 280263, 220458]}


def shopify_data_request(email: str) -> dict:
    return {"shop_id": 954889, "shop_domain": "demo.myshopify.com",
            "orders_requested": [299938, 280263, 220458],
            "customer": {"id": 191167, "email": email, "phone": "555-625-1199"},
            "data_request": {"id": 9999}}


_SHOPIFY_KINDS = {"customers/create": "signed_up", "customers/update": "customer_updated",
                  "customers_email_marketing_consent/update": "consent_updated",
                  "orders/create": "order_completed", "orders/paid": "order_paid",
                  "customers/redact": "redact", "customers/data_request": "data_request",
                  "shop/redact": "shop_redact", "checkouts/create": "checkout_started"}


def store_shopify(source, topic: str, body: dict, at: datetime = T0, **kw) -> PluginEvent:
    email = body.get("email") or (body.get("customer") or {}).get("email")
    return store(source, channel="shopify", topic=topic, kind=_SHOPIFY_KINDS[topic],
                 dedup_key=str(uuid.uuid4()), body=body,
                 email_norm=email.strip().lower() if email else None, occurred_at=at, **kw)


# ------------------------------------------------------------------ WooCommerce


def woo_customer(email: str, first: str = "John", last: str = "Doe",
                 at: datetime = T0) -> dict:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S")
    return {"id": next(_ids) % 100000, "date_created": stamp, "date_created_gmt": stamp,
            "date_modified": stamp, "date_modified_gmt": stamp, "email": email,
            "first_name": first, "last_name": last, "role": "customer",
            "username": email.split("@")[0],
            "billing": {"first_name": first, "last_name": last, "company": "",
                        "address_1": "969 Market", "city": "San Francisco", "state": "CA",
                        "postcode": "94103", "country": "US", "email": email,
                        "phone": "(555) 555-5555"},
            "shipping": {"first_name": first, "last_name": last, "country": "US"},
            "is_paying_customer": False, "avatar_url": "", "meta_data": []}


def store_woo(source, topic: str, body: dict, **kw) -> PluginEvent:
    kind = {"customer.created": "signed_up", "customer.updated": "customer_updated",
            "order.created": "order_completed"}[topic]
    email = body.get("email") or (body.get("billing") or {}).get("email")
    return store(source, channel="woocommerce", topic=topic, kind=kind,
                 dedup_key=f"{topic.split('.')[0]}:{body['id']}:{body['date_modified_gmt']}",
                 body=body, email_norm=email.strip().lower() if email else None, **kw)


# ------------------------------------------------------------------ rows


def store(source, *, channel: str, topic: str, kind: str, body, dedup_key: str | None = None,
          **kw) -> PluginEvent:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    event = PluginEvent(source_id=source.id, channel=channel, topic=topic, kind=kind,
                        dedup_key=dedup_key or str(uuid.uuid4()), body=text, **kw)
    db.session.add(event)
    db.session.commit()
    return event


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def bulk_rows(source_id: int, people: range, *, domain: str = "bulk.example",
              chunk: int = 100) -> list[dict]:
    """Rows for a set-based insert: per person a visit while anonymous, a consenting form
    sign-up that identifies them (adds and stitches), a product view and an order; persons
    interleaved in chunks, each person's events in order. Four events per person."""
    rows: list[dict] = []
    now = T0
    for start in range(people.start, people.stop, chunk):
        group = range(start, min(start + chunk, people.stop))
        for step in range(4):
            for i in group:
                email, anon = f"p{i}@{domain}", f"anon-{domain}-{i}"
                if step == 0:
                    body, kind, name, mail = page(anon, f"/item/{i}"), "page", "", None
                elif step == 1:
                    body = track("Form Submitted", anon, email=email, consent=True)
                    kind, name, mail = "form_submitted", "Form Submitted", email
                elif step == 2:
                    body = track("Product Viewed", anon, email=email, product_id=f"sku-{i}")
                    kind, name, mail = "product_viewed", "Product Viewed", email
                else:
                    body = track("Order Completed", anon, email=email, order_id=f"o-{i}",
                                 total=19.5, currency="EUR")
                    kind, name, mail = "order_completed", "Order Completed", email
                rows.append({
                    "source_id": source_id, "channel": "browser" if step < 3 else "api",
                    "topic": body["type"], "kind": kind, "name": name,
                    "dedup_key": body["messageId"],
                    "body": json.dumps(body, separators=(",", ":")), "email_norm": mail,
                    "anonymous_id": anon, "user_id": None, "occurred_at": now,
                    "received_at": now, "status": "pending", "attempts": 0,
                    "verdict": {}, "error": ""})
    return rows


def insert_rows(rows: list[dict], size: int = 5000) -> None:
    from sqlalchemy import insert

    for start in range(0, len(rows), size):
        db.session.execute(insert(PluginEvent), rows[start:start + size])
    db.session.commit()
