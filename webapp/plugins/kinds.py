"""Which event kind (models.plugins.EVENT_KINDS) a received event is, from its channel and
topic, type or track name: the contract between intake and processing."""

from __future__ import annotations

TRACK_NAMES = {
    "Signed Up": "signed_up",
    "Form Submitted": "form_submitted",
    "Product Viewed": "product_viewed",
    "Product Added": "product_added",
    "Product Removed": "product_removed",
    "Cart Viewed": "cart_viewed",
    "Checkout Started": "checkout_started",
    "Order Completed": "order_completed",
    "Order Refunded": "order_refunded",
    "Order Cancelled": "order_cancelled",
}
# Track events the browser (public key) may send; everything else needs the server key.
BROWSER_TRACK_NAMES = frozenset({
    "Signed Up", "Form Submitted", "Product Viewed", "Product Added", "Product Removed",
    "Cart Viewed", "Checkout Started",
})
BROWSER_TYPES = frozenset({"page", "identify", "track"})

SHOPIFY_TOPICS = {
    "customers/create": "signed_up",
    "customers/update": "customer_updated",
    "customers_email_marketing_consent/update": "consent_updated",
    "orders/create": "order_completed",
    "orders/paid": "order_paid",
    "orders/cancelled": "order_cancelled",
    "refunds/create": "order_refunded",
    "checkouts/create": "checkout_started",
    "checkouts/update": "checkout_started",
    "app/uninstalled": "uninstalled",
    "customers/data_request": "data_request",
    "customers/redact": "redact",
    "shop/redact": "shop_redact",
}
WOO_TOPICS = {
    "customer.created": "signed_up",
    "customer.updated": "customer_updated",
    "order.created": "order_completed",
}
WOO_ORDER_STATUS = {
    "processing": "order_paid",
    "completed": "order_paid",
    "cancelled": "order_cancelled",
    "refunded": "order_refunded",
}


def segment_kind(event_type: str, name: str = "") -> str:
    """identify/page as themselves; track by its Segment e-commerce name, else custom."""
    if event_type in ("identify", "page"):
        return event_type
    if event_type == "screen":
        return "page"
    if event_type == "track":
        return TRACK_NAMES.get(name, "custom")
    return "custom"


def shopify_kind(topic: str) -> str:
    return SHOPIFY_TOPICS.get(topic, "custom")


def woocommerce_kind(topic: str, payload: dict) -> str:
    """order.updated is read by the order's status; unknown topics are custom."""
    if topic == "order.updated":
        status = payload.get("status") if isinstance(payload, dict) else None
        return WOO_ORDER_STATUS.get(status if isinstance(status, str) else "", "custom")
    return WOO_TOPICS.get(topic, "custom")


def browser_allowed(event_type: str, name: str = "") -> bool:
    """May the public (browser) key send this event? page, identify, a few track names."""
    if event_type in ("page", "identify"):
        return True
    return event_type == "track" and name in BROWSER_TRACK_NAMES
