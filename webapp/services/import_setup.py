"""Setting up a recurring import and assigning its fields: the form rules, what the source
offers (groups, sources, fields, a few sample records), the mapping status, Import.

Decisions:
- A new import is saved stopped ("set-up not finished") and nothing is scheduled until
  Import is pressed on the mapping page; then the schedule is enabled and the first run
  starts at once.
- One import per integration and list: a second one is refused with a link to the first.
- Changing the group or source of an existing import resets its incremental cursor (it
  belonged to the old walk) and, for a new group, its mapping (other fields).
- Provider answers (groups, sources, fields) are cached for two minutes per integration and
  credentials, so the live mapping clicks don't call the provider each time.
- The fee forecast asks the source for its own count (one request) and reads at most a few
  pages within a couple of seconds: exact when those pages are the whole source, else the
  share of new emails in them (against the target list) is applied to the count; without
  a count it says "at least".
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..customfields import FieldDefinitionError
from ..extensions import db
from ..hardening import parse_id
from ..imports import credentials, runs, schedule
from ..imports.forecast import Forecast, NewContacts, forecast
from ..imports.pipeline import load_suppressions
from ..imports.preview import preview_now
from ..imports.rules import check_email, normalise_email
from ..models import (
    Contact,
    ContactList,
    CustomField,
    Cycle,
    Integration,
    RecurringImport,
    WorkspaceSettings,
)
from ..models.base import utcnow
from ..models.imports import CRITERIA
from ..providers import label_of
from ..providers.base import AuthError, Field, ProviderError, RecordCount
from . import fields as fields_service
from . import lists as lists_service
from . import mapping as rules
from .errors import FormError
from .integrations import interactive_http
from .settings import time_zones

CACHE_SECONDS = 120
SAMPLE_SIZE = 5
NOT_FINISHED = "Set-up not finished: assign the fields and press Import."
CRITERIA_HELP = {
    "add_update": ("Add and update", "New emails are added; contacts already on the list are "
                                     "updated."),
    "add_only": ("Add new only", "New emails are added; contacts already on the list are left "
                                 "untouched."),
    "update_only": ("Update existing only", "Contacts already on the list are updated; "
                                            "unknown emails are not added."),
}
NEW_LIST = "new"
# Sources whose records say whether a person subscribed to marketing; for the CRMs the team
# picks a boolean source field that does. Stores default to "only subscribed".
STORES = ("shopify", "magento")
CONSENT_FILTER_HELP = {  # no "source" in these labels: the Source select keeps its name
    "subscribed": ("Only people subscribed to marketing",
                   "People the store or CRM does not report as subscribed are left out "
                   "(kept as “no marketing consent” rejects)."),
    "everyone": ("Everyone who has not opted out",
                 "Also people with no recorded marketing consent, under the permission you "
                 "confirm below."),
}
CONSENT_SAMPLE = 100
_cache: dict[tuple, tuple[float, Any]] = {}


class SourceTrouble(Exception):
    """The provider could not answer; `message` is plain words, `reconnect` says the
    integration needs reconnecting."""

    def __init__(self, message: str, reconnect: bool = False):
        super().__init__(message)
        self.message = message
        self.reconnect = reconnect


class SetupErrors(Exception):
    """Form input that breaks rules: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# ------------------------------------------------------------------------ lookups


def get_integration(integration_id: int) -> Integration | None:
    row = db.session.get(Integration, integration_id)
    return row if row is not None and row.status != "disconnected" else None


def get_import(import_id: int) -> RecurringImport | None:
    return db.session.get(RecurringImport, import_id)


def label(integration: Integration) -> str:
    return label_of(integration.provider)


def lists() -> list[ContactList]:
    return lists_service.all_lists()


def cycles_of(list_id: int | None) -> list[Cycle]:
    if not list_id:
        return []
    return list(db.session.scalars(select(Cycle).where(Cycle.list_id == list_id)
                                   .order_by(Cycle.name)))


def existing_import(integration_id: int, list_id: int,
                    exclude_id: int | None = None) -> RecurringImport | None:
    stmt = select(RecurringImport).where(RecurringImport.integration_id == integration_id,
                                         RecurringImport.list_id == list_id)
    if exclude_id is not None:
        stmt = stmt.where(RecurringImport.id != exclude_id)
    return db.session.scalar(stmt.limit(1))


def workspace_zone() -> str:
    return WorkspaceSettings.get().time_zone or "UTC"


# ------------------------------------------------------------------ the provider


def _client(integration: Integration, page_size: int | None = None):
    """A provider client with connect-time timeouts (a person is waiting)."""
    if integration.status != "connected":
        raise SourceTrouble(f"The {label(integration)} connection needs reconnecting "
                            f"({integration.status_reason or 'it is not connected'}).",
                            reconnect=True)
    try:
        return credentials.client_for(integration, page_size=page_size,
                                      http=interactive_http(integration.provider))
    except ValueError as exc:  # credentials unreadable with the configured keys
        raise SourceTrouble("The saved credentials cannot be read with the configured keys; "
                            "reconnect the integration.", reconnect=True) from exc


def _ask(integration: Integration, what: str, call, *, cache: bool = True,
         page_size: int | None = None):
    """Call the provider (cached), translating its errors into plain words."""
    key = (integration.id, (integration.credentials_encrypted or "")[-24:], what)
    hit = _cache.get(key)
    if cache and hit and hit[0] > time.monotonic():
        return hit[1]
    try:
        value = call(_client(integration, page_size))
    except AuthError as exc:
        runs.mark_needs_reconnect(integration.id, exc.reason)
        raise SourceTrouble(f"{label(integration)} refused our credentials ({exc.reason}). "
                            "Reconnect the integration, then come back here.",
                            reconnect=True) from exc
    except ProviderError as exc:
        raise SourceTrouble(f"{label(integration)} could not answer: {exc.reason}") from exc
    if cache:
        if len(_cache) > 500:
            _cache.clear()
        _cache[key] = (time.monotonic() + CACHE_SECONDS, value)
    return value


def groups(integration: Integration) -> list:
    return _ask(integration, "groups", lambda p: list(p.groups()))


def sources(integration: Integration, group: str) -> list:
    if group not in {g.id for g in groups(integration)}:
        raise SourceTrouble("Choose a group first.")
    return _ask(integration, f"sources:{group}", lambda p: list(p.sources(group)))


def source_fields(integration: Integration, group: str) -> list[Field]:
    return _ask(integration, f"fields:{group}", lambda p: list(p.discover_fields(group)))


def columns(imp: RecurringImport) -> list[rules.Column]:
    return rules.columns(source_fields(imp.integration, imp.group))


def samples(imp: RecurringImport, cols: list[rules.Column]) -> list[list[str]]:
    """The first few records of the first page, one text cell per column."""
    from ..imports.rules import source_value

    names = [c.name for c in cols if c.name != rules.FULL_NAME]

    def first_page(provider):
        pages = provider.iter_pages(imp.group, imp.source, fields=names)
        try:
            page = next(iter(pages), None)
        finally:
            close = getattr(pages, "close", None)
            if close:
                close()
        return [] if page is None else page.records[:SAMPLE_SIZE]

    records = _ask(imp.integration, f"samples:{imp.group}:{imp.source}", first_page,
                   page_size=SAMPLE_SIZE)
    return [[rules.sample_text(source_value(r, c.name)) for c in cols] for r in records]


# ----------------------------------------------------------------- the fee forecast


@dataclass(frozen=True, slots=True)
class SourceSample:
    """What the forecast learns from the source (cached): its own count when it can give
    one, and the first records' normalised emails ("" for none) with their consent state."""

    total: RecordCount | None
    emails: tuple[tuple[str, str], ...]  # (normalised email or "", consent state)
    done: bool  # the walk ended inside the sample: it holds every record


def _sample_source(group: str, source: str, max_pages: int, max_seconds: float):
    """The provider call that counts the source and reads its first pages (for `_ask`)."""

    def call(provider) -> SourceSample:
        counter = getattr(provider, "count_records", None)
        try:
            total = counter(group, source) if counter else None
        except AuthError:
            raise
        except ProviderError:  # the count is a help, not a must: go on from the sample
            total = None
        started, emails, done = time.monotonic(), [], False
        pages = provider.iter_pages(group, source, fields=[])
        try:
            for n, page in enumerate(pages, start=1):
                for r in page.records:
                    emails.append((normalise_email(str(r.email)) if r.email else "",
                                   r.consent))
                if page.done:
                    done = True
                    break
                if n >= max_pages or time.monotonic() - started > max_seconds:
                    break
            else:
                done = True
        finally:
            close = getattr(pages, "close", None)
            if close:
                close()
        return SourceSample(total, tuple(emails), done)
    return call


def _on_list(list_id: int | None, norms: list[str]) -> set[str]:
    """Which of the normalised emails the list holds already (in chunks of 500)."""
    if not list_id or not norms:
        return set()
    found: set[str] = set()
    for start in range(0, len(norms), 500):
        found.update(db.session.scalars(select(Contact.email_norm).where(
            Contact.list_id == list_id, Contact.email_norm.in_(norms[start:start + 500]))))
    return found


def new_contacts(sample: SourceSample, list_id: int | None, what: str, *,
                 only_subscribed: bool = False) -> NewContacts:
    """The new contacts of a first run on `list_id`: the sample's emails that would be added
    (a usable email, not opted out, not suppressed, not yet on the list, counted once; with
    `only_subscribed`, only people subscribed at the source), exact when the sample is the
    whole source, else extrapolated to the source's count."""
    emails, domains = load_suppressions(db.session)
    usable = [(norm, consent) for norm, consent in sample.emails
              if norm and not check_email(norm)]
    on_list = _on_list(list_id, sorted({norm for norm, _ in usable}))
    why: Counter = Counter()
    why["without a usable email"] = len(sample.emails) - len(usable)
    fresh: set[str] = set()
    for norm, consent in usable:
        if norm in fresh:
            why["repeated"] += 1
        elif norm in on_list:
            why["already on the list"] += 1
        elif consent == "opted_out":
            why["opted out at the source"] += 1
        elif norm in emails or norm.rpartition("@")[2] in domains:
            why["suppressed"] += 1
        elif only_subscribed and consent != "subscribed":
            why["not subscribed at the source"] += 1
        else:
            fresh.add(norm)
    read, new = len(sample.emails), len(fresh)
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in why.items() if n)
    judged = f"{new:,} would be new" + (f" ({reasons})" if reasons else "")
    if sample.done:
        return NewContacts.exactly(new, f"{what} holds {read:,} records, all read: {judged}.")
    if sample.total is None:
        return NewContacts(new, new, None, f"{what} cannot count this source; its first "
                                           f"pages hold {read:,} records: {judged}.")
    total = max(sample.total.total, read)
    rest = total - read
    expected = new + (round(rest * new / read) if read else rest)
    kind = "counts" if sample.total.exact else "counts at least"
    basis = (f"{what} {kind} {total:,} records. Of the first {read:,} read, {judged}; the "
             f"other {rest:,} are estimated at the same share.")
    return NewContacts(new, expected, new + rest if sample.total.exact else None, basis)


def estimate(integration: Integration, group: str, source: str, criteria: str,
             *, list_id: int | None = None, only_subscribed: bool = False, max_pages: int = 4,
             max_seconds: float = 2.5) -> Forecast:
    """The fee forecast of a first run: the source's count (one request), its first pages
    compared with the target list, and the fee at the expected, fewest and most additions.
    `only_subscribed` is the import's consent filter "only people subscribed at the source"."""
    if criteria == "update_only":
        return forecast(NewContacts.exactly(0, "Update existing only adds no contacts."))
    sample = _ask(integration, f"sample:{group}:{source}",
                  _sample_source(group, source, max_pages, max_seconds))
    return forecast(new_contacts(sample, list_id, label(integration),
                                 only_subscribed=only_subscribed))


# ------------------------------------------------------------- the consent filter


def forecast_only_subscribed(integration: Integration, consent_filter: str | None) -> bool:
    """Whether the fee forecast leaves out people not subscribed at the source: the stores'
    records say so; a CRM's consent field is not in the sample, so its forecast stays the
    larger "everyone" figure (an upper bound of the fee)."""
    return consent_filter == "subscribed" and integration.provider in STORES


def default_consent_filter(integration: Integration) -> str:
    return "subscribed" if integration.provider in STORES else "everyone"


def consent_fields(integration: Integration, group: str) -> list[Field]:
    """A CRM group's boolean source fields, the choices for "subscribed to marketing"."""
    if integration.provider in STORES or not group:
        return []
    return [f for f in source_fields(integration, group) if f.type == "boolean"]


def check_consent_choice(integration: Integration,
                         values: SetupValues) -> tuple[str, str] | None:
    """(form field, plain-words problem) when the consent filter choice cannot work."""
    if values.consent_filter not in CONSENT_FILTER_HELP:
        return "consent_filter", "Choose whom the import takes."
    if integration.provider in STORES:
        return None
    if values.consent_field:
        try:
            names = {f.name for f in consent_fields(integration, values.group)}
        except SourceTrouble:
            names = set()
        if values.consent_field not in names:
            return "consent_field", "Choose a yes/no field of this group, or none."
    elif values.consent_filter == "subscribed":
        return ("consent_field", "Choose the source field that says a person subscribed to "
                                 "marketing, or take everyone who has not opted out.")
    return None


@dataclass
class ConsentCounts:
    sampled: int  # records with an email in the sample
    everyone: int  # of them, not opted out
    subscribed: int  # of them, subscribed to marketing at the source


def consent_counts(integration: Integration, group: str, source: str,
                   consent_field: str = "") -> ConsentCounts:
    """How many of the source's first records (one page, ≤ CONSENT_SAMPLE) each consent
    filter would take: a sample, so the page says so."""
    from ..imports.rules import record_consent

    field_name = "" if integration.provider in STORES else consent_field

    def count(provider):
        pages = provider.iter_pages(group, source, fields=[field_name] if field_name else [])
        try:
            page = next(iter(pages), None)
        finally:
            close = getattr(pages, "close", None)
            if close:
                close()
        states = [record_consent(r, field_name) for r in (page.records if page else [])
                  [:CONSENT_SAMPLE] if r.email and str(r.email).strip()]
        return ConsentCounts(len(states), sum(1 for s in states if s != "opted_out"),
                             sum(1 for s in states if s == "subscribed"))

    return _ask(integration, f"consent:{group}:{source}:{field_name}", count,
                page_size=CONSENT_SAMPLE)


# ----------------------------------------------------------------- the setup form


@dataclass
class SetupValues:
    list_id: Any = ""
    new_list_name: str = ""
    cycle_id: Any = ""
    cycle_start_day: Any = 0
    group: str = ""
    source: str = ""
    criteria: str = "add_update"
    consent_filter: str = "everyone"
    consent_field: str = ""
    consent: bool = False
    run_hour: Any = ""
    time_zone: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_import(cls, imp: RecurringImport) -> SetupValues:
        return cls(list_id=imp.list_id, cycle_id=imp.cycle_id or "",
                   cycle_start_day=imp.cycle_start_day, group=imp.group, source=imp.source,
                   criteria=imp.criteria, consent_filter=imp.consent_filter,
                   consent_field=imp.consent_field or "", consent=False,
                   run_hour="" if imp.run_hour is None else imp.run_hour,
                   time_zone=imp.time_zone or workspace_zone())

    @classmethod
    def from_form(cls, form) -> SetupValues:
        def clean(name: str, limit: int = 255) -> str:
            return (form.get(name) or "").strip()[:limit]

        return cls(list_id=clean("list_id"), new_list_name=clean("new_list_name", 200),
                   cycle_id=clean("cycle_id"), cycle_start_day=clean("cycle_start_day") or 0,
                   group=clean("group", 64), source=clean("source"),
                   criteria=clean("criteria") or "add_update",
                   consent_filter=clean("consent_filter", 16) or "everyone",
                   consent_field=clean("consent_field"),
                   consent=form.get("consent") in ("on", "1", "true", "yes"),
                   run_hour=clean("run_hour"), time_zone=clean("time_zone", 64))

    def selected_list_id(self) -> int | None:
        return parse_id(self.list_id)


def _int(raw: Any) -> int | None:
    try:
        return int(str(raw).strip())
    except (TypeError, ValueError):
        return None


def save_setup(integration: Integration, values: SetupValues, user_id: int,
               imp: RecurringImport | None = None) -> RecurringImport:
    """Validate the set-up form and create or update the import (SetupErrors with every
    problem at once; SourceTrouble when the provider cannot list groups or sources)."""
    errors: dict[str, str] = {}
    target: ContactList | None = None
    if values.list_id == NEW_LIST:
        try:
            lists_service.clean_name(values.new_list_name)
            if lists_service.name_taken(" ".join(values.new_list_name.split())):
                errors["new_list_name"] = "A list with this name exists already; choose it above."
        except FormError as exc:
            errors["new_list_name"] = exc.message.replace("the list", "the new list")
    else:
        list_id = values.selected_list_id()
        target = db.session.get(ContactList, list_id) if list_id else None
        if target is None:
            errors["list_id"] = ("Choose the list to import into." if not values.list_id
                                 else "That list does not exist (any more); choose another.")
        else:
            other = existing_import(integration.id, target.id, imp.id if imp else None)
            if other is not None:
                errors["list_id"] = f"duplicate:{other.id}"
    cycle = None
    day = _int(values.cycle_start_day)
    if values.cycle_id:
        cycle_id = parse_id(values.cycle_id)
        cycle = db.session.get(Cycle, cycle_id) if cycle_id else None
        if cycle is None or target is None or cycle.list_id != target.id:
            errors["cycle_id"] = "Choose a cycle of the chosen list, or none."
            cycle = None
    if cycle is not None and (day is None or not 0 <= day <= cycle.length_days):
        errors["cycle_start_day"] = (f"Enter a day from 0 to {cycle.length_days} "
                                     f"(the cycle is {cycle.length_days} days long).")
    group_ids = {g.id for g in groups(integration)}
    if values.group not in group_ids:
        errors["group"] = "Choose what to import."
    elif values.source not in {s.id for s in sources(integration, values.group)}:
        errors["source"] = "Choose which records to import."
    if values.criteria not in CRITERIA:
        errors["criteria"] = "Choose how new and existing contacts are treated."
    consent_problem = check_consent_choice(integration, values)
    if consent_problem:
        errors[consent_problem[0]] = consent_problem[1]
    if not values.consent:
        errors["consent"] = ("Confirm that you have permission to email these contacts; "
                             "imports need it.")
    hour = None
    if str(values.run_hour).strip() != "":
        hour = _int(values.run_hour)
        if hour is None or not 0 <= hour <= 23:
            errors["run_hour"] = "Choose an hour from 00:00 to 23:00, or every 24 hours."
    zone = values.time_zone or workspace_zone()
    if zone not in time_zones():
        errors["time_zone"] = "Pick a time zone from the list, e.g. Europe/Berlin."
    if errors:
        raise SetupErrors(errors)

    if target is None:
        target = lists_service.create_list(values.new_list_name)
    now = utcnow()
    if imp is None:
        imp = RecurringImport(integration_id=integration.id, state="stopped",
                              state_reason=NOT_FINISHED, mapping={})
    else:
        if imp.group != values.group:
            imp.mapping = {}
        if imp.group != values.group or imp.source != values.source:
            imp.cursor, imp.high_water = None, None
    imp.list_id = target.id
    imp.cycle_id = cycle.id if cycle else None
    imp.cycle_start_day = day if cycle else 0
    imp.group, imp.source, imp.criteria = values.group, values.source, values.criteria
    imp.consent_confirmed_by_id, imp.consent_confirmed_at = user_id, now
    imp.consent_filter = values.consent_filter
    imp.consent_field = "" if integration.provider in STORES else values.consent_field
    schedule_changed = (imp.run_hour, imp.time_zone) != (hour, zone)
    imp.run_hour, imp.time_zone = hour, zone
    if schedule_changed and imp.state == "active" and imp.next_run_at is not None:
        if hour is not None:
            imp.next_run_at = schedule.next_run_after(imp, now)
    db.session.add(imp)
    db.session.commit()
    return imp


# ------------------------------------------------------------------------ mapping


def custom_fields() -> list[CustomField]:
    return fields_service.all_fields()


def ensure_mapping(imp: RecurringImport, cols: list[rules.Column]) -> dict[str, Any]:
    """On first open, recognise Email, Name and same-named custom fields, and save it."""
    if imp.mapping:
        return dict(imp.mapping)
    mapping = rules.recognise(cols, {f.name: f for f in custom_fields()})
    imp.mapping = mapping
    db.session.commit()
    return mapping


def target_of(mapping: dict[str, Any], source: str) -> Any:
    value = mapping.get(source, rules.UNASSIGNED)
    return rules.UNASSIGNED if value in (None, "") else value


def field_for(target: Any, by_id: dict[int, CustomField]) -> CustomField | None:
    if isinstance(target, int):
        return by_id.get(target)
    if isinstance(target, str) and target.isdigit():
        return by_id.get(int(target))
    return None


def parse_target(raw: str) -> Any:
    """A submitted target: "email", "name", "?" or a custom field id (int). ValueError else."""
    raw = (raw or "").strip()
    if raw in ("email", "name", rules.UNASSIGNED):
        return raw
    field_id = parse_id(raw)
    if field_id is not None and db.session.get(CustomField, field_id) is not None:
        return field_id
    raise ValueError("Choose a target from the list.")


def assign(imp: RecurringImport, source: str, target: Any) -> list[str]:
    """Assign `target` to the `source` column. A target used by another column moves here
    (that column becomes "?"); returns the sources that changed besides `source`."""
    mapping = dict(imp.mapping or {})
    moved = []
    if target != rules.UNASSIGNED:
        for other, value in list(mapping.items()):
            if other != source and value == target:
                mapping[other] = rules.UNASSIGNED
                moved.append(other)
    mapping[source] = target
    imp.mapping = mapping
    db.session.commit()
    return moved


def move_notice(imp: RecurringImport, cols: list[rules.Column], move: dict | None,
                by_id: dict[int, CustomField]) -> dict | None:
    """The warning for a target that `assign` moved ("Email was on X; that column is now
    unassigned"), while the mapping still is as the move left it (else None: nothing to undo)."""
    if not move or move.get("import_id") != imp.id:
        return None
    mapping = imp.mapping or {}
    labels = {c.name: c.label for c in cols}
    others = [o for o in move.get("others", []) if o in labels]
    if (not others or mapping.get(move.get("source")) != move.get("target")
            or any(target_of(mapping, o) != rules.UNASSIGNED for o in others)):
        return None
    what = rules.target_label(move["target"], by_id)
    where = ", ".join(labels[o] for o in others)
    plural = "those columns are" if len(others) > 1 else "that column is"
    return {"text": f"{what} was on {where}; {plural} now unassigned.",
            "source": move["source"], "others": others}


def undo_move(imp: RecurringImport, cols: list[rules.Column], move: dict | None,
              by_id: dict[int, CustomField]) -> tuple[list[str], str] | None:
    """Put a moved target back where it was, and the previous target back on the column that
    took it; (changed columns, what was done in words), or None when nothing is to undo."""
    notice = move_notice(imp, cols, move, by_id)
    if notice is None:
        return None
    mapping = dict(imp.mapping or {})
    source, target, previous = move["source"], move["target"], move.get("previous")
    if previous in (None, "") or (isinstance(previous, int) and previous not in by_id):
        previous = rules.UNASSIGNED
    if previous != rules.UNASSIGNED and any(
            v == previous for k, v in mapping.items() if k != source):
        previous = rules.UNASSIGNED  # taken by another column since: leave that one be
    first = notice["others"][0]
    mapping[first] = target
    mapping[source] = previous
    imp.mapping = mapping
    db.session.commit()
    labels = {c.name: c.label for c in cols}
    done = f"Undone: {rules.target_label(target, by_id)} is back on {labels[first]}."
    return [first], done


def create_field(imp: RecurringImport, column: rules.Column, form) -> tuple[CustomField,
                                                                            list[str]]:
    """Create a custom field inline (FieldDefinitionError on bad input) and assign it."""
    data = {"name": form.get("name"), "type": form.get("type") or "text",
            "format": form.get("format") or "text",
            "allowed_values": form.get("allowed_values") or ""}
    if form.get("format") not in ("checkbox", "radio", "single_select", "multi_select"):
        data["allowed_values"] = ""
    created = fields_service.save_field(data)
    moved = assign(imp, column.name, created.id)
    return created, moved


def set_ignore(imp: RecurringImport, value: bool) -> None:
    imp.ignore_unmapped = value
    db.session.commit()


@dataclass
class Status:
    total: int
    assigned: int
    unassigned: int
    email: str | None
    name: str | None
    ignore: bool
    errors: list[str]

    @property
    def ready(self) -> bool:
        return bool(self.email) and (self.unassigned == 0 or self.ignore)


def status(imp: RecurringImport, cols: list[rules.Column],
           errors: list[str] | None = None) -> Status:
    mapping = imp.mapping or {}
    assigned = [c for c in cols if target_of(mapping, c.name) != rules.UNASSIGNED]
    email = next((c.label for c in cols if mapping.get(c.name) == "email"), None)
    name = next((c.label for c in cols if mapping.get(c.name) == "name"), None)
    return Status(len(cols), len(assigned), len(cols) - len(assigned), email, name,
                  bool(imp.ignore_unmapped), errors or [])


def import_problems(imp: RecurringImport, cols: list[rules.Column]) -> list[str]:
    st = status(imp, cols)
    problems = []
    if not st.email:
        problems.append("Assign a column to Email before importing: every contact needs one.")
    if st.unassigned and not st.ignore:
        problems.append(f"{st.unassigned} column{'s' if st.unassigned != 1 else ''} still "
                        "marked “?”: assign them, or tick “Ignore columns marked ?”.")
    return problems


def clean_mapping(imp: RecurringImport, cols: list[rules.Column]) -> dict[str, Any]:
    """What the engine gets: assigned columns that exist at the source (plus "?" markers)."""
    names = {c.name for c in cols}
    return {k: v for k, v in (imp.mapping or {}).items() if k in names}


def start_import(imp: RecurringImport, cols: list[rules.Column], user_id: int):
    """Save the mapping, enable the schedule (if not running on one already) and start the
    first run. Returns the run (or the live one)."""
    imp.mapping = clean_mapping(imp, cols)
    if imp.state != "active" or imp.next_run_at is None:
        schedule.enable(imp)
    db.session.commit()
    return runs.start_run(imp.id, "manual", user_id=user_id)


def preview(imp: RecurringImport, cols: list[rules.Column], user_id: int) -> dict:
    """The engine's dry run over the first ≤ 1,000 records, in this request."""
    imp.mapping = clean_mapping(imp, cols)
    db.session.commit()
    return preview_now(imp.id, user_id=user_id)


__all__ = [
    "CRITERIA_HELP", "FieldDefinitionError", "SetupErrors", "SetupValues", "SourceTrouble",
]
