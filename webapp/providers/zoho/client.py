"""Zoho CRM (API v8) client: Contacts and Leads, custom views as sources.

Speaks the REST records API with `fields` batches of at most 50 merged by id, `page` for the
first 2,000 records then `page_token`, a keyset restart (If-Modified-Since from the last
Modified_Time) when a token expires or stops at 100,000, and a cached 1-hour access token so
runs do not trip Zoho's refresh rate limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar, NoReturn

from ..auth import TokenAuth
from ..base import (
    AuthError,
    ConfigurationError,
    Field,
    Group,
    Page,
    Provider,
    RateLimited,
    RecordCount,
    SchemaError,
    Source,
    SourceUnavailable,
)
from ..http import HostPolicy, Response
from . import oauth
from .oauth import ACCOUNTS_HOSTS, API_HOSTS, DATA_CENTRE_LABELS, DATA_CENTRES
from .schema import CORE_FIELDS, RESTART_CODES, UNFETCHABLE_TYPES, Walk, field, record

API_VERSION = "v8"
MAX_FIELDS = 50
PER_PAGE = 200
GROUPS = (Group("Contacts", "Contacts"), Group("Leads", "Leads"))


class _ApiError(Exception):
    """A Zoho error answer the walk may recover from (by code)."""

    def __init__(self, status: int, code: str, details: dict[str, Any], message: str):
        super().__init__(code)
        self.status, self.code, self.details, self.message = status, code, details, message



class Zoho(TokenAuth, Provider):
    """Zoho CRM v8: groups Contacts/Leads, sources "all" plus custom views (cvid)."""

    name: ClassVar[str] = "zoho"
    label: ClassVar[str] = "Zoho CRM"
    account_word = "organisation"
    connect_kinds = frozenset({"oauth"})
    group_words = (("Contacts", "all contacts, or one of your custom views"),
                   ("Leads", "all leads that are not converted yet, or one of your custom "
                             "views"))
    consent_words = ("Records marked Email Opt Out are never added, and such contacts are "
                     "unsubscribed here too.")
    field_words = "Name, email, phone, mailing country, lead source and your custom fields."
    form_keys: ClassVar[frozenset[str]] = frozenset({"data_centre", "accounts_server"})
    data_centres: ClassVar[tuple[tuple[str, str], ...]] = DATA_CENTRE_LABELS  # form choices

    @staticmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """The accounts and API hosts of every Zoho data centre."""
        return oauth.host_policy(allow_loopback)

    # ----------------------------------------------------------------- connecting
    @classmethod
    def sign_in_origins(cls) -> list[str]:
        """The accounts server of every data centre."""
        return sorted(f"https://{acc}" for acc, _ in DATA_CENTRES.values())

    @classmethod
    def settings_from_form(cls, form, *, kind="oauth", allow_loopback=False):
        """The chosen data centre (+ a loopback accounts server); no credentials."""
        return oauth.settings_from_form(form, allow_loopback), {}

    @classmethod
    def identity(cls, settings) -> str:
        """The data centre (one Zoho account per data centre)."""
        return settings.get("data_centre", "us")

    @classmethod
    def display_name(cls, settings) -> str:
        """The organisation's name, else the data centre in words."""
        return oauth.display_name(settings)

    @classmethod
    def authorize(cls, settings, app, redirect_uri, *, allow_loopback=False):
        """The consent URL (offline access) and the pending data centre and state."""
        return oauth.authorize(settings, app, redirect_uri, allow_loopback)

    @classmethod
    def complete(cls, params, pending, app, redirect_uri, *, http, allow_loopback=False):
        """Verify the callback, redeem its code where it says the account lives."""
        return oauth.complete(params, pending, app, redirect_uri, http, allow_loopback)

    # ----------------------------------------------------------------- client
    def __init__(self, settings: dict[str, Any], credentials: dict[str, Any], **options: Any):
        super().__init__(settings, credentials, **options)
        dc = str(settings.get("data_centre") or "us").lower()
        if dc not in DATA_CENTRES:
            raise ConfigurationError(f"Unknown Zoho data centre {dc!r}.")
        accounts, api = DATA_CENTRES[dc]
        self.data_centre = dc
        self.accounts_server = oauth.base_url(settings.get("accounts_server") or accounts,
                                         ACCOUNTS_HOSTS, "accounts server",
                                         allow_loopback=self.allow_loopback)
        self.api_domain = oauth.base_url(settings.get("api_domain") or api, API_HOSTS,
                                    "API domain", allow_loopback=self.allow_loopback)
        self.page_size = int(settings.get("page_size") or PER_PAGE)
        self._fields: dict[str, list[dict[str, Any]]] = {}


    # ----------------------------------------------------------------- tokens
    def renew(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """A new access token from the accounts server (the refresh token is kept)."""
        return oauth.refresh(self.http, self.accounts_server, credentials, self.now())

    def check_auth_failure(self, resp: Response) -> None:
        """A missing scope is not mended by a refresh: the grant must be redone."""
        if self._error_code(resp) == "OAUTH_SCOPE_MISMATCH":
            raise ConfigurationError("The Zoho connection lacks a permission (scope) this "
                                     "import needs: reconnect Zoho and allow read access.")

    # ----------------------------------------------------------------- requests
    def _get(self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
             ) -> Response:
        """GET with the Zoho auth header; a 401 costs at most one refresh and one retry."""
        url = f"{self.api_domain}/crm/{API_VERSION}/{path}"
        resp = self.authorized(lambda token: self.http.request("GET", url, params=params, headers={
            **(headers or {}), "Authorization": f"Zoho-oauthtoken {token}"}))
        if resp.status == 401:
            raise AuthError("Zoho keeps rejecting the access token (wrong data centre, or "
                            "access revoked): reconnect Zoho.", detail=self._error_code(resp))
        return resp

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
        return [field(f) for f in self._field_meta(self._module(group))]

    def _batches(self, module: str, extra: list[str] | None) -> list[list[str]]:
        """Every fetchable field, core ones first, in batches of at most 50 names."""
        meta = self._field_meta(module)
        names = [f["api_name"] for f in meta if f.get("data_type") not in UNFETCHABLE_TYPES]
        missing = tuple(n for n in extra or () if n not in {f["api_name"] for f in meta})
        if missing:
            raise SchemaError(f"Zoho {module} has no field {', '.join(missing)}.",
                              missing=missing)
        ordered = [n for n in CORE_FIELDS if n in names] + [
            n for n in names if n not in CORE_FIELDS]
        for n in extra or ():
            if n not in ordered:
                ordered.append(n)
        return [ordered[i:i + MAX_FIELDS] for i in range(0, len(ordered), MAX_FIELDS)]

    def iter_pages(self, group: str, source: str, *, since: datetime | None = None,
                   cursor: dict[str, Any] | None = None,
                   fields: list[str] | None = None) -> Iterator[Page]:
        """Pages of records changed at or after `since`, sorted by Modified_Time ascending.

        Pages 1-10 by number, then page_token; an expired or exhausted token (or a stale
        cursor) restarts from the last Modified_Time seen, skipping ids already yielded."""
        module = self._module(group)
        batches = self._batches(module, fields)
        walk = Walk.start(group, source, since, cursor)
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
                rec = record(row)
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
            rows = None  # the decoded JSON goes while the page's records are written
            yield Page(records, walk.cursor(), walk.high_water, done=walk.mode == "done")

    def _fetch(self, module: str, source: str, batches: list[list[str]], walk: Walk
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

