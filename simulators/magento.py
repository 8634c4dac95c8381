"""A strict fake Magento 2 REST API over the shared dataset people.

Reproduces what clients trip on: integration tokens refused as Bearer unless the store
allows it, OAuth 1.0a signatures verified the way Magento does (query params decoded with
rawurldecode, so '+' is not a space), searchCriteria parsing with its 300 pageSize limit and
default page size 20, 2.3's "last page again" versus 2.4's empty page past the end,
is_subscribed only on 2.4, select values as option ids, store codes in the path.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import operator
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from werkzeug.wrappers import Request, Response

from .dataset import Person
from .dataset import touch as touch_people

UNAUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Customer::customer"},
}
NO_ROUTE = {"message": "Request does not match any route."}
BAD_SIGNATURE = "The signature is invalid. Verify and try again."
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIERS = {"Bronze": "14", "Silver": "15", "Gold": "16", "Platinum": "17"}
INTERESTS = {"vip": "20", "newsletter": "21", "wholesale": "22", "retail": "23"}
GENDERS = {"1": "Male", "2": "Female", "3": "Not Specified"}
STORES = {"default": (1, 1, "Default Store View"), "de": (2, 2, "Deutsch")}
WEBSITES = [
    {"id": 0, "code": "admin", "name": "Admin", "default_group_id": 0},
    {"id": 1, "code": "base", "name": "Main Website", "default_group_id": 1},
    {"id": 2, "code": "eu", "name": "EU Website", "default_group_id": 2},
]
GROUPS = [(0, "NOT LOGGED IN"), (1, "General"), (2, "Wholesale"), (3, "Retailer")]
CONDITIONS = ("eq", "neq", "gt", "gteq", "lt", "lteq", "in", "nin", "like", "null", "notnull")
FILTER_FIELDS = {
    "customers": ("entity_id", "email", "firstname", "lastname", "group_id", "website_id",
                  "store_id", "created_at", "updated_at", "dob", "gender"),
    "groups": ("id", "code", "tax_class_id"),
}
NUMERIC = {"entity_id", "id", "group_id", "website_id", "store_id", "gender", "tax_class_id"}
CRITERIA_KEYS = {
    "filter_groups": "filter_groups", "filterGroups": "filter_groups",
    "sort_orders": "sort_orders", "sortOrders": "sort_orders",
    "page_size": "page_size", "pageSize": "page_size",
    "current_page": "current_page", "currentPage": "current_page",
}
TIME_DEVIATION = 600  # seconds an OAuth timestamp may differ from the server clock


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _token() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(32))


def _fmt(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


@dataclass
class State:
    """Test controls and counters of one simulated store."""

    people: list[Person]
    version: str = "2.4"
    past_last_page: str = "empty"  # "empty" (2.4) or "last" (2.3)
    is_subscribed_in_search: bool = True  # 2.4 only
    bearer_allowed: bool = False  # "Allow OAuth Access Tokens ... as standalone Bearer tokens"
    input_limits: bool = True  # pageSize max 300, default 20
    extra_groups: int = 0  # more customer groups, to exercise paging of small searches
    store_name: str = "Luma Outdoor Store"  # the main website's store (group) name
    store_access: bool = True  # the integration may read stores (Magento_Backend::store)
    consumer_key: str = field(default_factory=_token)
    consumer_secret: str = field(default_factory=_token)
    access_token: str = field(default_factory=_token)
    access_token_secret: str = field(default_factory=_token)
    token_active: bool = True
    error_every: int = 0
    error_status: int = 503
    delay: float = 0.0
    api_requests: int = 0
    token_requests: int = 0
    store_codes_seen: list[str] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)  # "bearer" / "oauth1" per request
    verifier: str = field(default_factory=_token)
    request_token: str = ""
    request_token_secret: str = ""
    clock: Any = time.time
    _nonces: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sorted: list[tuple[Person, dict[str, Any]]] | None = None
    _keys: list[tuple[str, int]] | None = None

    def inject_errors(self, every: int, status: int = 503) -> None:
        self.error_every, self.error_status = every, status

    def expire_access_token(self) -> None:
        """Integration tokens do not expire; the nearest thing is a revoke."""
        self.token_active = False

    def revoke_refresh_token(self) -> None:
        """There is no refresh token: revoking the integration's access token is all."""
        self.token_active = False

    def touch(self, ids: list[int], at: datetime) -> None:
        with self._lock:
            touch_people(self.people, ids, at)
            self._sorted = None

    def by_updated(self) -> tuple[list[tuple[Person, dict]], list[tuple[str, int]]]:
        """(person, filter row) ordered by (updated_at, id), cached until the next touch."""
        with self._lock:
            if self._sorted is None:
                people = sorted(self.people, key=lambda p: (p.updated_at, p.id))
                self._sorted = [(p, _row(p)) for p in people]
                self._keys = [(r["updated_at"], p.id) for p, r in self._sorted]
            return self._sorted, self._keys


# --------------------------------------------------------------------- rendering


def _group_id(p: Person) -> int:
    return 2 if "wholesale" in p.tags else 3 if "retail" in p.tags else 1


def _store(p: Person) -> tuple[int, int, str]:
    return STORES["de"] if p.id % 5 == 0 else STORES["default"]


def _row(p: Person) -> dict[str, Any]:
    """The columns filters and sorts see."""
    store_id, website_id, _ = _store(p)
    return {
        "entity_id": p.id, "email": p.email, "firstname": p.first_name,
        "lastname": p.last_name, "group_id": _group_id(p), "website_id": website_id,
        "store_id": store_id, "created_at": _fmt(p.created_at), "updated_at": _fmt(p.updated_at),
        "dob": p.birthday.isoformat() if p.birthday else None, "gender": p.id % 4,
    }


def customer(p: Person, state: State) -> dict[str, Any]:
    """A person as Magento's CustomerInterface; null values are left out, as Magento does."""
    store_id, website_id, created_in = _store(p)
    out: dict[str, Any] = {"id": p.id, "group_id": _group_id(p)}
    if p.country:
        out["default_billing"] = str(p.id)
        out["default_shipping"] = str(p.id)
    out.update({
        "created_at": _fmt(p.created_at), "updated_at": _fmt(p.updated_at),
        "created_in": created_in,
    })
    if p.birthday:
        out["dob"] = p.birthday.isoformat()
    if p.email is not None:
        out["email"] = p.email
    out.update({
        "firstname": p.first_name, "lastname": p.last_name, "gender": p.id % 4,
        "store_id": store_id, "website_id": website_id,
    })
    addresses = []
    if p.country:
        address = {
            "id": p.id, "customer_id": p.id,
            "region": {"region_code": None, "region": None, "region_id": 0}, "region_id": 0,
            "country_id": p.country, "street": [f"{p.id} Main Street"],
            "postcode": f"{10000 + p.id % 89999}", "city": "Springfield",
            "firstname": p.first_name, "lastname": p.last_name,
            "default_shipping": True, "default_billing": True,
        }
        if p.phone:
            address["telephone"] = p.phone
        addresses.append(address)
    out["addresses"] = addresses
    out["disable_auto_group_change"] = 0
    if state.is_subscribed_in_search:
        out["extension_attributes"] = {"is_subscribed": p.consent == "subscribed"}
    custom = []
    if p.loyalty_tier:
        custom.append({"attribute_code": "loyalty_tier", "value": TIERS[p.loyalty_tier]})
    if p.lifetime_value is not None:
        custom.append({"attribute_code": "lifetime_value", "value": f"{p.lifetime_value:.2f}"})
    if p.website:
        custom.append({"attribute_code": "website", "value": p.website})
    if p.tags:
        custom.append({"attribute_code": "interests",
                       "value": ",".join(INTERESTS[t] for t in p.tags)})
    if p.note:
        custom.append({"attribute_code": "customer_note", "value": p.note})
    if custom:
        out["custom_attributes"] = custom
    return out


def _attr(code: str, label: str, frontend_input: str = "text", *, backend: str = "varchar",
          user_defined: bool = False, options: list[dict[str, str]] | None = None,
          required: bool = False, rules: tuple[str, ...] = (), visible: bool = True,
          order: int = 0) -> dict[str, Any]:
    return {
        "frontend_input": frontend_input, "input_filter": "", "store_label": label,
        "validation_rules": [{"name": "input_validation", "value": r} for r in rules],
        "multiline_count": 0, "visible": visible, "required": required, "data_model": "",
        "options": options or [], "frontend_class": "", "user_defined": user_defined,
        "sort_order": order, "frontend_label": label, "note": "", "system": not user_defined,
        "backend_type": backend, "is_used_in_grid": True, "is_visible_in_grid": True,
        "is_filterable_in_grid": True, "is_searchable_in_grid": False,
        "attribute_code": code,
    }


def _opts(pairs: dict[str, str], blank: bool = True) -> list[dict[str, str]]:
    out = [{"label": " ", "value": ""}] if blank else []
    return out + [{"label": label, "value": value} for value, label in pairs.items()]


def attribute_metadata(state: State) -> list[dict[str, Any]]:
    groups = {str(g): c for g, c in _groups(state) if g}
    websites = {str(w["id"]): w["name"] for w in WEBSITES}
    system = [
        _attr("website_id", "Associate to Website", "select", backend="static", required=True,
              options=_opts(websites, blank=False), order=10),
        _attr("created_in", "Account Created in", order=20),
        _attr("prefix", "Name Prefix", order=30, visible=False),
        _attr("firstname", "First Name", required=True, order=40),
        _attr("middlename", "Middle Name/Initial", order=50, visible=False),
        _attr("lastname", "Last Name", required=True, order=60),
        _attr("suffix", "Name Suffix", order=70, visible=False),
        _attr("email", "Email", backend="static", required=True, rules=("email",), order=80),
        _attr("group_id", "Group", "select", backend="static", required=True,
              options=_opts(groups, blank=False), order=25),
        _attr("dob", "Date of Birth", "date", backend="datetime", order=90),
        _attr("password_hash", "", "hidden", visible=False),
        _attr("rp_token", "", "hidden", visible=False),
        _attr("rp_token_created_at", "", "date", backend="datetime", visible=False),
        _attr("default_billing", "Default Billing Address", backend="int", visible=False),
        _attr("default_shipping", "Default Shipping Address", backend="int", visible=False),
        _attr("taxvat", "Tax/VAT Number", order=100, visible=False),
        _attr("confirmation", "Is Confirmed", visible=False),
        _attr("created_at", "Customer Since", "date", backend="static", order=86),
        _attr("updated_at", "Updated At", "date", backend="static", visible=False),
        _attr("gender", "Gender", "select", backend="static", options=_opts(GENDERS),
              order=110),
        _attr("disable_auto_group_change", "Disable Automatic Group Change Based on VAT ID",
              "boolean", backend="static", order=28),
        _attr("store_id", "Create In", "select", backend="static",
              options=_opts({str(v[0]): v[2] for v in STORES.values()}, blank=False)),
    ]
    return system + custom_metadata()


def custom_metadata() -> list[dict[str, Any]]:
    return [
        _attr("loyalty_tier", "Loyalty Tier", "select", backend="int", user_defined=True,
              options=_opts({v: k for k, v in TIERS.items()}), order=200),
        _attr("lifetime_value", "Lifetime Value", backend="decimal", user_defined=True,
              rules=("numeric",), order=210),
        _attr("website", "Website", user_defined=True, rules=("url",), order=220),
        _attr("interests", "Interests", "multiselect", backend="varchar", user_defined=True,
              options=_opts({v: k.title() for k, v in INTERESTS.items()}, blank=False),
              order=230),
        _attr("customer_note", "Customer Note", "textarea", backend="text", user_defined=True,
              order=240),
    ]


def _groups(state: State) -> list[tuple[int, str]]:
    extra = [(100 + i, f"Segment {i:03d}") for i in range(state.extra_groups)]
    return GROUPS + extra


# ------------------------------------------------------------------ searchCriteria


def parse_criteria(args: list[tuple[str, str]], fields: tuple[str, ...]) -> dict[str, Any]:
    """searchCriteria[...] query params into filter groups, sorts, page size and page."""
    tree: dict[str, Any] = {}
    present = False
    for key, value in args:
        if key != "searchCriteria" and not key.startswith("searchCriteria["):
            continue
        present = True
        parts = re.findall(r"\[([^\]]*)\]", key[len("searchCriteria"):])
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ApiError(400, {"message": "Invalid searchCriteria parameter."})
        node[parts[-1]] = value
    if not present:
        raise ApiError(400, {"message": "\"%fieldName\" is required. Enter and try again.",
                             "parameters": {"fieldName": "searchCriteria"}})
    crit: dict[str, Any] = {"filter_groups": [], "sort_orders": [], "page_size": None,
                            "current_page": None}
    for key, value in tree.items():
        name = CRITERIA_KEYS.get(key)
        if name is None:
            raise ApiError(400, {
                "message": "\"%fieldName\" is not supported. Correct the field name and try again.",
                "parameters": {"fieldName": key}})
        crit[name] = value
    crit["filter_groups"] = [_filter_group(g, fields) for _, g in _indexed(crit["filter_groups"])]
    crit["sort_orders"] = [_sort(s, fields) for _, s in _indexed(crit["sort_orders"])]
    for key in ("page_size", "current_page"):
        if crit[key] is not None:
            try:
                crit[key] = int(crit[key])
            except (TypeError, ValueError):
                raise ApiError(400, {"message": f"The \"{crit[key]}\" value's type is invalid. "
                                                "The \"int\" type was expected. Verify and try "
                                                "again."}) from None
    return crit


def _indexed(node: Any) -> list[tuple[int, Any]]:
    if not isinstance(node, dict):
        return []
    try:
        return sorted((int(k), v) for k, v in node.items())
    except ValueError:
        raise ApiError(400, {"message": "Invalid searchCriteria index."}) from None


def _filter_group(group: Any, fields: tuple[str, ...]) -> list[dict[str, str]]:
    filters = group.get("filters") if isinstance(group, dict) else None
    out = []
    for _, f in _indexed(filters):
        if not isinstance(f, dict) or "field" not in f:
            raise ApiError(400, {"message": "\"%fieldName\" is required. Enter and try again.",
                                 "parameters": {"fieldName": "field"}})
        condition = f.get("condition_type") or f.get("conditionType") or "eq"
        if condition not in CONDITIONS:
            raise ApiError(400, {"message": f"Invalid condition type: {condition}"})
        if f["field"] not in fields:
            raise ApiError(400, {"message": "Invalid attribute name: %1",
                                 "parameters": [f["field"]]})
        out.append({"field": f["field"], "value": f.get("value", ""),
                    "condition_type": condition})
    return out


def _sort(sort: Any, fields: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(sort, dict) or sort.get("field") not in fields:
        raise ApiError(400, {"message": "Invalid sort field."})
    direction = str(sort.get("direction") or "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise ApiError(400, {"message": "Sort order direction must be ASC or DESC."})
    return {"field": sort["field"], "direction": direction}


def _coerce(field_name: str, value: Any) -> Any:
    if value is None:
        return None
    if field_name in NUMERIC:
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)
    text = str(value)
    if field_name in ("created_at", "updated_at") and re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return text + " 00:00:00"
    return text


def _predicate(f: dict[str, str]):
    """A filter compiled to a test on a row (values coerced once, SQL-like NULL rules)."""
    name, cond = f["field"], f["condition_type"]
    if cond in ("null", "notnull"):
        return lambda row: (row.get(name) is None) == (cond == "null")
    if cond in ("in", "nin"):
        wanted = {_coerce(name, v.strip()) for v in str(f["value"]).split(",")}
        return lambda row: row.get(name) is not None and (row[name] in wanted) == (cond == "in")
    want = _coerce(name, f["value"])
    if cond == "like":
        pattern = re.compile(re.escape(str(want)).replace("%", ".*").replace("_", "."),
                             re.IGNORECASE)
        return lambda row: row.get(name) is not None and bool(pattern.fullmatch(str(row[name])))
    compare = {"eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gteq": operator.ge,
               "lt": operator.lt, "lteq": operator.le}[cond]

    def test(row: dict[str, Any]) -> bool:
        have = row.get(name)
        if have is None:
            return False  # SQL: NULL compares to nothing
        if isinstance(want, str) and not isinstance(have, str):
            have = str(have)
        try:
            return compare(have, want)
        except TypeError:
            return False

    return test


def _matcher(groups: list[list[dict[str, str]]]):
    """Filters within a group OR, groups AND."""
    compiled = [[_predicate(f) for f in g] for g in groups if g]
    return lambda row: all(any(t(row) for t in g) for g in compiled)


def _page(total: int, crit: dict[str, Any], state: State) -> tuple[int, int]:
    """Slice bounds for the requested page, with the version's past-the-end behaviour."""
    size = crit["page_size"]
    if size is not None and state.input_limits and size > 300:
        raise ApiError(400, {"message": "Maximum SearchCriteria pageSize is %max",
                             "parameters": {"max": 300}})
    if not size or size < 1:
        size = 20 if state.input_limits else max(total, 1)
    page = max(1, crit["current_page"] or 1)
    last = max(1, -(-total // size))
    if page > last and state.past_last_page == "last":
        page = last
    return (page - 1) * size, page * size


def _echo(crit: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"filter_groups": [{"filters": g} for g in crit["filter_groups"]]}
    if crit["sort_orders"]:
        out["sort_orders"] = crit["sort_orders"]
    if crit["page_size"] is not None:
        out["page_size"] = crit["page_size"]
    if crit["current_page"] is not None:
        out["current_page"] = crit["current_page"]
    return out


def search_customers(state: State, args: list[tuple[str, str]]) -> dict[str, Any]:
    crit = parse_criteria(args, FILTER_FIELDS["customers"])
    groups, sorts = crit["filter_groups"], crit["sort_orders"]
    rows, keys = state.by_updated()
    fast = [(s["field"], s["direction"]) for s in sorts] in (
        [("updated_at", "ASC")], [("updated_at", "ASC"), ("entity_id", "ASC")])
    start, rest = 0, groups
    if fast:  # walk the cached order; a lone updated_at gt/gteq filter bisects to its start
        rest = []
        for g in groups:
            if len(g) == 1 and g[0]["field"] == "updated_at" and g[0]["condition_type"] in (
                    "gt", "gteq"):
                bound = str(_coerce("updated_at", g[0]["value"]))
                probe = (bound, 1 << 62) if g[0]["condition_type"] == "gt" else (bound, -1)
                start = max(start, bisect.bisect_left(keys, probe))
            else:
                rest.append(g)
    match = _matcher(rest)
    hits = rows[start:] if not any(rest) else [(p, r) for p, r in rows[start:] if match(r)]
    if not fast:
        hits.sort(key=lambda pr: pr[0].id)
        for s in reversed(sorts):
            hits.sort(key=lambda pr, n=s["field"]: (pr[1].get(n) is None, pr[1].get(n)),
                      reverse=s["direction"] == "DESC")
    lo, hi = _page(len(hits), crit, state)
    return {"items": [customer(p, state) for p, _ in hits[lo:hi]],
            "search_criteria": _echo(crit), "total_count": len(hits)}


def search_groups(state: State, args: list[tuple[str, str]]) -> dict[str, Any]:
    crit = parse_criteria(args, FILTER_FIELDS["groups"])
    rows = [{"id": gid, "code": code, "tax_class_id": 3, "tax_class_name": "Retail Customer"}
            for gid, code in _groups(state)]
    match = _matcher(crit["filter_groups"])
    hits = [r for r in rows if match(r)]
    for s in reversed(crit["sort_orders"]):
        hits.sort(key=lambda r, n=s["field"]: r[n], reverse=s["direction"] == "DESC")
    lo, hi = _page(len(hits), crit, state)
    return {"items": hits[lo:hi], "search_criteria": _echo(crit), "total_count": len(hits)}


# -------------------------------------------------------------------- OAuth 1.0a


def _enc(value: str) -> str:
    return quote(value, safe="-._~")


def store_views(state: State) -> list[dict[str, Any]]:
    """`GET /V1/store/storeViews`: the admin view (id 0) and one per STORES entry."""
    views = [{"id": 0, "code": "admin", "name": "Admin", "website_id": 0,
              "store_group_id": 0, "is_active": 1}]
    for code, (store_id, website_id, name) in STORES.items():
        views.append({"id": store_id, "code": code, "name": name, "website_id": website_id,
                      "store_group_id": website_id, "is_active": 1})
    return views


def store_groups(state: State) -> list[dict[str, Any]]:
    """`GET /V1/store/storeGroups`: one store (group) per website, the admin one first."""
    names = {0: "Default", 1: state.store_name, 2: "EU Store"}
    return [{"id": w["id"], "website_id": w["id"], "root_category_id": 2 if w["id"] else 0,
             "default_store_id": w["default_group_id"], "name": names[w["id"]],
             "code": "default" if not w["id"] else f"{w['code']}_store"} for w in WEBSITES]


def _oauth_params(header: str) -> dict[str, str]:
    params = {}
    for part in re.findall(r'([A-Za-z_]+)="([^"]*)"', header[len("OAuth "):]):
        params[part[0]] = unquote(part[1])
    return params


def _raw_query_params(query: str) -> list[tuple[str, str]]:
    """Query params as Magento's signature check reads them: rawurldecode ('+' stays)."""
    out = []
    for piece in query.split("&") if query else []:
        key, _, value = piece.partition("=")
        out.append((unquote(key), unquote(value)))
    return out


def verify_oauth(request: Request, state: State, *, token: str | None,
                 token_secret: str, extra_required: tuple[str, ...] = ()) -> dict[str, str]:
    """Check an OAuth 1.0a signed request per RFC 5849 (HMAC-SHA1 or HMAC-SHA256)."""
    params = _oauth_params(request.headers.get("Authorization", ""))
    needed = ("oauth_consumer_key", "oauth_signature_method", "oauth_signature",
              "oauth_nonce", "oauth_timestamp") + (("oauth_token",) if token else ()) \
        + extra_required
    for key in needed:
        if not params.get(key):
            raise ApiError(401, {"message": "\"%fieldName\" is required. Enter and try again.",
                                 "parameters": {"fieldName": key}})
    if params.get("oauth_version", "1.0") != "1.0":
        raise ApiError(401, {"message": "The \"oauth_version\" is not supported."})
    if not hmac.compare_digest(params["oauth_consumer_key"], state.consumer_key):
        raise ApiError(401, {"message": "A consumer with the specified key doesn't exist."})
    method = params["oauth_signature_method"]
    digest = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}.get(method)
    if digest is None:
        raise ApiError(401, {"message": "Signature method %1 is not supported.",
                             "parameters": [method]})
    try:
        stamp = int(params["oauth_timestamp"])
    except ValueError:
        stamp = -1
    if stamp <= 0 or abs(state.clock() - stamp) > TIME_DEVIATION:
        raise ApiError(401, {"message": "The timestamp is out of range."})
    with state._lock:
        if params["oauth_nonce"] in state._nonces:
            raise ApiError(401, {"message": "The nonce is already being used by the consumer "
                                            "with ID %1.", "parameters": ["1"]})
        state._nonces.add(params["oauth_nonce"])
    if token is not None:
        if not hmac.compare_digest(params["oauth_token"], token):
            raise ApiError(401, {"message": "Specified token does not exist"})
        if token == state.access_token and not state.token_active:
            raise ApiError(401, {"message": "The access token has been revoked."})
    env = request.environ
    raw_path = (env.get("REQUEST_URI") or env.get("RAW_URI") or "").split("?", 1)[0]
    if not raw_path.startswith("/"):
        raw_path = quote(request.path)
    scheme, host = request.scheme.lower(), request.host.lower()
    if (scheme, host.rpartition(":")[2]) in (("http", "80"), ("https", "443")):
        host = host.rpartition(":")[0]
    pairs = [(k, v) for k, v in params.items() if k not in ("oauth_signature", "realm")]
    pairs += _raw_query_params(env.get("QUERY_STRING", ""))
    if request.mimetype == "application/x-www-form-urlencoded":
        pairs += _raw_query_params(request.get_data(as_text=True).replace("+", "%20"))
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in pairs))
    base = "&".join([request.method.upper(), _enc(f"{scheme}://{host}{raw_path}"),
                     _enc(normalized)])
    key = f"{_enc(state.consumer_secret)}&{_enc(token_secret)}"
    expected = base64.b64encode(hmac.new(key.encode(), base.encode(), digest).digest()).decode()
    if not hmac.compare_digest(expected, params["oauth_signature"]):
        raise ApiError(401, {"message": BAD_SIGNATURE})
    return params


def authenticate(request: Request, state: State) -> None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        state.auth_seen.append("bearer")
        token = header[len("Bearer "):].strip()
        # Before 2.4.4 or with the switch on, an integration token works as a Bearer token;
        # otherwise Magento treats the caller as a guest, who may not read customers.
        if not (state.bearer_allowed and state.token_active
                and hmac.compare_digest(token, state.access_token)):
            raise ApiError(401, UNAUTHORIZED)
        return
    if header.startswith("OAuth "):
        state.auth_seen.append("oauth1")
        verify_oauth(request, state, token=state.access_token,
                     token_secret=state.access_token_secret)
        return
    raise ApiError(401, UNAUTHORIZED)


# --------------------------------------------------------------------------- app


class MagentoSimulator:
    """The WSGI app; `state` holds the test controls."""

    def __init__(self, state: State):
        self.state = state

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ApiError as exc:
            response = Response(json.dumps(exc.body), exc.status, exc.headers,
                                content_type="application/json; charset=utf-8")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/oauth/token/"):
            return self.token_endpoint(request, path.rsplit("/", 1)[1])
        if not path.startswith("/rest/"):
            return Response("<html><body>404 Not Found</body></html>", 404,
                            content_type="text/html")
        state = self.state
        with state._lock:
            state.api_requests += 1
            count = state.api_requests
        if state.error_every and count % state.error_every == 0:
            return self.injected(state.error_status)
        if state.delay:
            time.sleep(state.delay)
        parts = path[len("/rest/"):].strip("/").split("/")
        if parts and parts[0] != "V1":
            if parts[0] in STORES or parts[0] == "all":
                state.store_codes_seen.append(parts[0])
                parts = parts[1:]
        route = "/".join(parts)
        handlers = {
            "V1/customers/search": lambda: search_customers(state, self.args(request)),
            "V1/customerGroups/search": lambda: search_groups(state, self.args(request)),
            "V1/store/websites": lambda: WEBSITES,
            "V1/store/storeViews": lambda: store_views(state),
            "V1/store/storeGroups": lambda: store_groups(state),
            "V1/attributeMetadata/customer": lambda: attribute_metadata(state),
            "V1/attributeMetadata/customer/custom": custom_metadata,
        }
        handler = handlers.get(route)
        if handler is None or request.method != "GET":
            raise ApiError(404, NO_ROUTE)
        authenticate(request, state)
        if route.startswith("V1/store/store") and not state.store_access:
            raise ApiError(401, {**UNAUTHORIZED,
                                 "parameters": {"resources": "Magento_Backend::store"}})
        return Response(json.dumps(handler()), 200,
                        content_type="application/json; charset=utf-8")

    @staticmethod
    def args(request: Request) -> list[tuple[str, str]]:
        """Query params as PHP reads them for data ('+' is a space)."""
        out = []
        for piece in request.environ.get("QUERY_STRING", "").split("&"):
            if piece:
                key, _, value = piece.partition("=")
                out.append((unquote_plus(key), unquote_plus(value)))
        return out

    @staticmethod
    def injected(status: int) -> Response:
        if status == 429:
            return Response(json.dumps({"message": "Too many requests"}), 429,
                            {"Retry-After": "1"}, content_type="application/json")
        if status == 500:
            return Response(json.dumps({"message": "Internal Error. Details are available in "
                                        "Magento log file. Report ID: webapi-5f0c1"}), 500,
                            content_type="application/json")
        return Response("<html><body><h1>Service Unavailable</h1></body></html>", status,
                        content_type="text/html")

    def token_endpoint(self, request: Request, kind: str) -> Response:
        """The integration handshake: request token, then access token for the verifier."""
        state = self.state
        with state._lock:
            state.token_requests += 1
        if request.method != "POST" or kind not in ("request", "access"):
            return Response("oauth_problem=Not+Found", 404, content_type="text/plain")
        try:
            if kind == "request":
                verify_oauth(request, state, token=None, token_secret="")
                state.request_token, state.request_token_secret = _token(), _token()
                body = {"oauth_token": state.request_token,
                        "oauth_token_secret": state.request_token_secret}
            else:
                if not state.request_token:
                    raise ApiError(401, {"message": "Specified token does not exist"})
                params = verify_oauth(request, state, token=state.request_token,
                                      token_secret=state.request_token_secret,
                                      extra_required=("oauth_verifier",))
                if not hmac.compare_digest(params["oauth_verifier"], state.verifier):
                    raise ApiError(401, {"message": "The verifier is invalid."})
                state.request_token = ""
                state.token_active = True
                body = {"oauth_token": state.access_token,
                        "oauth_token_secret": state.access_token_secret}
        except ApiError as exc:
            problem = "oauth_problem=" + quote(str(exc.body.get("message", "")), safe="")
            return Response(problem, exc.status, content_type="text/plain")
        return Response("&".join(f"{k}={v}" for k, v in body.items()), 200,
                        content_type="text/plain")


def create_app(people: list[Person], **options: Any) -> MagentoSimulator:
    """Options: version ("2.4" or "2.3"; sets past_last_page and is_subscribed_in_search),
    bearer_allowed, input_limits, extra_groups, delay, and any other State field."""
    version = str(options.pop("version", "2.4"))
    defaults = {"past_last_page": "empty" if version >= "2.4" else "last",
                "is_subscribed_in_search": version >= "2.4"}
    return MagentoSimulator(State(people=people, version=version, **{**defaults, **options}))


def demo_config(app: MagentoSimulator, base_url: str) -> dict[str, Any]:
    """Settings and OAuth 1.0a credentials that connect the client to this simulator."""
    s = app.state
    return {
        "settings": {"base_url": base_url, "auth_mode": "oauth1"},
        "credentials": {"consumer_key": s.consumer_key, "consumer_secret": s.consumer_secret,
                        "access_token": s.access_token,
                        "access_token_secret": s.access_token_secret},
    }
