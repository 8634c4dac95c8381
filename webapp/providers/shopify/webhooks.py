"""Shopify webhook subscriptions over the REST Admin API (`webhooks.json`), through the
Shopify client's one authorized-request path. Like every provider module it knows HTTP
and Shopify's API only: the caller stores the returned ids and passes them back."""

from __future__ import annotations

from ..base import ConfigurationError, SourceUnavailable
from .client import Shopify

# The privacy topics are mandatory for public apps (set in the Partner
# Dashboard there); custom apps subscribe them here like the rest.
TOPICS = (
    "customers/create", "customers/update", "customers_email_marketing_consent/update",
    "orders/create", "orders/paid", "orders/cancelled", "refunds/create",
    "checkouts/create", "checkouts/update", "app/uninstalled",
    "customers/data_request", "customers/redact", "shop/redact",
)
WEBHOOK_API_VERSION = "2025-01"


def _url(client: Shopify, path: str) -> str:
    return f"{client.base}/admin/api/{WEBHOOK_API_VERSION}/{path}"


def list_subscriptions(client: Shopify) -> list[dict]:
    """The shop's webhook subscriptions for this app: [{id, topic, address}]."""
    resp = client._call("GET", _url(client, "webhooks.json"), params={"limit": 250})
    rows = (resp.json() or {}).get("webhooks") or []
    return [{"id": w.get("id"), "topic": w.get("topic"), "address": w.get("address")}
            for w in rows if isinstance(w, dict)]


def subscribe(client: Shopify, address: str, topics: tuple[str, ...] = TOPICS) -> list[dict]:
    """Subscribe `address` to each topic (JSON format); a topic already pointing there is
    kept, not doubled. Returns every subscription to `address` as [{id, topic}]."""
    existing = {w["topic"]: w for w in list_subscriptions(client) if w["address"] == address}
    made = []
    for topic in topics:
        if topic in existing:
            made.append({"id": existing[topic]["id"], "topic": topic})
            continue
        resp = client._call("POST", _url(client, "webhooks.json"), idempotent=False, json={
            "webhook": {"topic": topic, "address": address, "format": "json"}})
        hook = (resp.json() or {}).get("webhook") or {}
        if not hook.get("id"):
            raise SourceUnavailable("Shopify did not confirm the webhook subscription.")
        made.append({"id": hook["id"], "topic": topic})
    return made


def unsubscribe(client: Shopify, subscriptions: list[dict]) -> int:
    """Delete the given subscriptions; one already gone counts as removed. Returns how many
    were deleted now."""
    deleted = 0
    for sub in subscriptions:
        hook_id = sub.get("id")
        if not isinstance(hook_id, int):
            continue
        try:
            client._call("DELETE", _url(client, f"webhooks/{hook_id}.json"))
            deleted += 1
        except ConfigurationError as exc:
            if "(unknown shop)" not in exc.reason:  # the client's reading of a 404: gone
                raise
    return deleted
