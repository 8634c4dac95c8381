"""Shopify Admin API simulator: REST customers.json and orders.json (shopify_orders.py)
with Link-header pagination, a minimal
GraphQL endpoint (metafield definitions, customer tags, metafield values), the OAuth
authorize/token endpoints, the REST leaky bucket and Shopify's real error shapes.

Each shop lives under a path prefix standing in for its host: the simulator at
`http://127.0.0.1:PORT` serves `https://{shop}` as `http://127.0.0.1:PORT/{shop}`; any other
shop answers 404 like an unknown myshopify.com domain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from .dataset import Person
from .server import lose_answer
from .shopify_orders import DEFAULT_ORDERS, orders_endpoint, seed_orders

SHOP = "tributary-demo.myshopify.com"
API_VERSION = "2025-10"
CLIENT_ID = "sim-shopify-client-id"
CLIENT_SECRET = "sim-shopify-client-secret"
SCOPES = ("read_customers", "read_orders")
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
BUCKET_SIZE = 40
LEAK_PER_SECOND = 2.0
GRAPHQL_BUCKET = 1000.0
GRAPHQL_RESTORE = 50.0
ACCESS_TTL = 3600
REFRESH_TTL = 90 * 24 * 3600

BAD_TOKEN = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
THROTTLED = {
    "errors": "Exceeded 2 calls per second for api client. "
    "Reduce request rates to resume uninterrupted service."
}
PAGINATION_DOC = "See https://shopify.dev/api/usage/pagination-rest for more information."
REST_FILTERS = (
    "ids", "since_id", "created_at_min", "created_at_max", "updated_at_min", "updated_at_max",
)
REST_KNOWN = frozenset(REST_FILTERS + ("limit", "fields", "page_info"))

# (namespace, key, name, type, choices) of the customer metafield definitions.
METAFIELDS = (
    ("custom", "loyalty_tier", "Loyalty tier", "single_line_text_field",
     ("Bronze", "Silver", "Gold", "Platinum")),
    ("custom", "birthday", "Birthday", "date", ()),
    ("custom", "lifetime_value", "Lifetime value", "number_decimal", ()),
    ("custom", "website", "Website", "url", ()),
)

_PATH = re.compile(r"^/(?P<shop>[^/]+)/admin/(?P<rest>.*)$")
_API = re.compile(r"^api/(?P<ver>[^/]+)/(?P<res>.+)$")
_WEBHOOK = re.compile(r"^webhooks/(?P<id>\d+)\.json$")
WEBHOOK_TOPICS = frozenset({
    "customers/create", "customers/update", "customers/delete",
    "customers_email_marketing_consent/update", "orders/create", "orders/paid",
    "orders/cancelled", "orders/updated", "refunds/create", "checkouts/create",
    "checkouts/update", "app/uninstalled", "customers/data_request", "customers/redact",
    "shop/redact",
})
_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$")
_ALIAS = re.compile(r'(\w+)\s*:\s*metafield\(\s*namespace:\s*"([^"]+)"\s*,\s*key:\s*"([^"]+)"\s*\)')


def consent_state(person: Person) -> str | None:
    """Shopify's email_marketing_consent.state for a dataset person (None: no email, so
    Shopify reports no consent object). Spreads the states, pending and redacted included."""
    if person.email is None:
        return None
    if person.consent == "subscribed":
        return "pending" if person.id % 10 == 3 else "subscribed"
    if person.consent == "opted_out":
        return ("unsubscribed", "redacted", "invalid")[person.id % 3]
    return "pending" if person.id % 8 == 0 else "not_subscribed"


def _metafield_value(person: Person, key: str) -> str | None:
    value = {
        "loyalty_tier": person.loyalty_tier,
        "birthday": person.birthday.isoformat() if person.birthday else None,
        "lifetime_value": f"{person.lifetime_value:.2f}" if person.lifetime_value is not None
        else None,
        "website": person.website,
    }.get(key)
    return value


def _parse_time(value: str, tz: timezone) -> datetime:
    """ISO 8601 as Shopify accepts it; a time without offset is in the shop's zone."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


class State:
    """The simulated shop and its test controls (error injection, tokens, bucket, clock)."""

    def __init__(
        self,
        people: list[Person],
        *,
        shop: str,
        shop_offset: timedelta,
        client_id: str,
        client_secret: str,
        scopes: tuple[str, ...],
        clock: Callable[[], float],
        bucket: bool,
        refresh_grace: bool,
        exclusive_min: bool = False,
        shop_name: str = "",
        orders: int = DEFAULT_ORDERS,
    ):
        self.orders = seed_orders(sorted(people, key=lambda p: p.id), orders)
        self.shop_name = shop_name  # shop.json's name ("" like a shop never named)
        self.lock = threading.RLock()
        self.people = sorted(people, key=lambda p: p.id)
        self.shop = shop
        self.tz = timezone(shop_offset)
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = tuple(scopes)
        self.clock = clock
        self.bucket_enabled = bucket
        self.refresh_grace = refresh_grace
        self.exclusive_min = exclusive_min  # docs say "updated after": handle both readings
        self.bucket_level = 0.0
        self._bucket_at = clock()
        self.graphql_bucket_enabled = False
        self.graphql_available = GRAPHQL_BUCKET
        self._graphql_at = clock()
        self.graphql_throttle_status = 200  # Shopify answers THROTTLED with 200 (or 429)
        self.throttle_next_graphql = 0
        self.error_every = 0
        self.error_status = 0
        self.delay = 0.0
        self.lose_token_answers = 0  # the next N refresh answers are lost (server.lose_answer)
        self.lose_mode = "close"
        self.counters = {
            "api": 0, "rest": 0, "graphql": 0, "refresh": 0, "code": 0, "throttled": 0,
            "injected": 0,
        }
        self.ignored_params: list[str] = []
        self.reject_tokens = False  # every access token refused, even fresh ones
        self.access_tokens: dict[str, float | None] = {}  # token -> expiry (None: never)
        self.refresh_tokens: dict[str, dict] = {}  # token -> {"expires", "replaced_by"}
        self.codes: set[str] = set()
        # Webhook subscriptions made through the Admin API: id -> {id, topic, address,
        # format, api_version, created_at}. The webhook emitter reads them with
        # `webhook_subscriptions()`.
        self.webhooks: dict[int, dict] = {}
        self._next_webhook_id = 1_000_001

    # ------------------------------------------------------------------ controls

    def webhook_subscriptions(self, topic: str | None = None) -> list[dict]:
        """Copies of the current subscriptions (all, or those of one topic), oldest first."""
        with self.lock:
            return [dict(w) for _, w in sorted(self.webhooks.items())
                    if topic is None or w["topic"] == topic]

    def inject_errors(self, every: int, status: int) -> None:
        """Every `every`-th API request answers `status`; 0 turns injection off."""
        with self.lock:
            self.error_every, self.error_status = every, status
            self.counters["api_at_injection"] = self.counters["api"]

    def expire_access_token(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def kill_refresh_token(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def touch(self, ids: list[int], at: datetime) -> None:
        from .dataset import touch

        with self.lock:
            touch(self.people, ids, at)

    def fill_bucket(self, level: float) -> None:
        with self.lock:
            self.bucket_level, self._bucket_at = level, self.clock()

    def issue_code(self) -> str:
        code = secrets.token_hex(16)
        with self.lock:
            self.codes.add(code)
        return code

    def issue_tokens(self, *, expiring: bool = True) -> dict:
        """A new access token (and with `expiring`, a refresh token), as the endpoint answers."""
        now = self.clock()
        access = "shpat_" + secrets.token_hex(16)
        body: dict = {"access_token": access, "scope": ",".join(self.scopes)}
        with self.lock:
            if expiring:
                refresh = "shprt_" + secrets.token_hex(16)
                self.access_tokens[access] = now + ACCESS_TTL
                self.refresh_tokens[refresh] = {"expires": now + REFRESH_TTL, "replaced_by": None}
                body.update(expires_in=ACCESS_TTL, refresh_token=refresh,
                            refresh_token_expires_in=REFRESH_TTL)
            else:
                self.access_tokens[access] = None
        return body

    # ------------------------------------------------------------------ helpers

    def render_time(self, dt: datetime | None) -> str | None:
        return dt.astimezone(self.tz).isoformat(timespec="seconds") if dt else None

    def leak(self) -> None:
        now = self.clock()
        self.bucket_level = max(0.0, self.bucket_level - (now - self._bucket_at) * LEAK_PER_SECOND)
        self._bucket_at = now

    def customer(self, p: Person) -> dict:
        """A dataset person as REST customers.json renders it."""
        address = None
        if p.country or p.phone:
            address = {
                "id": 9_000_000 + p.id, "customer_id": p.id, "first_name": p.first_name,
                "last_name": p.last_name, "company": None, "address1": f"{p.id} Main Street",
                "address2": None, "city": "Springfield", "province": None,
                "country": p.country, "zip": "12345", "phone": p.phone, "name":
                f"{p.first_name} {p.last_name}", "province_code": None,
                "country_code": p.country, "country_name": p.country, "default": True,
            }
        state = consent_state(p)
        consent = None
        if state is not None:
            consent = {
                "state": state,
                "opt_in_level": "confirmed_opt_in" if p.id % 2 else "single_opt_in",
                "consent_updated_at": self.render_time(p.consent_at),
            }
        body = {
            "id": p.id, "email": p.email, "created_at": self.render_time(p.created_at),
            "updated_at": self.render_time(p.updated_at), "first_name": p.first_name,
            "last_name": p.last_name, "orders_count": p.id % 7, "state":
            "enabled" if p.id % 4 else "disabled", "total_spent": f"{(p.id % 7) * 19.5:.2f}",
            "last_order_id": None, "note": p.note or None, "verified_email": p.id % 5 != 0,
            "multipass_identifier": None, "tax_exempt": False, "tags": ", ".join(p.tags),
            "last_order_name": None, "currency": "USD", "phone": p.phone,
            "addresses": [address] if address else [], "tax_exemptions": [],
            "email_marketing_consent": consent, "sms_marketing_consent": None,
            "admin_graphql_api_id": f"gid://shopify/Customer/{p.id}",
        }
        if address:
            body["default_address"] = address
        return body


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


def _encode_token(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class CursorArgs:
    """A REST list request's paging, as Shopify reads it: `limit` (1-250), and either the
    filters or a `page_info` cursor (which carries them; only limit and fields may come
    with it)."""

    limit: int
    filters: dict
    backward: bool
    edge: int

    def page(self, matched: list, key) -> tuple[list, bool, bool]:
        """(the page of `matched`, ordered by `key`, and whether pages lie before/after)."""
        if self.backward:
            before = [item for item in matched if key(item) < self.edge]
            return before[-self.limit:], len(before) > self.limit, True
        after = [item for item in matched if key(item) > self.edge]
        return after[:self.limit], self.edge > 0, len(after) > self.limit

    def links(self, base: str, first_id, last_id, has_prev: bool, has_next: bool) -> str:
        """The Link header's previous/next cursors ('' for a single page)."""
        links = []
        for rel, direction, edge, wanted in (("previous", "prev", first_id, has_prev),
                                             ("next", "next", last_id, has_next)):
            if edge and wanted:
                tok = _encode_token({"filters": self.filters, "direction": direction,
                                     "last_id": edge})
                links.append(f'<{base}?{urlencode({"limit": self.limit, "page_info": tok})}>;'
                             f' rel="{rel}"')
        return ", ".join(links)


def cursor_args(args: dict, filter_names, default_limit: int):
    """CursorArgs from the query, or the 400 Shopify answers for a bad one."""
    try:
        limit = int(args.get("limit", default_limit))
    except ValueError:
        return _json({"errors": {"limit": "Invalid value."}}, 400)
    if not 1 <= limit <= MAX_LIMIT:
        return _json({"errors": {"limit": f"limit must be between 1 and {MAX_LIMIT}"}}, 400)
    if "page_info" not in args:
        return CursorArgs(limit, {k: args[k] for k in filter_names if args.get(k)}, False, 0)
    extra = [k for k in args if k not in {"page_info", "limit", "fields"}]
    if extra:
        return _json({"errors": {extra[0]: f"{extra[0]} cannot be passed when "
                                           f"page_info is present. {PAGINATION_DOC}"}}, 400)
    token = _decode_token(args["page_info"])
    if token is None:
        return _json({"errors": {"page_info": "Invalid value."}}, 400)
    return CursorArgs(limit, token.get("filters", {}), token.get("direction") == "prev",
                      int(token["last_id"]))


def _decode_token(token: str) -> dict | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return data if isinstance(data, dict) and "last_id" in data else None


class ShopifySimulator:
    """The WSGI app; `state` holds the test controls."""

    def __init__(self, state: State):
        self.state = state

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.dispatch(request)
        response.headers["Date"] = format_datetime(
            datetime.fromtimestamp(self.state.clock(), UTC), usegmt=True
        )
        return response(environ, start_response)

    # ---------------------------------------------------------------- dispatch

    def dispatch(self, request: Request) -> Response:
        st = self.state
        if st.delay:
            time.sleep(st.delay)
        m = _PATH.match(request.path)
        if not m or m["shop"] != st.shop:
            return Response("<h1>Sorry, this shop is currently unavailable.</h1>", status=404,
                            content_type="text/html")
        rest = m["rest"]
        if rest == "oauth/authorize" and request.method == "GET":
            return self.authorize(request)
        if rest == "oauth/access_token":
            if request.method != "POST":
                return _json({"errors": "Not Found"}, 404)
            return self.access_token(request)
        api = _API.match(rest)
        if rest != "oauth/access_scopes.json" and not api:
            return _json({"errors": "Not Found"}, 404)
        if api and not _VERSION.match(api["ver"]):
            return _json({"errors": "Not Found"}, 404)
        is_graphql = bool(api) and api["res"] == "graphql.json"
        with st.lock:
            st.counters["api"] += 1
            st.counters["graphql" if is_graphql else "rest"] += 1
            injected = self._injected()
            if injected is not None:
                return injected
            denied = self._authenticate(request)
            if denied is not None:
                return denied
            if not is_graphql:
                limited = self._bucket()
                if limited is not None:
                    return limited
        headers = {"X-Shopify-API-Version": api["ver"] if api else API_VERSION}
        if not is_graphql:
            headers["X-Shopify-Shop-Api-Call-Limit"] = self._call_limit()
        if rest == "oauth/access_scopes.json":
            resp = _json({"access_scopes": [{"handle": s} for s in st.scopes]})
        elif is_graphql:
            resp = self.graphql(request) if request.method == "POST" else _json(
                {"errors": "Not Found"}, 404)
        elif api["res"] == "shop.json":
            resp = _json({"shop": {
                "id": 548380009, "name": st.shop_name, "myshopify_domain": st.shop,
                "domain": st.shop, "email": f"owner@{st.shop}",
                "currency": "USD", "plan_name": "basic",
                "iana_timezone": "America/New_York",
            }})
        elif api["res"] == "customers.json" and request.method == "GET":
            resp = self.customers(request, api["ver"])
        elif api["res"] == "customers/count.json" and request.method == "GET":
            resp = self.count(request)
        elif api["res"] == "orders.json" and request.method == "GET":
            resp = orders_endpoint(self, request, api["ver"])
        elif api["res"] == "webhooks.json" or _WEBHOOK.match(api["res"]):
            resp = self.webhooks(request, api["ver"], api["res"])
        else:
            resp = _json({"errors": "Not Found"}, 404)
        resp.headers.extend(headers)
        return resp

    def webhooks(self, request: Request, version: str, res: str) -> Response:
        """REST webhooks.json: list (GET), subscribe (POST), webhooks/{id}.json GET/DELETE,
        with Shopify's 422 shapes for an unknown topic or a topic+address taken."""
        st = self.state
        m = _WEBHOOK.match(res)
        with st.lock:
            if m:
                hook = st.webhooks.get(int(m["id"]))
                if hook is None:
                    return _json({"errors": "Not Found"}, 404)
                if request.method == "DELETE":
                    del st.webhooks[hook["id"]]
                    return _json({})
                if request.method == "GET":
                    return _json({"webhook": dict(hook)})
                return _json({"errors": "Not Found"}, 404)
            if request.method == "GET":
                topic = request.args.get("topic")
                return _json({"webhooks": st.webhook_subscriptions(topic)})
            if request.method != "POST":
                return _json({"errors": "Not Found"}, 404)
            body = request.get_json(silent=True) or {}
            hook = body.get("webhook") if isinstance(body, dict) else None
            if not isinstance(hook, dict):
                return _json({"errors": {"webhook": "Required parameter missing or invalid"}},
                             400)
            topic, address = hook.get("topic"), hook.get("address")
            if topic not in WEBHOOK_TOPICS:
                return _json({"errors": {"topic": ["Invalid topic specified. Topics allowed: "
                                                   + ", ".join(sorted(WEBHOOK_TOPICS))]}}, 422)
            if not isinstance(address, str) or not address.startswith(("https://",
                                                                        "http://")):
                return _json({"errors": {"address": ["is invalid"]}}, 422)
            if any(w["topic"] == topic and w["address"] == address
                   for w in st.webhooks.values()):
                return _json({"errors": {"address": ["for this topic has already been taken"]}},
                             422)
            hook_id = st._next_webhook_id
            st._next_webhook_id += 1
            now = datetime.fromtimestamp(st.clock(), UTC).astimezone(st.tz)
            row = {"id": hook_id, "topic": topic, "address": address,
                   "format": hook.get("format") or "json", "api_version": version,
                   "created_at": now.isoformat(timespec="seconds"),
                   "fields": [], "metafield_namespaces": []}
            st.webhooks[hook_id] = row
            return _json({"webhook": dict(row)}, 201)

    def _injected(self) -> Response | None:
        st = self.state
        if not st.error_every:
            return None
        n = st.counters["api"] - st.counters.get("api_at_injection", 0)
        if n % st.error_every:
            return None
        st.counters["injected"] += 1
        if st.error_status == 429:
            return _json(THROTTLED, 429, {"Retry-After": "2.0",
                                          "X-Shopify-Shop-Api-Call-Limit": "40/40"})
        return _json({"errors": "Internal Server Error"} if st.error_status == 500
                     else {"errors": "Service Unavailable"}, st.error_status)

    def _authenticate(self, request: Request) -> Response | None:
        st = self.state
        token = request.headers.get("X-Shopify-Access-Token", "")
        expiry = st.access_tokens.get(token, 0.0)
        if st.reject_tokens or token not in st.access_tokens or (
            expiry is not None and expiry <= st.clock()
        ):
            st.access_tokens.pop(token, None)
            return _json(BAD_TOKEN, 401)
        # First use of a rotated access token retires the refresh token it replaced.
        for refresh, info in list(st.refresh_tokens.items()):
            if info["replaced_by"] == token:
                del st.refresh_tokens[refresh]
        if request.path.endswith(("customers.json", "customers/count.json")) and (
            "read_customers" not in st.scopes
        ):
            return _json({"errors": "[API] This action requires merchant approval for "
                                    "read_customers scope."}, 403)
        if request.path.endswith("/orders.json") and "read_orders" not in st.scopes:
            return _json({"errors": "[API] This action requires merchant approval for "
                                    "read_orders scope."}, 403)
        return None

    def _bucket(self) -> Response | None:
        st = self.state
        st.leak()
        if st.bucket_enabled and st.bucket_level + 1 > BUCKET_SIZE:
            st.counters["throttled"] += 1
            return _json(THROTTLED, 429, {
                "Retry-After": "2.0",
                "X-Shopify-Shop-Api-Call-Limit": f"{BUCKET_SIZE}/{BUCKET_SIZE}",
            })
        if st.bucket_enabled:
            st.bucket_level += 1
        return None

    def _call_limit(self) -> str:
        st = self.state
        used = math.ceil(st.bucket_level) if st.bucket_enabled else 1
        return f"{max(used, 1)}/{BUCKET_SIZE}"

    # ---------------------------------------------------------------- REST

    def _filtered(self, args: dict) -> list[Person] | Response:
        st = self.state
        try:
            ids = {int(x) for x in args["ids"].split(",")} if args.get("ids") else None
            since_id = int(args.get("since_id") or 0)
            bounds = {k: _parse_time(args[k], st.tz) for k in REST_FILTERS[2:] if args.get(k)}
        except ValueError:
            return _json({"errors": "Bad Request"}, 400)
        out = []
        for p in st.people:
            if p.id <= since_id or (ids is not None and p.id not in ids):
                continue
            if "created_at_min" in bounds and p.created_at < bounds["created_at_min"]:
                continue
            if "created_at_max" in bounds and p.created_at > bounds["created_at_max"]:
                continue
            if "updated_at_min" in bounds and (
                p.updated_at <= bounds["updated_at_min"] if st.exclusive_min
                else p.updated_at < bounds["updated_at_min"]
            ):
                continue
            if "updated_at_max" in bounds and p.updated_at > bounds["updated_at_max"]:
                continue
            out.append(p)
        return out

    def customers(self, request: Request, version: str) -> Response:
        st = self.state
        args = request.args.to_dict()
        st.ignored_params.extend(k for k in args if k not in REST_KNOWN)
        walk = cursor_args(args, REST_FILTERS, DEFAULT_LIMIT)
        if isinstance(walk, Response):
            return walk
        with st.lock:
            matched = self._filtered(walk.filters)
            if isinstance(matched, Response):
                return matched
            page, has_prev, has_next = walk.page(matched, lambda p: p.id)
            body = {"customers": [st.customer(p) for p in page]}
        if args.get("fields"):
            keep = {f.strip() for f in args["fields"].split(",")}
            body["customers"] = [{k: v for k, v in c.items() if k in keep}
                                 for c in body["customers"]]
        base = f"{request.host_url.rstrip('/')}/{st.shop}/admin/api/{version}/customers.json"
        links = walk.links(base, page and page[0].id, page and page[-1].id, has_prev, has_next)
        return _json(body, 200, {"Link": links} if links else None)

    def count(self, request: Request) -> Response:
        args = {k: v for k, v in request.args.items() if k in REST_FILTERS}
        with self.state.lock:
            matched = self._filtered(args)
        if isinstance(matched, Response):
            return matched
        return _json({"count": len(matched)})

    # ---------------------------------------------------------------- GraphQL

    def graphql(self, request: Request) -> Response:
        st = self.state
        try:
            payload = json.loads(request.get_data() or b"{}")
            query = payload["query"]
        except (ValueError, KeyError, TypeError):
            return _json({"errors": "Bad Request"}, 400)
        variables = payload.get("variables") or {}
        aliases = _ALIAS.findall(query)
        compact = re.sub(r"\s+", "", query)
        if "nodes(ids:" in compact:
            cost = len(variables.get("ids") or []) * (1 + len(aliases)) + 1
        else:
            cost = 11
        with st.lock:
            throttled = self._graphql_cost(cost)
        if throttled is not None:
            return throttled
        extensions = {"cost": {
            "requestedQueryCost": cost, "actualQueryCost": cost,
            "throttleStatus": {"maximumAvailable": GRAPHQL_BUCKET,
                               "currentlyAvailable": st.graphql_available,
                               "restoreRate": GRAPHQL_RESTORE},
        }}
        if cost > 1000:
            return _json({"errors": [{
                "message": f"Query cost is {cost}, which exceeds the single query max cost "
                           "limit (1000).",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": 1000},
            }], "extensions": extensions})
        if "metafieldDefinitions(" in compact:
            if "ownerType:CUSTOMER" not in compact:
                return _json({"errors": [{"message": "ownerType must be CUSTOMER here"}]})
            nodes = [{
                "namespace": ns, "key": key, "name": name, "type": {"name": typ},
                "description": None,
                "validations": [{"name": "choices", "value": json.dumps(list(choices))}]
                if choices else [],
            } for ns, key, name, typ, choices in METAFIELDS]
            data = {"metafieldDefinitions": {
                "nodes": nodes, "pageInfo": {"hasNextPage": False, "endCursor": None}}}
        elif "customerTags(" in compact:
            with st.lock:
                tags = sorted({t for p in st.people for t in p.tags})
            data = {"shop": {"customerTags": {"edges": [{"node": t} for t in tags]}}}
        elif "nodes(ids:" in compact:
            by_id = {p.id: p for p in st.people}
            types = {(ns, key): typ for ns, key, _, typ, _ in METAFIELDS}
            nodes = []
            for gid in variables.get("ids") or []:
                try:
                    p = by_id.get(int(str(gid).rsplit("/", 1)[-1]))
                except ValueError:
                    p = None
                if p is None:
                    nodes.append(None)
                    continue
                node = {"id": f"gid://shopify/Customer/{p.id}"}
                for alias, ns, key in aliases:
                    value = _metafield_value(p, key) if (ns, key) in types else None
                    node[alias] = {"value": value, "type": types[(ns, key)]} if value else None
                nodes.append(node)
            data = {"nodes": nodes}
        else:
            return _json({"errors": [{"message": "This simulator answers only the queries "
                                                 "Tributary sends."}]})
        return _json({"data": data, "extensions": extensions})

    def _graphql_cost(self, cost: int) -> Response | None:
        st = self.state
        now = st.clock()
        st.graphql_available = min(
            GRAPHQL_BUCKET, st.graphql_available + (now - st._graphql_at) * GRAPHQL_RESTORE)
        st._graphql_at = now
        forced = st.throttle_next_graphql > 0
        if forced or (st.graphql_bucket_enabled and cost > st.graphql_available):
            st.throttle_next_graphql = max(0, st.throttle_next_graphql - 1)
            st.counters["throttled"] += 1
            available = min(st.graphql_available, max(0.0, cost - 1.0)) if forced \
                else st.graphql_available
            return _json({"errors": [{
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation":
                               "https://shopify.dev/api/usage/rate-limits"},
            }], "extensions": {"cost": {
                "requestedQueryCost": cost, "actualQueryCost": None,
                "throttleStatus": {"maximumAvailable": GRAPHQL_BUCKET,
                                   "currentlyAvailable": available,
                                   "restoreRate": GRAPHQL_RESTORE},
            }}}, st.graphql_throttle_status)
        if st.graphql_bucket_enabled:
            st.graphql_available -= cost
        return None

    # ---------------------------------------------------------------- OAuth

    def authorize(self, request: Request) -> Response:
        """The merchant approves at once: redirect to redirect_uri with a signed callback."""
        st = self.state
        args = request.args
        if args.get("client_id") != st.client_id or not args.get("redirect_uri"):
            return Response("Oauth error invalid_request: The client_id is invalid",
                            status=400, content_type="text/html")
        params = {
            "code": st.issue_code(), "host": base64.b64encode(
                f"admin.shopify.com/store/{st.shop.split('.')[0]}".encode()).decode(),
            "shop": st.shop, "state": args.get("state", ""),
            "timestamp": str(int(st.clock())),
        }
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        params["hmac"] = hmac.new(st.client_secret.encode(), message.encode(),
                                  hashlib.sha256).hexdigest()
        return Response(status=302, headers={
            "Location": f"{args['redirect_uri']}?{urlencode(params)}"})

    def access_token(self, request: Request) -> Response:
        st = self.state
        if request.is_json:
            form = {k: str(v) for k, v in (request.get_json(silent=True) or {}).items()}
        else:
            form = request.form.to_dict() or request.args.to_dict()
        if form.get("client_id") != st.client_id or form.get("client_secret") != st.client_secret:
            return _json({"error": "invalid_client",
                          "error_description": "Client credentials are invalid"}, 400)
        if form.get("grant_type") == "refresh_token":
            with st.lock:
                st.counters["refresh"] += 1
                info = st.refresh_tokens.get(form.get("refresh_token", ""))
                if info is None or info["expires"] <= st.clock():
                    return _json({"error": "invalid_grant"}, 400)
                body = st.issue_tokens(expiring=True)
                old = form["refresh_token"]
                if st.refresh_grace:
                    # Kept until the new access token is first used (Shopify, Aug 2026).
                    st.refresh_tokens[old]["replaced_by"] = body["access_token"]
                else:
                    del st.refresh_tokens[old]
                lose = st.lose_token_answers > 0
                st.lose_token_answers -= lose
            if lose:  # processed (the token rotated), but the answer never arrives
                return lose_answer(request, _json(body), st.lose_mode)
            return _json(body)
        with st.lock:
            st.counters["code"] += 1
            code = form.get("code", "")
            if code not in st.codes:
                return _json({"error": "invalid_request", "error_description":
                              "The authorization code was not found or was already used"}, 400)
            st.codes.discard(code)
        return _json(st.issue_tokens(expiring=form.get("expiring") == "1"))


def create_app(
    people: list[Person],
    *,
    shop: str = SHOP,
    shop_offset: timedelta = timedelta(hours=-5),
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    scopes: tuple[str, ...] = SCOPES,
    clock: Callable[[], float] = time.time,
    bucket: bool = False,
    refresh_grace: bool = True,
    exclusive_min: bool = False,
    shop_name: str = "Tributary Demo",
    orders: int = DEFAULT_ORDERS,
) -> ShopifySimulator:
    """The simulator over `people`. `bucket=True` enforces the REST leaky bucket (40, 2/s)
    against `clock`; `refresh_grace` keeps a used refresh token until its replacement's
    access token is first used (False: it dies at once); `exclusive_min` makes
    updated_at_min exclusive (the docs' "updated after" reading); `orders` seeded orders
    of these people are served by orders.json."""
    state = State(people, shop=shop, shop_offset=shop_offset, client_id=client_id,
                  client_secret=client_secret, scopes=scopes, clock=clock, bucket=bucket,
                  refresh_grace=refresh_grace, exclusive_min=exclusive_min,
                  shop_name=shop_name, orders=orders)
    app = ShopifySimulator(state)
    app.initial_tokens = state.issue_tokens(expiring=True)
    return app


def demo_config(app: ShopifySimulator, base_url: str) -> dict:
    """Settings and credentials connecting the Shopify client to this simulator."""
    st = app.state
    tokens = app.initial_tokens
    expires = datetime.fromtimestamp(st.clock() + tokens["expires_in"], UTC)
    return {
        "settings": {
            "shop": st.shop,
            "api_base": f"{base_url.rstrip('/')}/{st.shop}",
            "api_version": API_VERSION,
        },
        "credentials": {
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "expires_at": expires.isoformat(timespec="seconds"),
            "client_id": st.client_id,
            "client_secret": st.client_secret,
        },
    }
