"""Shopify orders over the REST Admin API (orders.json, Link-header pages) for the order
history import. Reads only; every request goes through the client's authorized path, paced
by the call-limit header, 429s waited out by the HTTP client within its retry budget."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from ..base import ConfigurationError, SourceUnavailable, iso
from .client import MAX_PAGE_SIZE, Shopify


@dataclass(frozen=True)
class OrderPage:
    """One page of order objects as Shopify sent them; `last_id` is the resume point
    (a resumed walk asks since_id=last_id), `done` when no next page follows."""

    orders: list[dict]
    last_id: int
    done: bool


def iter_order_pages(client: Shopify, *, after_id: int = 0,
                     created_at_min: datetime | None = None,
                     limit: int = MAX_PAGE_SIZE) -> Iterator[OrderPage]:
    """All orders of the shop (any status: open, closed and cancelled) in id order,
    following `Link: rel="next"`. `after_id` resumes a walk (since_id); page_info links
    carry the filters, so only the first request names them."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ConfigurationError(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    params: dict[str, object] = {"status": "any", "limit": limit}
    if after_id:
        params["since_id"] = int(after_id)
    if created_at_min is not None:
        if created_at_min.tzinfo is None:
            created_at_min = created_at_min.replace(tzinfo=UTC)
        params["created_at_min"] = iso(created_at_min)
    url: str | None = f"{client.api}/orders.json?{urlencode(params)}"
    last_id = int(after_id)
    while url:
        try:
            resp = client._call("GET", url)
        except ConfigurationError as exc:
            if "read_orders" in exc.detail:
                raise ConfigurationError(
                    "The Shopify app lacks the read_orders permission (missing scope): "
                    "reconnect the shop and approve access to orders.",
                    detail=exc.detail) from exc
            raise
        body = resp.json()
        orders = body.get("orders") if isinstance(body, dict) else None
        if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
            raise SourceUnavailable("Shopify sent a page of orders of an unexpected shape.")
        for order in orders:
            oid = order.get("id")
            if isinstance(oid, int) and not isinstance(oid, bool):
                last_id = max(last_id, oid)
        url = client._next_link(resp)
        yield OrderPage(orders, last_id, done=url is None)
