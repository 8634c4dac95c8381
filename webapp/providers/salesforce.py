"""Salesforce REST client: Contacts and Leads read with SOQL, OAuth 2 web-server flow with
PKCE, session refresh (rotated refresh tokens handed back), daily-quota awareness.

The walk follows `nextRecordsUrl` verbatim within a run; its cursor is the keyset
(SystemModstamp, Id) of the last record yielded, because query locators expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

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

log = logging.getLogger(__name__)

API_VERSION = "v62.0"
SCOPE = "api refresh_token"
LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
HOST_PATTERNS = ("*.salesforce.com", "*.force.com")
# A My Domain login host: name.my.salesforce.com or name--box.sandbox.my.salesforce.com.
MY_DOMAIN_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.sandbox)?\.my\.salesforce\.com")
GROUPS = {"Contact": "Contacts", "Lead": "Leads"}
COUNTRY_FIELD = {"Contact": "MailingCountry", "Lead": "Country"}
# Fetched on every walk when the org has them; custom fields (__c) are added from describe.
CORE_FIELDS = (
    "Id", "SystemModstamp", "FirstName", "LastName", "Email", "Phone", "LeadSource",
    "HasOptedOutOfEmail", "DoNotCall", "LastModifiedDate", "CreatedDate", "Description",
)
UNSELECTABLE_TYPES = frozenset({"address", "location", "base64"})
FIELD_TYPE = {
    "string": "text", "textarea": "textarea", "email": "email", "phone": "phone",
    "url": "url", "boolean": "boolean", "date": "date", "datetime": "datetime",
    "int": "number", "long": "number", "double": "number", "percent": "number",
    "currency": "number", "picklist": "choice", "combobox": "choice",
    "multipicklist": "multi_choice", "id": "text",
}
BATCH_MIN, BATCH_MAX = 200, 2000


# --------------------------------------------------------------------------- hosts


def host_policy(allow_loopback: bool = False) -> HostPolicy:
    """The outbound allow-list: Salesforce's own domains (plus loopback for tests)."""
    return HostPolicy(HOST_PATTERNS, allow_loopback=allow_loopback)


def _base(value: str, what: str, allow_loopback: bool) -> tuple[str, str]:
    """Scheme, host (and a loopback port) only, by the strict grammar of http.parse_target."""
    text = (value or "").strip().rstrip("/")
    if not text:
        raise ConfigurationError(f"The Salesforce {what} is missing.")
    if "://" not in text:
        text = "https://" + text
    try:
        target = parse_target(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"The Salesforce {what} must be a plain https host name.",
                                 detail=exc.reason) from None
    loopback = allow_loopback and target.host == "127.0.0.1"
    if target.tail not in ("", "/") or (not loopback and (
            target.scheme != "https" or target.port != 443)):
        raise ConfigurationError(f"The Salesforce {what} must be a plain https host name.")
    return target.base, target.host


def login_base(login_host: str, *, allow_loopback: bool = False) -> str:
    """https://login.salesforce.com (production), test.salesforce.com (sandbox) or a
    My Domain host; anything else is refused before any request is made."""
    base, host = _base(login_host, "login host", allow_loopback)
    loopback = allow_loopback and host == "127.0.0.1"
    if loopback or host in LOGIN_HOSTS or MY_DOMAIN_RE.fullmatch(host):
        return base
    raise ConfigurationError(
        f"{host} is not a Salesforce login host: use login.salesforce.com, "
        "test.salesforce.com (sandbox) or your My Domain (name.my.salesforce.com)."
    )


def instance_base(instance_url: str, *, allow_loopback: bool = False) -> str:
    """The org's API host as the token endpoint reported it, checked against the allow-list."""
    base, _ = _base(instance_url, "instance URL", allow_loopback)
    host_policy(allow_loopback).check(base)
    return base


# ---------------------------------------------------------------------------- OAuth


def make_pkce() -> tuple[str, str]:
    """A fresh PKCE pair: (code_verifier to keep server-side, S256 code_challenge to send)."""
    verifier = generate_token(64)
    return verifier, create_s256_code_challenge(verifier)


def new_state() -> str:
    """An unguessable OAuth `state` value to bind the callback to the browser session."""
    return generate_token(32)


def authorize_url(
    login_host: str, client_id: str, redirect_uri: str, state: str, code_challenge: str,
    *, allow_loopback: bool = False,
) -> str:
    """Where to send the user to log in (production or sandbox login host)."""
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": SCOPE, "state": state, "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    base = login_base(login_host, allow_loopback=allow_loopback)
    return f"{base}/services/oauth2/authorize?{urlencode(params, quote_via=quote)}"


def verify_callback(params: Mapping[str, str], expected_state: str) -> str:
    """Check the callback's `state` and errors; return the authorization code."""
    state = params.get("state") or ""
    if not expected_state or not hmac.compare_digest(state, expected_state):
        raise AuthError("The Salesforce sign-in answer does not belong to this session; "
                        "please start connecting again.")
    error = params.get("error")
    if error:
        if error == "access_denied":
            raise AuthError("Access was declined on the Salesforce sign-in page.")
        code = error if re.fullmatch(r"[a-z_]{1,40}", error) else "unexpected answer"
        raise AuthError(f"Salesforce did not grant access ({code}).",
                        detail=params.get("error_description", ""))
    code = params.get("code")
    if not code:
        raise AuthError("The Salesforce sign-in answer carried no authorization code.")
    return code


def exchange_code(
    login_host: str, client_id: str, client_secret: str, code: str, redirect_uri: str,
    code_verifier: str, *, http: HttpClient | None = None, allow_loopback: bool = False,
) -> dict[str, dict[str, Any]]:
    """Trade the callback's code (plus the PKCE verifier) for tokens; returns
    {"settings": {...}, "credentials": {...}} ready to store on the integration."""
    login = login_base(login_host, allow_loopback=allow_loopback)
    http = http or HttpClient(host_policy(allow_loopback))
    payload = _token_call(http, login, {
        "grant_type": "authorization_code", "code": code, "client_id": client_id,
        "client_secret": client_secret, "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    })
    _check_signature(payload, client_secret)
    if not payload.get("refresh_token"):
        raise ConfigurationError("Salesforce gave no refresh token: the connected app must "
                                 "allow the 'refresh_token' scope.")
    ident = urlsplit(str(payload.get("id", ""))).path.strip("/").split("/")
    settings = {
        "login_host": login,
        "instance_url": instance_base(payload.get("instance_url", ""),
                                      allow_loopback=allow_loopback),
        "api_version": API_VERSION,
        "org_id": ident[-2] if len(ident) >= 3 else "",
        "user_id": ident[-1] if len(ident) >= 3 else "",
    }
    credentials = {
        "client_id": client_id, "client_secret": client_secret,
        "access_token": payload["access_token"], "refresh_token": payload["refresh_token"],
    }
    return {"settings": settings, "credentials": credentials}


def _check_signature(payload: dict, client_secret: str) -> None:
    """Salesforce signs id + issued_at with the client secret: proof the answer is genuine."""
    sig, ident, issued = payload.get("signature"), payload.get("id"), payload.get("issued_at")
    if not (sig and ident and issued):
        return
    mac = hmac.new(client_secret.encode(), f"{ident}{issued}".encode(), hashlib.sha256)
    if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), str(sig)):
        raise AuthError("Salesforce's sign-in answer failed its signature check.")


def _token_call(http: HttpClient, login: str, form: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint; map OAuth errors to typed errors (never echo secrets)."""
    resp = http.request("POST", f"{login}/services/oauth2/token", data=form,
                        headers={"Accept": "application/json"})
    body = resp.json() if resp.body else None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"Salesforce's sign-in service answered HTTP {resp.status} "
                                "without a usable body.")
    if resp.status == 200 and body.get("access_token"):
        return body
    error, desc = str(body.get("error", "")), str(body.get("error_description", ""))
    if error == "invalid_grant":
        if desc == "invalid code verifier":
            raise AuthError("Salesforce refused the sign-in: the PKCE code verifier did not "
                            "match. Please connect again.", detail=desc)
        raise AuthError("Salesforce no longer accepts this connection's authorisation "
                        "(expired or revoked). Reconnect the integration.", detail=desc)
    if error in {"invalid_client_id", "invalid_client"}:
        raise ConfigurationError("Salesforce did not accept the connected app's client id or "
                                 "secret.", detail=desc)
    if error == "redirect_uri_mismatch":
        raise ConfigurationError("The callback address is not registered on the Salesforce "
                                 "connected app.", detail=desc)
    raise AuthError(f"Salesforce refused the sign-in ({error or resp.status}).", detail=desc)


# -------------------------------------------------------------------------- helpers


def parse_datetime(value: str | None) -> datetime | None:
    """Salesforce's 2025-05-01T12:34:56.000+0000 (or ISO with Z / ±hh:mm) as aware UTC."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(UTC)


def soql_datetime(value: datetime) -> str:
    """An unquoted SOQL dateTime literal, floored to the second (the safe side)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal (backslash escapes, no raw line breaks)."""
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f"'{escaped}'"


def build_soql(
    obj: str, select: list[str], *, since: datetime | None = None,
    after: Mapping[str, str] | None = None, lead_source: str | None = None,
) -> str:
    """The walk's query: changed since `since`, after the keyset `after`, oldest first."""
    where = []
    if since is not None:
        where.append(f"SystemModstamp >= {soql_datetime(since)}")
    if after:
        t = soql_datetime(parse_datetime(after["t"]))  # type: ignore[arg-type]
        where.append(f"(SystemModstamp > {t} OR (SystemModstamp = {t} AND "
                     f"Id > {soql_string(after['id'])}))")
    if obj == "Lead":
        where.append("IsConverted = false")
    if lead_source is not None:
        where.append(f"LeadSource = {soql_string(lead_source)}")
    query = f"SELECT {','.join(select)} FROM {obj}"
    if where:
        query += " WHERE " + " AND ".join(where)
    return query + " ORDER BY SystemModstamp ASC, Id ASC"


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


# --------------------------------------------------------------------------- client


class Salesforce(ProviderBase):
    """A connected Salesforce org (one user's OAuth grant)."""

    name: ClassVar[str] = "salesforce"
    label: ClassVar[str] = "Salesforce"
    host_policy = staticmethod(host_policy)

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
        out = []
        for name in self._selectable(meta):
            f = meta[name]
            ftype = "country" if name.endswith("CountryCode") else FIELD_TYPE.get(
                f.get("type", ""), "other")
            allowed = tuple(p["value"] for p in f.get("picklistValues") or []
                            if p.get("active", True))
            out.append(Field(name, f.get("label") or name, ftype, bool(f.get("custom")),
                             allowed))
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
        """Stream pages oldest-first by (SystemModstamp, Id); see the module docstring."""
        obj = self._object(group)
        lead_source = self._lead_source(source)
        cursor = cursor or {}
        if since is None and cursor.get("since"):
            since = parse_datetime(cursor["since"])
        after: dict[str, str] | None = cursor.get("after")
        high = parse_datetime(cursor.get("high_water"))
        select, body = self._start(obj, fields, since=since, after=after,
                                   lead_source=lead_source)
        while True:
            raw = body.get("records") or []
            records = [self._record(obj, r) for r in raw]
            if raw:
                after = {"t": raw[-1]["SystemModstamp"], "id": raw[-1]["Id"]}
                top = max((r.updated_at for r in records if r.updated_at), default=None)
                high = top if high is None or (top and top > high) else high
            done = bool(body.get("done", True))
            next_url = body.get("nextRecordsUrl")
            if not done and not next_url:
                raise SourceUnavailable("Salesforce said more records follow but gave no "
                                        "address for them.")
            yield Page(records, {
                "after": after,
                "since": since.isoformat() if since else None,
                "high_water": high.isoformat() if high else None,
            }, high, done)
            if done:
                return
            try:
                body = self._get(next_url)
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

    def _record(self, obj: str, raw: dict[str, Any]) -> Record:
        values = {k: v for k, v in raw.items() if k != "attributes"}
        rid = str(values.pop("Id"))
        country_field = COUNTRY_FIELD[obj]
        country = country_code(values.get(f"{country_field}Code")) or country_code(
            values.get(country_field))
        return Record(
            source_id=rid,
            email=values.pop("Email", None),
            first_name=values.pop("FirstName", None),
            last_name=values.pop("LastName", None),
            phone=values.pop("Phone", None),
            country=country,
            consent="opted_out" if values.get("HasOptedOutOfEmail") is True else "unknown",
            consent_at=None,  # Salesforce keeps no timestamp of the opt-out flag
            updated_at=parse_datetime(values.get("SystemModstamp")),
            fields=values,
        )

    # -- HTTP
    def _get(self, path: str, *, params: dict | None = None,
             headers: dict | None = None) -> dict:
        """GET an API path (relative to the versioned base) or a server-given /services path,
        refreshing the session at most once on INVALID_SESSION_ID."""
        if path.startswith("/services/"):
            url = self.instance_url + path
        else:
            url = f"{self.instance_url}/services/data/{self.api_version}/{path}"
        refreshed = False
        if not self.credentials.get("access_token"):
            self._refresh()
            refreshed = True
        resp = self._send(url, params, headers)
        if resp.status == 401 and not refreshed:
            self._refresh()
            resp = self._send(url, params, headers)
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

    def _send(self, url: str, params: dict | None, headers: dict | None) -> Response:
        all_headers = {"Authorization": f"Bearer {self.credentials.get('access_token', '')}",
                       "Accept": "application/json", **(headers or {})}
        resp = self.http.request("GET", url, params=params, headers=all_headers)
        match = re.search(r"api-usage=(\d+)/(\d+)", resp.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))
        return resp

    def _refresh(self) -> None:
        """Renew the session with the refresh token; hand rotated credentials back."""
        refresh_token = self.credentials.get("refresh_token")
        if not refresh_token:
            raise AuthError("The Salesforce session ended and this connection has no refresh "
                            "token. Reconnect the integration.")
        with self.refreshing() as adopted:
            if adopted:
                return
            payload = _token_call(self.http, self.login, {
                "grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self.credentials.get("client_id", ""),
                "client_secret": self.credentials.get("client_secret", ""),
            })
            new = dict(self.credentials, access_token=payload["access_token"])
            if payload.get("refresh_token"):
                new["refresh_token"] = payload["refresh_token"]
            if payload.get("instance_url"):
                self.instance_url = instance_base(payload["instance_url"],
                                                  allow_loopback=self.allow_loopback)
            log.info("Salesforce session renewed%s",
                     " (refresh token rotated)" if payload.get("refresh_token") else "")
            self.hand_back(new)

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
