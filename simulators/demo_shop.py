"""A demo shop whose pages carry Tributary's snippet: a home page with a newsletter sign-up
form (consent checkbox), product pages ("Product Viewed", "Add to cart" → "Product Added"),
a cart ("Cart Viewed", "Checkout Started") and an order page. "Order Completed" is sent by
the shop's own server to the tracking API with the server key, from an outbox with retries
(never inside the shopper's request), as a real shop backend should.

CLI: python -m simulators.demo_shop --app URL --public-key pk_… --server-key sk_… [--port P]
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.wrappers import Request, Response

from .server import Running, serve
from .webhook_emitter import post

PRODUCTS = {
    "blue-mug": {"product_id": "blue-mug", "sku": "MUG-BLUE", "name": "Blue mug",
                 "price": 12.5, "category": "Kitchen",
                 "blurb": "A sturdy stoneware mug that holds a generous 350 ml."},
    "cafe-tote": {"product_id": "cafe-tote", "sku": "TOTE-CAFE", "name": "Café tote bag",
                  "price": 24.0, "category": "Bags",
                  "blurb": "Organic cotton, long handles, room for a week of groceries."},
    "tea-sampler": {"product_id": "tea-sampler", "sku": "TEA-SAMPLER", "name": "Tea sampler",
                    "price": 31.9, "category": "Food",
                    "blurb": "Twelve loose-leaf teas from three continents."},
}
CURRENCY = "EUR"

STATIC = Path(__file__).resolve().parent / "static"  # the shop's script and style



@dataclass
class Order:
    number: int
    email: str
    lines: list[dict]
    anonymous_id: str
    message_id: str
    placed_at: datetime
    delivered: bool = False
    attempts: list[int | None] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(float(li["price"]) * int(li["quantity"]) for li in self.lines), 2)


class DemoShop:
    """The shop's state and its WSGI app; `configure` points it at Tributary (keys may come
    after the shop has started, once the demo's plugin source exists)."""

    def __init__(self, app_url: str = "", public_key: str = "", server_key: str = "",
                 retry_delays: tuple[float, ...] = (1, 2, 4, 8, 16), timeout: float = 5.0):
        self.app_url, self.public_key, self.server_key = "", "", ""
        self.configure(app_url, public_key, server_key)
        self.retry_delays, self.timeout = retry_delays, timeout
        self.orders: list[Order] = []
        self.signups: list[dict] = []
        self._outbox: queue.Queue[Order | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._deliver_forever, daemon=True,
                                        name="demo-shop-outbox")
        self._worker.start()

    def configure(self, app_url: str, public_key: str = "", server_key: str = "") -> None:
        self.app_url = (app_url or "").rstrip("/")
        self.public_key, self.server_key = public_key or "", server_key or ""

    def close(self) -> None:
        self._outbox.put(None)

    # --- the shop's backend: Order Completed through the tracking API ----------------
    def order_completed(self, order: Order) -> dict:
        """The Segment track call the shop's server sends for a placed order."""
        products = [{"product_id": li["product_id"], "sku": li.get("sku", ""),
                     "name": li.get("name", ""), "price": float(li["price"]),
                     "quantity": int(li["quantity"])} for li in order.lines]
        return {
            "type": "track", "event": "Order Completed", "messageId": order.message_id,
            "anonymousId": order.anonymous_id or None,
            "timestamp": order.placed_at.isoformat().replace("+00:00", "Z"),
            "properties": {"order_id": f"demo-{order.number}", "total": order.total,
                           "revenue": order.total, "currency": CURRENCY, "products": products,
                           "email": order.email},
            "context": {"traits": {"email": order.email},
                        "library": {"name": "demo-shop", "version": "1"}},
        }

    def _deliver_forever(self) -> None:
        while (order := self._outbox.get()) is not None:
            self._deliver(order)

    def _deliver(self, order: Order) -> None:
        """Retry with backoff on network errors and 5xx/429; the same messageId every time,
        so a retry after a lost answer is not counted twice."""
        for delay in (0, *self.retry_delays):
            time.sleep(delay)
            if not (self.app_url and self.server_key):
                continue
            auth = base64.b64encode(f"{self.server_key}:".encode()).decode()
            body = json.dumps(self.order_completed(order), separators=(",", ":")).encode()
            result = post(f"{self.app_url}/v1/track", {
                "Content-Type": "application/json", "Authorization": f"Basic {auth}",
                "User-Agent": "tributary-demo-shop/1"}, body, self.timeout)
            with self._lock:
                order.attempts.append(result.status)
            if result.ok:
                order.delivered = True
                return
            if result.status is not None and 400 <= result.status < 500 \
                    and result.status not in (408, 429):
                return  # refused (bad key, bad event): retrying will not help

    # --- pages ------------------------------------------------------------------------
    def _page(self, title: str, body: str, status: int = 200) -> Response:
        tag = ""
        if self.app_url and self.public_key:
            tag = (f'<script async src="{html.escape(self.app_url)}/static/tributary.js" '
                   f'data-key="{html.escape(self.public_key)}" '
                   f'data-host="{html.escape(self.app_url)}"></script>')
        note = "" if tag else ('<p class="note">This shop is not connected to Tributary '
                               "yet: no events are sent.</p>")
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Demo shop</title><link rel="stylesheet" href="/static/shop.css">
{tag}
<script src="/static/shop.js" defer></script></head><body>
<header><span class="brand">Demo shop</span><a href="/">Home</a><a href="/cart">Cart</a></header>
{note}<main>{body}</main></body></html>"""
        return Response(page, status=status, content_type="text/html; charset=utf-8")

    def _home(self) -> Response:
        cards = "".join(
            f'<div class="card"><h3><a href="/products/{slug}">{html.escape(p["name"])}</a>'
            f'</h3><p>{p["price"]:.2f} {CURRENCY}</p></div>' for slug, p in PRODUCTS.items())
        return self._page("Home", f"""<h1>Welcome to the demo shop</h1>
<div class="products">{cards}</div>
<section class="card"><h2>Newsletter</h2>
<form data-tributary-form="newsletter" method="post" action="/signup">
<label>Email <input type="email" name="email" required></label>
<label>First name <input type="text" name="first_name"></label>
<label><input type="checkbox" name="consent" value="yes" data-tributary-consent>
 Yes, send me the newsletter</label>
<button type="submit">Sign up</button></form></section>""")

    def _product(self, slug: str) -> Response:
        p = PRODUCTS.get(slug)
        if p is None:
            return self._page("Not found", "<h1>No such product</h1>", 404)
        data = html.escape(json.dumps(p), quote=True)
        return self._page(p["name"], f"""<article data-product="{data}">
<h1>{html.escape(p["name"])}</h1><p>{html.escape(p["blurb"])}</p>
<p>{p["price"]:.2f} {CURRENCY}</p>
<button type="button" id="add-to-cart">Add to cart</button>
<p id="added" role="status"></p></article>""")

    def _cart(self) -> Response:
        return self._page("Cart", """<h1>Your cart</h1><ul id="cart-lines"></ul>
<p>Total: <span id="cart-total"></span></p>
<form id="checkout" method="post" action="/order" hidden>
<label>Email for the receipt <input type="email" id="checkout-email" name="email" required>
</label><input type="hidden" name="lines" id="checkout-lines">
<input type="hidden" name="anonymous_id" id="checkout-aid">
<button type="submit">Place order</button></form>""")

    def _place_order(self, request: Request) -> Response:
        email = request.form.get("email", "").strip()[:254]
        try:
            raw = json.loads(request.form.get("lines", "[]"))
            lines = [{"product_id": str(li["product_id"])[:64], "sku": str(li.get("sku", ""))[:64],
                      "name": str(li.get("name", ""))[:200], "price": float(li["price"]),
                      "quantity": max(1, min(int(li["quantity"]), 99))} for li in raw[:50]]
        except (ValueError, TypeError, KeyError):
            lines = []
        if not email or "@" not in email or not lines:
            return self._page("Cart", "<h1>Your cart is empty or the email is missing</h1>"
                                      '<p><a href="/cart">Back to the cart</a></p>', 422)
        with self._lock:
            number = 1001 + len(self.orders)
            order = Order(number, email, lines, request.form.get("anonymous_id", "")[:200],
                          str(uuid.uuid4()), datetime.now(UTC))
            self.orders.append(order)
        self._outbox.put(order)
        return self._page(f"Order {number}", f"""<h1 id="order-placed">Thank you!</h1>
<p>Order #{number}, {order.total:.2f} {CURRENCY}. A receipt goes to
{html.escape(email)}.</p><p><a href="/">Back to the shop</a></p>""")

    def __call__(self, environ, start_response):
        request = Request(environ)
        path, method = request.path, request.method
        if path == "/static/shop.js":
            response = Response((STATIC / "demo_shop.js").read_bytes(),
                                content_type="text/javascript; charset=utf-8")
        elif path == "/static/shop.css":
            response = Response((STATIC / "demo_shop.css").read_bytes(),
                                content_type="text/css; charset=utf-8")
        elif path == "/" and method == "GET":
            response = self._home()
        elif path.startswith("/products/") and method == "GET":
            response = self._product(path.removeprefix("/products/"))
        elif path == "/cart" and method == "GET":
            response = self._cart()
        elif path == "/signup" and method == "POST":
            with self._lock:
                self.signups.append({"email": request.form.get("email", "")[:254],
                                     "consent": request.form.get("consent") == "yes"})
            response = self._page("Thanks", "<h1>Thanks for signing up!</h1>"
                                             '<p><a href="/">Back to the shop</a></p>')
        elif path == "/order" and method == "POST":
            response = self._place_order(request)
        else:
            response = self._page("Not found", "<h1>Page not found</h1>", 404)
        return response(environ, start_response)


def start(app_url: str = "", public_key: str = "", server_key: str = "", port: int = 0,
          host: str = "127.0.0.1", **options) -> tuple[Running, DemoShop]:
    """Serve a demo shop on host:port (0: a free port) in a background thread."""
    shop = DemoShop(app_url, public_key, server_key, **options)
    return serve(shop, host, port), shop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.demo_shop",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default="", help="Tributary's URL (serves the snippet)")
    parser.add_argument("--public-key", default="", help="the source's pk_… key")
    parser.add_argument("--server-key", default="", help="the source's sk_… key")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    running, _shop = start(args.app, args.public_key, args.server_key, args.port, args.host)
    print(f"Demo shop on {running.url}", flush=True)
    try:
        running._thread.join()
    except KeyboardInterrupt:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
