"""Shopify simulator, orders: seeded orders of the shop's customers and REST orders.json
(status filter, created/updated bounds, since_id, fields, Link-header pages whose
page_info carries the filters, and Shopify's 400 shapes for what it refuses)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from werkzeug.wrappers import Request, Response

from .dataset import Person

ORDER_ID_BASE = 5_000_000
DEFAULT_ORDERS = 300
STATUSES = ("open", "closed", "cancelled", "any")
ORDER_FILTERS = ("ids", "since_id", "created_at_min", "created_at_max", "updated_at_min",
                 "updated_at_max", "status", "financial_status")
ORDER_KNOWN = frozenset(ORDER_FILTERS + ("limit", "fields", "page_info"))

# (product id, variant id, title, sku, price) of the seeded catalogue.
CATALOGUE = tuple(
    (7_000_000 + i, 8_000_000 + i, title, f"SKU-{i:03d}", price)
    for i, (title, price) in enumerate((
        ("Ceramic mug", "15.00"), ("Green tea", "9.50"), ("Teapot", "42.00"),
        ("Coffee beans", "18.00"), ("Grinder", "65.00"), ("Milk frother", "29.90"),
        ("Tea towel", "8.00"), ("Travel cup", "22.00"), ("Honey jar", "11.25"),
        ("Biscuit tin", "14.00"), ("Espresso cups", "34.00"), ("Filter papers", "4.50"),
    ), start=1)
)


def seed_orders(people: list[Person], count: int = DEFAULT_ORDERS, seed: int = 12) -> list[dict]:
    """`count` orders spread over `people` (ids ascending, deterministic for the same people,
    seed and day), placed in the 300 days before last week: mostly paid, some pending,
    refunded, cancelled or closed; a few guests."""
    if not people or count <= 0:
        return []
    rng = random.Random(seed)
    # A week back, so that updates, refunds and closings (up to 7 days later) are past too.
    horizon = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) \
        - timedelta(days=8)
    spread = random.Random(seed + 1)
    placed = sorted(horizon - timedelta(minutes=spread.randint(0, 300 * 1440))
                    for _ in range(count))
    previous = placed[0] - timedelta(days=1)
    orders = []
    for n in range(count):
        person = people[rng.randrange(len(people))]
        oid = ORDER_ID_BASE + n + 1
        # Never in the future, never before the customer existed, and later for a higher id
        # (as Shopify's ids grow with time), so that a demo's "last 30 days" has orders in it.
        created = max(placed[n], person.created_at + timedelta(hours=1),
                      previous + timedelta(minutes=1))
        previous = created
        lines, total = [], 0.0
        for i, item in enumerate(rng.sample(CATALOGUE, rng.randint(1, 3))):
            product_id, variant_id, title, sku, price = item
            qty = rng.randint(1, 3)
            total += qty * float(price)
            lines.append({"id": oid * 10 + i, "product_id": product_id,
                          "variant_id": variant_id, "title": title, "quantity": qty,
                          "price": price, "sku": sku, "variant_title": None})
        roll = rng.random()
        status = ("pending" if roll < 0.08 else "refunded" if roll < 0.12
                  else "partially_refunded" if roll < 0.16 else "paid")
        guest = person.email is None or rng.random() < 0.05
        email = None if guest else person.email
        order = {
            "id": oid, "name": f"#{1000 + n + 1}", "email": email, "created_at": created,
            "updated_at": created + timedelta(hours=rng.randint(0, 72)),
            "processed_at": created, "currency": "USD", "total_price": f"{total:.2f}",
            "financial_status": status, "cancelled_at": None, "closed_at": None,
            "line_items": lines, "refunds": [],
            "customer": None if guest else {"id": person.id, "email": person.email,
                                            "first_name": person.first_name,
                                            "last_name": person.last_name},
            "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
        }
        if status in ("refunded", "partially_refunded"):
            amount = total if status == "refunded" else float(lines[0]["price"])
            order["refunds"] = [{
                "id": 6_000_000 + n, "order_id": oid,
                "created_at": created + timedelta(days=3),
                "transactions": [{"kind": "refund", "status": "success",
                                  "amount": f"{amount:.2f}"}],
            }]
        if status == "pending" and rng.random() < 0.5:
            order["cancelled_at"] = created + timedelta(hours=5)
        elif status == "paid" and rng.random() < 0.3:
            order["closed_at"] = created + timedelta(days=7)
        orders.append(order)
    return orders


def _state_of(order: dict) -> str:
    if order["cancelled_at"] is not None:
        return "cancelled"
    return "closed" if order["closed_at"] is not None else "open"


def _matching(orders: list[dict], filters: dict, parse) -> list[dict] | None:
    """Orders passing `filters` (None when a value does not parse)."""
    try:
        ids = {int(x) for x in filters["ids"].split(",")} if filters.get("ids") else None
        since_id = int(filters.get("since_id") or 0)
        bounds = {k: parse(filters[k]) for k in ORDER_FILTERS[2:6] if filters.get(k)}
    except ValueError:
        return None
    status = filters.get("status") or "open"
    paid = filters.get("financial_status")
    out = []
    for o in orders:
        if o["id"] <= since_id or (ids is not None and o["id"] not in ids):
            continue
        if status != "any" and _state_of(o) != status:
            continue
        if paid and paid != "any" and o["financial_status"] != paid:
            continue
        if any((k.endswith("_min") and o[k[:-4]] < v) or (k.endswith("_max") and o[k[:-4]] > v)
               for k, v in bounds.items()):
            continue
        out.append(o)
    return out


def render(order: dict, render_time) -> dict:
    """An order as orders.json renders it (times in the shop's zone)."""
    body = dict(order)
    for key in ("created_at", "updated_at", "processed_at", "cancelled_at", "closed_at"):
        body[key] = render_time(order[key])
    body["refunds"] = [{**r, "created_at": render_time(r["created_at"])}
                       for r in order["refunds"]]
    return body


def orders_endpoint(sim, request: Request, version: str) -> Response:
    """GET orders.json as Shopify answers it."""
    from .shopify import _json, _parse_time, cursor_args

    st = sim.state
    args = request.args.to_dict()
    st.ignored_params.extend(k for k in args if k not in ORDER_KNOWN)
    walk = cursor_args(args, ORDER_FILTERS, 50)
    if isinstance(walk, Response):
        return walk  # the 400 Shopify answers
    if walk.filters.get("status", "open") not in STATUSES:
        return _json({"errors": {"status": "Invalid value."}}, 400)
    with st.lock:
        matched = _matching(st.orders, walk.filters, lambda v: _parse_time(v, st.tz))
        if matched is None:
            return _json({"errors": "Bad Request"}, 400)
        page, has_prev, has_next = walk.page(matched, lambda o: o["id"])
        body = {"orders": [render(o, st.render_time) for o in page]}
    if args.get("fields"):
        keep = {f.strip() for f in args["fields"].split(",")}
        body["orders"] = [{k: v for k, v in o.items() if k in keep} for o in body["orders"]]
    base = f"{request.host_url.rstrip('/')}/{st.shop}/admin/api/{version}/orders.json"
    links = walk.links(base, page and page[0]["id"], page and page[-1]["id"], has_prev,
                       has_next)
    return _json(body, 200, {"Link": links} if links else None)
