"""Read commerce facts out of stored plugin events (Shopify, WooCommerce, Segment-style
tracking calls) into plain records, so the writers never look at provider payloads.

Every reader is defensive: a field of the wrong type or size is dropped, never raised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

COMMERCE_KINDS = frozenset({
    "page", "product_viewed", "product_added", "product_removed", "cart_viewed",
    "checkout_started", "order_completed", "order_paid", "order_refunded", "order_cancelled",
})
MAX_MONEY = Decimal("9999999999.99")
SHOPIFY_PAID = {"paid", "partially_refunded", "refunded"}
WOO_PAID = {"processing", "completed", "refunded"}


@dataclass
class ProductFact:
    external_id: str
    ts: datetime
    stub: bool  # only what an order or cart line says about it
    title: str = ""
    category: str = ""
    url: str = ""
    image_url: str = ""
    price: Decimal | None = None
    currency: str = ""
    available: bool | None = None
    variant_id: str = ""
    variant_title: str = ""
    sku: str = ""


@dataclass
class LineFact:
    product: ProductFact | None
    title: str
    quantity: int
    price: Decimal


@dataclass
class OrderFact:
    external_id: str
    ts: datetime
    snapshot: bool  # carries the order's own fields (totals, lines), not just a status change
    email: str | None = None
    customer_name: str = ""
    currency: str = ""
    total: Decimal = Decimal(0)
    placed_at: datetime | None = None
    cart_token: str | None = None
    lines: list[LineFact] = field(default_factory=list)
    paid_at: datetime | None = None
    cancelled_at: datetime | None = None
    refunds: list[tuple[str, Decimal | None, datetime]] = field(default_factory=list)


@dataclass
class CartFact:
    external_id: str
    ts: datetime
    snapshot: list[LineFact] | None = None  # the whole cart (cart viewed, checkout)
    added: list[LineFact] = field(default_factory=list)
    removed: list[ProductFact] = field(default_factory=list)
    email: str | None = None
    currency: str = ""
    cart_url: str = ""
    completed: bool = False


@dataclass
class EventFacts:
    """What one event says; any part may be empty."""

    products: list[ProductFact] = field(default_factory=list)
    order: OrderFact | None = None
    cart: CartFact | None = None
    page_url: str | None = None


# ------------------------------------------------------------------ small readers


def text(value: Any, limit: int) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        value = str(value)
    if not isinstance(value, str):
        return ""
    return value.strip()[:limit]


def ident(value: Any) -> str:
    """An external id (numbers and strings alike), or "" when there is none."""
    return text(value, 120)


def money(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or abs(amount) > MAX_MONEY:
        return None
    return abs(amount).quantize(Decimal("0.01"))


def quantity(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    try:
        qty = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return 1
    return max(0, min(qty, 100_000))


def when(value: Any) -> datetime | None:
    """An ISO-8601 time as aware UTC (WooCommerce's *_gmt times come without a zone)."""
    if not isinstance(value, str) or not 8 <= len(value) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def email(value: Any) -> str | None:
    found = text(value, 254).lower()
    return found if "@" in found else None


def currency(value: Any) -> str:
    found = text(value, 3).upper()
    return found if len(found) == 3 and found.isalpha() else ""


def obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)][:500] if isinstance(value, list) else []


def body_of(event) -> dict:
    try:
        found = json.loads(event.body)
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def event_time(event) -> datetime:
    moment = event.occurred_at or event.received_at
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------ by channel


def read(event) -> EventFacts:
    """The commerce facts of one stored event (empty when it says nothing we keep)."""
    if event.kind not in COMMERCE_KINDS:
        return EventFacts()
    body = body_of(event)
    if event.channel == "shopify":
        return _shopify(event, body)
    if event.channel == "woocommerce":
        return _woocommerce(event, body)
    return _tracking(event, body)


def _name(first: Any, last: Any) -> str:
    return " ".join(p for p in (text(first, 120), text(last, 120)) if p)[:255]


def _shopify_lines(rows: list[dict], ts: datetime) -> list[LineFact]:
    lines = []
    for row in rows:
        pid = ident(row.get("product_id"))
        product = None
        price = money(row.get("price")) or Decimal(0)
        title = text(row.get("title") or row.get("name"), 300)
        if pid:
            product = ProductFact(pid, ts, stub=True, title=title, price=price,
                                  variant_id=ident(row.get("variant_id")),
                                  variant_title=text(row.get("variant_title"), 300),
                                  sku=text(row.get("sku"), 120))
        lines.append(LineFact(product, title, quantity(row.get("quantity", 1)), price))
    return lines


def _shopify(event, body: dict) -> EventFacts:
    ts = when(body.get("updated_at")) or event_time(event)
    customer = obj(body.get("customer"))
    if event.kind == "checkout_started":
        token = ident(body.get("token")) or ident(body.get("cart_token"))
        if not token:
            return EventFacts()
        lines = _shopify_lines(items(body.get("line_items")), ts)
        cart = CartFact(token, ts, snapshot=lines,
                        email=email(body.get("email") or customer.get("email")),
                        currency=currency(body.get("currency") or body.get("presentment_currency")),
                        cart_url=text(body.get("abandoned_checkout_url"), 2000),
                        completed=bool(body.get("completed_at")))
        return EventFacts(products=[ln.product for ln in lines if ln.product], cart=cart)
    if event.kind == "order_refunded":
        oid = ident(body.get("order_id"))
        if not oid:
            return EventFacts()
        amount = _shopify_refund_amount(body)
        rid = ident(body.get("id")) or event.dedup_key[:200]
        at = when(body.get("created_at")) or event_time(event)
        return EventFacts(order=OrderFact(oid, ts, snapshot=False, refunds=[(rid, amount, at)]))
    oid = ident(body.get("id"))
    if not oid:
        return EventFacts()
    lines = _shopify_lines(items(body.get("line_items")), ts)
    placed = when(body.get("created_at")) or ts
    order = OrderFact(
        oid, ts, snapshot=True,
        email=email(body.get("email") or customer.get("email")),
        customer_name=_name(customer.get("first_name"), customer.get("last_name")),
        currency=currency(body.get("currency")), total=money(body.get("total_price")) or Decimal(0),
        placed_at=placed, lines=lines,
        cart_token=ident(body.get("checkout_token")) or ident(body.get("cart_token")) or None,
    )
    status = text(body.get("financial_status"), 40)
    if status in SHOPIFY_PAID or event.kind == "order_paid":
        order.paid_at = when(body.get("processed_at")) or placed
    cancelled = when(body.get("cancelled_at"))
    if cancelled or event.kind == "order_cancelled":
        order.cancelled_at = cancelled or ts
    for refund in items(body.get("refunds")):
        rid = ident(refund.get("id"))
        if rid:
            order.refunds.append((rid, _shopify_refund_amount(refund),
                                  when(refund.get("created_at")) or ts))
    return EventFacts(products=[ln.product for ln in lines if ln.product], order=order)


def _shopify_refund_amount(refund: dict) -> Decimal:
    transactions = items(refund.get("transactions"))
    if transactions:
        return sum((money(t.get("amount")) or Decimal(0) for t in transactions
                    if t.get("kind", "refund") == "refund"
                    and t.get("status", "success") == "success"), Decimal(0))
    return sum((money(r.get("subtotal")) or Decimal(0)
                for r in items(refund.get("refund_line_items"))), Decimal(0))


def _woocommerce(event, body: dict) -> EventFacts:
    oid = ident(body.get("id"))
    if not oid or event.kind == "page":
        return EventFacts()
    ts = when(body.get("date_modified_gmt")) or event_time(event)
    billing = obj(body.get("billing"))
    lines = []
    for row in items(body.get("line_items")):
        pid = ident(row.get("product_id"))
        qty = quantity(row.get("quantity", 1))
        price = money(row.get("price"))
        if price is None:
            total = money(row.get("total")) or Decimal(0)
            price = (total / qty).quantize(Decimal("0.01")) if qty else total
        title = text(row.get("name"), 300)
        vid = ident(row.get("variation_id"))
        product = ProductFact(pid, ts, stub=True, title=title, price=price,
                              variant_id="" if vid == "0" else vid,
                              sku=text(row.get("sku"), 120)) if pid and pid != "0" else None
        lines.append(LineFact(product, title, qty, price))
    placed = when(body.get("date_created_gmt")) or ts
    order = OrderFact(
        oid, ts, snapshot=True, email=email(billing.get("email") or body.get("email")),
        customer_name=_name(billing.get("first_name"), billing.get("last_name")),
        currency=currency(body.get("currency")), total=money(body.get("total")) or Decimal(0),
        placed_at=placed, lines=lines, cart_token=ident(body.get("cart_hash")) or None,
    )
    status = text(body.get("status"), 40)
    if status in WOO_PAID or event.kind == "order_paid" or body.get("date_paid_gmt"):
        order.paid_at = when(body.get("date_paid_gmt")) or placed
    if status == "cancelled" or event.kind == "order_cancelled":
        order.cancelled_at = ts
    refunds = items(body.get("refunds"))
    for refund in refunds:
        rid = ident(refund.get("id"))
        if rid:
            order.refunds.append((rid, money(refund.get("total")) or Decimal(0), ts))
    if status == "refunded" and not refunds:
        order.refunds.append(("status:refunded", None, ts))
    return EventFacts(products=[ln.product for ln in lines if ln.product], order=order)


def _tracking_product(props: dict, ts: datetime, stub: bool) -> ProductFact | None:
    pid = ident(props.get("product_id") or props.get("id") or props.get("sku"))
    if not pid:
        return None
    available = props.get("available", props.get("in_stock"))
    return ProductFact(
        pid, ts, stub=stub, title=text(props.get("name") or props.get("title"), 300),
        category=text(props.get("category"), 200), url=text(props.get("url"), 2000),
        image_url=text(props.get("image_url"), 2000), price=money(props.get("price")),
        currency=currency(props.get("currency")),
        available=available if isinstance(available, bool) else None,
        variant_id=ident(props.get("variant_id")), variant_title=text(props.get("variant"), 300),
        sku=text(props.get("sku"), 120),
    )


def _tracking_lines(props: dict, ts: datetime) -> list[LineFact]:
    lines = []
    for row in items(props.get("products")):
        product = _tracking_product(row, ts, stub=True)
        price = money(row.get("price")) or Decimal(0)
        lines.append(LineFact(product, text(row.get("name"), 300),
                              quantity(row.get("quantity", 1)), price))
    return lines


def _tracking(event, body: dict) -> EventFacts:
    ts = event_time(event)
    props = obj(body.get("properties"))
    context = obj(body.get("context"))
    if event.kind == "page":
        url = text(props.get("url") or obj(context.get("page")).get("url"), 2000)
        return EventFacts(page_url=url or None)
    mail = event.email_norm or email(props.get("email"))
    cart_key = ident(props.get("cart_id") or props.get("checkout_id"))
    if not cart_key and event.anonymous_id:
        cart_key = f"anon:{event.anonymous_id}"[:200]
    cur = currency(props.get("currency"))
    if event.kind == "product_viewed":
        product = _tracking_product(props, ts, stub=False)
        return EventFacts(products=[product] if product else [])
    if event.kind in ("product_added", "product_removed"):
        product = _tracking_product(props, ts, stub=True)  # only Product Viewed describes
        if product is None or not cart_key:
            return EventFacts(products=[product] if product else [])
        cart = CartFact(cart_key, ts, email=mail, currency=cur,
                        cart_url=text(props.get("cart_url"), 2000))
        if event.kind == "product_added":
            cart.added.append(LineFact(product, product.title,
                                       max(1, quantity(props.get("quantity", 1))),
                                       product.price or Decimal(0)))
        else:
            cart.removed.append(product)
        return EventFacts(products=[product], cart=cart)
    if event.kind in ("cart_viewed", "checkout_started"):
        lines = _tracking_lines(props, ts)
        if not cart_key:
            return EventFacts(products=[ln.product for ln in lines if ln.product])
        cart = CartFact(cart_key, ts, snapshot=lines, email=mail, currency=cur,
                        cart_url=text(props.get("cart_url"), 2000))
        return EventFacts(products=[ln.product for ln in lines if ln.product], cart=cart)
    oid = ident(props.get("order_id"))
    if not oid:
        return EventFacts()
    if event.kind == "order_refunded":
        rid = ident(props.get("refund_id")) or event.dedup_key[:200]
        amount = money(props.get("total", props.get("revenue")))
        return EventFacts(order=OrderFact(oid, ts, snapshot=False, refunds=[(rid, amount, ts)]))
    if event.kind == "order_cancelled":
        return EventFacts(order=OrderFact(oid, ts, snapshot=False, cancelled_at=ts))
    lines = _tracking_lines(props, ts)
    total = money(props.get("total", props.get("revenue", props.get("value"))))
    if total is None:
        total = sum((ln.price * ln.quantity for ln in lines), Decimal(0))
    order = OrderFact(oid, ts, snapshot=True, email=mail,
                      customer_name=text(obj(body.get("traits")).get("name"), 255),
                      currency=cur, total=total, placed_at=ts, lines=lines,
                      cart_token=cart_key or None, paid_at=ts)
    return EventFacts(products=[ln.product for ln in lines if ln.product], order=order)
