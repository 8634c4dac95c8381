"""Zoho CRM (API v8) client: Contacts and Leads, custom views as sources, OAuth 2 helpers.

Speaks the REST records API with `fields` batches of at most 50 merged by id, `page` for the
first 2,000 records then `page_token`, a keyset restart (If-Modified-Since from the last
Modified_Time) when a token expires or stops at 100,000, and a cached 1-hour access token so
runs do not trip Zoho's refresh rate limit.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlencode, urlsplit

from authlib.common.security import generate_token

from ..countries import country_code
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
from .http import HostPolicy, HttpClient, Response, parse_target

# data centre -> (accounts host, API host)
DATA_CENTRES: dict[str, tuple[str, str]] = {
    "us": ("accounts.zoho.com", "www.zohoapis.com"),
    "eu": ("accounts.zoho.eu", "www.zohoapis.eu"),
    "in": ("accounts.zoho.in", "www.zohoapis.in"),
    "au": ("accounts.zoho.com.au", "www.zohoapis.com.au"),
    "jp": ("accounts.zoho.jp", "www.zohoapis.jp"),
    "cn": ("accounts.zoho.com.cn", "www.zohoapis.com.cn"),
    "ca": ("accounts.zohocloud.ca", "www.zohoapis.ca"),
    "sa": ("accounts.zoho.sa", "www.zohoapis.sa"),
}
ACCOUNTS_HOSTS = {acc: dc for dc, (acc, _) in DATA_CENTRES.items()}
API_HOSTS = {api for _, api in DATA_CENTRES.values()}
SCOPES = (
    "ZohoCRM.modules.contacts.READ",
    "ZohoCRM.modules.leads.READ",
    "ZohoCRM.settings.fields.READ",
    "ZohoCRM.settings.modules.READ",
    "ZohoCRM.settings.custom_views.READ",  # custom views are our "sources"
    "ZohoCRM.org.READ",  # the organisation's name, to name the connection
)
API_VERSION = "v8"
MAX_FIELDS = 50
PER_PAGE = 200
DISCRETE_LIMIT = 2000
EXPIRY_SKEW = 60  # refresh at most this many seconds before the access token expires
EXPIRY_SKEW_SHARE = 0.1  # …and at most this share of its lifetime (short-lived tokens)
# Answers after which the walk restarts from its last Modified_Time instead of the token.
RESTART_CODES = frozenset({
    "EXPIRED_VALUE", "TOKEN_BOUND_DATA_MISMATCH", "LIMIT_REACHED",
    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
})
UNFETCHABLE_TYPES = frozenset({"subform", "multiselectlookup", "profileimage", "fileupload",
                               "imageupload"})
TYPE_MAP = {
    "text": "text", "textarea": "textarea", "email": "email", "phone": "phone",
    "picklist": "choice", "multiselectpicklist": "multi_choice", "boolean": "boolean",
    "date": "date", "datetime": "datetime", "integer": "number", "bigint": "number",
    "double": "number", "decimal": "number", "currency": "number", "percent": "number",
    "autonumber": "text", "website": "url",
}
GROUPS = (Group("Contacts", "Contacts"), Group("Leads", "Leads"))


def host_policy(*, allow_loopback: bool = False) -> HostPolicy:
    """The Zoho allow-list: the known accounts and API hosts of every data centre."""
    return HostPolicy(sorted(ACCOUNTS_HOSTS) + sorted(API_HOSTS), allow_loopback=allow_loopback)


def _base_url(value: str, known: set[str] | dict[str, str], what: str, *,
              allow_loopback: bool) -> str:
    """Normalise an accounts/API base URL, refusing hosts outside the Zoho data centres
    (parsed by the strict grammar of http.parse_target)."""
    value = str(value or "").strip().rstrip("/")
    raw = value if "://" in value else "https://" + value
    refusal = ConfigurationError(
        f"That is not a Zoho {what} of a known data centre (wrong data centre?). Pick your "
        "Zoho data centre and connect again."
    )
    try:
        target = parse_target(raw)
    except ConfigurationError:
        raise refusal from None
    if target.tail:
        raise refusal
    if allow_loopback and target.host == "127.0.0.1":
        return target.base
    if target.scheme != "https" or target.host not in known or target.port != 443:
        raise refusal
    return target.base


def _now() -> float:
    return time.time()


# ----------------------------------------------------------------------------- OAuth


def new_state() -> str:
    """A random OAuth `state` value to store in the session before redirecting."""
    return generate_token(32)


def authorize_url(data_centre: str, client_id: str, redirect_uri: str, state: str, *,
                  accounts_server: str | None = None, allow_loopback: bool = False) -> str:
    """Where to send the user to grant read access (offline: we get a refresh token)."""
    if accounts_server:
        base = _base_url(accounts_server, ACCOUNTS_HOSTS, "accounts server",
                         allow_loopback=allow_loopback)
    else:
        if data_centre not in DATA_CENTRES:
            raise ConfigurationError(f"Unknown Zoho data centre {data_centre!r}.")
        base = "https://" + DATA_CENTRES[data_centre][0]
    query = {
        "scope": ",".join(SCOPES), "client_id": client_id, "response_type": "code",
        "access_type": "offline", "prompt": "consent", "redirect_uri": redirect_uri,
        "state": state,
    }
    return f"{base}/oauth/v2/auth?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class Callback:
    """A verified OAuth callback: the code and the accounts server that must redeem it."""

    code: str
    accounts_server: str
    data_centre: str


def verify_callback(params: dict[str, str], expected_state: str, *,
                    allow_loopback: bool = False) -> Callback:
    """Check the callback's state, error and `accounts-server` (a known Zoho host)."""
    if params.get("error"):
        raise AuthError("Zoho did not grant access (the request was declined or cancelled).")
    if not expected_state or not hmac.compare_digest(
        str(params.get("state", "")), str(expected_state)
    ):
        raise AuthError("The answer from Zoho did not match this connection attempt: "
                        "start connecting again.")
    code = params.get("code")
    if not code:
        raise AuthError("Zoho sent no authorisation code: start connecting again.")
    server = params.get("accounts-server")
    location = (params.get("location") or "").lower()
    if not server:
        if location not in DATA_CENTRES:
            raise ConfigurationError("Zoho did not say which data centre holds the account.")
        server = "https://" + DATA_CENTRES[location][0]
    base = _base_url(server, ACCOUNTS_HOSTS, "accounts server", allow_loopback=allow_loopback)
    host = urlsplit(base).hostname or ""
    dc = ACCOUNTS_HOSTS.get(host, location or "us")
    if location and host in ACCOUNTS_HOSTS and location != dc:
        raise ConfigurationError(
            f"Zoho's answer names two data centres ({location} and {dc}): connect again."
        )
    return Callback(code=code, accounts_server=base, data_centre=dc)


def _token_error(body: dict[str, Any], during: str) -> ProviderError:
    """Plain words for Zoho's token-endpoint errors (which mostly arrive as HTTP 200)."""
    error = str(body.get("error") or "")
    if error == "Access Denied" or "too many requests" in str(
        body.get("error_description", "")
    ).lower():
        return RateLimited("Zoho refused: too many token refreshes in a short time. "
                           "The run will try again in a minute.", retry_after=60.0)
    if error in ("invalid_client", "invalid_client_secret"):
        return AuthError("Zoho rejected the app's client id or secret: check the Zoho OAuth "
                         "settings, then reconnect.", detail=error)
    if error == "invalid_code":
        if during == "refresh":
            return AuthError("Zoho no longer accepts the saved authorisation (revoked, expired "
                             "or from another data centre): reconnect Zoho.", detail=error)
        return AuthError("Zoho did not accept the authorisation code (expired or already "
                         "used): connect again.", detail=error)
    if error == "invalid_redirect_uri":
        return ConfigurationError("Zoho rejected the redirect address: it must match the one "
                                  "registered for the app.", detail=error)
    return SourceUnavailable("Zoho's token service gave an unexpected answer.",
                             detail=error or "no access_token")


def _token_call(http: HttpClient, accounts: str, form: dict[str, str],
                during: str) -> dict[str, Any]:
    resp = http.request("POST", f"{accounts}/oauth/v2/token", data=form)
    body = resp.json() if resp.body else None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"Zoho's token service answered HTTP {resp.status}.")
    if resp.status == 200 and body.get("access_token"):
        return body
    raise _token_error(body, during)


def exchange_code(callback: Callback, *, client_id: str, client_secret: str,
                  redirect_uri: str, http: HttpClient | None = None,
                  allow_loopback: bool = False) -> dict[str, dict[str, Any]]:
    """Redeem the code at the callback's accounts server: {"settings", "credentials"}."""
    http = http or HttpClient(host_policy(allow_loopback=allow_loopback))
    body = _token_call(http, callback.accounts_server, {
        "grant_type": "authorization_code", "client_id": client_id,
        "client_secret": client_secret, "redirect_uri": redirect_uri, "code": callback.code,
    }, "code")
    if not body.get("refresh_token"):
        raise AuthError("Zoho granted no offline access (no refresh token): connect again.")
    api_domain = _base_url(body.get("api_domain") or "https://" + DATA_CENTRES.get(
        callback.data_centre, DATA_CENTRES["us"])[1], API_HOSTS, "API domain",
        allow_loopback=allow_loopback)
    return {
        "settings": {"data_centre": callback.data_centre,
                     "accounts_server": callback.accounts_server, "api_domain": api_domain},
        "credentials": {
            "client_id": client_id, "client_secret": client_secret,
            "refresh_token": body["refresh_token"], "access_token": body["access_token"],
            "access_token_expires_at": int(_now()) + int(body.get("expires_in") or 3600),
            "access_token_lifetime": int(body.get("expires_in") or 3600),
        },
    }


# ---------------------------------------------------------------------------- client


class _ApiError(Exception):
    """A Zoho error answer the walk may recover from (by code)."""

    def __init__(self, status: int, code: str, details: dict[str, Any], message: str):
        super().__init__(code)
        self.status, self.code, self.details, self.message = status, code, details, message


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.replace(microsecond=0).isoformat()


class Zoho(ProviderBase):
    """Zoho CRM v8: groups Contacts/Leads, sources "all" plus custom views (cvid)."""

    name: ClassVar[str] = "zoho"
    label: ClassVar[str] = "Zoho CRM"

    @staticmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        return host_policy(allow_loopback=allow_loopback)

    def __init__(self, settings: dict[str, Any], credentials: dict[str, Any], **options: Any):
        super().__init__(settings, credentials, **options)
        dc = str(settings.get("data_centre") or "us").lower()
        if dc not in DATA_CENTRES:
            raise ConfigurationError(f"Unknown Zoho data centre {dc!r}.")
        accounts, api = DATA_CENTRES[dc]
        self.data_centre = dc
        self.accounts_server = _base_url(settings.get("accounts_server") or accounts,
                                         ACCOUNTS_HOSTS, "accounts server",
                                         allow_loopback=self.allow_loopback)
        self.api_domain = _base_url(settings.get("api_domain") or api, API_HOSTS,
                                    "API domain", allow_loopback=self.allow_loopback)
        self.page_size = int(settings.get("page_size") or PER_PAGE)
        self._fields: dict[str, list[dict[str, Any]]] = {}

    # ----------------------------------------------------------------- tokens
    def _token_fresh(self) -> bool:
        token = self.credentials.get("access_token")
        expires = self.credentials.get("access_token_expires_at")
        if not token:
            return False
        if isinstance(expires, str):
            parsed = _parse_time(expires)
            expires = parsed.timestamp() if parsed else None
        return expires is None or float(expires) - self._expiry_margin() > _now()

    def _expiry_margin(self) -> float:
        """Seconds before expiry to refresh: min(60 s, 10 % of the token's lifetime), so a
        token that lives a minute is not refreshed before every request."""
        try:
            lifetime = float(self.credentials.get("access_token_lifetime") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return min(float(EXPIRY_SKEW), max(0.0, lifetime) * EXPIRY_SKEW_SHARE)

    def _access_token(self) -> str:
        if not self._token_fresh():
            self._refresh(stale=self.credentials.get("access_token"))
        return self.credentials["access_token"]

    def _refresh(self, stale: str | None) -> None:
        """Trade the refresh token for a new access token, once, under the caller's lock."""
        with self.refreshing() as adopted:
            if adopted or (self.credentials.get("access_token") != stale
                           and self._token_fresh()):
                return  # someone refreshed while we waited for the lock
            creds = self.credentials
            if not creds.get("refresh_token"):
                raise AuthError("No Zoho refresh token is saved: reconnect Zoho.")
            body = _token_call(self.http, self.accounts_server, {
                "grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                "client_id": creds.get("client_id", ""),
                "client_secret": creds.get("client_secret", ""),
            }, "refresh")
            new = dict(creds)
            new["access_token"] = body["access_token"]
            lifetime = int(body.get("expires_in") or 3600)
            new["access_token_expires_at"] = int(_now()) + lifetime
            new["access_token_lifetime"] = lifetime
            self.hand_back(new)

    # ----------------------------------------------------------------- requests
    def _get(self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
             ) -> Response:
        """GET with the Zoho auth header; a 401 costs at most one refresh and one retry."""
        url = f"{self.api_domain}/crm/{API_VERSION}/{path}"
        refreshed = False
        while True:
            token = self._access_token()
            resp = self.http.request("GET", url, params=params, headers={
                **(headers or {}), "Authorization": f"Zoho-oauthtoken {token}"})
            if resp.status != 401:
                return resp
            code = self._error_code(resp)
            if code == "OAUTH_SCOPE_MISMATCH":
                raise ConfigurationError("The Zoho connection lacks a permission (scope) this "
                                         "import needs: reconnect Zoho and allow read access.")
            if refreshed:
                raise AuthError("Zoho keeps rejecting the access token (wrong data centre, or "
                                "access revoked): reconnect Zoho.", detail=code)
            self._refresh(stale=token)
            refreshed = True

    @staticmethod
    def _error_code(resp: Response) -> str:
        try:
            body = resp.json()
        except SourceUnavailable:
            return ""
        return str(body.get("code", "")) if isinstance(body, dict) else ""

    def _json(self, resp: Response) -> dict[str, Any] | None:
        """The body of a successful answer (None for 204/304); errors become exceptions."""
        if resp.status in (204, 304):
            return None
        body = resp.json()
        if resp.status == 200 and isinstance(body, dict):
            return body
        body = body if isinstance(body, dict) else {}
        code = str(body.get("code", ""))
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        raise _ApiError(resp.status, code, details, str(body.get("message", "")))

    def _raise(self, err: _ApiError) -> NoReturn:
        """Map a Zoho error answer to a typed provider error with plain words."""
        detail = f"{err.status} {err.code}: {err.message} {err.details}"
        if err.code == "INVALID_DATA" and err.details.get("api_name"):
            name = str(err.details["api_name"])
            raise SchemaError(f"The Zoho field {name} no longer exists.", missing=(name,),
                              detail=detail)
        if err.code in ("INVALID_MODULE", "INVALID_URL_PATTERN", "NO_PERMISSION",
                        "FEATURE_NOT_SUPPORTED"):
            raise ConfigurationError("Zoho refused the request: the module is unavailable to "
                                     "this account or it lacks permission.", detail=detail)
        if err.code == "TOO_MANY_REQUESTS":
            raise RateLimited("Zoho's API limit was reached.", detail=detail)
        raise SourceUnavailable(f"Zoho refused the request ({err.code or err.status}).",
                                detail=detail)

    # ----------------------------------------------------------------- protocol
    def test_connection(self) -> None:
        """Read one contact and one lead: proves token, data centre and scopes."""
        for module in ("Contacts", "Leads"):
            try:
                self._json(self._get(module, {"fields": "Last_Name", "per_page": 1}))
            except _ApiError as err:
                self._raise(err)

    def groups(self) -> list[Group]:
        return list(GROUPS)

    def _module(self, group: str) -> str:
        if group not in ("Contacts", "Leads"):
            raise ConfigurationError(f"Zoho has no group {group!r} (Contacts or Leads).")
        return group

    def sources(self, group: str) -> list[Source]:
        module = self._module(group)
        try:
            body = self._json(self._get("settings/custom_views", {"module": module})) or {}
        except _ApiError as err:
            self._raise(err)
        everything = Source("all", f"All {module.lower()}")
        # Zoho's own "All Leads" view (system name ALLVIEWS) is the same records as "all":
        # list it once, and any view name only once (the first view with that name wins).
        seen = {everything.label.casefold()}
        views = []
        for v in body.get("custom_views", []):
            label = str(v.get("display_value") or v.get("name") or "").strip()
            if (not v.get("id") or not label or label.casefold() in seen
                    or v.get("system_name") == "ALLVIEWS"):
                continue
            seen.add(label.casefold())
            views.append(Source(str(v["id"]), label))
        return [everything, *views]

    def _field_meta(self, module: str) -> list[dict[str, Any]]:
        if module not in self._fields:
            try:
                body = self._json(self._get("settings/fields", {"module": module})) or {}
            except _ApiError as err:
                self._raise(err)
            self._fields[module] = [f for f in body.get("fields", []) if f.get("api_name")]
        return self._fields[module]

    def discover_fields(self, group: str) -> list[Field]:
        out = []
        for f in self._field_meta(self._module(group)):
            api, dtype = f["api_name"], str(f.get("data_type", ""))
            kind = "country" if api.endswith("Country") else TYPE_MAP.get(dtype, "other")
            values = tuple(
                str(v.get("actual_value") or v.get("display_value"))
                for v in f.get("pick_list_values") or []
                if (v.get("actual_value") or v.get("display_value")) not in (None, "-None-")
            )
            out.append(Field(api, str(f.get("field_label") or api), kind,
                             bool(f.get("custom_field")), values))
        return out

    def _batches(self, module: str, extra: list[str] | None) -> list[list[str]]:
        """Every fetchable field, core ones first, in batches of at most 50 names."""
        meta = self._field_meta(module)
        names = [f["api_name"] for f in meta if f.get("data_type") not in UNFETCHABLE_TYPES]
        missing = tuple(n for n in extra or () if n not in {f["api_name"] for f in meta})
        if missing:
            raise SchemaError(f"Zoho {module} has no field {', '.join(missing)}.",
                              missing=missing)
        core = ["Modified_Time", "Email", "First_Name", "Last_Name", "Phone", "Mobile",
                "Mailing_Country", "Country", "Email_Opt_Out"]
        ordered = [n for n in core if n in names] + [n for n in names if n not in core]
        for n in extra or ():
            if n not in ordered:
                ordered.append(n)
        return [ordered[i:i + MAX_FIELDS] for i in range(0, len(ordered), MAX_FIELDS)]

    def _record(self, row: dict[str, Any]) -> Record:
        opted_out = row.get("Email_Opt_Out") is True
        return Record(
            source_id=str(row["id"]),
            email=row.get("Email"),
            first_name=row.get("First_Name"),
            last_name=row.get("Last_Name"),
            phone=row.get("Phone") or row.get("Mobile"),
            country=country_code(row.get("Mailing_Country", row.get("Country"))),
            consent="opted_out" if opted_out else "unknown",
            consent_at=None,  # Zoho keeps no timestamp for the opt-out flag
            updated_at=_parse_time(row.get("Modified_Time")),
            fields={k: v for k, v in row.items()
                    if k not in ("id", "Email", "First_Name", "Last_Name", "Phone")},
        )

    def iter_pages(self, group: str, source: str, *, since: datetime | None = None,
                   cursor: dict[str, Any] | None = None,
                   fields: list[str] | None = None) -> Iterator[Page]:
        """Pages of records changed at or after `since`, sorted by Modified_Time ascending.

        Pages 1-10 by number, then page_token; an expired or exhausted token (or a stale
        cursor) restarts from the last Modified_Time seen, skipping ids already yielded."""
        module = self._module(group)
        batches = self._batches(module, fields)
        walk = _Walk.start(group, source, since, cursor)
        if walk.mode == "token" and len(walk.tokens or ()) != len(batches):
            walk.restart()  # the field list changed since the cursor was saved
        # Ids yielded lately: page positions shift when records change mid-walk, so a record
        # can come again a page later. Bounded (two pages), so a walk stays flat in memory.
        recent: deque[str] = deque(maxlen=2 * self.page_size)
        seen: set[str] = set()
        stalled = 0
        while walk.mode != "done":
            try:
                rows, info = self._fetch(module, source, batches, walk)
            except _ApiError as err:
                if err.code in RESTART_CODES or err.details.get("param_name") == "page_token":
                    stalled += 1
                    if stalled > 2:
                        self._raise(err)
                    walk.restart()
                    continue
                self._raise(err)
            records = []
            for row in rows:
                rec = self._record(row)
                if rec.source_id in seen or walk.skip(rec):
                    continue
                if len(recent) == recent.maxlen:
                    seen.discard(recent[0])
                recent.append(rec.source_id)
                seen.add(rec.source_id)
                walk.note(rec)
                records.append(rec)
            if records:
                stalled = 0
            walk.advance(info, self.page_size, len(batches))
            yield Page(records, walk.cursor(), walk.high_water, done=walk.mode == "done")

    def _fetch(self, module: str, source: str, batches: list[list[str]], walk: _Walk
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page position across all field batches, merged by id."""
        base: dict[str, Any] = {"per_page": self.page_size, "sort_by": "Modified_Time",
                                "sort_order": "asc"}
        if source != "all":
            base["cvid"] = source
        headers = {"If-Modified-Since": walk.query_since} if walk.query_since else {}
        merged: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        info: dict[str, Any] = {"more_records": False, "tokens": []}
        for i, names in enumerate(batches):
            params = {**base, "fields": ",".join(names)}
            if walk.mode == "token":
                params["page_token"] = walk.tokens[i]
            else:
                params["page"] = walk.page
            body = self._json(self._get(module, params, headers))
            if body is None and i == 0:
                return [], {"more_records": False, "tokens": []}
            body = body or {}
            page_info = body.get("info") or {}
            info["tokens"].append(page_info.get("next_page_token"))
            for row in body.get("data") or []:
                rid = str(row.get("id"))
                if i == 0:
                    order.append(rid)
                    merged[rid] = dict(row)
                elif rid in merged:
                    merged[rid].update(row)
            if i == 0:
                info["more_records"] = bool(page_info.get("more_records"))
        return [merged[r] for r in order], info

    # ----------------------------------------------------------------- counting
    def count_records(self, group: str, source: str, *,
                      since: datetime | None = None) -> RecordCount | None:
        """The module's (or custom view's) record count from `GET /{module}/actions/count`;
        None for `since`, which that endpoint cannot filter by."""
        module = self._module(group)
        if since is not None:
            return None
        params = {} if source == "all" else {"cvid": source}
        try:
            body = self._json(self._get(f"{module}/actions/count", params)) or {}
        except _ApiError as err:
            self._raise(err)
        count = body.get("count", 0)  # an integer, or a digit string on some endpoints
        if isinstance(count, bool) or not str(count).isdigit():
            raise SourceUnavailable("Zoho sent a record count of an unexpected shape.")
        return RecordCount(int(count))

    # ----------------------------------------------------------------- naming
    def account_name(self) -> str | None:
        """The organisation's company name (`GET /org` → `org[0].company_name`); None when
        the grant lacks the ZohoCRM.org.READ scope (connections made before it was asked)."""
        try:
            body = self._json(self._get("org", {})) or {}
        except ConfigurationError:  # OAUTH_SCOPE_MISMATCH: an older grant
            return None
        except _ApiError as err:
            if err.code in ("NO_PERMISSION", "OAUTH_SCOPE_MISMATCH"):
                return None
            self._raise(err)
        orgs = body.get("org")
        first = orgs[0] if isinstance(orgs, list) and orgs and isinstance(orgs[0], dict) else {}
        name = first.get("company_name")
        return name if isinstance(name, str) and name.strip() else None


@dataclass
class _Walk:
    """Where a walk stands; `cursor()` serialises it, `start()` resumes from one."""

    group: str
    source: str
    since: datetime | None  # the caller's inclusive lower bound
    mode: str = "page"  # page | token | done ("restart" is page 1 from last_modified)
    page: int = 1
    tokens: list[str | None] | None = None
    query_since: str | None = None  # If-Modified-Since of the current request sequence
    last_modified: datetime | None = None
    last_ids: list[str] | None = None
    high_water: datetime | None = None

    @classmethod
    def start(cls, group: str, source: str, since: datetime | None,
              cursor: dict[str, Any] | None) -> _Walk:
        if not cursor:
            return cls(group, source, since, query_since=_iso(since) if since else None)
        if cursor.get("group") != group or cursor.get("source") != source:
            raise ConfigurationError("The saved position belongs to another Zoho import.")
        return cls(
            group, source, _parse_time(cursor.get("since")) or since,
            mode=cursor.get("mode", "page"), page=int(cursor.get("page") or 1),
            tokens=cursor.get("tokens"), query_since=cursor.get("query_since"),
            last_modified=_parse_time(cursor.get("last_modified")),
            last_ids=list(cursor.get("last_ids") or []),
            high_water=_parse_time(cursor.get("high_water")),
        )

    def cursor(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {"v": 1, "group": self.group, "source": self.source, "mode": self.mode,
                "page": self.page, "tokens": self.tokens, "query_since": self.query_since,
                "since": iso(self.since), "last_modified": iso(self.last_modified),
                "last_ids": self.last_ids or [], "high_water": iso(self.high_water)}

    def skip(self, rec: Record) -> bool:
        """Already yielded at the boundary second, or older than the caller's `since`."""
        at = rec.updated_at
        if at is None:
            return False
        if self.since and at < self.since:
            return True
        return bool(self.last_modified and at == self.last_modified
                    and rec.source_id in (self.last_ids or ()))

    def note(self, rec: Record) -> None:
        at = rec.updated_at
        if at is None:
            return
        if self.last_modified is None or at > self.last_modified:
            self.last_modified, self.last_ids = at, [rec.source_id]
        elif at == self.last_modified:
            self.last_ids = [*(self.last_ids or []), rec.source_id]
        if self.high_water is None or at > self.high_water:
            self.high_water = at

    def advance(self, info: dict[str, Any], per_page: int, n_batches: int) -> None:
        tokens = info.get("tokens") or []
        if not info.get("more_records"):
            self.mode, self.tokens = "done", None
        elif self.mode == "page" and (self.page + 1) * per_page <= DISCRETE_LIMIT:
            self.page += 1
        elif len(tokens) == n_batches and all(tokens):
            self.mode, self.tokens = "token", tokens
        else:
            self.restart()

    def restart(self) -> None:
        """A fresh request sequence from the last Modified_Time (inclusive), page 1."""
        start = self.last_modified or self.since
        self.mode, self.page, self.tokens = "page", 1, None
        self.query_since = _iso(start) if start else None
