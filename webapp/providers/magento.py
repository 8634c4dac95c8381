"""Magento 2 / Adobe Commerce REST client: customers via `V1/customers/search`.

Auth is an integration access token, sent either as a Bearer token (only where the store
allows it, 2.4.4+) or as OAuth 1.0a HMAC-SHA256 signatures. Integration tokens cannot be
refreshed: a 401 means the integration must be reconnected. Paging is keyset on
(updated_at, entity_id) through filters, always asking for page 1, so a store changing under
a long walk neither skips nor repeats records, and past-the-last-page quirks never matter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

from authlib.common.security import generate_token
from authlib.oauth1.rfc5849.parameters import prepare_headers
from authlib.oauth1.rfc5849.signature import construct_base_string
from authlib.oauth1.rfc5849.util import escape

from .base import (
    AuthError,
    ConfigurationError,
    Field,
    Group,
    Page,
    ProviderError,
    Record,
    RecordCount,
    SchemaError,
    Source,
    SourceUnavailable,
)
from .common import ProviderBase
from .http import HostPolicy, HttpClient, Response, parse_target

MAX_PAGE_SIZE = 300  # Magento's default webapi input limit for searchCriteria[pageSize]
DEFAULT_PAGE_SIZE = 200
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STORE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
GROUP = "customers"

# Attributes that are internal bookkeeping, never useful to import.
_INTERNAL = frozenset({
    "password_hash", "rp_token", "rp_token_created_at", "confirmation", "lock_expires",
    "failures_num", "first_failure", "default_billing", "default_shipping",
})
# Customer keys mapped onto Record attributes rather than `fields`.
_RECORD_KEYS = frozenset({
    "id", "email", "firstname", "lastname", "updated_at", "addresses", "custom_attributes",
    "extension_attributes",
})
# Fields the client adds from the default address and extension attributes.
_VIRTUAL_FIELDS = (
    Field("telephone", "Phone (default address)", "phone"),
    Field("country_id", "Country (default address)", "country"),
    Field("city", "City (default address)", "text"),
    Field("postcode", "Postcode (default address)", "text"),
    Field("is_subscribed", "Newsletter subscribed", "boolean"),
)
_ADDRESS_FIELDS = ("city", "postcode")
_INPUT_TYPES = {
    "text": "text", "textarea": "textarea", "multiline": "textarea", "select": "choice",
    "multiselect": "multi_choice", "boolean": "boolean", "date": "date",
    "datetime": "datetime", "hidden": "other", "file": "other", "image": "other",
}


# ----------------------------------------------------------------------- OAuth 1.0a


def _rfc3986(value: str) -> str:
    return quote(value, safe="-._~")


def encode_query(params: list[tuple[str, str]]) -> str:
    """Percent-encode a query the way Magento's signature check decodes it (rawurldecode):
    spaces as %20, never '+', or signed timestamps would not match."""
    return "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in params)


def oauth1_header(
    method: str,
    url: str,
    credentials: dict[str, Any],
    *,
    token: str | None = None,
    token_secret: str = "",
    extra: list[tuple[str, str]] = (),
    body_params: list[tuple[str, str]] = (),
    clock: Callable[[], float] = time.time,
) -> str:
    """The `Authorization: OAuth …` value signing `method url` with HMAC-SHA256 (RFC 5849
    with SHA-256, as Magento accepts); query and form params are part of the signature."""
    oauth_params = [
        ("oauth_consumer_key", credentials["consumer_key"]),
        ("oauth_nonce", generate_token(32)),
        ("oauth_signature_method", "HMAC-SHA256"),
        ("oauth_timestamp", str(int(clock()))),
        ("oauth_version", "1.0"),
    ]
    if token:
        oauth_params.append(("oauth_token", token))
    oauth_params.extend(extra)
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    base = construct_base_string(method, url, oauth_params + query + list(body_params))
    key = f"{escape(credentials['consumer_secret'])}&{escape(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    oauth_params.append(("oauth_signature", base64.b64encode(digest).decode()))
    return prepare_headers(oauth_params, {})["Authorization"]


def parse_integration_callback(form: dict[str, str], policy: HostPolicy) -> dict[str, str]:
    """Check the POST Magento sends to the integration's callback URL on activation.

    Returns consumer key/secret, verifier and the store base URL; the URL comes from the
    caller's request body, so it passes the SSRF host policy before anything calls it.
    """
    needed = ("oauth_consumer_key", "oauth_consumer_secret", "store_base_url", "oauth_verifier")
    missing = [k for k in needed if not (form.get(k) or "").strip()]
    if missing:
        raise ConfigurationError(
            "The activation message from Magento is incomplete: " + ", ".join(missing) + "."
        )
    target = policy.check(form["store_base_url"].strip())
    return {**{k: form[k].strip() for k in needed}, "store_base_url": target.url}


def exchange_verifier(callback: dict[str, str], http: HttpClient) -> dict[str, Any]:
    """Finish Magento's integration handshake: request token, then access token.

    `callback` is what parse_integration_callback returned. Gives the `settings` and
    `credentials` an integration stores (auth_mode oauth1).
    """
    base = callback["store_base_url"].rstrip("/")
    creds = {
        "consumer_key": callback["oauth_consumer_key"],
        "consumer_secret": callback["oauth_consumer_secret"],
    }
    request = _token_call(http, f"{base}/oauth/token/request", creds)
    access = _token_call(
        http,
        f"{base}/oauth/token/access",
        creds,
        token=request["oauth_token"],
        token_secret=request["oauth_token_secret"],
        extra=[("oauth_verifier", callback["oauth_verifier"])],
    )
    return {
        "settings": {"base_url": base, "auth_mode": "oauth1"},
        "credentials": {
            **creds,
            "access_token": access["oauth_token"],
            "access_token_secret": access["oauth_token_secret"],
        },
    }


def _token_call(http: HttpClient, url: str, creds: dict[str, Any], **sign: Any) -> dict:
    header = oauth1_header("POST", url, creds, **sign)
    resp = http.request("POST", url, headers={"Authorization": header, "Accept": "*/*"})
    answer = dict(parse_qsl(resp.text, keep_blank_values=True))
    if resp.status != 200 or not answer.get("oauth_token") or not answer.get("oauth_token_secret"):
        problem = answer.get("oauth_problem") or resp.text[:200]
        raise AuthError(
            "Magento refused the integration handshake; reactivate the integration.",
            detail=f"HTTP {resp.status}: {problem}",
        )
    return answer


# --------------------------------------------------------------------------- helpers


def parse_time(value: Any) -> datetime | None:
    """Magento's 'YYYY-MM-DD HH:MM:SS' (UTC, no zone) as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """An aware (or naive-as-UTC) datetime in Magento's filter format, whole seconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(TIME_FORMAT)


def _criteria(
    groups: list[list[tuple[str, str, str]]],
    sorts: list[tuple[str, str]],
    page_size: int,
    page: int = 1,
) -> list[tuple[str, str]]:
    """searchCriteria query params: filters in one group OR, groups AND."""
    out: list[tuple[str, str]] = []
    for g, filters in enumerate(groups):
        for f, (field, condition, value) in enumerate(filters):
            key = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            out += [(f"{key}[field]", field), (f"{key}[value]", value),
                    (f"{key}[condition_type]", condition)]
    for s, (field, direction) in enumerate(sorts):
        out += [(f"searchCriteria[sortOrders][{s}][field]", field),
                (f"searchCriteria[sortOrders][{s}][direction]", direction)]
    out += [("searchCriteria[pageSize]", str(page_size)),
            ("searchCriteria[currentPage]", str(page))]
    return out


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


class Magento(ProviderBase):
    """Magento 2 customers as a Tributary source."""

    name: ClassVar[str] = "magento"
    label: ClassVar[str] = "Magento 2 / Adobe Commerce"

    @staticmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """Any https store whose host resolves only to public addresses (SSRF guard)."""
        return HostPolicy(public_https=True, allow_loopback=allow_loopback)

    def __init__(self, settings: dict[str, Any], credentials: dict[str, Any], **options: Any):
        # Integration tokens never rotate: on_credentials and refresh_lock go unused.
        super().__init__(settings, credentials, **options)
        self.clock: Callable[[], float] = time.time
        self.base_url = self._base_url(settings.get("base_url"))
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

    @staticmethod
    def _base_url(value: Any) -> str:
        """The store address rebuilt from its strictly parsed parts (http.parse_target)."""
        url = str(value or "").strip().rstrip("/")
        if "?" in url or "#" in url:
            raise ConfigurationError("The store address must not contain '?' or '#'.")
        try:
            target = parse_target(url)
        except ConfigurationError as exc:
            raise ConfigurationError(
                "The store address must be a full URL like https://shop.example.com.",
                detail=exc.reason) from None
        url = target.url
        if url.endswith("/rest"):
            url = url[: -len("/rest")]
        return url

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
            body = self._get(path, _criteria(list(groups), list(sorts), MAX_PAGE_SIZE, page))
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
            body = self._get("customers/search", _criteria([], [], 1))
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
        fields = []
        for attr in self._attribute_metadata():
            code = attr.get("attribute_code")
            if not code or code in _INTERNAL or attr.get("frontend_input") == "hidden":
                continue
            options = tuple(
                str(o.get("label")).strip() for o in attr.get("options") or []
                if str(o.get("value", "")).strip() and str(o.get("label", "")).strip()
            )
            fields.append(Field(
                name=code,
                label=str(attr.get("frontend_label") or attr.get("store_label") or code),
                type=self._field_type(attr),
                custom=bool(attr.get("user_defined")),
                allowed_values=options,
            ))
        names = {f.name for f in fields}
        fields += [f for f in _VIRTUAL_FIELDS if f.name not in names]
        return fields

    @staticmethod
    def _field_type(attr: dict[str, Any]) -> str:
        code = attr.get("attribute_code")
        if code in ("created_at", "updated_at"):
            return "datetime"
        rules = {str(r.get("value")) for r in attr.get("validation_rules") or []
                 if isinstance(r, dict)}
        if code == "email" or "email" in rules:
            return "email"
        if "url" in rules:
            return "url"
        kind = _INPUT_TYPES.get(str(attr.get("frontend_input")), "other")
        if kind == "text" and attr.get("backend_type") in ("decimal", "int"):
            return "number"
        return kind

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
        options = self._options()
        if fields:
            known = set(options["names"]) | {f.name for f in _VIRTUAL_FIELDS}
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
        since_at = datetime.fromisoformat(state["since"]) if state.get("since") else None
        high = datetime.fromisoformat(state["hw"]) if state.get("hw") else None
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
            body = self._get("customers/search", _criteria(groups, sorts, size))
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
                rec = self._record(item, options)
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

    def _options(self) -> dict[str, Any]:
        """Attribute codes, their inputs and option id -> label maps from the metadata."""
        meta = self._attribute_metadata()
        labels: dict[str, dict[str, str]] = {}
        inputs: dict[str, str] = {}
        for attr in meta:
            code = attr.get("attribute_code")
            if not code:
                continue
            inputs[code] = str(attr.get("frontend_input"))
            opts = {str(o.get("value")): str(o.get("label")).strip()
                    for o in attr.get("options") or [] if str(o.get("value", "")).strip()}
            if opts:
                labels[code] = opts
        return {"names": [a.get("attribute_code") for a in meta if a.get("attribute_code")],
                "labels": labels, "inputs": inputs}

    @staticmethod
    def _value(code: str, value: Any, options: dict[str, Any]) -> Any:
        """Select option ids as labels (multiselect: a list of labels)."""
        labels = options["labels"].get(code)
        if not labels or value is None:
            return value
        if options["inputs"].get(code) == "multiselect":
            ids = [v.strip() for v in str(value).split(",") if v.strip()]
            return [labels.get(v, v) for v in ids]
        text = str(value)
        if text in ("", "0") and text not in labels:
            return None
        return labels.get(text, value)

    def _record(self, item: dict[str, Any], options: dict[str, Any]) -> Record:
        fields: dict[str, Any] = {}
        for key, value in item.items():
            if key in _RECORD_KEYS or key in _INTERNAL:
                continue
            # ids (group_id, website_id, store_id) stay ids: sources refer to them
            fields[key] = value if key.endswith("_id") else self._value(key, value, options)
        for attr in item.get("custom_attributes") or []:
            if isinstance(attr, dict) and attr.get("attribute_code"):
                code = attr["attribute_code"]
                fields[code] = self._value(code, attr.get("value"), options)
        address = self._default_address(item)
        for key in _ADDRESS_FIELDS:
            if address.get(key):
                fields[key] = address[key]
        ext = item.get("extension_attributes") or {}
        subscribed = ext.get("is_subscribed") if isinstance(ext, dict) else None
        if subscribed is not None:
            fields["is_subscribed"] = bool(subscribed)
        country = address.get("country_id")
        return Record(
            source_id=str(item.get("id")),
            email=item.get("email"),
            first_name=item.get("firstname"),
            last_name=item.get("lastname"),
            phone=address.get("telephone") or None,
            country=country.upper() if isinstance(country, str) and country else None,
            # Magento cannot say "opted out": is_subscribed false is "not subscribed" (after
            # true, consent withdrawn); absent (2.3 search results) is unknown.
            consent=_consent(subscribed),
            consent_at=None,
            updated_at=parse_time(item.get("updated_at")),
            fields=fields,
        )

    @staticmethod
    def _default_address(item: dict[str, Any]) -> dict[str, Any]:
        addresses = [a for a in item.get("addresses") or [] if isinstance(a, dict)]
        for a in addresses:
            if a.get("default_billing") or str(a.get("id")) == str(item.get("default_billing")):
                return a
        return addresses[0] if addresses else {}

    # ------------------------------------------------------------------ counting

    def count_records(self, group: str, source: str, *,
                      since: datetime | None = None) -> RecordCount | None:
        """`total_count` of the walk's own search, asked with `searchCriteria[pageSize]=1`
        (the smallest page Magento serves)."""
        self._check_group(group)
        groups = list(self._source_filter(source))
        if since is not None:
            groups.append([("updated_at", "gteq", format_time(since))])
        sorts = [("updated_at", "ASC"), ("entity_id", "ASC")]  # the walk's order: one index
        body = self._get("customers/search", _criteria(groups, sorts, 1))
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

def _consent(subscribed: Any) -> str:
    """extension_attributes.is_subscribed as a consent state."""
    if subscribed is None:
        return "unknown"
    return "subscribed" if subscribed is True or subscribed in (1, "1", "true") else \
        "not_subscribed"
