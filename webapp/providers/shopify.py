"""Shopify client: customers over the REST Admin API (customers.json, Link-header pages),
metafield definitions and values over GraphQL, OAuth with HMAC-checked callbacks and
expiring, rotating tokens (PROVIDERS.md, Shopify)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from authlib.common.security import generate_token
from requests.utils import parse_header_links

from .base import (
    AuthError,
    ConfigurationError,
    Field,
    Group,
    Page,
    ProviderError,
    RateLimited,
    Record,
    RecordCount,
    SchemaError,
    Source,
    SourceUnavailable,
)
from .common import ProviderBase
from .http import HostPolicy, HttpClient, Response, parse_target, valid_hostname

DEFAULT_API_VERSION = "2025-10"
DEFAULT_SCOPES = ("read_customers", "read_orders")
HOST_PATTERNS = ("*.myshopify.com",)
MAX_PAGE_SIZE = 250
SHOP_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com")
_VERSION_RE = re.compile(r"^\d{4}-(01|04|07|10)$")
REFRESH_MARGIN = timedelta(seconds=60)
MAX_GRAPHQL_COST = 1000

CONSENT = {
    "subscribed": "subscribed",
    "unsubscribed": "opted_out",
    "redacted": "opted_out",
    "invalid": "opted_out",
    "pending": "unknown",  # double opt-in not confirmed yet
    # Said explicitly: after "subscribed" it means consent was withdrawn (PROVIDERS.md).
    "not_subscribed": "not_subscribed",
}

# Standard REST customer fields offered for mapping (nested ones by dotted path).
STANDARD_FIELDS = (
    Field("email", "Email", "email"),
    Field("first_name", "First name"),
    Field("last_name", "Last name"),
    Field("phone", "Phone", "phone"),
    Field("tags", "Tags", "multi_choice"),
    Field("note", "Note", "textarea"),
    Field("state", "Account state", "choice",
          allowed_values=("disabled", "invited", "enabled", "declined")),
    Field("verified_email", "Verified email", "boolean"),
    Field("tax_exempt", "Tax exempt", "boolean"),
    Field("currency", "Currency", "currency"),
    Field("orders_count", "Orders count", "number"),
    Field("total_spent", "Total spent", "number"),
    Field("created_at", "Created at", "datetime"),
    Field("updated_at", "Updated at", "datetime"),
    Field("email_marketing_consent.state", "Email marketing consent", "choice",
          allowed_values=tuple(CONSENT)),
    Field("email_marketing_consent.opt_in_level", "Opt-in level", "choice",
          allowed_values=("single_opt_in", "confirmed_opt_in", "unknown")),
    Field("email_marketing_consent.consent_updated_at", "Consent updated at", "datetime"),
    Field("default_address.company", "Company"),
    Field("default_address.address1", "Address line 1"),
    Field("default_address.address2", "Address line 2"),
    Field("default_address.city", "City"),
    Field("default_address.province", "Province"),
    Field("default_address.zip", "Postal code"),
    Field("default_address.country_code", "Country", "country"),
    Field("default_address.phone", "Address phone", "phone"),
)
_STANDARD_NAMES = frozenset(f.name for f in STANDARD_FIELDS)

# Metafield type -> (normalised field type, python converter of the string value).
METAFIELD_TYPES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "single_line_text_field": ("text", str),
    "multi_line_text_field": ("textarea", str),
    "rich_text_field": ("textarea", str),
    "date": ("date", str),
    "date_time": ("datetime", str),
    "number_integer": ("number", int),
    "number_decimal": ("number", float),
    "boolean": ("boolean", lambda v: v == "true"),
    "url": ("url", str),
    "email": ("email", str),
    "list.single_line_text_field": ("multi_choice", json.loads),
}

DEFINITIONS_QUERY = """
query MetafieldDefinitions($after: String) {
  metafieldDefinitions(ownerType: CUSTOMER, first: 250, after: $after) {
    nodes { namespace key name type { name } validations { name value } }
    pageInfo { hasNextPage endCursor }
  }
}"""
TAGS_QUERY = "query CustomerTags { shop { customerTags(first: 250) { edges { node } } } }"


class CallbackError(AuthError):
    """An OAuth callback that fails verification (bad HMAC, bad shop, wrong state)."""


# --------------------------------------------------------------------------- helpers


def normalize_shop(shop: str) -> str:
    """`name`, `name.myshopify.com` or its https URL -> `name.myshopify.com` (else error)."""
    value = (shop or "").strip().lower()
    if "://" in value:
        try:
            target = parse_target(value)
        except ConfigurationError:
            value = ""
        else:
            value = target.host if target.tail in ("", "/") and target.port == 443 else ""
    value = value.rstrip("/")
    if value and "." not in value:
        value += ".myshopify.com"
    if not SHOP_RE.fullmatch(value) or not valid_hostname(value):
        raise ConfigurationError(
            f"{shop!r} is not a Shopify shop address; use the name.myshopify.com form."
        )
    return value


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _policy(allow_loopback: bool) -> HostPolicy:
    return HostPolicy(HOST_PATTERNS, allow_loopback=allow_loopback)


def _base_url(shop: str, api_base: str | None, allow_loopback: bool) -> str:
    if api_base:
        if not allow_loopback:
            raise ConfigurationError("The api_base setting is only for tests and the demo.")
        target = parse_target(api_base.rstrip("/"))
        if target.host != "127.0.0.1":
            raise ConfigurationError("The api_base setting must be a loopback address.")
        return target.url
    return f"https://{shop}"


def _token_error(resp: Response) -> ProviderError:
    """Plain words for a failed answer of the token endpoint (no secrets in it)."""
    try:
        body = resp.json() or {}
    except SourceUnavailable:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if error == "invalid_grant":
        return AuthError("Shopify no longer accepts the saved authorisation; reconnect the shop.",
                         detail="invalid_grant")
    if error == "invalid_client":
        return AuthError("Shopify rejected the app's client id or secret.", detail=error)
    if error == "invalid_request":
        return AuthError("Shopify rejected the authorisation code (used or expired); "
                         "connect again.", detail=str(body.get("error_description", ""))[:200])
    if resp.status == 404:
        return ConfigurationError("Shopify has no such shop (unknown shop).")
    return SourceUnavailable(f"Shopify's token endpoint failed (HTTP {resp.status}).",
                             detail=resp.text[:200])


def _credentials_from_token(body: dict, base: dict, now: datetime) -> dict:
    creds = dict(base)
    creds["access_token"] = body["access_token"]
    if body.get("refresh_token"):
        creds["refresh_token"] = body["refresh_token"]
    if body.get("expires_in"):
        creds["expires_at"] = _iso(now + timedelta(seconds=int(body["expires_in"])))
    else:
        creds.pop("expires_at", None)
    if body.get("refresh_token_expires_in"):
        creds["refresh_token_expires_at"] = _iso(
            now + timedelta(seconds=int(body["refresh_token_expires_in"])))
    if body.get("scope"):
        creds["scope"] = body["scope"]
    return creds


# ----------------------------------------------------------------------------- OAuth


def new_state() -> str:
    """An unguessable OAuth `state` (nonce) to keep in the session until the callback."""
    return generate_token(32)


def authorize_url(
    shop: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    *,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    api_base: str | None = None,
    allow_loopback: bool = False,
) -> str:
    """Where to send the merchant to approve the app (offline access token)."""
    base = _base_url(normalize_shop(shop), api_base, allow_loopback)
    query = urlencode({"client_id": client_id, "scope": ",".join(scopes),
                       "redirect_uri": redirect_uri, "state": state})
    return f"{base}/admin/oauth/authorize?{query}"


def callback_hmac(params: Mapping[str, str], client_secret: str) -> str:
    """Shopify's hex HMAC-SHA256 of the callback query: all but `hmac`/`signature`, sorted
    by key, joined `k=v` with `&`."""
    message = "&".join(
        f"{k}={v}" for k, v in sorted(params.items()) if k not in {"hmac", "signature"}
    )
    return hmac.new(client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_callback(
    params: Mapping[str, str],
    client_secret: str,
    *,
    expected_state: str | None = None,
    max_age: timedelta | None = timedelta(hours=1),
    now: datetime | None = None,
) -> str:
    """Check an OAuth callback query (HMAC, shop domain, state, age); returns the shop."""
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in dict(params).items()}
    given = params.get("hmac") or ""
    if not given or not hmac.compare_digest(
        callback_hmac(params, client_secret).encode(), given.lower().encode()
    ):
        raise CallbackError("The Shopify callback signature does not match; it was not "
                            "sent by Shopify or was altered.")
    shop = params.get("shop") or ""
    if not SHOP_RE.fullmatch(shop) or not valid_hostname(shop):
        raise CallbackError("The Shopify callback names a shop that is not a myshopify.com "
                            "address.")
    if expected_state is not None and not hmac.compare_digest(
        params.get("state", "").encode(), expected_state.encode()
    ):
        raise CallbackError("The Shopify callback does not belong to this sign-in (state "
                            "mismatch); start connecting again.")
    if max_age is not None and params.get("timestamp"):
        try:
            sent = datetime.fromtimestamp(int(params["timestamp"]), UTC)
        except (ValueError, OverflowError) as exc:
            raise CallbackError("The Shopify callback carries a bad timestamp.") from exc
        if abs((now or datetime.now(UTC)) - sent) > max_age:
            raise CallbackError("The Shopify callback is too old; start connecting again.")
    return shop


def exchange_code(
    shop: str,
    code: str,
    client_id: str,
    client_secret: str,
    *,
    expiring: bool = True,
    http: HttpClient | None = None,
    api_base: str | None = None,
    allow_loopback: bool = False,
) -> dict:
    """Trade the callback's code for credentials (with `expiring`, a 1-hour access token
    and a rotating refresh token)."""
    shop = normalize_shop(shop)
    http = http or HttpClient(_policy(allow_loopback))
    data = {"client_id": client_id, "client_secret": client_secret, "code": code}
    if expiring:
        data["expiring"] = "1"
    resp = http.request(
        "POST", f"{_base_url(shop, api_base, allow_loopback)}/admin/oauth/access_token",
        data=data, headers={"Accept": "application/json"},
    )
    body = resp.json() if resp.status == 200 else None
    if not isinstance(body, dict) or not body.get("access_token"):
        raise _token_error(resp)
    return _credentials_from_token(
        body, {"client_id": client_id, "client_secret": client_secret}, datetime.now(UTC))


# ---------------------------------------------------------------------------- client


class Shopify(ProviderBase):
    """Customers of one Shopify shop. Settings: shop, api_version, optional page_size and
    api_base (tests/demo only); credentials: access_token, optional refresh_token,
    expires_at, client_id, client_secret."""

    name = "shopify"
    label = "Shopify"
    host_policy = staticmethod(_policy)

    def __init__(self, settings: dict, credentials: dict, **options: Any):
        super().__init__(settings, credentials, **options)
        self.shop = normalize_shop(settings.get("shop", ""))
        self.api_version = settings.get("api_version") or DEFAULT_API_VERSION
        if not _VERSION_RE.match(self.api_version):
            raise ConfigurationError(
                f"{self.api_version!r} is not a Shopify API version (YYYY-01/04/07/10).")
        self.page_size = int(settings.get("page_size") or MAX_PAGE_SIZE)
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
        self.base = _base_url(self.shop, settings.get("api_base"), self.allow_loopback)
        self.api = f"{self.base}/admin/api/{self.api_version}"
        if not self.credentials.get("access_token"):
            raise ConfigurationError("A Shopify Admin API access token is needed.")
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.call_limit: tuple[int, int] | None = None

    # ------------------------------------------------------------- transport

    def _can_refresh(self) -> bool:
        c = self.credentials
        return bool(c.get("refresh_token") and c.get("client_id") and c.get("client_secret"))

    def _refresh(self) -> None:
        """Trade the refresh token for a new pair; hand the rotated credentials back."""
        with self.refreshing() as adopted:
            if adopted:
                return
            c = self.credentials
            resp = self.http.request(
                "POST", f"{self.base}/admin/oauth/access_token",
                data={"client_id": c["client_id"], "client_secret": c["client_secret"],
                      "grant_type": "refresh_token", "refresh_token": c["refresh_token"]},
                headers={"Accept": "application/json"},
            )
            body = resp.json() if resp.status == 200 else None
            if not isinstance(body, dict) or not body.get("access_token"):
                raise _token_error(resp)
            self.hand_back(_credentials_from_token(body, c, self.now()))

    def _expired(self) -> bool:
        at = _parse_time(self.credentials.get("expires_at"))
        return at is not None and self.now() >= at - REFRESH_MARGIN

    def _call(self, method: str, url: str, **kwargs: Any) -> Response:
        """One API request: proactive refresh near expiry, one refresh+retry on 401,
        pacing by the call-limit header, typed errors for the rest."""
        if not url.startswith(self.base + "/"):
            raise SourceUnavailable("Shopify sent a page link to another address.")
        refreshed = False
        if self._expired() and self._can_refresh():
            self._refresh()
            refreshed = True
        while True:
            headers = {"X-Shopify-Access-Token": self.credentials["access_token"],
                       "Accept": "application/json"}
            resp = self.http.request(method, url, headers=headers, **kwargs)
            self._pace(resp)
            if resp.status == 401 and not refreshed and self._can_refresh():
                self._refresh()
                refreshed = True
                continue
            if resp.status >= 400:
                raise self._error(resp)
            return resp

    def _pace(self, resp: Response) -> None:
        """Leave room in the leaky bucket: pause when `X-Shopify-Shop-Api-Call-Limit` is
        nearly full instead of running into 429s."""
        used, _, size = (resp.headers.get("X-Shopify-Shop-Api-Call-Limit") or "").partition("/")
        if not (used.isdigit() and size.isdigit()):
            return
        self.call_limit = (int(used), int(size))
        if int(size) - int(used) <= 2:
            self.http.sleep(1.0)

    def _error(self, resp: Response) -> ProviderError:
        body: Any = None
        if "json" in (resp.headers.get("Content-Type") or ""):
            try:
                body = resp.json()
            except SourceUnavailable:
                body = None
        detail = json.dumps(body)[:300] if body is not None else resp.text[:300]
        if resp.status == 401:
            return AuthError("Shopify rejected the access token (bad or revoked token); "
                             "reconnect the shop.", detail=detail)
        if resp.status == 402:
            return SourceUnavailable("The Shopify shop is frozen for unpaid bills.",
                                     detail=detail)
        if resp.status == 403:
            return ConfigurationError("The Shopify app lacks the read_customers permission "
                                      "(missing scope).", detail=detail)
        if resp.status == 404:
            return ConfigurationError(f"Shopify has no shop at {self.shop} or does not know "
                                      f"API version {self.api_version} (unknown shop).",
                                      detail=detail)
        if resp.status == 423:
            return SourceUnavailable("The Shopify shop is locked.", detail=detail)
        return SourceUnavailable(f"Shopify refused the request (HTTP {resp.status}).",
                                 detail=detail)

    def _graphql(self, query: str, variables: dict | None = None) -> dict:
        """A GraphQL Admin query; waits out THROTTLED answers (HTTP 200) within the
        retry budget."""
        waited = 0.0
        while True:
            resp = self._call("POST", f"{self.api}/graphql.json", idempotent=True,
                              json={"query": query, "variables": variables or {}})
            body = resp.json() or {}
            errors = body.get("errors") or []
            if not errors:
                return body.get("data") or {}
            codes = {(e.get("extensions") or {}).get("code") for e in errors
                     if isinstance(e, dict)}
            if "THROTTLED" not in codes:
                raise SourceUnavailable("Shopify's GraphQL API answered with an error.",
                                        detail=json.dumps(errors)[:300])
            cost = (body.get("extensions") or {}).get("cost") or {}
            status = cost.get("throttleStatus") or {}
            need = float(cost.get("requestedQueryCost") or 1) - float(
                status.get("currentlyAvailable") or 0)
            delay = max(1.0, need / float(status.get("restoreRate") or 50))
            if waited + delay > self.http.retry_budget:
                raise RateLimited("Shopify's GraphQL API kept throttling beyond the retry "
                                  "budget.", retry_after=delay)
            self.http.sleep(delay)
            waited += delay

    # ------------------------------------------------------------- protocol

    def test_connection(self) -> None:
        """Token valid, shop known, API version served and read_customers granted."""
        self._call("GET", f"{self.api}/shop.json")
        resp = self._call("GET", f"{self.base}/admin/oauth/access_scopes.json")
        handles = {s.get("handle") for s in (resp.json() or {}).get("access_scopes", [])}
        if not handles & {"read_customers", "write_customers"}:
            raise ConfigurationError("The Shopify app lacks the read_customers permission "
                                     "(missing scope).")

    def groups(self) -> list[Group]:
        return [Group("customers", "Customers")]

    def _check_group(self, group: str) -> None:
        if group != "customers":
            raise ConfigurationError(f"Shopify has no group {group!r}; use 'customers'.")

    def sources(self, group: str) -> list[Source]:
        """All customers, or those carrying one tag (tags from GraphQL shop.customerTags)."""
        self._check_group(group)
        data = self._graphql(TAGS_QUERY)
        edges = (((data.get("shop") or {}).get("customerTags") or {}).get("edges")) or []
        tags = sorted({e["node"] for e in edges if e.get("node")}, key=str.lower)
        return [Source("all", "All customers")] + [
            Source(f"tag:{t}", f"Customers tagged {t}") for t in tags
        ]

    def _definitions(self) -> list[dict]:
        out: list[dict] = []
        after = None
        while True:
            data = self._graphql(DEFINITIONS_QUERY, {"after": after})
            conn = data.get("metafieldDefinitions") or {}
            out.extend(conn.get("nodes") or [])
            info = conn.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return out
            after = info.get("endCursor")

    def discover_fields(self, group: str) -> list[Field]:
        """Standard REST fields plus customer metafield definitions (`namespace.key`)."""
        self._check_group(group)
        fields = list(STANDARD_FIELDS)
        for d in self._definitions():
            type_name = (d.get("type") or {}).get("name", "")
            kind = METAFIELD_TYPES.get(type_name, ("other", str))[0]
            choices: tuple[str, ...] = ()
            for v in d.get("validations") or []:
                if v.get("name") == "choices":
                    try:
                        choices = tuple(str(x) for x in json.loads(v.get("value") or "[]"))
                    except ValueError:
                        choices = ()
            if choices and kind == "text":
                kind = "choice"
            fields.append(Field(f"{d['namespace']}.{d['key']}", d.get("name") or d["key"],
                                kind, custom=True, allowed_values=choices))
        return fields

    def _metafields_to_fetch(self, fields: list[str] | None) -> list[tuple[str, str, str]]:
        """(namespace, key, type) of the metafields a walk reads; SchemaError for names the
        shop does not have."""
        wanted = None if fields is None else [f for f in fields if f not in _STANDARD_NAMES]
        if wanted == []:
            return []
        defs = {f"{d['namespace']}.{d['key']}": d for d in self._definitions()}
        if wanted is None:
            wanted = list(defs)
        missing = tuple(sorted(n for n in wanted if n not in defs))
        if missing:
            raise SchemaError("These Shopify fields no longer exist: " + ", ".join(missing),
                              missing=missing)
        return [(defs[n]["namespace"], defs[n]["key"], (defs[n].get("type") or {}).get("name",
                 "")) for n in wanted]

    def _metafield_values(
        self, ids: list[int], metafields: list[tuple[str, str, str]]
    ) -> dict[int, dict[str, Any]]:
        """Metafield values for a page of customers: one GraphQL `nodes` query per chunk
        small enough for the 1,000-point single-query cost limit."""
        if not metafields or not ids:
            return {}
        selections = "\n".join(
            f'm{i}: metafield(namespace: "{ns}", key: "{key}") {{ value type }}'
            for i, (ns, key, _) in enumerate(metafields)
        )
        query = ("query CustomerMetafields($ids: [ID!]!) { nodes(ids: $ids) { "
                 f"... on Customer {{ id\n{selections}\n}} }} }}")
        chunk = max(1, min(MAX_PAGE_SIZE, (MAX_GRAPHQL_COST - 1) // (1 + len(metafields))))
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            data = self._graphql(query, {"ids": [f"gid://shopify/Customer/{i}" for i in part]})
            for node in data.get("nodes") or []:
                if not node:
                    continue
                values: dict[str, Any] = {}
                for i, (ns, key, type_name) in enumerate(metafields):
                    mf = node.get(f"m{i}")
                    values[f"{ns}.{key}"] = _convert(mf, type_name) if mf else None
                out[int(str(node["id"]).rsplit("/", 1)[-1])] = values
        return out

    def iter_pages(
        self,
        group: str,
        source: str,
        *,
        since: datetime | None = None,
        cursor: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> Iterator[Page]:
        """Walk customers.json in id order, following `Link: rel="next"`; the cursor keeps
        the last id so a resume asks `since_id` (page_info links cannot carry filters)."""
        self._check_group(group)
        tag = self._tag_of(source)
        if cursor:
            since = _parse_time(cursor.get("since"))
            last_id = int(cursor.get("last_id") or 0)
            high = _parse_time(cursor.get("high_water"))
            walk_start = _parse_time(cursor.get("walk_start"))
        else:
            last_id, high, walk_start = 0, None, None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        metafields = self._metafields_to_fetch(fields)
        params: dict[str, Any] = {"limit": self.page_size}
        if since is not None:
            # One second early: the filter's inclusiveness is not documented; we cut below.
            params["updated_at_min"] = _iso(since - timedelta(seconds=1))
        if last_id:
            params["since_id"] = last_id
        url: str | None = f"{self.api}/customers.json?{urlencode(params)}"
        while url:
            resp = self._call("GET", url)
            if walk_start is None:
                walk_start = self._server_time(resp)
            customers = (resp.json() or {}).get("customers") or []
            url = self._next_link(resp)
            values = self._metafield_values([c["id"] for c in customers], metafields)
            records = []
            for c in customers:
                last_id = max(last_id, int(c["id"]))
                rec = self._record(c, values.get(int(c["id"]), {}))
                if since is not None and rec.updated_at is not None and rec.updated_at < since:
                    continue
                if tag is not None and tag not in {t.lower() for t in rec.fields["tags"]}:
                    continue
                records.append(rec)
                if rec.updated_at and (high is None or rec.updated_at > high):
                    high = rec.updated_at
            yield Page(records, self._cursor(since, last_id, high, walk_start),
                       self._high_water(high, walk_start), done=url is None)

    # ------------------------------------------------------------- walk helpers

    @staticmethod
    def _tag_of(source: str) -> str | None:
        if source == "all":
            return None
        if source.startswith("tag:") and source[4:].strip():
            return source[4:].strip().lower()
        raise ConfigurationError(f"Unknown Shopify source {source!r}; use 'all' or 'tag:NAME'.")

    @staticmethod
    def _server_time(resp: Response) -> datetime | None:
        try:
            return parsedate_to_datetime(resp.headers.get("Date", "")).astimezone(UTC)
        except (TypeError, ValueError):
            return None

    @staticmethod
    def _high_water(high: datetime | None, walk_start: datetime | None) -> datetime | None:
        """The id-ordered walk can pass a record before it changes; if anything changed
        after the walk began, the next run restarts from the walk's start to catch it."""
        if high is None or walk_start is None:
            return high
        start = walk_start - timedelta(seconds=1)
        return start if high > start else high

    @staticmethod
    def _cursor(since, last_id, high, walk_start) -> dict[str, Any]:
        return {
            "since": _iso(since) if since else None,
            "last_id": last_id,
            "high_water": high.isoformat() if high else None,
            "walk_start": walk_start.isoformat() if walk_start else None,
        }

    def _next_link(self, resp: Response) -> str | None:
        header = resp.headers.get("Link")
        if not header:
            return None
        for link in parse_header_links(header):
            if link.get("rel") == "next":
                return link.get("url")
        return None

    def _record(self, c: dict, metafields: dict[str, Any]) -> Record:
        address = c.get("default_address") or {}
        consent = c.get("email_marketing_consent") or {}
        tags = [t.strip() for t in (c.get("tags") or "").split(",") if t.strip()]
        fields: dict[str, Any] = {}
        for f in STANDARD_FIELDS:
            head, _, sub = f.name.partition(".")
            fields[f.name] = (c.get(head) or {}).get(sub) if sub else c.get(head)
        fields["tags"] = tags
        fields.update(metafields)
        return Record(
            source_id=str(c["id"]),
            email=c.get("email"),
            first_name=c.get("first_name"),
            last_name=c.get("last_name"),
            phone=c.get("phone") or address.get("phone"),
            country=address.get("country_code"),
            consent=CONSENT.get(consent.get("state") or "", "unknown"),
            consent_at=_parse_time(consent.get("consent_updated_at")),
            updated_at=_parse_time(c.get("updated_at")),
            fields=fields,
        )

    # ------------------------------------------------------------- counting

    def count_records(self, group: str, source: str, *,
                      since: datetime | None = None) -> RecordCount | None:
        """All customers (changed since `since`) by `customers/count.json`; a tag source has
        no REST count (the endpoint filters by dates only), so None."""
        self._check_group(group)
        if self._tag_of(source) is not None:
            return None
        params = {"updated_at_min": _iso(since)} if since is not None else {}
        url = f"{self.api}/customers/count.json"
        resp = self._call("GET", f"{url}?{urlencode(params)}" if params else url)
        count = (resp.json() or {}).get("count")
        if isinstance(count, bool) or not isinstance(count, int | str) or not str(count).isdigit():
            raise SourceUnavailable("Shopify sent a customer count of an unexpected shape.")
        return RecordCount(int(count))

    # ------------------------------------------------------------- naming

    def account_name(self) -> str | None:
        """The shop's own name (`shop.json` → `shop.name`), as the team knows the shop;
        None when the shop has none."""
        shop = (self._call("GET", f"{self.api}/shop.json").json() or {}).get("shop")
        name = shop.get("name") if isinstance(shop, dict) else None
        return name if isinstance(name, str) and name.strip() else None


def _convert(metafield: dict, type_name: str) -> Any:
    value = metafield.get("value")
    if value is None:
        return None
    convert = METAFIELD_TYPES.get(metafield.get("type") or type_name, ("other", str))[1]
    try:
        return convert(value)
    except (ValueError, TypeError):
        return value
