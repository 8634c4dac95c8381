"""Magento 2 / Adobe Commerce REST client: customers via `V1/customers/search`.

Auth is an integration access token, sent either as a Bearer token (only where the store
allows it, 2.4.4+) or as OAuth 1.0a HMAC-SHA256 signatures. Integration tokens cannot be
refreshed: a 401 means the integration must be reconnected. Paging is keyset on
(updated_at, entity_id) through filters, always asking for page 1, so a store changing under
a long walk neither skips nor repeats records, and past-the-last-page quirks never matter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

from ..base import (
    AuthError,
    ConfigurationError,
    Field,
    FormConnected,
    Group,
    Page,
    ProviderError,
    RecordCount,
    SchemaError,
    Source,
    SourceUnavailable,
    parse_time,
)
from ..http import HostPolicy, Response
from . import oauth
from .oauth import STORE_CODE_RE, encode_query, oauth1_header
from .schema import _VIRTUAL_FIELDS, GROUP, criteria, field, format_time, options, record

MAX_PAGE_SIZE = 300  # Magento's default webapi input limit for searchCriteria[pageSize]
DEFAULT_PAGE_SIZE = 200


def _message(resp: Response) -> str:
    """Magento's error text with %placeholders filled from `parameters`."""
    try:
        body = resp.json()
    except SourceUnavailable:
        return resp.text[:200]
    if not isinstance(body, dict):
        return resp.text[:200]
    text = str(body.get("message", ""))
    params = body.get("parameters")
    if isinstance(params, dict):
        for k, v in params.items():
            text = text.replace(f"%{k}", str(v))
    elif isinstance(params, list):
        for i, v in enumerate(params, 1):
            text = text.replace(f"%{i}", str(v))
    return text



class Magento(FormConnected):
    """Magento 2 customers as a Tributary source."""

    name: ClassVar[str] = "magento"
    label: ClassVar[str] = "Magento 2"  # the one spelling; Adobe Commerce is the same API
    account_word = "store"
    group_words = (("Customers", "all customers, one customer group, or one website"),)
    consent_words = ("The newsletter subscription state is recorded where the store reports "
                     "it (Magento 2.4).")
    field_words = ("Name, email, date of birth, gender, default address (phone, country, "
                   "city) and your custom customer attributes.")
    form_keys: ClassVar[frozenset[str]] = frozenset({"base_url", "store_code", "auth_mode"})

    @staticmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """Any https store whose host resolves only to public addresses (SSRF guard)."""
        return oauth.host_policy(allow_loopback)

    # ------------------------------------------------------------------ connecting

    @classmethod
    def settings_from_form(cls, form, *, kind="form", allow_loopback=False):
        """Store address and view, the access token (and OAuth 1.0a keys when chosen)."""
        return oauth.settings_from_form(form, allow_loopback)

    @classmethod
    def identity(cls, settings) -> str:
        """The store address with its store view code."""
        base = settings.get("base_url", "").rstrip("/").lower()
        return f"{base}|{settings.get('store_code', '')}"

    @classmethod
    def display_name(cls, settings) -> str:
        """The store's name beside its host, else the host and store view."""
        return oauth.display_name(settings)

    # ------------------------------------------------------------------ client

    def __init__(self, settings: dict[str, Any], credentials: dict[str, Any], **kwargs: Any):
        # Integration tokens never rotate: on_credentials and refresh_lock go unused.
        super().__init__(settings, credentials, **kwargs)
        self.clock: Callable[[], float] = time.time
        self.base_url = oauth.store_base_url(settings.get("base_url"))
        store = (settings.get("store_code") or "").strip()
        if store and not STORE_CODE_RE.match(store):
            raise ConfigurationError(f"{store!r} is not a valid Magento store code.")
        self.api_root = f"{self.base_url}/rest/{store + '/' if store else ''}V1/"
        mode = settings.get("auth_mode") or (
            "oauth1" if credentials.get("consumer_key") else "bearer"
        )
        if mode not in ("bearer", "oauth1"):
            raise ConfigurationError("The authentication mode must be 'bearer' or 'oauth1'.")
        self.auth_mode = mode
        needed = ["access_token"]
        if mode == "oauth1":
            needed += ["consumer_key", "consumer_secret", "access_token_secret"]
        missing = [k for k in needed if not credentials.get(k)]
        if missing:
            raise ConfigurationError("Missing credentials: " + ", ".join(missing) + ".")
        size = int(settings.get("page_size") or DEFAULT_PAGE_SIZE)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"The page size must be between 1 and {MAX_PAGE_SIZE}.")
        self.page_size = size
        self._metadata: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ requests

    def _get(self, path: str, params: list[tuple[str, str]] = ()) -> Any:
        url = self.api_root + path
        if params:
            url += "?" + encode_query(list(params))
        headers = {"Accept": "application/json", "Authorization": self._authorization(url)}
        resp = self.http.request("GET", url, headers=headers)
        if resp.status == 200:
            return resp.json()
        raise self._error(resp)

    def _authorization(self, url: str) -> str:
        """A Bearer token, or an OAuth 1.0a signature of this very URL."""
        creds = self.credentials
        if self.auth_mode == "bearer":
            return f"Bearer {creds['access_token']}"
        return oauth1_header(
            "GET", url, creds, token=creds["access_token"],
            token_secret=creds["access_token_secret"], clock=self.clock,
        )

    def _error(self, resp: Response) -> ProviderError:
        message = _message(resp)
        if resp.status == 401:
            lower = message.lower()
            if "signature" in lower:
                reason = ("Magento rejected the request signature: check the consumer key, "
                          "consumer secret and access token secret.")
            elif "revoked" in lower or "token" in lower or "nonce" in lower or "timestamp" in lower:
                reason = ("Magento no longer accepts this integration's access token (revoked, "
                          "unknown or clock skew): reactivate the integration and reconnect.")
            elif self.auth_mode == "bearer":
                reason = ("Magento refused the access token. The token may be wrong, the "
                          "integration may lack access to Customers, or the store does not allow "
                          "integration tokens as Bearer tokens (connect with OAuth 1.0a keys).")
            else:
                reason = ("Magento refused the credentials, or the integration lacks access to "
                          "Customers (Magento_Customer::customer).")
            return AuthError(reason, detail=message)
        if resp.status in (301, 302, 303, 307, 308):
            return ConfigurationError(
                "The store address redirects elsewhere; use the exact https base URL of the "
                "store (check www and https).",
                detail=resp.headers.get("Location", ""),
            )
        if resp.status == 404:
            return ConfigurationError(
                "No Magento REST API answered at this address: check the base URL and store code.",
                detail=message,
            )
        if resp.status == 403:
            return ConfigurationError("The store refused access to its REST API.", detail=message)
        if 400 <= resp.status < 500:
            return ConfigurationError(
                f"Magento rejected the request (HTTP {resp.status}).", detail=message
            )
        return SourceUnavailable(f"Magento answered HTTP {resp.status}.", detail=message)

    def _search(self, path: str, groups=(), sorts=()) -> Iterator[dict[str, Any]]:
        """Page a small search endpoint with currentPage, stopping by total_count and
        de-duplicating by id (2.3 repeats the last page past the end, 2.4 returns none)."""
        seen: set[Any] = set()
        page = 1
        while True:
            body = self._get(path, criteria(list(groups), list(sorts), MAX_PAGE_SIZE, page))
            items = self._items(body)
            for item in items:
                if item.get("id") not in seen:
                    seen.add(item.get("id"))
                    yield item
            total = int(body.get("total_count") or 0)
            if not items or page * MAX_PAGE_SIZE >= total:
                return
            page += 1

    @staticmethod
    def _items(body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            raise SourceUnavailable("Magento sent a search answer of an unexpected shape.")
        return [i for i in body.get("items") or [] if isinstance(i, dict)]

    # ------------------------------------------------------------------ protocol

    def test_connection(self) -> None:
        """One tiny customer search: proves address, credentials and Customers access."""
        try:
            body = self._get("customers/search", criteria([], [], 1))
        except SourceUnavailable as exc:
            if "not valid JSON" in exc.reason:
                raise ConfigurationError(
                    "The address answered, but not like a Magento store's REST API."
                ) from exc
            raise
        if not isinstance(body, dict) or "total_count" not in body:
            raise ConfigurationError("The address answered, but not like a Magento store.")

    def groups(self) -> list[Group]:
        return [Group(GROUP, "Customers")]

    def sources(self, group: str) -> list[Source]:
        self._check_group(group)
        out = [Source("all", "All customers")]
        for g in self._search("customerGroups/search"):
            if g.get("id") not in (None, 0):  # 0 is NOT LOGGED IN: guests, not customers
                out.append(Source(f"group:{g['id']}", f"Customer group: {g.get('code', g['id'])}"))
        websites = self._get("store/websites")
        for w in websites if isinstance(websites, list) else []:
            if isinstance(w, dict) and w.get("id") not in (None, 0):  # 0 is the admin website
                out.append(Source(f"website:{w['id']}", f"Website: {w.get('name') or w['id']}"))
        return out

    def discover_fields(self, group: str) -> list[Field]:
        self._check_group(group)
        fields = [f for f in map(field, self._attribute_metadata()) if f is not None]
        names = {f.name for f in fields}
        fields += [f for f in _VIRTUAL_FIELDS if f.name not in names]
        return fields

    def _attribute_metadata(self) -> list[dict[str, Any]]:
        if self._metadata is None:
            body = self._get("attributeMetadata/customer")
            if not isinstance(body, list):
                raise SourceUnavailable("Magento sent attribute metadata of an unexpected shape.")
            self._metadata = [a for a in body if isinstance(a, dict)]
        return self._metadata

    @staticmethod
    def _check_group(group: str) -> None:
        if group != GROUP:
            raise ConfigurationError(f"Magento has no record group {group!r}; use 'customers'.")

    # ------------------------------------------------------------------ records

    def iter_pages(
        self,
        group: str,
        source: str,
        *,
        since: datetime | None = None,
        cursor: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> Iterator[Page]:
        """Keyset walk ordered by (updated_at, entity_id), always on page 1.

        Cursor modes: "gteq" re-reads from the last record's second and drops what was
        already seen; "same" pages through one second holding more than a page of records
        by entity_id; "gt" continues after such a second.
        """
        self._check_group(group)
        scope = self._source_filter(source)
        opts = options(self._attribute_metadata())
        if fields:
            known = set(opts["names"]) | {f.name for f in _VIRTUAL_FIELDS}
            missing = tuple(f for f in fields if f not in known)
            if missing:
                raise SchemaError(
                    "Magento no longer has these customer fields: " + ", ".join(missing) + ".",
                    missing=missing,
                )
        if cursor:
            state = dict(cursor)
        else:
            start = format_time(since) if since else None
            state = {"mode": "gteq" if start else "start", "t": start, "id": None}
            state["since"] = since.isoformat() if since else None
            state["hw"] = None
        since_at = parse_time(state.get("since"))
        high = parse_time(state.get("hw"))
        size = self.page_size

        while True:
            mode, t, last_id = state["mode"], state.get("t"), state.get("id")
            groups = list(scope)
            sorts = [("updated_at", "ASC"), ("entity_id", "ASC")]
            if mode == "same":
                groups += [[("updated_at", "eq", t)], [("entity_id", "gt", str(last_id))]]
                sorts = [("entity_id", "ASC")]
            elif mode == "gt":
                groups.append([("updated_at", "gt", t)])
            elif mode == "gteq":
                groups.append([("updated_at", "gteq", t)])
            body = self._get("customers/search", criteria(groups, sorts, size))
            items = self._items(body)
            total = int(body.get("total_count") or 0)
            complete = total <= size  # page 1 held everything left
            if not items and not complete:
                raise SourceUnavailable(
                    "Magento reported more customers but sent none; try again later."
                )

            fresh = items
            if mode == "gteq" and last_id is not None:
                fresh = [i for i in items if not (i.get("updated_at") == t
                                                 and int(i.get("id", 0)) <= int(last_id))]
            if mode == "gteq" and last_id is not None and items and not fresh and not complete:
                state = {**state, "mode": "same"}  # one second holds more than a page
                continue

            records = []
            for item in fresh:
                rec = record(item, opts)
                if since_at and rec.updated_at and rec.updated_at < since_at:
                    continue
                if rec.updated_at and (high is None or rec.updated_at > high):
                    high = rec.updated_at
                records.append(rec)

            if fresh:
                tail = fresh[-1]
                state = {**state, "t": tail.get("updated_at"), "id": int(tail["id"])}
            if mode == "same":
                done = False
                state["mode"] = "same" if not complete else "gt"
                if complete:
                    state["id"] = None
            else:
                done = complete
                if fresh:
                    state["mode"] = "gteq"
            state["hw"] = high.isoformat() if high else None
            body = items = fresh = None  # the decoded JSON goes while records are written
            yield Page(records, dict(state), high, done=done)
            if done:
                return

    def _source_filter(self, source: str) -> list[list[tuple[str, str, str]]]:
        if source == "all":
            return []
        kind, _, value = source.partition(":")
        if kind in ("group", "website") and value.isdigit():
            return [[(f"{kind}_id", "eq", value)]]
        raise ConfigurationError(f"Unknown Magento source {source!r}.")


    def count_records(self, group: str, source: str, *,
                      since: datetime | None = None) -> RecordCount | None:
        """`total_count` of the walk's own search, asked with `searchCriteria[pageSize]=1`
        (the smallest page Magento serves)."""
        self._check_group(group)
        groups = list(self._source_filter(source))
        if since is not None:
            groups.append([("updated_at", "gteq", format_time(since))])
        sorts = [("updated_at", "ASC"), ("entity_id", "ASC")]  # the walk's order: one index
        body = self._get("customers/search", criteria(groups, sorts, 1))
        total = body.get("total_count") if isinstance(body, dict) else None
        if isinstance(total, bool) or not str(total).isdigit():
            raise SourceUnavailable("Magento sent a customer count of an unexpected shape.")
        return RecordCount(int(total))

    # ------------------------------------------------------------------ naming

    def account_name(self) -> str | None:
        """The store's name: the store (group) of the configured store view, else of the
        main website (`store/storeViews` + `store/storeGroups`), with the view's name when a
        store code is set. None when the integration may not read stores (401)."""
        try:
            views = self._get("store/storeViews")
            groups = self._get("store/storeGroups")
        except AuthError:  # no Magento_Backend::store resource granted
            return None
        views = [v for v in views if isinstance(v, dict)] if isinstance(views, list) else []
        groups = [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []
        code = (self.settings.get("store_code") or "").strip()
        view = next((v for v in views if code and v.get("code") == code), None)
        real = sorted((g for g in groups if g.get("id") not in (None, 0)),
                      key=lambda g: str(g.get("id")).zfill(12))
        group = next((g for g in real if view and g.get("id") == view.get("store_group_id")),
                     real[0] if real else None)
        names = [str(x.get("name") or "").strip() for x in (group, view) if x]
        names = [n for n in names if n]
        return " · ".join(dict.fromkeys(names)) or None
