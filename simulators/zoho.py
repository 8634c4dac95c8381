"""A strict local Zoho CRM API v8 (accounts server + CRM API in one WSGI app).

Reproduces Zoho's quirks: mandatory `fields` (<= 50), `per_page` <= 200,
`page` only for the first 2,000 records then bound, expiring `page_token`s that stop at
100,000 records, 204/304 empty answers, inclusive `If-Modified-Since`, converted leads
hidden, 200-with-error token answers, a refresh rate limit and Zoho's error JSON shapes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from .dataset import Person

CONTACT_ID_BASE = 5725767000000000000
LEAD_ID_BASE = 5725767000100000000
OWNERS = (
    {"name": "Patricia Boyle", "id": "5725767000000235011", "email": "p.boyle@zylker.com"},
    {"name": "Marcus Webb", "id": "5725767000000235027", "email": "m.webb@zylker.com"},
)
LEAD_SOURCES = (
    "Advertisement", "Cold Call", "Employee Referral", "External Referral", "Online Store",
    "Partner", "Public Relations", "Seminar Partner", "Trade Show", "Web Download", "Chat",
)
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
COUNTRY_NAMES = {
    "US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France",
    "CA": "Canada", "AU": "Australia", "NL": "Netherlands", "PL": "Poland", "ES": "Spain",
    "JP": "Japan",
}
ALL_SCOPES = (
    "ZohoCRM.modules.contacts.READ", "ZohoCRM.modules.leads.READ",
    "ZohoCRM.settings.fields.READ", "ZohoCRM.settings.modules.READ",
    "ZohoCRM.settings.custom_views.READ", "ZohoCRM.org.READ",
)
MAX_FIELDS = 50
MAX_PER_PAGE = 200
DISCRETE_LIMIT = 2000
TOKEN_LIFETIME = timedelta(hours=24)
ACCESS_LIFETIME = 3600
MAX_ACCESS_TOKENS = 15  # Zoho keeps at most 15 live access tokens per refresh token
SORTABLE = ("id", "Created_Time", "Modified_Time")


def contact_id(person_id: int, base: int = CONTACT_ID_BASE) -> str:
    """The Zoho record id the simulator gives a dataset person in Contacts."""
    return str(base + person_id)


def lead_id(person_id: int, base: int = LEAD_ID_BASE) -> str:
    """The Zoho record id the simulator gives a dataset person in Leads."""
    return str(base + person_id)


def is_converted(p: Person) -> bool:
    """Every ninth lead has been converted (hidden unless converted=both)."""
    return p.id % 9 == 0


def _field(api: str, label: str, dtype: str, custom: bool = False,
           values: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "api_name": api, "field_label": label, "display_label": label, "data_type": dtype,
        "json_type": "jsonobject" if dtype.endswith("lookup") else "string",
        "custom_field": custom, "id": str(5725767000000300000 + abs(hash(api)) % 99999),
        "read_only": api in ("Created_Time", "Modified_Time", "Full_Name"),
        "system_mandatory": api == "Last_Name", "visible": True,
        "pick_list_values": [
            {"display_value": v, "actual_value": v, "id": str(5725767000000400000 + i)}
            for i, v in enumerate(values)
        ],
    }


def _fields_meta(module: str, extra_custom: int) -> list[dict[str, Any]]:
    country = "Mailing_Country" if module == "Contacts" else "Country"
    fields = [
        _field("Owner", f"{module[:-1]} Owner", "ownerlookup"),
        _field("First_Name", "First Name", "text"),
        _field("Last_Name", "Last Name", "text"),
        _field("Full_Name", "Full Name", "text"),
        _field("Email", "Email", "email"),
        _field("Phone", "Phone", "phone"),
        _field("Mobile", "Mobile", "phone"),
        _field(country, country.replace("_", " "), "text"),
        _field("Lead_Source", "Lead Source", "picklist", values=LEAD_SOURCES),
        _field("Email_Opt_Out", "Email Opt Out", "boolean"),
        _field("Description", "Description", "textarea"),
        _field("Created_Time", "Created Time", "datetime"),
        _field("Modified_Time", "Modified Time", "datetime"),
        _field("Loyalty_Tier", "Loyalty Tier", "picklist", True, ("-None-", *TIERS)),
        _field("Birthday", "Birthday", "date", True),
        _field("Lifetime_Value", "Lifetime Value", "currency", True),
        _field("Website", "Website", "website", module == "Contacts"),
    ]
    if module == "Leads":
        fields.append(_field("Company", "Company", "text"))
        fields.append(_field("Lead_Status", "Lead Status", "picklist",
                             values=("Not Contacted", "Contacted", "Qualified")))
    fields += [_field(f"Custom_{i}", f"Custom {i}", "text", True)
               for i in range(1, extra_custom + 1)]
    return fields


def _views(module: str) -> list[dict[str, Any]]:
    base = 5725767000000087500 if module == "Contacts" else 5725767000000087600

    def view(n: int, name: str, system: str | None) -> dict[str, Any]:
        return {
            "id": str(base + n), "name": name, "display_value": name, "system_name": system,
            "system_defined": system is not None, "default": n == 1, "category":
            "public_views" if system is None else "predefined_views", "access_type": "public",
            "favorite": None, "created_time": None, "modified_time": None,
        }

    if module == "Contacts":
        return [view(1, "All Contacts", "ALLVIEWS"), view(2, "Gold and Platinum members", None),
                view(3, "Newsletter readers", None)]
    return [view(1, "All Leads", "ALLVIEWS"), view(2, "Web Download leads", None)]


def _view_filter(module: str, cvid: str):
    """The members predicate of a custom view (None for an unknown cvid)."""
    views = {v["id"]: v["name"] for v in _views(module)}
    name = views.get(cvid)
    if name is None:
        return None
    if name.startswith("All"):
        return lambda p: True
    if name.startswith("Gold"):
        return lambda p: p.loyalty_tier in ("Gold", "Platinum")
    if name.startswith("Newsletter"):
        return lambda p: "newsletter" in p.tags
    return lambda p: LEAD_SOURCES[p.id % len(LEAD_SOURCES)] == "Web Download"


def _error(status: int, code: str, message: str, details: dict | None = None, **headers):
    body = {"code": code, "details": details or {}, "message": message, "status": "error"}
    return Response(json.dumps(body), status, headers=headers, content_type="application/json")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json;charset=UTF-8")


@dataclass
class ZohoState:
    """Test controls and server-side state (tokens, counters, clock, switches)."""

    people: list[Person]
    client_id: str = "1000.SIMCLIENTID0000000000000000000"
    client_secret: str = "simulated-client-secret-0123456789abcdef"
    tz: timezone = timezone(timedelta(hours=5, minutes=30))
    location: str = "us"
    accounts_server: str | None = None  # default: the request's own host
    api_domain: str | None = None  # default: the request's own host
    extra_custom_fields: int = 0
    org_name: str | None = "Zylker Corp"  # GET /org company_name (None: never set)
    contact_id_base: int = CONTACT_ID_BASE  # record id = base + Person.id
    lead_id_base: int = LEAD_ID_BASE
    token_record_limit: int = 100_000
    access_lifetime: int = ACCESS_LIFETIME  # seconds an access token lives (expires_in)
    refresh_limit_per_minute: int = 5
    retry_after: str | None = "1"
    delay: float = 0.0
    skew: timedelta = timedelta(0)
    error_every: int = 0
    error_status: int = 0
    api_requests: int = 0
    token_requests: int = 0
    refresh_requests: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    api_hosts: set[str] = field(default_factory=set)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_times: list[float] = field(default_factory=list)
    version: int = 0
    _order_cache: dict[Any, list[Person]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ controls
    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (token and page-token expiry)."""
        self.skew += timedelta(seconds=seconds)

    def inject_errors(self, every: int, status: int, retry_after: str | None = "1") -> None:
        self.error_every, self.error_status, self.retry_after = every, status, retry_after

    def issue_tokens(self, scopes: tuple[str, ...] = ALL_SCOPES) -> dict[str, Any]:
        """Mint a refresh token and a live access token, as after a completed consent."""
        refresh = "1000." + secrets.token_hex(32)
        self.refresh_tokens[refresh] = {"scopes": tuple(scopes)}
        access, expires = self._new_access(refresh)
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": refresh, "access_token": access,
                "access_token_expires_at": expires}

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def touch(self, ids: list[int], at: datetime) -> None:
        from .dataset import touch

        touch(self.people, ids, at)
        self.version += 1

    # ------------------------------------------------------------------ helpers
    def _new_access(self, refresh: str) -> tuple[str, int]:
        token = "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
        expires = int(self.now().timestamp()) + self.access_lifetime
        self.access_tokens[token] = {"refresh": refresh, "expires": expires}
        mine = [t for t, v in self.access_tokens.items() if v["refresh"] == refresh]
        for old in mine[:-MAX_ACCESS_TOKENS]:
            del self.access_tokens[old]
        return token, expires

    def ordered(self, module: str, converted: str, cvid: str | None, sort_by: str,
                desc: bool) -> list[Person]:
        key = (module, converted, cvid, sort_by, desc, self.version)
        cached = self._order_cache.get(key)
        if cached is not None:
            return cached
        rows = self.people
        if module == "Leads" and converted != "both":
            want = converted == "true"
            rows = [p for p in rows if is_converted(p) == want]
        if cvid:
            rows = [p for p in rows if _view_filter(module, cvid)(p)]
        keyf = {"id": lambda p: (p.id,), "Created_Time": lambda p: (p.created_at, p.id),
                "Modified_Time": lambda p: (p.updated_at.replace(microsecond=0), p.id)}[sort_by]
        rows = sorted(rows, key=keyf, reverse=desc)
        self._order_cache = {key: rows}
        return rows

    def render(self, module: str, p: Person, fields: list[str]) -> dict[str, Any]:
        def ts(d: datetime) -> str:
            return d.astimezone(self.tz).replace(microsecond=0).isoformat()

        country = COUNTRY_NAMES.get(p.country or "", p.country)
        full = {
            "Owner": OWNERS[p.id % 2], "First_Name": p.first_name, "Last_Name": p.last_name,
            "Full_Name": f"{p.first_name} {p.last_name}".strip(), "Email": p.email,
            "Phone": p.phone if p.id % 2 == 0 else None,
            "Mobile": p.phone if p.id % 2 else None,
            "Mailing_Country" if module == "Contacts" else "Country": country,
            "Lead_Source": LEAD_SOURCES[p.id % len(LEAD_SOURCES)],
            "Email_Opt_Out": p.consent == "opted_out",
            "Description": p.note or None, "Created_Time": ts(p.created_at),
            "Modified_Time": ts(p.updated_at), "Loyalty_Tier": p.loyalty_tier,
            "Birthday": p.birthday.isoformat() if p.birthday else None,
            "Lifetime_Value": p.lifetime_value, "Website": p.website,
            "Company": f"{p.last_name} Holdings", "Lead_Status": "Contacted",
        }
        rid = (contact_id(p.id, self.contact_id_base) if module == "Contacts"
               else lead_id(p.id, self.lead_id_base))
        out: dict[str, Any] = {"id": rid}
        for name in fields:
            if name.startswith("Custom_"):
                out[name] = f"{name.lower()}-{p.id}"
            elif name != "id":
                out[name] = full.get(name)
        return out


class ZohoApp:
    """The WSGI app; `state` is the test control panel."""

    def __init__(self, state: ZohoState):
        self.state = state

    def __call__(self, environ, start_response):
        request = Request(environ)
        if self.state.delay:
            time.sleep(self.state.delay)
        with self.state.lock:
            response = self.dispatch(request)
        return response(environ, start_response)

    # ------------------------------------------------------------------ routing
    def dispatch(self, req: Request) -> Response:
        path = req.path
        if path == "/oauth/v2/auth" and req.method == "GET":
            return self.authorize(req)
        if path == "/oauth/v2/token" and req.method == "POST":
            return self.token(req)
        if path.startswith("/crm/"):
            return self.api(req)
        return _error(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access "
                      "is a correct one")

    # ------------------------------------------------------------------ accounts
    def _own_url(self, req: Request, configured: str | None) -> str:
        return configured or req.host_url.rstrip("/")

    def authorize(self, req: Request) -> Response:
        s, a = self.state, req.args
        if a.get("client_id") != s.client_id:
            return Response("Invalid Client ID", 400)
        if a.get("response_type") != "code" or not a.get("redirect_uri") or not a.get("scope"):
            return Response("Invalid Request", 400)
        code = "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
        s.codes[code] = {"redirect_uri": a["redirect_uri"],
                         "scopes": tuple(a["scope"].split(",")),
                         "offline": a.get("access_type") == "offline",
                         "expires": s.now() + timedelta(minutes=2)}
        query = {"state": a.get("state", ""), "code": code, "location": s.location,
                 "accounts-server": self._own_url(req, s.accounts_server)}
        sep = "&" if "?" in a["redirect_uri"] else "?"
        return Response("", 302, headers={"Location": a["redirect_uri"] + sep + urlencode(query)})

    def token(self, req: Request) -> Response:
        s = self.state
        s.token_requests += 1
        params = {**req.args.to_dict(), **req.form.to_dict()}
        grant = params.get("grant_type")
        if params.get("client_id") != s.client_id:
            return _json({"error": "invalid_client"})
        if params.get("client_secret") != s.client_secret:
            return _json({"error": "invalid_client_secret"})
        api_domain = self._own_url(req, s.api_domain)
        if grant == "authorization_code":
            info = s.codes.pop(params.get("code", ""), None)
            if info is None or info["expires"] < s.now():
                return _json({"error": "invalid_code"})
            if params.get("redirect_uri") != info["redirect_uri"]:
                return _json({"error": "invalid_redirect_uri"})
            body = {"scope": " ".join(info["scopes"]), "api_domain": api_domain,
                    "token_type": "Bearer", "expires_in": s.access_lifetime}
            refresh = "1000." + secrets.token_hex(32)
            s.refresh_tokens[refresh] = {"scopes": info["scopes"]}
            body["access_token"], _ = s._new_access(refresh)
            if info["offline"]:
                body["refresh_token"] = refresh
            return _json(body)
        if grant == "refresh_token":
            s.refresh_requests += 1
            now = s.now().timestamp()
            s.refresh_times = [t for t in s.refresh_times if now - t < 60]
            if len(s.refresh_times) >= s.refresh_limit_per_minute:
                return _json({"error_description": "You have made too many requests "
                              "continuously. Please try again after some time.",
                              "error": "Access Denied", "status": "failure"}, 400)
            s.refresh_times.append(now)
            refresh = params.get("refresh_token", "")
            info = s.refresh_tokens.get(refresh)
            if info is None:
                return _json({"error": "invalid_code"})
            access, _ = s._new_access(refresh)
            return _json({"access_token": access, "scope": " ".join(info["scopes"]),
                          "api_domain": api_domain, "token_type": "Bearer",
                          "expires_in": s.access_lifetime})
        return _json({"error": "unsupported_grant_type"})

    # ------------------------------------------------------------------ CRM API
    def _auth(self, req: Request) -> tuple[tuple[str, ...] | None, Response | None]:
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            return None, _error(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        info = self.state.access_tokens.get(token)
        if info is None or info["expires"] <= self.state.now().timestamp():
            return None, _error(401, "INVALID_TOKEN", "invalid oauth token")
        refresh = self.state.refresh_tokens.get(info["refresh"])
        if refresh is None:
            return None, _error(401, "INVALID_TOKEN", "invalid oauth token")
        return refresh["scopes"], None

    def api(self, req: Request) -> Response:
        s = self.state
        s.api_requests += 1
        s.api_hosts.add(req.host)
        if len(s.log) < 20000:
            s.log.append({"path": req.path, "args": req.args.to_dict(),
                          "if_modified_since": req.headers.get("If-Modified-Since")})
        if s.error_every and s.api_requests % s.error_every == 0:
            if s.error_status == 429:
                headers = {"Retry-After": s.retry_after} if s.retry_after else {}
                return _error(429, "TOO_MANY_REQUESTS", "too many requests continuously",
                              {"duration": 60}, **headers)
            return _error(s.error_status, "INTERNAL_ERROR", "Internal Server Error")
        scopes, failure = self._auth(req)
        if failure:
            return failure
        parts = req.path.strip("/").split("/")
        if parts[:2] != ["crm", "v8"] or len(parts) < 3:
            return _error(404, "INVALID_URL_PATTERN",
                          "Please check if the URL trying to access is a correct one")
        if parts[2:] == ["org"] and req.method == "GET":
            return self.org(scopes)
        if parts[2:] == ["settings", "fields"]:
            return self.fields(req, scopes)
        if parts[2:] == ["settings", "custom_views"]:
            return self.custom_views(req, scopes)
        if len(parts) == 3 and req.method == "GET":
            return self.records(req, scopes, parts[2])
        if len(parts) == 5 and parts[3:] == ["actions", "count"] and req.method == "GET":
            return self.count(req, scopes, parts[2])
        return _error(404, "INVALID_URL_PATTERN",
                      "Please check if the URL trying to access is a correct one")

    def _module_arg(self, req: Request) -> tuple[str | None, Response | None]:
        module = req.args.get("module")
        if not module:
            return None, _error(400, "REQUIRED_PARAM_MISSING",
                                "One of the expected parameter is missing",
                                {"param_name": "module"})
        if module not in ("Contacts", "Leads"):
            return None, _error(400, "INVALID_MODULE",
                                "the module name given seems to be invalid",
                                {"param_name": "module"})
        return module, None

    @staticmethod
    def _scope_ok(scopes: tuple[str, ...], needed: str) -> bool:
        family = needed.rsplit(".", 2)[0]
        return needed in scopes or f"{needed.rsplit('.', 1)[0]}.ALL" in scopes or \
            f"{family}.ALL" in scopes

    def org(self, scopes) -> Response:
        """`GET /crm/v8/org`: the organisation's details; needs ZohoCRM.org.READ."""
        if not self._scope_ok(scopes, "ZohoCRM.org.READ"):
            return _error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        return _json({"org": [{
            "id": "5725767000000021001", "company_name": self.state.org_name,
            "domain_name": "org60012345", "primary_email": "p.boyle@zylker.com",
            "currency": "US Dollar", "iso_code": "USD", "time_zone": "Asia/Kolkata",
            "country_code": "IN", "type": "production", "zgid": "60012345",
        }]})

    def fields(self, req: Request, scopes) -> Response:
        if not self._scope_ok(scopes, "ZohoCRM.settings.fields.READ"):
            return _error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        module, failure = self._module_arg(req)
        if failure:
            return failure
        return _json({"fields": _fields_meta(module, self.state.extra_custom_fields)})

    def custom_views(self, req: Request, scopes) -> Response:
        if not self._scope_ok(scopes, "ZohoCRM.settings.custom_views.READ"):
            return _error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        module, failure = self._module_arg(req)
        if failure:
            return failure
        views = _views(module)
        return _json({"custom_views": views, "info": {"per_page": 200, "count": len(views),
                                                      "page": 1, "more_records": False}})

    def records(self, req: Request, scopes, module: str) -> Response:
        s, a = self.state, req.args
        if module not in ("Contacts", "Leads"):
            return _error(400, "INVALID_MODULE", "the module name given seems to be invalid",
                          {"resource_path_index": 0})
        if not self._scope_ok(scopes, f"ZohoCRM.modules.{module.lower()}.READ"):
            return _error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        if not a.get("fields"):
            return _error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is "
                          "missing", {"param_name": "fields"})
        fields = a["fields"].split(",")
        if len(fields) > MAX_FIELDS:
            return _error(400, "LIMIT_EXCEEDED", "Maximum fields limit exceeded",
                          {"limit": MAX_FIELDS, "param_name": "fields"})
        known = {f["api_name"] for f in _fields_meta(module, s.extra_custom_fields)} | {"id"}
        for name in fields:
            if name not in known:
                return _error(400, "INVALID_DATA", "invalid data", {"api_name": name})
        try:
            per_page = int(a.get("per_page", "200"))
            page = int(a["page"]) if "page" in a else None
        except ValueError:
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "per_page/page"})
        if not 1 <= per_page <= MAX_PER_PAGE:
            return _error(400, "INVALID_DATA", "invalid data",
                          {"param_name": "per_page", "maximum_length": MAX_PER_PAGE})
        if page is not None and page < 1:
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "page"})
        sort_by = a.get("sort_by", "id")
        sort_order = a.get("sort_order", "desc")
        if sort_by not in SORTABLE or sort_order not in ("asc", "desc"):
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "sort_by"})
        converted = a.get("converted", "false")
        if converted not in ("true", "false", "both"):
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "converted"})
        cvid = a.get("cvid")
        if cvid and _view_filter(module, cvid) is None:
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "cvid"})
        since_raw = req.headers.get("If-Modified-Since")
        since = None
        if since_raw:
            try:
                since = datetime.fromisoformat(since_raw)
            except ValueError:
                since = None
            if since is None or since.tzinfo is None:
                return _error(400, "INVALID_DATA", "invalid data",
                              {"param_name": "If-Modified-Since"})
        binding = {"module": module, "fields": a["fields"], "per_page": per_page,
                   "sort_by": sort_by, "sort_order": sort_order, "converted": converted,
                   "cvid": cvid, "since": since_raw}
        token = a.get("page_token")
        if token is not None and page is not None:
            return _error(400, "AMBIGUITY_DURING_PROCESSING", "Both page and page_token are "
                          "present in the request", {"ambiguity_due_to": ["page", "page_token"]})
        if token is not None:
            info = s.page_tokens.get(token)
            if info is None:
                return _error(400, "INVALID_DATA", "invalid data", {"param_name": "page_token"})
            if info["expires"] <= s.now():
                return _error(400, "EXPIRED_VALUE", "the given page token has expired",
                              {"param_name": "page_token"})
            for key, value in binding.items():
                if info["binding"][key] != value:
                    return _error(400, "TOKEN_BOUND_DATA_MISMATCH", "the given param does not "
                                  "match the one bound to the page_token", {"param_name": key})
            offset = info["offset"]
            if offset >= s.token_record_limit:
                return _error(400, "LIMIT_REACHED", "maximum records limit reached for "
                              "page_token", {"limit": s.token_record_limit})
        else:
            page = page or 1
            offset = (page - 1) * per_page
            if page * per_page > DISCRETE_LIMIT:
                return _error(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "You can only get the "
                              "first 2000 records without using page_token param",
                              {"limit": DISCRETE_LIMIT})
        rows = s.ordered(module, converted, cvid, sort_by, sort_order == "desc")
        if since is not None:
            floor = since.replace(microsecond=0)
            rows = [p for p in rows if p.updated_at.replace(microsecond=0) >= floor]
            if not rows:
                return Response(b"", 304)
        chunk = rows[offset:offset + per_page]
        if not chunk:
            return Response(b"", 204)
        more = offset + per_page < len(rows)
        next_token = None
        expiry = s.now() + TOKEN_LIFETIME
        if more:
            if len(s.page_tokens) > 20000:  # forget expired tokens now and then
                s.page_tokens = {k: v for k, v in s.page_tokens.items()
                                 if v["expires"] > s.now()}
            next_token = secrets.token_hex(48)
            s.page_tokens[next_token] = {"binding": binding, "offset": offset + per_page,
                                         "expires": expiry}
        info = {"per_page": per_page, "count": len(chunk), "page": offset // per_page + 1,
                "sort_by": sort_by, "sort_order": sort_order, "more_records": more,
                "next_page_token": next_token, "previous_page_token": None,
                "page_token_expiry": expiry.astimezone(s.tz).replace(microsecond=0).isoformat()
                if more else None}
        data = [s.render(module, p, fields) for p in chunk]
        return _json({"data": data, "info": info})


    def count(self, req: Request, scopes, module: str) -> Response:
        """`GET /crm/v8/{module}/actions/count[?cvid=…]` → `{"count": N}`; leads converted
        to contacts are left out as in the records list."""
        if module not in ("Contacts", "Leads"):
            return _error(400, "INVALID_MODULE", "the module name given seems to be invalid",
                          {"resource_path_index": 0})
        if not self._scope_ok(scopes, f"ZohoCRM.modules.{module.lower()}.READ"):
            return _error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        cvid = req.args.get("cvid")
        if cvid and _view_filter(module, cvid) is None:
            return _error(400, "INVALID_DATA", "invalid data", {"param_name": "cvid"})
        return _json({"count": len(self.state.ordered(module, "false", cvid, "id", False))})


def create_app(people: list[Person], **options: Any) -> ZohoApp:
    """A Zoho CRM simulator over `people`; options set ZohoState fields (tz, location,
    accounts_server, api_domain, extra_custom_fields, token_record_limit, …)."""
    return ZohoApp(ZohoState(people=people, **options))


def demo_config(app: ZohoApp, base_url: str) -> dict[str, Any]:
    """Settings and credentials that connect the Zoho client to this simulator."""
    creds = app.state.issue_tokens()
    return {
        "settings": {"data_centre": "us", "accounts_server": base_url, "api_domain": base_url},
        "credentials": creds,
    }
