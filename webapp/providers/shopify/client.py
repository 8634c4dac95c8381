"""Shopify client: customers over the REST Admin API (customers.json, Link-header pages),
metafield definitions and values over GraphQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from requests.utils import parse_header_links

from ..auth import TokenAuth
from ..base import (
    AuthError,
    ConfigurationError,
    Field,
    Group,
    Page,
    Provider,
    ProviderError,
    RateLimited,
    RecordCount,
    SchemaError,
    Source,
    SourceUnavailable,
    iso,
    parse_time,
)
from ..http import HostPolicy, Response
from . import oauth
from .schema import (
    _STANDARD_NAMES,
    DEFINITIONS_QUERY,
    STANDARD_FIELDS,
    TAGS_QUERY,
    convert,
    high_water,
    metafield_field,
    record,
    server_time,
    walk_cursor,
)

MAX_PAGE_SIZE = 250
_VERSION_RE = re.compile(r"^\d{4}-(01|04|07|10)$")
MAX_GRAPHQL_COST = 1000


class Shopify(TokenAuth, Provider):
    """Customers of one Shopify shop. Settings: shop, api_version, optional page_size and
    api_base (tests/demo only); credentials: access_token, optional refresh_token,
    expires_at, client_id, client_secret."""

    name = "shopify"
    label = "Shopify"
    account_word = "shop"
    connect_kinds = frozenset({"form", "oauth"})
    group_words = (("Customers", "all customers, or only those carrying one tag"),)
    consent_words = ("Email marketing consent comes along: customers who unsubscribed at "
                     "Shopify are never added, and contacts who unsubscribed there are "
                     "unsubscribed here too.")
    field_words = ("Name, email, phone, country, tags, order count and total spent, and your "
                   "customer metafields as custom fields.")
    form_keys: ClassVar[frozenset[str]] = frozenset({"shop", "api_base"})

    @staticmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """*.myshopify.com only (plus loopback for tests and the demo)."""
        return oauth.host_policy(allow_loopback)

    # ------------------------------------------------------------- connecting

    @classmethod
    def sign_in_origins(cls) -> list[str]:
        """Approval pages live on the shop's own domain."""
        return ["https://*.myshopify.com"]

    @classmethod
    def settings_from_form(cls, form, *, kind="form", allow_loopback=False):
        """Shop (+ loopback API base); the token form also the Admin API access token."""
        return oauth.settings_from_form(form, kind, allow_loopback)

    @classmethod
    def identity(cls, settings) -> str:
        """The shop domain."""
        return settings.get("shop", "")

    @classmethod
    def display_name(cls, settings) -> str:
        """"Shop name (acme.myshopify.com)", or the shop domain alone."""
        return oauth.display_name(settings)

    @classmethod
    def authorize(cls, settings, app, redirect_uri, *, allow_loopback=False):
        """The shop's app-approval URL and the pending shop and state."""
        return oauth.authorize(settings, app, redirect_uri, allow_loopback)

    @classmethod
    def complete(cls, params, pending, app, redirect_uri, *, http, allow_loopback=False):
        """Verify the HMAC-signed callback and trade its code for expiring tokens."""
        return oauth.complete(params, pending, app, http, allow_loopback)

    # ------------------------------------------------------------- client

    def __init__(self, settings: dict, credentials: dict, **options: Any):
        super().__init__(settings, credentials, **options)
        self.shop = oauth.normalize_shop(settings.get("shop", ""))
        self.api_version = settings.get("api_version") or oauth.DEFAULT_API_VERSION
        if not _VERSION_RE.match(self.api_version):
            raise ConfigurationError(
                f"{self.api_version!r} is not a Shopify API version (YYYY-01/04/07/10).")
        self.page_size = int(settings.get("page_size") or MAX_PAGE_SIZE)
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
        self.base = oauth.base_url(self.shop, settings.get("api_base"), self.allow_loopback)
        self.api = f"{self.base}/admin/api/{self.api_version}"
        if not self.credentials.get("access_token"):
            raise ConfigurationError("A Shopify Admin API access token is needed.")
        self.call_limit: tuple[int, int] | None = None

    # ------------------------------------------------------------- transport

    def can_refresh(self) -> bool:
        """A refresh token and the app's client id and secret are saved."""
        c = self.credentials
        return bool(c.get("refresh_token") and c.get("client_id") and c.get("client_secret"))

    def renew(self, credentials: dict) -> dict:
        """Trade the rotating refresh token for a new pair."""
        return oauth.refresh(self.http, self.base, credentials, self.now())

    def _call(self, method: str, url: str, **kwargs: Any) -> Response:
        """One API request through the shared authorized path, paced by the call-limit
        header; typed errors for the rest."""
        if not url.startswith(self.base + "/"):
            raise SourceUnavailable("Shopify sent a page link to another address.")

        def send(token: str) -> Response:
            headers = {"X-Shopify-Access-Token": token, "Accept": "application/json"}
            resp = self.http.request(method, url, headers=headers, **kwargs)
            self._pace(resp)
            return resp

        resp = self.authorized(send)
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
        fields.extend(metafield_field(d) for d in self._definitions())
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
                    values[f"{ns}.{key}"] = convert(mf, type_name) if mf else None
                out[int(str(node["id"]).rsplit("/", 1)[-1])] = values
        return out

    def iter_pages(self, group: str, source: str, *, since: datetime | None = None,
                   cursor: dict[str, Any] | None = None,
                   fields: list[str] | None = None) -> Iterator[Page]:
        """Walk customers.json in id order, following `Link: rel="next"`; the cursor keeps
        the last id so a resume asks `since_id` (page_info links cannot carry filters)."""
        self._check_group(group)
        tag = self._tag_of(source)
        if cursor:
            since = parse_time(cursor.get("since"))
            last_id = int(cursor.get("last_id") or 0)
            high = parse_time(cursor.get("high_water"))
            walk_start = parse_time(cursor.get("walk_start"))
        else:
            last_id, high, walk_start = 0, None, None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        metafields = self._metafields_to_fetch(fields)
        params: dict[str, Any] = {"limit": self.page_size}
        if since is not None:
            # One second early: the filter's inclusiveness is not documented; we cut below.
            params["updated_at_min"] = iso(since - timedelta(seconds=1))
        if last_id:
            params["since_id"] = last_id
        url: str | None = f"{self.api}/customers.json?{urlencode(params)}"
        while url:
            resp = self._call("GET", url)
            if walk_start is None:
                walk_start = server_time(resp.headers.get("Date", ""))
            customers = (resp.json() or {}).get("customers") or []
            url = self._next_link(resp)
            values = self._metafield_values([c["id"] for c in customers], metafields)
            records = []
            for c in customers:
                last_id = max(last_id, int(c["id"]))
                rec = record(c, values.get(int(c["id"]), {}))
                if since is not None and rec.updated_at is not None and rec.updated_at < since:
                    continue
                if tag is not None and tag not in {t.lower() for t in rec.fields["tags"]}:
                    continue
                records.append(rec)
                if rec.updated_at and (high is None or rec.updated_at > high):
                    high = rec.updated_at
            customers = values = resp = None  # the decoded JSON goes while records are written
            yield Page(records, walk_cursor(since, last_id, high, walk_start),
                       high_water(high, walk_start), done=url is None)

    # ------------------------------------------------------------- walk helpers

    @staticmethod
    def _tag_of(source: str) -> str | None:
        if source == "all":
            return None
        if source.startswith("tag:") and source[4:].strip():
            return source[4:].strip().lower()
        raise ConfigurationError(f"Unknown Shopify source {source!r}; use 'all' or 'tag:NAME'.")

    def _next_link(self, resp: Response) -> str | None:
        header = resp.headers.get("Link")
        if not header:
            return None
        for link in parse_header_links(header):
            if link.get("rel") == "next":
                return link.get("url")
        return None


    def count_records(self, group: str, source: str, *,
                      since: datetime | None = None) -> RecordCount | None:
        """All customers (changed since `since`) by `customers/count.json`; a tag source has
        no REST count (the endpoint filters by dates only), so None."""
        self._check_group(group)
        if self._tag_of(source) is not None:
            return None
        params = {"updated_at_min": iso(since)} if since is not None else {}
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

