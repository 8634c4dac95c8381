"""The set-up form of a recurring import: its choices, its values and the rules that save it.

Decisions:
- A new import is saved stopped ("set-up not finished") and nothing is scheduled until
  Import is pressed on the mapping page; then the schedule is enabled and the first run
  starts at once.
- One import per integration and list: a second one is refused with a link to the first.
- Changing the group or source of an existing import resets its incremental cursor (it
  belonged to the old walk) and, for a new group, its mapping (other fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..forms import ImportSetupForm
from ..hardening import parse_id
from ..imports import schedule
from ..models import ContactList, Cycle, Integration, RecurringImport, WorkspaceSettings
from ..models.base import utcnow
from . import import_source
from . import lists as lists_service
from .errors import FormError
from .import_source import STORES, SourceTrouble
from .settings import time_zones

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
CONSENT_FILTER_HELP = {  # no "source" in these labels: the Source select keeps its name
    "subscribed": ("Only people subscribed to marketing",
                   "People the store or CRM does not report as subscribed are left out "
                   "(kept as “no marketing consent” rejects)."),
    "everyone": ("Everyone who has not opted out",
                 "Also people with no recorded marketing consent, under the permission you "
                 "confirm below."),
}


class SetupErrors(Exception):
    """Form input that breaks rules: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# ------------------------------------------------------------------------ lookups


def connected_integration(integration_id: int):
    """The query for an integration that imports can be set up from (not disconnected)."""
    return select(Integration).where(Integration.id == integration_id,
                                     Integration.status != "disconnected")


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


def default_consent_filter(integration: Integration) -> str:
    return "subscribed" if integration.provider in STORES else "everyone"


def check_consent_choice(integration: Integration,
                         values: SetupValues) -> tuple[str, str] | None:
    """(form field, plain-words problem) when the consent filter choice cannot work."""
    if values.consent_filter not in CONSENT_FILTER_HELP:
        return "consent_filter", "Choose whom the import takes."
    if integration.provider in STORES:
        return None
    if values.consent_field:
        try:
            names = {f.name for f in import_source.consent_fields(integration, values.group)}
        except SourceTrouble:
            names = set()
        if values.consent_field not in names:
            return "consent_field", "Choose a yes/no field of this group, or none."
    elif values.consent_filter == "subscribed":
        return ("consent_field", "Choose the source field that says a person subscribed to "
                                 "marketing, or take everyone who has not opted out.")
    return None


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
    def from_form(cls, formdata) -> SetupValues:
        """The values of a submitted form (or the query string), without judging them."""
        return read_form(formdata)[0]

    def selected_list_id(self) -> int | None:
        return parse_id(self.list_id)


def read_form(formdata) -> tuple[SetupValues, dict[str, str]]:
    """The submitted values and the problems of single inputs ({input name: message})."""
    form = ImportSetupForm(formdata=formdata)
    form.validate()
    values = SetupValues(**{name: form[name].data for name in (
        "list_id", "new_list_name", "cycle_id", "group", "source", "criteria",
        "consent_filter", "consent_field", "consent", "run_hour", "time_zone")},
        cycle_start_day=form.cycle_start_day.data or 0)
    return values, form.first_errors()


def _int(raw: Any) -> int | None:
    try:
        return int(str(raw).strip())
    except (TypeError, ValueError):
        return None


def save_setup(integration: Integration, values: SetupValues, user_id: int,
               imp: RecurringImport | None = None,
               input_errors: dict[str, str] | None = None) -> RecurringImport:
    """Check the set-up choices against each other and the source, and create or update the
    import (SetupErrors with every problem at once, `input_errors` of single inputs
    included; SourceTrouble when the provider cannot list groups or sources)."""
    errors: dict[str, str] = dict(input_errors or {})
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
    group_ids = {g.id for g in import_source.groups(integration)}
    if values.group not in group_ids:
        errors["group"] = "Choose what to import."
    elif values.source not in {s.id for s in import_source.sources(integration, values.group)}:
        errors["source"] = "Choose which records to import."
    consent_problem = check_consent_choice(integration, values)
    if consent_problem:
        errors[consent_problem[0]] = consent_problem[1]
    hour = _int(values.run_hour) if str(values.run_hour).strip() != "" else None
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
