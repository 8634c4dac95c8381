"""Salesforce REST client: Contacts and Leads read with SOQL, session refresh (rotated
refresh tokens handed back), daily-quota awareness.

The walk follows `nextRecordsUrl` verbatim within a run; its cursor is the keyset
(SystemModstamp, Id) of the last record yielded, because query locators expire.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

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
    parse_time,
)
from ..http import Ahead, HostPolicy, Response
from . import oauth
from .oauth import API_VERSION, LOGIN_HOSTS, instance_base, login_base
from .schema import (
    CORE_FIELDS,
    COUNTRY_FIELD,
    GROUPS,
    UNSELECTABLE_TYPES,
    build_soql,
    field,
    record,
    soql_datetime,
    soql_string,
)

log = logging.getLogger(__name__)
BATCH_MIN, BATCH_MAX = 200, 2000


def _api_error(resp: Response, version: str) -> ProviderError:
    """A typed error for a non-2xx REST answer ([{"errorCode", "message"}])."""
    body = None
    try:
        body = resp.json()
    except SourceUnavailable:
        pass
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    code, message = str(first.get("errorCode", "")), str(first.get("message", ""))
    detail = f"{code}: {message}"[:500]
    if code == "INVALID_FIELD":
        match = re.search(r"No such column '([^']+)'", message)
        missing = (match.group(1),) if match else ()
        return SchemaError(Salesforce._missing_reason(missing or ("asked for",)),
                           missing=missing, detail=detail)
    if code == "INVALID_QUERY_LOCATOR":
        return _LocatorExpired("Salesforce's query cursor expired.", detail=detail)
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "TotalRequests" in message:
            return RateLimited("The Salesforce org has used up its daily API request "
                               "allowance; the import continues on its next run.", detail=detail)
        return RateLimited("Salesforce is limiting requests right now; the import continues "
                           "on its next run.", detail=detail)
    if code in {"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"}:
        return ConfigurationError("API access is not enabled for this Salesforce org or user "
                                  "(it needs an edition with API access and the 'API Enabled' "
                                  "permission).", detail=detail)
    if resp.status == 403 or code in {"INSUFFICIENT_ACCESS", "INVALID_TYPE"}:
        return ConfigurationError("The connected Salesforce user may not read these records "
                                  "(missing permission).", detail=detail)
    if resp.status == 404:
        return ConfigurationError(f"Salesforce does not know this address: check the instance "
                                  f"URL and that API version {version} is available.",
                                  detail=detail)
    if code == "MALFORMED_QUERY":
        return ConfigurationError("Salesforce rejected the query Tributary built.", detail=detail)
    return SourceUnavailable(f"Salesforce answered with an error (HTTP {resp.status}).",
                             detail=detail)


class _LocatorExpired(SourceUnavailable):
    """nextRecordsUrl no longer valid: the walk restarts from its keyset."""




class Salesforce(TokenAuth, Provider):
    """A connected Salesforce org (one user's OAuth grant)."""

    name: ClassVar[str] = "salesforce"
    label: ClassVar[str] = "Salesforce"
    account_word = "org"
    connect_kinds = frozenset({"oauth"})
    group_words = (("Contacts", "all contacts, or those from one Lead Source"),
                   ("Leads", "all unconverted leads, or those from one Lead Source"))
    consent_words = ("Records with Email Opt Out are never added, and such contacts are "
                     "unsubscribed here too.")
    field_words = "Name, email, phone, country, lead source and your custom fields (__c)."
    form_keys: ClassVar[frozenset[str]] = frozenset({"environment", "my_domain", "login_host"})

    @staticmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """Salesforce's own domains (plus loopback for tests and the demo)."""
        return oauth.host_policy(allow_loopback)

    # -- connecting
    @classmethod
    def sign_in_origins(cls) -> list[str]:
        """The production and sandbox login hosts and My Domain hosts."""
        return [f"https://{h}" for h in LOGIN_HOSTS] + ["https://*.my.salesforce.com"]

    @classmethod
    def settings_from_form(cls, form, *, kind="oauth", allow_loopback=False):
        """The login host to sign in at; no credentials."""
        return {"login_host": oauth.login_from_form(form, allow_loopback)}, {}

    @classmethod
    def identity(cls, settings) -> str:
        """The org id (the instance URL for connections saved without one)."""
        return settings.get("org_id") or settings.get("instance_url", "")

    @classmethod
    def display_name(cls, settings) -> str:
        """The org's name or host, marked "(sandbox)" for sandboxes."""
        return oauth.display_name(settings)

    @classmethod
    def authorize(cls, settings, app, redirect_uri, *, allow_loopback=False):
        """The login URL with a PKCE challenge, and the pending verifier and state."""
        return oauth.authorize(settings, app, redirect_uri, allow_loopback)

    @classmethod
    def complete(cls, params, pending, app, redirect_uri, *, http, allow_loopback=False):
        """Verify the callback and trade its code (with the PKCE verifier) for tokens."""
        return oauth.complete(params, pending, app, redirect_uri, http, allow_loopback)

    # -- client
    def __init__(self, settings: dict[str, Any], credentials: dict[str, Any], **options: Any):
        super().__init__(settings, credentials, **options)
        self.login = login_base(settings.get("login_host") or LOGIN_HOSTS[0],
                                allow_loopback=self.allow_loopback)
        self.instance_url = instance_base(settings.get("instance_url", ""),
                                          allow_loopback=self.allow_loopback)
        version = str(settings.get("api_version") or API_VERSION)
        version = version if version.startswith("v") else f"v{version}"
        if not re.fullmatch(r"v\d{2,3}\.0", version):
            raise ConfigurationError(f"{version!r} is not a Salesforce API version.")
        self.api_version = version
        batch = int(settings.get("batch_size") or BATCH_MAX)
        self.batch_size = min(BATCH_MAX, max(BATCH_MIN, batch))
        self.api_usage: tuple[int, int] | None = None  # (used, daily limit) last reported
        self._describe: dict[str, dict[str, dict]] = {}

    # -- protocol
    def test_connection(self) -> None:
        """One cheap query proves login, API access and read access to Contacts."""
        self._get("query", params={"q": "SELECT Id FROM Contact LIMIT 1"})

    def groups(self) -> list[Group]:
        return [Group(k, v) for k, v in GROUPS.items()]

    def sources(self, group: str) -> list[Source]:
        """All records, or those of one Lead Source picklist value."""
        obj = self._object(group)
        result = [Source("all", f"All {GROUPS[obj].lower()}")]
        meta = self._fields(obj).get("LeadSource")
        for pick in (meta or {}).get("picklistValues") or []:
            if pick.get("active", True):
                result.append(Source(f"leadsource:{pick['value']}",
                                     f"Lead source: {pick.get('label') or pick['value']}"))
        return result

    def discover_fields(self, group: str) -> list[Field]:
        obj = self._object(group)
        meta = self._fields(obj, refresh=True)
        return [field(name, meta[name]) for name in self._selectable(meta)]

    def iter_pages(
        self,
        group: str,
        source: str,
        *,
        since: datetime | None = None,
        cursor: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> Iterator[Page]:
        """Stream pages oldest-first by (SystemModstamp, Id); see the module docstring."""
        obj = self._object(group)
        lead_source = self._lead_source(source)
        cursor = cursor or {}
        if since is None and cursor.get("since"):
            since = parse_time(cursor["since"])
        after: dict[str, str] | None = cursor.get("after")
        high = parse_time(cursor.get("high_water"))
        select, body = self._start(obj, fields, since=since, after=after,
                                   lead_source=lead_source)
        while True:
            raw = body.get("records") or []
            if raw:  # before record() takes the rows over
                after = {"t": raw[-1]["SystemModstamp"], "id": raw[-1]["Id"]}
            records = [record(obj, r) for r in raw]
            if raw:
                top = max((r.updated_at for r in records if r.updated_at), default=None)
                high = top if high is None or (top and top > high) else high
            done = bool(body.get("done", True))
            next_url = body.get("nextRecordsUrl")
            if not done and not next_url:
                raise SourceUnavailable("Salesforce said more records follow but gave no "
                                        "address for them.")
            raw = body = None  # the page's decoded JSON goes while its records are written
            # The next page travels while this one is written (its bytes only: decoding
            # waits for its turn, so one page of objects is alive at a time).
            ahead = None if done else Ahead(lambda url=next_url: self._request(url))
            yield Page(records, {
                "after": after,
                "since": since.isoformat() if since else None,
                "high_water": high.isoformat() if high else None,
            }, high, done)
            if done:
                return
            try:
                body = self._decode(ahead.result())
            except _LocatorExpired:
                log.info("Salesforce query locator expired; resuming from the keyset")
                select, body = self._start(obj, fields, since=since, after=after,
                                           lead_source=lead_source, select=select)

    # -- walk internals
    def _object(self, group: str) -> str:
        if group not in GROUPS:
            raise ConfigurationError(f"Salesforce has no group {group!r} here (Contact or "
                                     "Lead).")
        return group

    @staticmethod
    def _lead_source(source: str) -> str | None:
        if source == "all":
            return None
        if source.startswith("leadsource:") and source != "leadsource:":
            return source.partition(":")[2]
        raise ConfigurationError(f"Unknown Salesforce source {source!r}.")

    def _start(
        self, obj: str, fields: list[str] | None, *, since, after, lead_source,
        select: list[str] | None = None,
    ) -> tuple[list[str], dict]:
        """Run the walk's query. When a default field vanished since describe was cached,
        re-describe and retry once; a requested field that is gone is a SchemaError."""
        select = select or self._select(obj, fields)
        for attempt in (1, 2):
            soql = build_soql(obj, select, since=since, after=after, lead_source=lead_source)
            try:
                return select, self._get("query", params={"q": soql},
                                         headers={"Sforce-Query-Options":
                                                  f"batchSize={self.batch_size}"})
            except SchemaError as exc:
                if attempt == 2:
                    raise
                meta = self._fields(obj, refresh=True)
                known = {n.lower() for n in meta}
                missing = tuple(n for n in fields or () if n.lower() not in known)
                if missing:
                    raise SchemaError(self._missing_reason(missing), missing=missing,
                                      detail=exc.detail) from exc
                select = self._select(obj, fields)
        raise AssertionError("unreachable")

    @staticmethod
    def _missing_reason(missing: tuple[str, ...]) -> str:
        return f"Salesforce no longer has the field(s) {', '.join(missing)}."

    def _select(self, obj: str, fields: list[str] | None) -> list[str]:
        meta = self._fields(obj)
        by_lower = {n.lower(): n for n in meta}
        missing = tuple(n for n in fields or () if n.lower() not in by_lower)
        if missing:
            raise SchemaError(self._missing_reason(missing), missing=missing)
        selectable = self._selectable(meta)
        wanted = [*CORE_FIELDS, COUNTRY_FIELD[obj], f"{COUNTRY_FIELD[obj]}Code"]
        select = [n for n in wanted if n in meta and n in selectable]
        select += [n for n in selectable if meta[n].get("custom")]
        select += [by_lower[n.lower()] for n in fields or ()]
        if "Id" not in select or "SystemModstamp" not in select:
            raise ConfigurationError(f"The connected user cannot read {obj} ids and change "
                                     "times.")
        return list(dict.fromkeys(select))

    @staticmethod
    def _selectable(meta: dict[str, dict]) -> list[str]:
        """Fields that may go into SELECT: not compound (Name, MailingAddress), not blobs."""
        compound = {f.get("compoundFieldName") for f in meta.values()} - {None}
        return [n for n, f in meta.items()
                if n not in compound and f.get("type") not in UNSELECTABLE_TYPES]

    def _fields(self, obj: str, *, refresh: bool = False) -> dict[str, dict]:
        if refresh or obj not in self._describe:
            body = self._get(f"sobjects/{obj}/describe")
            self._describe[obj] = {f["name"]: f for f in body.get("fields") or []}
        return self._describe[obj]

    # -- HTTP
    def renew(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Renew the session with the refresh token (it may rotate; the instance may move)."""
        new, instance = oauth.refresh(self.http, self.login, credentials)
        if instance:
            self.instance_url = instance_base(instance, allow_loopback=self.allow_loopback)
        return new

    def _get(self, path: str, *, params: dict | None = None,
             headers: dict | None = None) -> dict:
        """GET an API path (relative to the versioned base) or a server-given /services path,
        refreshing the session at most once on INVALID_SESSION_ID."""
        return self._decode(self._request(path, params=params, headers=headers))

    def _request(self, path: str, *, params: dict | None = None,
                 headers: dict | None = None) -> Response:
        if path.startswith("/services/"):
            url = self.instance_url + path
        else:
            url = f"{self.instance_url}/services/data/{self.api_version}/{path}"
        return self.authorized(lambda token: self._send(url, token, params, headers))

    def _decode(self, resp: Response) -> dict:
        """The answer's JSON object, or the error it says (a 401 after renewing: auth)."""
        if resp.status == 401:
            raise AuthError("Salesforce rejected the session even after renewing it. "
                            "Reconnect the integration.", detail=resp.text[:300])
        if resp.status >= 300:
            raise _api_error(resp, self.api_version)
        body = resp.json()
        if not isinstance(body, dict):
            raise SourceUnavailable("Salesforce sent an unexpected answer.",
                                    detail=resp.text[:200])
        return body

    def _send(self, url: str, token: str, params: dict | None, headers: dict | None
              ) -> Response:
        all_headers = {"Authorization": f"Bearer {token}",
                       "Accept": "application/json", **(headers or {})}
        resp = self.http.request("GET", url, params=params, headers=all_headers)
        match = re.search(r"api-usage=(\d+)/(\d+)", resp.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))
        return resp

    # -- counting
    def count_records(self, group: str, source: str, *,
                      since: datetime | None = None) -> RecordCount | None:
        """`SELECT COUNT() FROM …` over the walk's own filters: Salesforce answers with
        `totalSize` and no records."""
        obj = self._object(group)
        lead_source = self._lead_source(source)
        where = []
        if since is not None:
            where.append(f"SystemModstamp >= {soql_datetime(since)}")
        if obj == "Lead":
            where.append("IsConverted = false")
        if lead_source is not None:
            where.append(f"LeadSource = {soql_string(lead_source)}")
        soql = f"SELECT COUNT() FROM {obj}" + (" WHERE " + " AND ".join(where) if where else "")
        total = self._get("query", params={"q": soql}).get("totalSize")
        if isinstance(total, bool) or not isinstance(total, int):
            raise SourceUnavailable("Salesforce sent a record count of an unexpected shape.")
        return RecordCount(total)

    # -- naming
    def account_name(self) -> str | None:
        """The org's name (`SELECT Name FROM Organization`); None when the user may not
        read the Organization object (Salesforce answers 400 INVALID_TYPE)."""
        try:
            body = self._get("query", params={"q": "SELECT Name FROM Organization"})
        except ConfigurationError:
            return None
        records = body.get("records")
        first = records[0] if isinstance(records, list) and records else {}
        name = first.get("Name") if isinstance(first, dict) else None
        return name if isinstance(name, str) and name.strip() else None

