"""Reads for the order, product and cart detail pages: a fixed handful of set-based
queries per page (joins, not a query per line), so a 50-line order costs what a 1-line
order does. Each returns None for an id that does not exist."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy import and_, func, or_, select

from ..extensions import db
from ..models import (
    Cart,
    CartLine,
    Contact,
    Order,
    OrderLine,
    OrderRefund,
    PluginEvent,
    Product,
    ProductPair,
    ProductVariant,
    Shop,
)
from ..models.base import utcnow
from . import facts
from .carts import LOST_AFTER
from .stats import REVENUE

ORDER_KINDS = ("order_completed", "order_paid", "order_refunded", "order_cancelled")
EVENTS_SCANNED = 300  # a customer's order events read to find this order's
EVENTS_SHOWN = 50
PAIRS_SHOWN = 10
LATEST_SHOWN = 5
HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
CART_STATES = {"open": "Active", "abandoned": "Abandoned", "recovered": "Recovered",
               "converted": "Ordered", "lost": "Lost", "emptied": "Emptied (cancelled)"}
ORDER_STATES = {"pending": "Placed, not paid yet", "paid": "Paid",
                "partially_refunded": "Paid, refunded in part", "refunded": "Refunded in full",
                "cancelled": "Cancelled"}


def web_url(value: str | None) -> str:
    """`value` if it is an absolute http(s) URL (safe as a link or an image), else ""."""
    if not value:
        return ""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return ""
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else ""


def image_origin(value: str) -> str:
    """The scheme://host[:port] of an http(s) image URL for the page's img-src, or "" when
    the host is not a plain name (so nothing odd ever reaches the CSP header)."""
    url = web_url(value)
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if not HOST.fullmatch(host):
        return ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


@dataclass
class Step:
    """One point of a status lifecycle: what happened, when, and an optional amount."""

    label: str
    at: datetime | None
    amount: Decimal | None = None
    note: str = ""


# ------------------------------------------------------------------ orders


@dataclass
class OrderDetail:
    order: Order
    shop_name: str
    contact: tuple[int, str] | None  # (id, email) of the linked contact
    lines: list[dict] = field(default_factory=list)
    lines_total: Decimal = Decimal(0)
    refunds: list[OrderRefund] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    events: list[PluginEvent] = field(default_factory=list)
    carts: list[Cart] = field(default_factory=list)


def order_detail(order_id: int) -> OrderDetail | None:
    """The order with its shop, contact, lines (product and variant), refunds, the cart
    it recovered or converted, and the plugin events that built it."""
    row = db.session.execute(
        select(Order, Shop.name, Shop.source_id, Contact.id, Contact.email)
        .join(Shop, Shop.id == Order.shop_id)
        .outerjoin(Contact, Contact.id == Order.contact_id)
        .where(Order.id == order_id)).first()
    if row is None:
        return None
    order, shop_name, source_id, contact_id, contact_email = row
    detail = OrderDetail(order, shop_name or "Shop",
                         (contact_id, contact_email) if contact_id else None)
    for line, pid, ptitle, pext, vtitle, vext, vsku in db.session.execute(
            select(OrderLine, Product.id, Product.title, Product.external_id,
                   ProductVariant.title, ProductVariant.external_id, ProductVariant.sku)
            .outerjoin(Product, Product.id == OrderLine.product_id)
            .outerjoin(ProductVariant, ProductVariant.id == OrderLine.variant_id)
            .where(OrderLine.order_id == order.id).order_by(OrderLine.id)):
        amount = line.price * line.quantity
        detail.lines_total += amount
        detail.lines.append({
            "title": line.title or ptitle or (f"Product {pext}" if pext else "Item"),
            "product_id": pid, "variant": vtitle or vsku or vext or "",
            "quantity": line.quantity, "price": line.price, "amount": amount,
        })
    detail.refunds = list(db.session.scalars(
        select(OrderRefund).where(OrderRefund.order_id == order.id)
        .order_by(OrderRefund.refunded_at, OrderRefund.id)))
    detail.carts = _order_carts(order)
    detail.steps = _order_steps(order, detail.refunds)
    detail.events = _order_events(order, source_id, detail.refunds)
    return detail


def _order_carts(order: Order) -> list[Cart]:
    """Carts this order recovered or converted. carts.order_id has no index of its own, so
    the search starts from the ways an order finds its cart (its cart token, the same
    contact or email), each an indexed column."""
    ways = [and_(Cart.shop_id == order.shop_id, Cart.external_id == order.cart_token)
            ] if order.cart_token else []
    if order.contact_id:
        ways.append(Cart.contact_id == order.contact_id)
    if order.email_norm:
        ways.append(Cart.email_norm == order.email_norm)
    if not ways:
        return []
    return list(db.session.scalars(
        select(Cart).where(Cart.order_id == order.id, or_(*ways)).order_by(Cart.id)))


def _order_steps(order: Order, refunds: list[OrderRefund]) -> list[Step]:
    steps = [Step("Placed", order.placed_at, order.total)]
    if order.paid_at:
        steps.append(Step("Paid", order.paid_at, order.total))
    for refund in refunds:
        whole = refund.amount is None
        steps.append(Step("Refunded in full" if whole else "Refunded in part",
                          refund.refunded_at, order.total if whole else refund.amount))
    if order.cancelled_at:
        steps.append(Step("Cancelled", order.cancelled_at))
    first, rest = steps[0], sorted(steps[1:], key=lambda s: (s.at is None, s.at or 0))
    return [first, *rest]


def _order_events(order: Order, source_id: int, refunds: list[OrderRefund]) -> list:
    """The source's events that carry this order: the one that wrote its snapshot, refund
    events keyed by their delivery key, and the customer's latest order events naming its
    id. Each lookup rides its own index (primary key, source + key, contact + time), so
    the cost stays flat however many events the source holds."""
    ids = {order.event_id} if order.event_id else set()
    keys = [r.external_id for r in refunds]
    if keys:
        ids.update(db.session.scalars(select(PluginEvent.id).where(
            PluginEvent.source_id == source_id, PluginEvent.dedup_key.in_(keys[:500]))))
    if order.contact_id:
        ids.update(db.session.scalars(
            select(PluginEvent.id)
            .where(PluginEvent.contact_id == order.contact_id,
                   PluginEvent.source_id == source_id, PluginEvent.kind.in_(ORDER_KINDS))
            .order_by(PluginEvent.occurred_at.desc()).limit(EVENTS_SCANNED)))
    if not ids:
        return []
    found = []
    for event in db.session.scalars(select(PluginEvent).where(PluginEvent.id.in_(ids))):
        fact = facts.read(event).order
        if event.id == order.event_id or (fact and fact.external_id == order.external_id):
            found.append(event)
    found.sort(key=lambda e: (facts.event_time(e), e.id))
    return found[-EVENTS_SHOWN:]


def latest_orders(limit: int = 5) -> list[Order]:
    """The latest orders to arrive (as the Orders page sorts them, on the primary key), for
    the dashboard's way into the order pages."""
    return list(db.session.scalars(select(Order).order_by(Order.id.desc()).limit(limit)))


# ------------------------------------------------------------------ products


@dataclass
class ProductDetail:
    product: Product
    shop_name: str
    currency: str
    url: str
    image_url: str
    image_origin: str
    variants: list[ProductVariant] = field(default_factory=list)
    sales: list[dict] = field(default_factory=list)  # per currency: orders, revenue 30/90
    together: list[dict] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)  # the latest orders holding it


def product_detail(product_id: int, now: datetime | None = None) -> ProductDetail | None:
    """The product with its variants, paid orders and revenue of the last 30 and 90 days,
    the products bought together with it (the recommendation pairs, with evidence) and
    the latest orders holding it."""
    row = db.session.execute(
        select(Product, Shop.name, Shop.currency).join(Shop, Shop.id == Product.shop_id)
        .where(Product.id == product_id)).first()
    if row is None:
        return None
    product, shop_name, shop_currency = row
    detail = ProductDetail(product, shop_name or "Shop", product.currency or shop_currency,
                           web_url(product.url), "", image_origin(product.image_url))
    if detail.image_origin:
        detail.image_url = web_url(product.image_url)
    detail.variants = list(db.session.scalars(
        select(ProductVariant).where(ProductVariant.product_id == product.id)
        .order_by(ProductVariant.title, ProductVariant.id)))
    now = now or utcnow()
    d30, d90 = now - timedelta(days=30), now - timedelta(days=90)
    amount = OrderLine.price * OrderLine.quantity
    for cur, n30, r30, n90, r90 in db.session.execute(
            select(Order.currency,
                   func.count(func.distinct(Order.id)).filter(Order.placed_at >= d30),
                   func.sum(amount).filter(Order.placed_at >= d30),
                   func.count(func.distinct(Order.id)), func.sum(amount))
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.product_id == product.id, Order.status.in_(REVENUE),
                   Order.placed_at >= d90, Order.placed_at <= now)
            .group_by(Order.currency).order_by(Order.currency)):
        detail.sales.append({"currency": cur, "orders_30": n30 or 0,
                             "revenue_30": Decimal(r30 or 0), "orders_90": n90 or 0,
                             "revenue_90": Decimal(r90 or 0)})
    for other_id, title, ext, orders, score in db.session.execute(
            select(Product.id, Product.title, Product.external_id, ProductPair.orders,
                   ProductPair.score)
            .join(Product, Product.id == ProductPair.other_id)
            .where(ProductPair.product_id == product.id,
                   ProductPair.other_id != product.id)
            .order_by(ProductPair.score.desc(), ProductPair.other_id).limit(PAIRS_SHOWN)):
        detail.together.append({
            "id": other_id, "title": title or f"Product {ext}", "orders": orders,
            "score": score,
            "evidence": f"Bought together in {orders} order{'s' if orders != 1 else ''}"})
    holding = select(OrderLine.order_id).where(OrderLine.product_id == product.id)
    detail.orders = list(db.session.scalars(
        select(Order).where(Order.id.in_(holding))
        .order_by(Order.placed_at.desc(), Order.id.desc()).limit(LATEST_SHOWN)))
    return detail


# ------------------------------------------------------------------ carts


@dataclass
class CartDetail:
    cart: Cart
    shop_name: str
    cart_url: str
    order: Order | None
    lines: list[dict] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def cart_detail(cart_id: int) -> CartDetail | None:
    """The cart with its live lines, its state history and the order that recovered or
    converted it."""
    row = db.session.execute(
        select(Cart, Shop.name, Shop.abandon_after_minutes, Order)
        .join(Shop, Shop.id == Cart.shop_id)
        .outerjoin(Order, Order.id == Cart.order_id).where(Cart.id == cart_id)).first()
    if row is None:
        return None
    cart, shop_name, delay, order = row
    detail = CartDetail(cart, shop_name or "Shop", web_url(cart.cart_url), order)
    for line, pid, ptitle, pext, vtitle in db.session.execute(
            select(CartLine, Product.id, Product.title, Product.external_id,
                   ProductVariant.title)
            .outerjoin(Product, Product.id == CartLine.product_id)
            .outerjoin(ProductVariant, ProductVariant.id == CartLine.variant_id)
            .where(CartLine.cart_id == cart.id, CartLine.quantity > 0)
            .order_by(CartLine.id)):
        detail.lines.append({
            "title": line.title or ptitle or (f"Product {pext}" if pext else "Item"),
            "product_id": pid, "variant": vtitle or "", "quantity": line.quantity,
            "price": line.price, "amount": line.price * line.quantity,
        })
    detail.steps = cart_steps(cart, order, delay)
    return detail


def _minutes(n: int) -> str:
    if n % 60 == 0:
        hours = n // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{n} minutes"


def cart_steps(cart: Cart, order: Order | None, delay: int = 60) -> list[Step]:
    """The cart's states with times, from the moments kept on the row: started (active),
    abandoned, then recovered, converted, lost or emptied (cancelled)."""
    steps = [Step("Started", cart.created_at),
             Step("Last activity", cart.last_activity_at)]
    if cart.abandoned_at:
        steps.append(Step("Abandoned", cart.abandoned_at,
                          note=f"No activity and no order for {_minutes(delay)} "
                               "(the shop's delay)"))
    if cart.status == "recovered":
        steps.append(Step("Recovered", cart.recovered_at or (order and order.placed_at),
                          order.total if order else None, "An order after the abandonment"))
    elif cart.status == "converted":
        steps.append(Step("Ordered", order.placed_at if order else None,
                          order.total if order else None, "An order before any abandonment"))
    elif cart.status == "lost":
        steps.append(Step("Lost", cart.abandoned_at + LOST_AFTER if cart.abandoned_at else None,
                          note=f"No order within {LOST_AFTER.days} days of the abandonment"))
    elif cart.status == "emptied":
        steps.append(Step("Emptied", cart.last_activity_at,
                          note="Every item was removed, so it is never abandoned"))
    return sorted(steps, key=lambda s: (s.at is None, s.at or cart.created_at))
