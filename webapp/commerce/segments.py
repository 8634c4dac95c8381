"""Segments: a JSON tree of AND/OR groups of conditions, validated, then compiled to ONE SQL
WHERE clause over `contacts` (SQLAlchemy Core; semi-joins over indexed tables, no Python
loop over contacts).

A definition is `{"op": "and"|"or", "items": [condition or group, ...]}`; a condition is a
dict with a `type` (see CONDITION_TYPES) and an optional `negate`. Time windows are measured
back from `now` (a bound parameter), so the same compiled query serves the live count, the
periodic re-evaluation and the dry run at past moments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import String, and_, cast, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from ..extensions import db
from ..models import Contact, Segment
from ..models.base import utcnow
from ..models.commerce import Cart, Order, OrderLine, PageVisit, Product
from ..models.lists import ORIGINS

contacts = Contact.__table__
orders = Order.__table__
lines = OrderLine.__table__
products = Product.__table__
carts = Cart.__table__
visits = PageVisit.__table__

CONDITION_TYPES = ("purchased", "cart_abandoned", "visited", "field", "list", "origin",
                   "consent")
PURCHASE_WHAT = ("anything", "product", "category")
URL_MATCHES = ("equals", "contains", "starts_with", "wildcard")
FIELD_OPS = ("equals", "not_equals", "contains", "is_set", "is_not_set")
CONSENT_STATES = ("subscribed", "opted_out", "unknown")
REVENUE_STATUSES = ("paid", "partially_refunded")  # orders that count as a purchase
MAX_DAYS = 3650
MAX_HOURS = 24 * 365
MAX_ITEMS = 20  # per group
MAX_GROUPS = 10
MAX_DEPTH = 3
SAMPLE_SIZE = 10


class DefinitionError(ValueError):
    """A definition breaks a rule; `where` names the condition ("g0_c1") for the builder."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where
        self.message = message


# ------------------------------------------------------------------------- validation


def _int(raw: Any, where: str, what: str, low: int, high: int) -> int:
    text = str(raw if raw is not None else "").strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise DefinitionError(where, f"{what} is a whole number from {low:,} to {high:,}.")
    return int(text)


def _text(raw: Any, where: str, what: str, limit: int = 500, required: bool = True) -> str:
    text = str(raw if raw is not None else "").strip()
    if "\x00" in text:
        raise DefinitionError(where, f"{what} holds a character that is not allowed.")
    if required and not text:
        raise DefinitionError(where, f"Give the {what.lower()}.")
    if len(text) > limit:
        raise DefinitionError(where, f"{what} is at most {limit} characters.")
    return text


def clean_condition(raw: dict, where: str) -> dict:
    """A condition with its values checked and normalised; raises DefinitionError."""
    if not isinstance(raw, dict):
        raise DefinitionError(where, "This condition is not readable.")
    kind = raw.get("type")
    out: dict[str, Any] = {"type": kind}
    if raw.get("negate") in (True, "on", "1", "true"):
        out["negate"] = True
    if kind == "purchased":
        what = raw.get("what") or "anything"
        if what not in PURCHASE_WHAT:
            raise DefinitionError(where, "Choose anything, a product or a category.")
        out["what"] = what
        if what == "product":
            out["product_id"] = _int(raw.get("product_id"), where, "The product", 1, 2**31 - 1)
        elif what == "category":
            out["category"] = _text(raw.get("category"), where, "Category", 200)
        out["days"] = _int(raw.get("days"), where, "Days", 1, MAX_DAYS)
        minimum = str(raw.get("min_amount") or "").strip()
        if minimum:
            try:
                amount = Decimal(minimum)
            except InvalidOperation:
                raise DefinitionError(where, "The minimum amount is a number, e.g. 50.00.") \
                    from None
            if not amount.is_finite() or amount < 0 or amount >= Decimal("1e10"):
                raise DefinitionError(where, "The minimum amount is a number, e.g. 50.00.")
            out["min_amount"] = str(amount.quantize(Decimal("0.01")))
    elif kind == "cart_abandoned":
        out["hours"] = _int(raw.get("hours"), where, "Hours", 1, MAX_HOURS)
    elif kind == "visited":
        match = raw.get("match") or "contains"
        if match not in URL_MATCHES:
            raise DefinitionError(where, "Choose equals, contains, starts with or wildcard.")
        out["match"] = match
        out["url"] = _text(raw.get("url"), where, "Address (URL)", 2000)
        out["days"] = _int(raw.get("days"), where, "Days", 1, MAX_DAYS)
    elif kind == "field":
        out["field"] = _text(raw.get("field"), where, "Custom field", 64)
        op = raw.get("compare") or "equals"
        if op not in FIELD_OPS:
            raise DefinitionError(where, "Choose how the field is compared.")
        out["compare"] = op
        if op not in ("is_set", "is_not_set"):
            out["value"] = _text(raw.get("value"), where, "Value", 255)
    elif kind == "list":
        out["list_id"] = _int(raw.get("list_id"), where, "The list", 1, 2**31 - 1)
    elif kind == "origin":
        if raw.get("origin") not in ORIGINS:
            raise DefinitionError(where, "Choose where contacts came from.")
        out["origin"] = raw["origin"]
    elif kind == "consent":
        if raw.get("state") not in CONSENT_STATES:
            raise DefinitionError(where, "Choose a consent state.")
        out["state"] = raw["state"]
    else:
        raise DefinitionError(where, "Choose a kind of condition.")
    return out


def clean_definition(raw: Any, where: str = "g", depth: int = 0) -> dict:
    """The whole tree checked (AND/OR, sizes, each condition); raises DefinitionError."""
    if not isinstance(raw, dict) or raw.get("op") not in ("and", "or"):
        raise DefinitionError(where, "A group combines its conditions with AND or OR.")
    items = raw.get("items")
    if not isinstance(items, list) or not items:
        raise DefinitionError(where, "Add at least one condition.")
    if len(items) > (MAX_GROUPS if depth == 0 else MAX_ITEMS):
        raise DefinitionError(where, "Too many conditions in one group.")
    cleaned = []
    for n, item in enumerate(items):
        at = f"{where}{n}" if depth == 0 else f"{where}_c{n}"
        if isinstance(item, dict) and "items" in item:
            if depth + 1 >= MAX_DEPTH:
                raise DefinitionError(at, "Groups nest at most three deep.")
            cleaned.append(clean_definition(item, at, depth + 1))
        else:
            cleaned.append(clean_condition(item, at))
    return {"op": raw["op"], "items": cleaned}


# --------------------------------------------------------------------------- compiling


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def url_clause(match: str, url: str) -> ColumnElement:
    column = visits.c.url
    if match == "equals":
        return column == url
    if match == "starts_with":
        return column.ilike(_like_escape(url) + "%", escape="\\")
    if match == "contains":
        return column.ilike("%" + _like_escape(url) + "%", escape="\\")
    pattern = "".join("%" if ch == "*" else "_" if ch == "?" else _like_escape(ch)
                      for ch in url)
    return column.ilike(pattern, escape="\\")


@dataclass(frozen=True)
class Options:
    """How a definition is compiled: `now` for its windows; `automation` leaves backfilled
    orders out (history never fires automations)."""

    now: datetime
    automation: bool = False


def purchase_orders(cond: dict, opts: Options) -> tuple[Any, list[ColumnElement]]:
    """(FROM, WHERE) of the orders that satisfy a "purchased" condition."""
    since = opts.now - timedelta(days=cond["days"])
    where = [orders.c.contact_id.is_not(None), orders.c.status.in_(REVENUE_STATUSES),
             orders.c.placed_at >= since, orders.c.placed_at <= opts.now]
    if opts.automation:
        where.append(orders.c.backfill.is_(false()))
    if "min_amount" in cond:
        where.append(orders.c.revenue >= Decimal(cond["min_amount"]))
    source = orders
    if cond["what"] == "product":
        source = orders.join(lines, lines.c.order_id == orders.c.id)
        where.append(lines.c.product_id == cond["product_id"])
    elif cond["what"] == "category":
        source = orders.join(lines, lines.c.order_id == orders.c.id).join(
            products, products.c.id == lines.c.product_id)
        where.append(func.lower(products.c.category) == cond["category"].lower())
    return source, where


def _purchased(cond: dict, opts: Options) -> ColumnElement:
    source, where = purchase_orders(cond, opts)
    return select(orders.c.id).select_from(source).where(
        orders.c.contact_id == contacts.c.id, *where).exists()


def _cart_abandoned(cond: dict, opts: Options) -> ColumnElement:
    since = opts.now - timedelta(hours=cond["hours"])
    return select(carts.c.id).where(
        carts.c.contact_id == contacts.c.id, carts.c.status == "abandoned",
        carts.c.recovered_at.is_(None),
        carts.c.abandoned_at >= since, carts.c.abandoned_at <= opts.now).exists()


def _visited(cond: dict, opts: Options) -> ColumnElement:
    since = opts.now - timedelta(days=cond["days"])
    return select(visits.c.id).where(
        visits.c.contact_id == contacts.c.id, visits.c.visited_at >= since,
        visits.c.visited_at <= opts.now, url_clause(cond["match"], cond["url"])).exists()


def _field(cond: dict) -> ColumnElement:
    value = cast(contacts.c.custom[cond["field"]].as_string(), String)
    op = cond["compare"]
    if op == "is_set":
        return and_(value.is_not(None), value != "")
    if op == "is_not_set":
        return or_(value.is_(None), value == "")
    wanted = cond["value"].lower()
    if op == "equals":
        return func.lower(value) == wanted
    if op == "not_equals":
        return or_(value.is_(None), func.lower(value) != wanted)
    return func.lower(value).like("%" + _like_escape(wanted) + "%", escape="\\")


def _on_list(cond: dict) -> ColumnElement:
    """The person (same email) is on the list: this contact row or their row there."""
    other = contacts.alias("on_list")
    return select(other.c.id).where(other.c.list_id == cond["list_id"],
                                    other.c.email_norm == contacts.c.email_norm).exists()


def compile_condition(cond: dict, opts: Options) -> ColumnElement:
    kind = cond["type"]
    if kind == "purchased":
        clause = _purchased(cond, opts)
    elif kind == "cart_abandoned":
        clause = _cart_abandoned(cond, opts)
    elif kind == "visited":
        clause = _visited(cond, opts)
    elif kind == "field":
        clause = _field(cond)
    elif kind == "list":
        clause = _on_list(cond)
    elif kind == "origin":
        clause = contacts.c.origin == cond["origin"]
    else:
        clause = contacts.c.consent_state == cond["state"]
    return not_(clause) if cond.get("negate") else clause


# The order AND terms are tested in: the contact's own columns first, then the correlated
# EXISTS probes from the smallest table to the largest (SQLite tests terms as written).
_COST = {"origin": 0, "consent": 0, "field": 1, "list": 2, "purchased": 3,
         "cart_abandoned": 4, "visited": 5}


def _cost(item: dict) -> int:
    if "items" in item:
        return max((_cost(i) for i in item["items"]), default=0)
    return _COST.get(item["type"], 9)


def compile_definition(definition: dict, opts: Options) -> ColumnElement:
    """The WHERE clause (over `contacts`) of a cleaned definition."""
    items = sorted(definition["items"], key=_cost)
    parts = [compile_definition(item, opts) if "items" in item else compile_condition(item, opts)
             for item in items]
    if not parts:
        return false() if definition["op"] == "or" else true()
    return and_(*parts) if definition["op"] == "and" else or_(*parts)


def members(definition: dict, now: datetime | None = None, *, automation: bool = False):
    """SELECT contacts.id of the members at `now` (a statement, not run)."""
    opts = Options(now or utcnow(), automation)
    where = compile_definition(definition, opts)
    return select(contacts.c.id).where(where, contacts.c.created_at <= opts.now)


def count(definition: dict, now: datetime | None = None) -> int:
    """How many contacts match now (one query)."""
    inner = members(definition, now).subquery()
    return db.session.scalar(select(func.count()).select_from(inner)) or 0


def sample(definition: dict, size: int = SAMPLE_SIZE, now: datetime | None = None) -> list:
    """A few members (newest contacts first) for the builder: id, email, name, list."""
    opts = Options(now or utcnow())
    where = compile_definition(definition, opts)
    return db.session.execute(
        select(Contact.id, Contact.email, Contact.name, Contact.list_id)
        .where(where, Contact.created_at <= opts.now)
        .order_by(Contact.id.desc()).limit(size)).all()


# ----------------------------------------------------------------------- descriptions


def describe(cond: dict, names: dict[str, dict[int, str]] | None = None) -> str:
    """One condition in plain words (builder summaries, automation entries' reasons)."""
    names = names or {}
    kind = cond["type"]
    if kind == "purchased":
        what = {"anything": "anything",
                "product": "“" + names.get("products", {}).get(
                    cond.get("product_id"), f"product #{cond.get('product_id')}") + "”",
                "category": f"from category “{cond.get('category')}”"}[cond["what"]]
        text = f"purchased {what} in the last {cond['days']} days"
        if cond.get("min_amount"):
            text += f" (an order of at least {cond['min_amount']})"
    elif kind == "cart_abandoned":
        text = f"abandoned a cart in the last {cond['hours']} hours, not recovered"
    elif kind == "visited":
        how = {"equals": "", "contains": "containing ", "starts_with": "starting with ",
               "wildcard": "matching "}[cond["match"]]
        text = f"visited a page {how}“{cond['url']}” in the last {cond['days']} days"
    elif kind == "field":
        op = cond["compare"].replace("_", " ")
        text = f"custom field {cond['field']} {op}"
        if "value" in cond:
            text += f" “{cond['value']}”"
    elif kind == "list":
        name = names.get("lists", {}).get(cond["list_id"], f"list #{cond['list_id']}")
        text = f"is on the list “{name}”"
    elif kind == "origin":
        text = f"came from {cond['origin']}"
    else:
        text = f"consent is {cond['state'].replace('_', ' ')}"
    return ("not: " + text) if cond.get("negate") else text


def describe_definition(definition: dict, names: dict | None = None) -> str:
    joiner = " and " if definition["op"] == "and" else " or "
    parts = []
    for item in definition["items"]:
        if "items" in item:
            parts.append("(" + describe_definition(item, names) + ")")
        else:
            parts.append(describe(item, names))
    return joiner.join(parts)


def leaves(definition: dict):
    """Every condition of the tree, depth first."""
    for item in definition["items"]:
        if "items" in item:
            yield from leaves(item)
        else:
            yield item


def window(definition: dict) -> timedelta | None:
    """The shortest time window of the definition (None when nothing is time-based)."""
    spans = [timedelta(days=c["days"]) if "days" in c else timedelta(hours=c["hours"])
             for c in leaves(definition) if "days" in c or "hours" in c]
    return min(spans) if spans else None


# ----------------------------------------------------------------------------- storage


def save(name: str, definition: Any, segment: Segment | None = None) -> Segment:
    """Create or update a segment (the definition cleaned first); the caller commits."""
    cleaned = clean_definition(definition)
    name = " ".join((name or "").split())
    if not name or len(name) > 120 or "\x00" in name:
        raise DefinitionError("name", "Give the segment a name of at most 120 characters.")
    taken = select(Segment.id).where(func.lower(Segment.name) == name.lower())
    if segment is not None:
        taken = taken.where(Segment.id != segment.id)
    if db.session.scalar(taken.limit(1)) is not None:
        raise DefinitionError("name", f"A segment named “{name}” exists already.")
    if segment is None:
        segment = Segment(name=name, definition=cleaned)
        db.session.add(segment)
    else:
        segment.name, segment.definition, segment.updated_at = name, cleaned, utcnow()
    return segment


# ------------------------------------------------------------------ the builder's form

FORM_KEYS = ("type", "what", "product_id", "category", "days", "min_amount", "hours",
             "match", "url", "field", "compare", "value", "list_id", "origin", "state",
             "negate")
DEFAULTS = {"purchased": {"what": "anything", "days": "30"},
            "cart_abandoned": {"hours": "24"},
            "visited": {"match": "contains", "days": "7"},
            "field": {"compare": "equals"}, "list": {}, "origin": {"origin": "plugin"},
            "consent": {"state": "subscribed"}}


def blank_condition(kind: str = "purchased") -> dict:
    return {"type": kind, **DEFAULTS.get(kind, {})}


def blank_definition() -> dict:
    return {"op": "and", "items": [{"op": "and", "items": [blank_condition()]}]}


def as_groups(definition: dict) -> dict:
    """A definition shaped for the builder: a top AND/OR over groups of conditions (a bare
    condition at the top becomes a group of one)."""
    items = [item if "items" in item else {"op": "and", "items": [item]}
             for item in definition.get("items") or []]
    return {"op": definition.get("op", "and"), "items": items or [
        {"op": "and", "items": [blank_condition()]}]}


def from_form(form) -> tuple[dict, str | None]:
    """(the definition as typed, the edit asked for: "add:0", "group", "remove:0_1" or
    None). Values stay strings; `clean_definition` judges them."""
    groups = []
    for i in range(MAX_GROUPS):
        conditions = []
        for j in range(MAX_ITEMS):
            prefix = f"g{i}_c{j}_"
            kind = form.get(prefix + "type")
            if kind is None:
                continue
            cond = {k: str(form.get(prefix + k, ""))[:2000] for k in FORM_KEYS
                    if form.get(prefix + k) is not None}
            conditions.append({**DEFAULTS.get(kind, {}), **cond})
        if conditions or form.get(f"g{i}_op") is not None:
            op = form.get(f"g{i}_op")
            groups.append({"op": op if op in ("and", "or") else "and", "items": conditions})
    top = form.get("op")
    definition = {"op": top if top in ("and", "or") else "and", "items": groups}
    edit = None
    if form.get("add_group"):
        edit = "group"
    elif form.get("add"):
        edit = "add:" + str(form.get("add"))[:5]
    elif form.get("remove"):
        edit = "remove:" + str(form.get("remove"))[:11]
    return definition, edit


def apply_edit(definition: dict, edit: str | None) -> dict:
    """The builder's buttons: add a condition to a group, add a group, remove a condition
    (an emptied group goes too)."""
    groups = definition["items"]
    if edit == "group" and len(groups) < MAX_GROUPS:
        groups.append({"op": "and", "items": [blank_condition()]})
    elif edit and edit.startswith("add:"):
        index = edit[4:]
        if index.isdigit() and int(index) < len(groups) and \
                len(groups[int(index)]["items"]) < MAX_ITEMS:
            groups[int(index)]["items"].append(blank_condition())
    elif edit and edit.startswith("remove:"):
        i, _, j = edit[7:].partition("_")
        if i.isdigit() and j.isdigit() and int(i) < len(groups):
            items = groups[int(i)]["items"]
            if int(j) < len(items):
                items.pop(int(j))
            if not items:
                groups.pop(int(i))
    if not groups:
        groups.append({"op": "and", "items": [blank_condition()]})
    return definition


def builder_choices() -> dict:
    """What the builder's selects offer: products, categories, lists, custom fields."""
    from ..models import ContactList, CustomField

    product_rows = db.session.execute(
        select(Product.id, Product.title, Product.external_id)
        .order_by(Product.title, Product.id).limit(500)).all()
    categories = db.session.scalars(
        select(Product.category).where(Product.category != "").distinct()
        .order_by(Product.category).limit(300)).all()
    return {
        "products": [(str(p.id), p.title or f"Product {p.external_id}") for p in product_rows],
        "categories": categories,
        "lists": [(str(r.id), r.name) for r in db.session.execute(
            select(ContactList.id, ContactList.name).order_by(ContactList.name))],
        "fields": db.session.scalars(select(CustomField.name).order_by(CustomField.name)).all(),
        "origins": ORIGINS,
    }


def names_for(definition: dict) -> dict[str, dict[int, str]]:
    """Product and list names a definition mentions (for descriptions)."""
    from ..models import ContactList

    conds = list(leaves(definition))
    product_ids = [c["product_id"] for c in conds if c.get("product_id")]
    list_ids = [c["list_id"] for c in conds if c.get("list_id")]
    out: dict[str, dict[int, str]] = {"products": {}, "lists": {}}
    if product_ids:
        out["products"] = dict(db.session.execute(
            select(Product.id, Product.title).where(Product.id.in_(product_ids))).all())
    if list_ids:
        out["lists"] = dict(db.session.execute(
            select(ContactList.id, ContactList.name).where(ContactList.id.in_(list_ids))).all())
    return out
