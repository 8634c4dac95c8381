"""A local fake Salesforce org: OAuth 2 web-server flow with PKCE, the REST API's SOQL query
endpoint (with a small, strict SOQL parser), query locators, describe, limits and errors.

Every dataset person is both a Contact (Id prefix 003) and a Lead (00Q, some converted).
`app.state` holds the test controls (error injection, token expiry, quota, locator expiry…).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .dataset import Person
from .dataset import touch as touch_people
from .server import lose_answer

ORG_ID = "00D5g00000ABCDEEAK"
USER_ID = "0055g00000XYZWQAA4"
VERSIONS = tuple(f"v{n}.0" for n in range(31, 63))
SCOPES = frozenset({"api", "refresh_token", "offline_access", "id", "profile", "email",
                    "openid", "web", "full"})
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
COUNTRY_NAMES = {
    "US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France",
    "CA": "Canada", "AU": "Australia", "NL": "Netherlands", "PL": "Poland", "ES": "Spain",
    "JP": "Japan",
}
_ORG_QUERY = re.compile(r"SELECT\s+(?:Id\s*,\s*)?Name\s+FROM\s+Organization(?:\s+LIMIT\s+1)?",
                        re.IGNORECASE)
MAX_OPEN_LOCATORS = 10  # Salesforce keeps at most 10 open query cursors per user
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@cache
def sf_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce id for record `n` of the object with key `prefix`."""
    base = f"{prefix}5g{n:010d}"
    suffix = ""
    for chunk in (base[0:5], base[5:10], base[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += _CHECKSUM[bits]
    return base + suffix


def contact_id(person_id: int) -> str:
    return sf_id("003", person_id)


def lead_id(person_id: int) -> str:
    return sf_id("00Q", person_id)


def is_converted(p: Person) -> bool:
    """Which people's Leads were converted (hidden from lead imports)."""
    return p.id % 7 == 0


@lru_cache(maxsize=65536)
def sf_datetime(value: datetime) -> str:
    """Salesforce's REST rendering of a datetime: 2025-05-01T12:34:56.000+0000."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# ------------------------------------------------------------------------ metadata


def _f(name, label, ftype, *, custom=False, nillable=True, picklist=(), compound=None):
    return {
        "name": name, "label": label, "type": ftype, "custom": custom, "nillable": nillable,
        "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": False}
                           for v in picklist],
        "compoundFieldName": compound, "updateable": ftype not in {"id", "datetime"},
        "length": 255 if ftype in {"string", "email", "url", "picklist", "phone"} else 0,
    }


def _address(prefix: str, compound: str) -> list[dict]:
    parts = [("Street", "textarea"), ("City", "string"), ("State", "string"),
             ("PostalCode", "string"), ("Country", "string")]
    label = prefix or ""
    return [_f(f"{prefix}{p}", f"{label} {p}".strip(), t, compound=compound) for p, t in parts] + [
        _f(compound, f"{label} Address".strip(), "address")
    ]


CUSTOM_FIELDS = [
    _f("Loyalty_Tier__c", "Loyalty Tier", "picklist", custom=True, picklist=TIERS),
    _f("Birthday__c", "Birthday", "date", custom=True),
    _f("Lifetime_Value__c", "Lifetime Value", "currency", custom=True),
    _f("Website__c", "Website", "url", custom=True),
]
_COMMON = [
    _f("Id", "Contact ID", "id", nillable=False),
    _f("IsDeleted", "Deleted", "boolean", nillable=False),
    _f("LastName", "Last Name", "string", nillable=False, compound="Name"),
    _f("FirstName", "First Name", "string", compound="Name"),
    _f("Name", "Full Name", "string", nillable=False),
    _f("Phone", "Phone", "phone"),
    _f("Email", "Email", "email"),
    _f("LeadSource", "Lead Source", "picklist", picklist=LEAD_SOURCES),
    _f("HasOptedOutOfEmail", "Email Opt Out", "boolean", nillable=False),
    _f("DoNotCall", "Do Not Call", "boolean", nillable=False),
    _f("Description", "Description", "textarea"),
    _f("OwnerId", "Owner ID", "reference", nillable=False),
    _f("CreatedDate", "Created Date", "datetime", nillable=False),
    _f("LastModifiedDate", "Last Modified Date", "datetime", nillable=False),
    _f("SystemModstamp", "System Modstamp", "datetime", nillable=False),
]
FIELDS: dict[str, list[dict]] = {
    "Contact": _COMMON + _address("Mailing", "MailingAddress") + CUSTOM_FIELDS,
    "Lead": [dict(f, label="Lead ID") if f["name"] == "Id" else f for f in _COMMON]
    + _address("", "Address")
    + [
        _f("Company", "Company", "string", nillable=False),
        _f("Status", "Lead Status", "picklist", nillable=False,
           picklist=("Open - Not Contacted", "Working - Contacted", "Closed - Converted")),
        _f("IsConverted", "Converted", "boolean", nillable=False),
        _f("Website", "Website", "url"),
    ]
    + CUSTOM_FIELDS,
}
PREFIX = {"Contact": "003", "Lead": "00Q"}


def _country(p: Person) -> str | None:
    """Most orgs hold free-text country names; a third of ours hold the ISO code."""
    if p.country is None:
        return None
    return p.country if p.id % 3 == 0 else COUNTRY_NAMES.get(p.country, p.country)


_GETTERS: dict[str, Callable[[Person, str], Any]] = {
    "Id": lambda p, o: sf_id(PREFIX[o], p.id),
    "IsDeleted": lambda p, o: False,
    "FirstName": lambda p, o: p.first_name,
    "LastName": lambda p, o: p.last_name,
    "Name": lambda p, o: f"{p.first_name} {p.last_name}".strip(),
    "Phone": lambda p, o: p.phone,
    "Email": lambda p, o: p.email,
    "LeadSource": lambda p, o: None if p.id % 6 == 5 else LEAD_SOURCES[p.id % 6],
    "HasOptedOutOfEmail": lambda p, o: p.consent == "opted_out",
    "DoNotCall": lambda p, o: p.id % 13 == 0,
    "Description": lambda p, o: p.note or None,
    "OwnerId": lambda p, o: USER_ID,
    "CreatedDate": lambda p, o: sf_datetime(p.created_at),
    "LastModifiedDate": lambda p, o: sf_datetime(p.updated_at),
    "SystemModstamp": lambda p, o: sf_datetime(p.updated_at),
    "MailingCountry": lambda p, o: _country(p),
    "Country": lambda p, o: _country(p),
    "MailingAddress": lambda p, o: {"country": _country(p)},
    "Address": lambda p, o: {"country": _country(p)},
    "Company": lambda p, o: f"{p.last_name} Ltd",
    "Status": lambda p, o: "Closed - Converted" if is_converted(p) else "Open - Not Contacted",
    "IsConverted": lambda p, o: is_converted(p),
    "Website": lambda p, o: None,
    "Loyalty_Tier__c": lambda p, o: p.loyalty_tier,
    "Birthday__c": lambda p, o: p.birthday.isoformat() if p.birthday else None,
    "Lifetime_Value__c": lambda p, o: p.lifetime_value,
    "Website__c": lambda p, o: p.website,
}


def value(p: Person, obj: str, name: str) -> Any:
    getter = _GETTERS.get(name)
    return getter(p, obj) if getter else None


# ---------------------------------------------------------------------------- SOQL


class ApiError(Exception):
    """An API error answered as Salesforce does: a JSON list of {message, errorCode}."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.+\-Z]*)
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>\d+(?:\.\d+)?)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),])
    |(?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<bad>.)""",
    re.X | re.S,
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"',
            "\\": "\\"}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<>": lambda a, b: a != b,
    "<": lambda a, b: a is not None and a < b, "<=": lambda a, b: a is not None and a <= b,
    ">": lambda a, b: a is not None and a > b, ">=": lambda a, b: a is not None and a >= b,
}


@dataclass
class Query:
    obj: str
    select: list[str]
    where: Callable[[Person], bool] | None
    order: list[tuple[str, bool, bool]]  # (field, descending, nulls_last)
    limit: int | None
    count: bool = False  # SELECT COUNT(): totalSize only, no records


class _Parser:
    """Recursive descent over the SOQL subset Tributary uses; anything else is refused
    the way Salesforce refuses it (MALFORMED_QUERY / INVALID_FIELD / INVALID_TYPE)."""

    def __init__(self, text: str, fields: dict[str, list[dict]]):
        self.text = text
        self.fields = fields
        self.tokens: list[tuple[str, str, int]] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup or "bad"
            if kind == "ws":
                continue
            if kind == "bad":
                self.fail(m.start(), f"no viable alternative at character '{m.group()}'")
            self.tokens.append((kind, m.group(), m.start()))
        self.i = 0

    # -- helpers
    def fail(self, pos: int, what: str) -> None:
        raise ApiError(400, "MALFORMED_QUERY",
                       f"\n{self.text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{what}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            self.fail(len(self.text), "unexpected end of query")
        self.i += 1
        return tok  # type: ignore[return-value]

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].upper() in words:
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        tok = self.peek()
        if not self.keyword(word):
            pos = tok[2] if tok else len(self.text)
            self.fail(pos, f"unexpected token: '{tok[1] if tok else '<EOF>'}'")

    def meta(self, obj: str, name: str, pos: int) -> dict:
        for f in self.fields[obj]:
            if f["name"].lower() == name.lower():
                return f
        raise ApiError(
            400, "INVALID_FIELD",
            f"\n{self.text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n"
            f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom "
            "field, be sure to append the '__c' after the custom field name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )

    # -- grammar
    def parse(self) -> Query:
        self.expect("SELECT")
        names: list[tuple[str, int]] = []
        count = self._count_call()
        while not count:
            kind, text, pos = self.take()
            if kind != "name" or "." in text or text.upper() in {"FROM", "FIELDS"}:
                self.fail(pos, f"unexpected token: '{text}'")
            names.append((text, pos))
            if not (self.peek() and self.peek()[1] == ","):
                break
            self.take()
        self.expect("FROM")
        kind, obj, pos = self.take()
        canonical = next((o for o in self.fields if o.lower() == obj.lower()), None)
        if kind != "name" or canonical is None:
            raise ApiError(400, "INVALID_TYPE",
                           f"\n{self.text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n"
                           f"sObject type '{obj}' is not supported.")
        obj = canonical
        if count:
            where = self.condition(obj) if self.keyword("WHERE") else None
            tok = self.peek()
            if tok is not None:  # ORDER BY and the rest make no sense on a bare count
                self.fail(tok[2], f"unexpected token: '{tok[1]}'")
            return Query(obj, [], where, [], None, count=True)
        select = []
        for name, pos in names:
            real = self.meta(obj, name, pos)["name"]
            if real in select:
                self.fail(pos, f"duplicate field selected: {real}")
            select.append(real)
        where = self.condition(obj) if self.keyword("WHERE") else None
        order: list[tuple[str, bool, bool]] = []
        if self.keyword("ORDER"):
            self.expect("BY")
            while True:
                kind, name, pos = self.take()
                if kind != "name":
                    self.fail(pos, f"unexpected token: '{name}'")
                real = self.meta(obj, name, pos)["name"]
                desc = self.keyword("DESC")
                if not desc:
                    self.keyword("ASC")
                nulls_last = desc
                if self.keyword("NULLS"):
                    if self.keyword("LAST"):
                        nulls_last = True
                    else:
                        self.expect("FIRST")
                        nulls_last = False
                order.append((real, desc, nulls_last))
                if not (self.peek() and self.peek()[1] == ","):
                    break
                self.take()
        limit = None
        if self.keyword("LIMIT"):
            kind, text, pos = self.take()
            if kind != "number" or not text.isdigit():
                self.fail(pos, f"unexpected token: '{text}'")
            limit = int(text)
        tok = self.peek()
        if tok is not None:
            self.fail(tok[2], f"unexpected token: '{tok[1]}'")
        return Query(obj, select, where, order, limit)

    def _count_call(self) -> bool:
        """`COUNT()` as the whole field list (Salesforce refuses it beside other fields)."""
        tok = self.peek()
        if not (tok and tok[0] == "name" and tok[1].upper() == "COUNT"):
            return False
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if not (nxt and nxt[1] == "("):
            return False
        self.i += 2
        kind, text, pos = self.take()
        if text != ")":
            self.fail(pos, f"unexpected token: '{text}'")
        tok = self.peek()
        if tok and tok[1] == ",":
            self.fail(tok[2], "unexpected token: ','")
        return True

    def condition(self, obj: str) -> Callable[[Person], bool]:
        """Terms joined by AND or by OR; mixing both without parentheses is malformed."""
        terms = [self.term(obj)]
        joiner = None
        while True:
            tok = self.peek()
            if not (tok and tok[0] == "name" and tok[1].upper() in {"AND", "OR"}):
                break
            word = tok[1].upper()
            if joiner and word != joiner:
                self.fail(tok[2], f"unexpected token: '{tok[1]}'")
            joiner = word
            self.take()
            terms.append(self.term(obj))
        if len(terms) == 1:
            return terms[0]
        if joiner == "AND":
            return lambda p: all(t(p) for t in terms)
        return lambda p: any(t(p) for t in terms)

    def term(self, obj: str) -> Callable[[Person], bool]:
        kind, text, pos = self.take()
        if kind == "punct" and text == "(":
            inner = self.condition(obj)
            kind, text, pos = self.take()
            if text != ")":
                self.fail(pos, f"unexpected token: '{text}'")
            return inner
        if kind != "name" or "." in text or text.upper() in {"NOT", "AND", "OR"}:
            self.fail(pos, f"unexpected token: '{text}'")
        meta = self.meta(obj, text, pos)
        name, ftype = meta["name"], meta["type"]
        okind, op, opos = self.take()
        if okind != "op":
            self.fail(opos, f"unexpected token: '{op}'")
        vkind, raw, vpos = self.take()
        if ftype == "datetime":
            if vkind == "string":
                self.fail(vpos, f"value of filter criterion for field '{name}' must be of type "
                                "dateTime and should not be enclosed in quotes")
            if vkind != "datetime" or not _DATETIME.match(raw):
                self.fail(vpos, f"line 1:{vpos} no viable alternative at character '{raw}'")
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            fn = _OPS[op]
            attr = "created_at" if name == "CreatedDate" else "updated_at"
            return lambda p: fn(getattr(p, attr), when)
        if ftype == "boolean":
            if vkind != "name" or raw.lower() not in {"true", "false"} or op not in {"=", "!="}:
                self.fail(vpos, f"unexpected token: '{raw}'")
            want = raw.lower() == "true"
            fn = _OPS[op]
            return lambda p: fn(bool(value(p, obj, name)), want)
        if ftype in {"id", "reference", "string", "picklist", "email", "phone", "url"}:
            if vkind == "name" and raw.lower() == "null" and op in {"=", "!="}:
                fn = _OPS[op]
                return lambda p: fn(value(p, obj, name), None)
            if vkind != "string":
                self.fail(vpos, f"unexpected token: '{raw}'")
            literal = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw[1:-1])
            fn = _OPS[op]
            if ftype in {"id", "reference"}:
                if len(literal) not in (15, 18):
                    raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR",
                                   f"invalid ID field: {literal}")
                key = literal[:15]
                return lambda p: fn(value(p, obj, name)[:15], key)
            return lambda p: fn(value(p, obj, name), literal)
        self.fail(pos, f"unexpected token: '{text}'")
        raise AssertionError  # unreachable


def parse_soql(text: str, fields: dict[str, list[dict]] | None = None) -> Query:
    """Parse one query of the supported subset or raise ApiError like Salesforce."""
    return _Parser(text, fields or FIELDS).parse()


# --------------------------------------------------------------------------- state


@dataclass
class Locator:
    obj: str
    select: list[str]
    rows: list[Person]
    batch: int
    version: str


@dataclass
class State:
    """Test controls and counters of one simulated org."""

    people: list[Person]
    client_id: str = "3MVG9sim.salesforce.client"
    client_secret: str = "sim-client-secret"
    rotate_refresh: bool = True  # refresh answers carry a new refresh token (old one dies)
    session_max_requests: int | None = None  # a session dies after this many API calls
    require_pkce: bool = True
    callback_urls: tuple[str, ...] = ()  # registered redirect URIs (empty: any)
    daily_limit: int = 15000
    api_usage: int = 0
    quota_exhausted: bool = False
    api_disabled: bool = False
    delay: float = 0.0
    # The next N token answers are lost after processing (see server.lose_answer).
    lose_token_answers: int = 0
    lose_mode: str = "close"
    instance_url: str = ""  # the instance_url token answers name (default: this host)
    org_name: str = "Acme Corporation"  # Organization.Name
    organization_readable: bool = True  # False: the user may not query Organization
    error_every: int = 0
    error_status: int = 503
    api_requests: int = 0
    token_requests: int = 0  # every POST to /services/oauth2/token
    refresh_requests: int = 0  # the refresh_token grants among them
    access_tokens: dict[str, int | None] = field(default_factory=dict)  # token -> calls left
    refresh_tokens: set[str] = field(default_factory=set)
    codes: dict[str, dict] = field(default_factory=dict)
    locators: OrderedDict[str, Locator] = field(default_factory=OrderedDict)
    dropped_fields: set[tuple[str, str]] = field(default_factory=set)
    issued_next_urls: list[str] = field(default_factory=list)
    requested_next_urls: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    batch_headers: list[str | None] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    access_token: str = ""
    refresh_token: str = ""

    # -- controls
    def new_access_token(self) -> str:
        token = f"{ORG_ID}!{secrets.token_urlsafe(40)}"
        self.access_tokens[token] = self.session_max_requests
        self.access_token = token
        return token

    def new_refresh_token(self) -> str:
        token = "5Aep" + secrets.token_urlsafe(40)
        self.refresh_tokens.add(token)
        self.refresh_token = token
        return token

    def expire_access_token(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def kill_refresh_token(self) -> None:
        with self.lock:
            self.access_tokens.clear()
            self.refresh_tokens.clear()

    def inject_errors(self, every: int, status: int = 503) -> None:
        with self.lock:
            self.error_every, self.error_status = every, status

    def touch(self, ids: list[int], at: datetime) -> None:
        with self.lock:
            touch_people(self.people, ids, at)

    def expire_locators(self) -> None:
        with self.lock:
            self.locators.clear()

    def drop_field(self, obj: str, name: str) -> None:
        """Delete a (custom) field from an object, as an admin might between two runs."""
        with self.lock:
            self.dropped_fields.add((obj, name))

    def fields(self) -> dict[str, list[dict]]:
        return {o: [f for f in fs if (o, f["name"]) not in self.dropped_fields]
                for o, fs in FIELDS.items()}


# ----------------------------------------------------------------------------- app


def _json(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {},
                    content_type="application/json;charset=UTF-8")


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return _json({"error": error, "error_description": description}, status)


class SalesforceApp:
    """The WSGI app; `state` is the test control surface."""

    def __init__(self, state: State):
        self.state = state
        self.url_map = Map([
            Rule("/services/oauth2/authorize", endpoint="authorize", methods=["GET"]),
            Rule("/services/oauth2/token", endpoint="token", methods=["POST"]),
            Rule("/services/data", endpoint="versions", methods=["GET"], strict_slashes=False),
            Rule("/services/data/<version>/", endpoint="resources", methods=["GET"]),
            Rule("/services/data/<version>/query", endpoint="query", methods=["GET"],
                 strict_slashes=False),
            Rule("/services/data/<version>/query/<locator>", endpoint="query_more",
                 methods=["GET"]),
            Rule("/services/data/<version>/sobjects/<obj>/describe", endpoint="describe",
                 methods=["GET"], strict_slashes=False),
            Rule("/services/data/<version>/limits", endpoint="limits", methods=["GET"],
                 strict_slashes=False),
            Rule("/services/data/<path:rest>", endpoint="api_not_found"),
        ])

    def __call__(self, environ, start_response):
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return _json([{"errorCode": "NOT_FOUND",
                           "message": "The requested resource does not exist"}], 404)
        except HTTPException as exc:
            return exc.get_response()  # type: ignore[return-value]
        if endpoint == "authorize":
            return self.authorize(request)
        if endpoint == "token":
            return self.token(request)
        if endpoint == "versions":
            base = "/services/data"
            return _json([{"label": "Summer '24", "url": f"{base}/{v}", "version": v[1:]}
                          for v in VERSIONS])
        return self.api(request, endpoint, args)

    # -- OAuth
    def authorize(self, request: Request) -> Response:
        st, q = self.state, request.args
        if q.get("client_id") != st.client_id:
            return Response("error=invalid_client_id&error_description=client%20identifier"
                            "%20invalid", status=400, content_type="text/plain")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri or (st.callback_urls and redirect_uri not in st.callback_urls):
            return Response("error=redirect_uri_mismatch&error_description=redirect_uri%20must"
                            "%20match%20configuration", status=400, content_type="text/plain")

        def back(**params: str) -> Response:
            if q.get("state") is not None:
                params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return Response("", status=302,
                            headers={"Location": redirect_uri + sep + urlencode(params)})

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type",
                        error_description="response type not supported")
        scopes = set((q.get("scope") or "api").split())
        if not scopes <= SCOPES:
            return back(error="invalid_scope", error_description="the requested scope is not "
                                                                 "allowed")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method", "S256")
        if (challenge is None and st.require_pkce) or method != "S256":
            return back(error="invalid_request",
                        error_description="missing required code challenge")
        code = "aPrx" + secrets.token_urlsafe(32)
        with st.lock:
            st.codes[code] = {"redirect_uri": redirect_uri, "challenge": challenge,
                              "scope": " ".join(sorted(scopes))}
        return back(code=code)  # the user "logged in and allowed access" at once

    def token(self, request: Request) -> Response:
        st = self.state
        with st.lock:
            st.token_requests += 1
        if request.mimetype != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "invalid content type")
        form = request.form
        grant = form.get("grant_type")
        if grant not in {"authorization_code", "refresh_token"}:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if form.get("client_id") != st.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != st.client_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        host = request.host_url.rstrip("/")
        with st.lock:
            if grant == "authorization_code":
                entry = st.codes.pop(form.get("code", ""), None)  # single use
                if entry is None:
                    return _oauth_error("invalid_grant", "invalid authorization code")
                if form.get("redirect_uri") != entry["redirect_uri"]:
                    return _oauth_error("redirect_uri_mismatch",
                                        "redirect_uri must match configuration")
                verifier = form.get("code_verifier")
                if entry["challenge"] is not None and (
                    not verifier
                    or not hmac.compare_digest(create_s256_code_challenge(verifier),
                                               entry["challenge"])
                ):
                    return _oauth_error("invalid_grant", "invalid code verifier")
                body = {"access_token": st.new_access_token(),
                        "refresh_token": st.new_refresh_token(), "scope": entry["scope"]}
            else:
                st.refresh_requests += 1
                old = form.get("refresh_token", "")
                if old not in st.refresh_tokens:
                    return _oauth_error("invalid_grant", "expired access/refresh token")
                body = {"access_token": st.new_access_token(), "scope": "api refresh_token"}
                if st.rotate_refresh:
                    st.refresh_tokens.discard(old)
                    body["refresh_token"] = st.new_refresh_token()
        issued_at = str(int(time.time() * 1000))
        ident = f"{host}/id/{ORG_ID}/{USER_ID}"
        sig = hmac.new(st.client_secret.encode(), (ident + issued_at).encode(), hashlib.sha256)
        body.update(instance_url=st.instance_url or host, id=ident, token_type="Bearer",
                    issued_at=issued_at, signature=base64.b64encode(sig.digest()).decode())
        with st.lock:
            lose = st.lose_token_answers > 0
            st.lose_token_answers -= lose
        if lose:
            return lose_answer(request, _json(body), st.lose_mode)
        return _json(body)

    # -- REST API
    def api(self, request: Request, endpoint: str, args: dict) -> Response:
        st = self.state
        with st.lock:
            st.api_requests += 1
            n = st.api_requests
        if st.delay:
            time.sleep(st.delay)
        try:
            if st.error_every and n % st.error_every == 0:
                raise self._injected(st.error_status)
            self._authenticate(request)
            if args.get("version") not in VERSIONS or endpoint == "api_not_found":
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            handler = getattr(self, f"ep_{endpoint}")
            resp = handler(request, **args)
        except ApiError as exc:
            resp = _json([{"message": exc.message, "errorCode": exc.code}], exc.status,
                         exc.headers)
        resp.headers["Sforce-Limit-Info"] = f"api-usage={st.api_usage}/{st.daily_limit}"
        return resp

    @staticmethod
    def _injected(status: int) -> ApiError:
        if status == 429:
            return ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many concurrent requests.",
                            {"Retry-After": "1"})
        if status == 503:
            return ApiError(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable.")
        return ApiError(status, "UNKNOWN_EXCEPTION",
                        "An unexpected error occurred. Please include this ErrorId if you "
                        "contact support: 1234567-89 (-1)")

    def _authenticate(self, request: Request) -> None:
        st = self.state
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        expired = ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid",
                           {"WWW-Authenticate": "Token"})
        with st.lock:
            if scheme not in {"Bearer", "OAuth"} or token not in st.access_tokens:
                raise expired
            left = st.access_tokens[token]
            if left is not None:
                if left <= 0:
                    del st.access_tokens[token]
                    raise expired
                st.access_tokens[token] = left - 1
            if st.api_disabled:
                raise ApiError(403, "API_DISABLED_FOR_ORG",
                               "The REST API is not enabled for this Organization.")
            if st.quota_exhausted or st.api_usage >= st.daily_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            st.api_usage += 1

    def ep_resources(self, request: Request, version: str) -> Response:
        base = f"/services/data/{version}"
        return _json({k: f"{base}/{k}" for k in ("sobjects", "query", "limits", "search")})

    def ep_limits(self, request: Request, version: str) -> Response:
        st = self.state
        return _json({"DailyApiRequests": {"Max": st.daily_limit,
                                           "Remaining": st.daily_limit - st.api_usage}})

    def ep_describe(self, request: Request, version: str, obj: str) -> Response:
        fields = self.state.fields()
        if obj not in fields:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return _json({"name": obj, "label": obj, "queryable": True, "custom": False,
                      "keyPrefix": PREFIX[obj], "fields": fields[obj]})

    def ep_api_not_found(self, request: Request, **_: Any) -> Response:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def ep_query(self, request: Request, version: str) -> Response:
        st = self.state
        text = request.args.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        if _ORG_QUERY.fullmatch(text.strip()):
            return self._organization(version)
        with st.lock:
            st.queries.append(text)
            header = request.headers.get("Sforce-Query-Options")
            st.batch_headers.append(header)
            query = parse_soql(text, st.fields())
            rows = [p for p in st.people if query.where is None or query.where(p)]
        if query.count:
            return _json({"totalSize": len(rows), "done": True, "records": []})
        for name, desc, nulls_last in reversed(query.order):
            present = [p for p in rows if value(p, query.obj, name) is not None]
            absent = [p for p in rows if value(p, query.obj, name) is None]
            present.sort(key=lambda p, n=name: value(p, query.obj, n), reverse=desc)
            rows = present + absent if nulls_last else absent + present
        if query.limit is not None:
            rows = rows[: query.limit]
        batch = _batch_size(header)
        loc = Locator(query.obj, query.select, rows, batch, version)
        return self._batch(loc, "01g" + secrets.token_hex(8)[:12].upper() + "IAW", 0)

    def _organization(self, version: str) -> Response:
        """`SELECT [Id,] Name FROM Organization`: the org's one row, or INVALID_TYPE for a
        user without access to the object."""
        st = self.state
        if not st.organization_readable:
            raise ApiError(400, "INVALID_TYPE", "sObject type 'Organization' is not "
                                                "supported.")
        url = f"/services/data/{version}/sobjects/Organization/{ORG_ID}"
        return _json({"totalSize": 1, "done": True, "records": [
            {"attributes": {"type": "Organization", "url": url}, "Id": ORG_ID,
             "Name": st.org_name}]})

    def ep_query_more(self, request: Request, version: str, locator: str) -> Response:
        st = self.state
        with st.lock:
            st.requested_next_urls.append(request.full_path.rstrip("?"))
            key, _, offset = locator.rpartition("-")
            loc = st.locators.get(key)
            if loc is None or not offset.isdigit() or loc.version != version:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._batch(loc, key, int(offset))

    def _batch(self, loc: Locator, key: str, offset: int) -> Response:
        st = self.state
        rows = loc.rows[offset: offset + loc.batch]
        end = offset + len(rows)
        done = end >= len(loc.rows)
        body: dict[str, Any] = {"totalSize": len(loc.rows), "done": done}
        with st.lock:
            if done:
                st.locators.pop(key, None)
            else:
                st.locators[key] = loc
                st.locators.move_to_end(key)
                while len(st.locators) > MAX_OPEN_LOCATORS:
                    st.locators.popitem(last=False)
                url = f"/services/data/{loc.version}/query/{key}-{end}"
                st.issued_next_urls.append(url)
                body["nextRecordsUrl"] = url
        body["records"] = [self._record(p, loc) for p in rows]
        return _json(body)

    @staticmethod
    def _record(p: Person, loc: Locator) -> dict:
        rid = value(p, loc.obj, "Id")
        rec: dict[str, Any] = {"attributes": {
            "type": loc.obj, "url": f"/services/data/{loc.version}/sobjects/{loc.obj}/{rid}"}}
        for name in loc.select:
            rec[name] = value(p, loc.obj, name)
        return rec


def _batch_size(header: str | None) -> int:
    """Sforce-Query-Options: batchSize=N, 200-2000 (default 2000)."""
    match = re.search(r"batchSize=(\d+)", header or "")
    if not match:
        return 2000
    return min(2000, max(200, int(match.group(1))))


def create_app(people: list[Person], **options: Any) -> SalesforceApp:
    """A simulated org over `people`; options set State fields (client_id, rotate_refresh,
    session_max_requests, daily_limit, require_pkce, callback_urls, delay…)."""
    state = State(people=people, **options)
    state.new_access_token()
    state.new_refresh_token()
    return SalesforceApp(state)


def demo_config(app: SalesforceApp, base_url: str) -> dict:
    """Settings and credentials that connect the client to this simulator (the client must
    also be built with allow_loopback=True)."""
    st = app.state
    return {
        "settings": {"login_host": base_url, "instance_url": base_url, "api_version": "v62.0"},
        "credentials": {"client_id": st.client_id, "client_secret": st.client_secret,
                        "access_token": st.access_token, "refresh_token": st.refresh_token},
    }
