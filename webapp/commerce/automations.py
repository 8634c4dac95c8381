"""Automations: when a contact newly matches a segment, run its action once.

"Once" is the unique (automation_id, contact_id, round) key: each batch inserts its entries
with INSERT … ON CONFLICT DO NOTHING RETURNING and acts only on the rows it inserted, in the
same transaction (a worker killed mid-batch leaves nothing half done; a second evaluator
inserts nothing). `rerun_after_days` opens the next round that many days after the last
entry. Backfilled orders never count here. Events re-evaluate the contacts they touch
(`touch`, a Redis set drained by one queued job); a periodic job re-evaluates everything.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import customfields
from ..extensions import db
from ..models import Contact, ContactList, CustomField, Cycle, Suppression
from ..models.base import utcnow
from ..models.commerce import Automation, AutomationEntry, Cart, Order, PageVisit, Segment
from . import segments

log = logging.getLogger(__name__)

contacts = Contact.__table__
entries = AutomationEntry.__table__
ACTIONS = ("add_to_list", "enrol", "set_field")
BATCH = 1000
TOUCHED_KEY = "tributary:automations:touched"
TOUCH_FLAG = "tributary:automations:touch-queued"  # set while a drain job is queued
TOUCH_JOB = "webapp.jobs.evaluate_touched_contacts"
DRY_RUN_CHECKPOINTS = 48
MAX_RERUN_DAYS = 3650


class ActionError(ValueError):
    """An automation's settings break a rule; `field` names the form input."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------- settings


def clean_action(form: dict) -> dict:
    """The action JSON from form values: checked against the lists, cycles and fields."""
    kind = form.get("action")
    if kind == "add_to_list":
        lst = _get(ContactList, form.get("list_id"))
        if lst is None:
            raise ActionError("list_id", "Choose the list to add contacts to.")
        return {"kind": kind, "list_id": lst.id}
    if kind == "enrol":
        cycle = _get(Cycle, form.get("cycle_id"))
        if cycle is None:
            raise ActionError("cycle_id", "Choose the cycle to enrol contacts on.")
        day = str(form.get("cycle_day") or "0").strip()
        if not day.isdigit() or int(day) > cycle.length_days:
            raise ActionError("cycle_day", f"The day is a whole number from 0 to "
                                           f"{cycle.length_days} (the cycle's length).")
        return {"kind": kind, "cycle_id": cycle.id, "cycle_day": int(day)}
    if kind == "set_field":
        name = str(form.get("field") or "").strip()
        definition = db.session.scalar(select(CustomField).where(CustomField.name == name)) \
            if name and len(name) <= 64 else None
        if definition is None:
            raise ActionError("field", "Choose the custom field to set.")
        result = customfields.coerce(definition.type, definition.format,
                                     definition.allowed_values, form.get("value"))
        if not result.ok:
            raise ActionError("value", f"That value does not fit the field ({result.error}).")
        return {"kind": kind, "field": name, "value": result.value}
    raise ActionError("action", "Choose what the automation does.")


def _get(model, raw: Any):
    text = str(raw or "").strip()
    if not text.isdigit() or int(text) > 2**31 - 1:
        return None
    return db.session.get(model, int(text))


def clean_rerun(raw: Any) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_RERUN_DAYS:
        raise ActionError("rerun_after_days",
                          f"Run again after 1 to {MAX_RERUN_DAYS:,} days, or leave it empty.")
    return int(text)


def describe_action(action: dict) -> str:
    kind = action.get("kind")
    if kind == "add_to_list":
        lst = db.session.get(ContactList, action["list_id"])
        return f"add to the list “{lst.name if lst else 'deleted list'}”"
    if kind == "enrol":
        cycle = db.session.get(Cycle, action["cycle_id"])
        return (f"enrol on the cycle “{cycle.name if cycle else 'deleted cycle'}” "
                f"at day {action['cycle_day']}")
    if kind == "set_field":
        return f"set {action['field']} to “{action['value']}”"
    return "nothing"


# -------------------------------------------------------------------------- evaluation


@dataclass
class Outcome:
    """What one evaluation did: entries inserted and how the actions went."""

    entered: int = 0
    notes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _candidates(automation: Automation, definition: dict, now: datetime,
                contact_ids: list[int] | None, limit: int) -> list[tuple[int, int]]:
    """(contact id, round) of members now who have no entry in an open round."""
    entered = select(entries.c.id).where(entries.c.automation_id == automation.id,
                                         entries.c.contact_id == contacts.c.id)
    if automation.rerun_after_days:
        entered = entered.where(
            entries.c.entered_at > now - timedelta(days=automation.rerun_after_days))
    stmt = select(contacts.c.id).where(
        segments.compile_definition(definition, segments.Options(now, True)),
        ~entered.exists())
    if contact_ids is not None:
        stmt = stmt.where(contacts.c.id.in_(contact_ids))
    ids = db.session.scalars(stmt.order_by(contacts.c.id).limit(limit)).all()
    if not ids or not automation.rerun_after_days:
        return [(contact_id, 0) for contact_id in ids]
    rounds = dict(db.session.execute(
        select(entries.c.contact_id, func.max(entries.c.round))
        .where(entries.c.automation_id == automation.id, entries.c.contact_id.in_(ids))
        .group_by(entries.c.contact_id)).all())
    return [(contact_id, rounds[contact_id] + 1 if contact_id in rounds else 0)
            for contact_id in ids]


def _insert_entries(rows: list[dict]) -> list[int]:
    """Insert-or-nothing; the contact ids whose entry THIS statement inserted."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(entries).on_conflict_do_nothing(
        index_elements=["automation_id", "contact_id", "round"])
        .returning(entries.c.contact_id))
    inserted: list[int] = []
    for start in range(0, len(rows), 500):
        inserted += db.session.scalars(stmt, rows[start:start + 500]).all()
    return inserted


def evaluate(automation_id: int, contact_ids: list[int] | None = None, *,
             now: datetime | None = None, batch: int = BATCH,
             max_batches: int | None = None) -> Outcome:
    """Enter the newly matching contacts (all, or among `contact_ids`) and act on them, one
    transaction per batch. Safe to run in several workers at once."""
    outcome = Outcome()
    done = 0
    while max_batches is None or done < max_batches:
        now_at = now or utcnow()
        automation = db.session.get(Automation, automation_id)
        if automation is None or not automation.enabled:
            db.session.rollback()
            return outcome
        definition = definition_of(automation)
        candidates = _candidates(automation, definition, now_at, contact_ids, batch)
        if not candidates:
            automation.last_evaluated_at = now_at
            db.session.commit()
            return outcome
        reasons = evidence(definition, [c for c, _ in candidates], now_at)
        rows = [{"automation_id": automation_id, "contact_id": c, "round": n,
                 "entered_at": now_at, "reason": reasons.get(c, {})} for c, n in candidates]
        inserted = _insert_entries(rows)
        notes = act(automation.action, inserted, now_at)
        for contact_id in inserted:
            outcome.notes[notes.get(contact_id, "done")] += 1
        _finish(automation_id, inserted, notes, now_at)
        db.session.commit()
        outcome.entered += len(inserted)
        done += 1
        if len(candidates) < batch:
            return outcome
    return outcome


def _finish(automation_id: int, inserted: list[int], notes: dict[int, str],
            now: datetime) -> None:
    """Mark the batch's entries done, each with what its action did."""
    by_note: dict[str, list[int]] = defaultdict(list)
    for contact_id in inserted:
        by_note[notes.get(contact_id, "done")].append(contact_id)
    for note, ids in by_note.items():
        for start in range(0, len(ids), 500):
            db.session.execute(
                update(AutomationEntry)
                .where(AutomationEntry.automation_id == automation_id,
                       AutomationEntry.contact_id.in_(ids[start:start + 500]),
                       AutomationEntry.done_at.is_(None))
                .values(done_at=now, note=note)
                .execution_options(synchronize_session=False))


def evaluate_all(now: datetime | None = None) -> dict[int, int]:
    """Periodic: every enabled automation over all contacts (time windows move on)."""
    ids = db.session.scalars(select(Automation.id).where(Automation.enabled)).all()
    db.session.commit()
    return {automation_id: evaluate(automation_id, now=now).entered for automation_id in ids}


def evaluate_contacts(contact_ids: list[int], now: datetime | None = None) -> int:
    """Every enabled automation over these contacts only (events touched them)."""
    ids = db.session.scalars(select(Automation.id).where(Automation.enabled)).all()
    db.session.commit()
    total = 0
    for start in range(0, len(contact_ids), BATCH):
        chunk = contact_ids[start:start + BATCH]
        for automation_id in ids:
            total += evaluate(automation_id, chunk, now=now).entered
    return total


# ----------------------------------------------------------------------------- actions


def act(action: dict, contact_ids: list[int], now: datetime) -> dict[int, str]:
    """Run the action for contacts just entered (set-based); contact id -> what happened,
    for the ones it did not do as planned."""
    if not contact_ids:
        return {}
    kind = action.get("kind")
    if kind == "add_to_list":
        return _add_to_list(action["list_id"], contact_ids, now)
    if kind == "enrol":
        return _enrol(action["cycle_id"], action["cycle_day"], contact_ids, now)
    if kind == "set_field":
        return _set_field(action["field"], action["value"], contact_ids, now)
    return dict.fromkeys(contact_ids, "no action")


def _suppressed(norms: set[str]) -> set[str]:
    if not norms:
        return set()
    domains = {n.rpartition("@")[2] for n in norms}
    rows = db.session.execute(select(Suppression.kind, Suppression.value).where(
        ((Suppression.kind == "email") & Suppression.value.in_(list(norms)))
        | ((Suppression.kind == "domain") & Suppression.value.in_(list(domains))))).all()
    emails = {v for k, v in rows if k == "email"}
    banned = {v for k, v in rows if k == "domain"}
    return {n for n in norms if n in emails or n.rpartition("@")[2] in banned}


def _add_to_list(list_id: int, contact_ids: list[int], now: datetime) -> dict[int, str]:
    """The same person on the other list (email, name, custom values, consent, origin kept);
    never for unsubscribed or suppressed people, and an existing row there is left as is."""
    if db.session.get(ContactList, list_id) is None:
        return dict.fromkeys(contact_ids, "the list no longer exists")
    people = db.session.execute(select(contacts).where(contacts.c.id.in_(contact_ids))).all()
    norms = {p.email_norm for p in people}
    there = set(db.session.scalars(select(contacts.c.email_norm).where(
        contacts.c.list_id == list_id, contacts.c.email_norm.in_(list(norms)))))
    suppressed = _suppressed(norms)
    notes: dict[int, str] = {}
    rows = []
    for p in people:
        if p.status != "subscribed":
            notes[p.id] = "unsubscribed: not added"
        elif p.email_norm in suppressed:
            notes[p.id] = "on the suppression list: not added"
        elif p.email_norm in there:
            notes[p.id] = "already on the list"
        else:
            there.add(p.email_norm)
            rows.append({
                "list_id": list_id, "email": p.email, "email_norm": p.email_norm,
                "name": p.name, "custom": p.custom or {}, "origin": p.origin,
                "status": "subscribed", "unsubscribed_locally": False,
                "consent_state": p.consent_state, "consent_source": p.consent_source,
                "consent_at": p.consent_at, "created_at": now, "updated_at": now,
                "note": ""})
            notes[p.id] = "added to the list"
    if rows:
        dialect = db.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # A row another writer added meanwhile wins: nothing here re-subscribes anyone.
        db.session.execute(insert(contacts).on_conflict_do_nothing(
            index_elements=["list_id", "email_norm"]), rows)
    return notes


def _enrol(cycle_id: int, day: int, contact_ids: list[int], now: datetime) -> dict[int, str]:
    """Enrol the person's contact on the cycle's list (subscribed only; already on this
    cycle: kept where they are)."""
    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        return dict.fromkeys(contact_ids, "the cycle no longer exists")
    people = dict(db.session.execute(
        select(contacts.c.id, contacts.c.email_norm).where(contacts.c.id.in_(contact_ids))
    ).all())
    targets = db.session.execute(
        select(contacts.c.id, contacts.c.email_norm, contacts.c.status, contacts.c.cycle_id)
        .where(contacts.c.list_id == cycle.list_id,
               contacts.c.email_norm.in_(list(set(people.values()))))).all()
    by_norm = {t.email_norm: t for t in targets}
    enrol_ids, notes = [], {}
    for contact_id, norm in people.items():
        target = by_norm.get(norm)
        if target is None:
            notes[contact_id] = "not on the cycle's list"
        elif target.status != "subscribed":
            notes[contact_id] = "unsubscribed: not enrolled"
        elif target.cycle_id == cycle.id:
            notes[contact_id] = "already on the cycle"
        else:
            enrol_ids.append(target.id)
            notes[contact_id] = f"enrolled at day {day}"
    for start in range(0, len(enrol_ids), 500):
        db.session.execute(
            update(Contact)
            .where(Contact.id.in_(enrol_ids[start:start + 500]),
                   Contact.status == "subscribed",
                   Contact.cycle_id.is_distinct_from(cycle.id))
            .values(cycle_id=cycle.id, cycle_day=day, enrolled_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
    return notes


def _set_field(name: str, value: Any, contact_ids: list[int], now: datetime) -> dict[int, str]:
    """Merge {name: value} into each contact's custom values (one UPDATE per chunk)."""
    dialect = db.session.get_bind().dialect.name
    patch = bindparam("patch", {name: value}, type_=contacts.c.custom.type)
    merged = (contacts.c.custom.op("||")(patch) if dialect == "postgresql"
              else func.json_patch(contacts.c.custom, patch))
    for start in range(0, len(contact_ids), 500):
        db.session.execute(
            update(contacts).where(contacts.c.id.in_(contact_ids[start:start + 500]))
            .values(custom=merged, updated_at=now))
    return dict.fromkeys(contact_ids, f"{name} set")


# ---------------------------------------------------------------------------- evidence


def evidence(definition: dict, contact_ids: list[int], now: datetime) -> dict[int, dict]:
    """Why each contact matches: the conditions in words and, per time-based condition,
    the latest order / cart / page visit (and its plugin event) that satisfies it."""
    conditions = list(segments.leaves(definition))
    words = segments.describe_definition(definition)
    found: dict[int, list[dict]] = defaultdict(list)
    opts = segments.Options(now, True)
    for cond in conditions:
        if cond.get("negate"):
            continue
        if cond["type"] == "purchased":
            source, where = segments.purchase_orders(cond, opts)
            orders = Order.__table__
            rows = db.session.execute(
                select(orders.c.contact_id, func.max(orders.c.id)).select_from(source)
                .where(*where, orders.c.contact_id.in_(contact_ids))
                .group_by(orders.c.contact_id)).all()
            details = {o.id: o for o in db.session.execute(
                select(Order.id, Order.event_id, Order.placed_at)
                .where(Order.id.in_([r[1] for r in rows])))} if rows else {}
            for contact_id, order_id in rows:
                o = details[order_id]
                found[contact_id].append({"order_id": o.id, "event_id": o.event_id,
                                          "at": o.placed_at.isoformat()})
        elif cond["type"] == "cart_abandoned":
            since = now - timedelta(hours=cond["hours"])
            rows = db.session.execute(
                select(Cart.contact_id, func.max(Cart.id), func.max(Cart.abandoned_at))
                .where(Cart.contact_id.in_(contact_ids), Cart.status == "abandoned",
                       Cart.abandoned_at >= since, Cart.abandoned_at <= now)
                .group_by(Cart.contact_id))
            for contact_id, cart_id, at in rows:
                found[contact_id].append({"cart_id": cart_id, "at": at.isoformat()})
        elif cond["type"] == "visited":
            since = now - timedelta(days=cond["days"])
            rows = db.session.execute(
                select(PageVisit.contact_id, func.max(PageVisit.id))
                .where(PageVisit.contact_id.in_(contact_ids), PageVisit.visited_at >= since,
                       PageVisit.visited_at <= now,
                       segments.url_clause(cond["match"], cond["url"]))
                .group_by(PageVisit.contact_id)).all()
            visit_ids = [v for _, v in rows]
            details = {v.id: v for v in db.session.execute(
                select(PageVisit.id, PageVisit.url, PageVisit.event_id, PageVisit.visited_at)
                .where(PageVisit.id.in_(visit_ids)))} if visit_ids else {}
            for contact_id, visit_id in rows:
                v = details[visit_id]
                found[contact_id].append({"visit_id": v.id, "url": v.url[:300],
                                          "event_id": v.event_id,
                                          "at": v.visited_at.isoformat()})
    return {cid: {"matched": words[:1000], "evidence": found.get(cid, [])}
            for cid in contact_ids}


# ----------------------------------------------------------------------------- dry run


@dataclass
class DryRun:
    days: int
    total: int
    rows: list[tuple[int, str, str, datetime]]  # contact id, email, name, first matched at
    checkpoints: int


def dry_run(segment_definition: dict, days: int, *, now: datetime | None = None,
            limit: int = 50) -> DryRun:
    """Who would have entered over the last `days`: the definition evaluated at evenly
    spaced moments (order, cart and visit timestamps; backfill left out), each contact
    counted at the first moment it matched."""
    now = now or utcnow()
    start = now - timedelta(days=days)
    span = now - start
    shortest = segments.window(segment_definition)
    step = span / DRY_RUN_CHECKPOINTS
    if shortest is not None and shortest / 2 < step:
        step = max(shortest / 2, span / DRY_RUN_CHECKPOINTS)
    moments = []
    moment = now
    while moment > start and len(moments) < DRY_RUN_CHECKPOINTS:
        moments.append(moment)
        moment -= step
    first: dict[int, datetime] = {}
    for at in reversed(moments):
        stmt = segments.members(segment_definition, at, automation=True)
        for contact_id in db.session.scalars(stmt):
            first.setdefault(contact_id, at)
    chosen = sorted(first.items(), key=lambda kv: (kv[1], kv[0]))[:limit]
    names = dict(db.session.execute(
        select(Contact.id, Contact.email).where(Contact.id.in_([c for c, _ in chosen])))
        .all()) if chosen else {}
    rows = [(cid, names.get(cid, ""), "", at) for cid, at in chosen]
    return DryRun(days=days, total=len(first), rows=rows, checkpoints=len(moments))


# --------------------------------------------------------------------------- switching


def switch(automation: Automation, on: bool) -> None:
    """Enable (from now on, matching contacts enter) or pause; the caller commits."""
    if on and not automation.enabled:
        automation.enabled_at = utcnow()
    automation.enabled = on


def definition_of(automation: Automation) -> dict:
    """The automation's segment definition, cleaned (a deleted segment matches no one)."""
    segment = db.session.get(Segment, automation.segment_id)
    if segment is None:
        return {"op": "or", "items": []}
    return segments.clean_definition(segment.definition)


# ------------------------------------------------------------------------------- touch


def touch(contact_ids) -> None:
    """Events touched these contacts: have them re-evaluated within seconds. Adds them to
    a Redis set and queues one drain job unless one is queued; never raises (the periodic
    evaluation covers a Redis outage)."""
    ids = sorted({int(c) for c in contact_ids if c is not None})
    if not ids:
        return
    from ..background import REDIS_DOWN, get_queue, redis_connection

    try:
        redis = redis_connection()
        redis.sadd(TOUCHED_KEY, *ids)
        if redis.set(TOUCH_FLAG, "1", nx=True, ex=120):
            get_queue("default", redis).enqueue(TOUCH_JOB, result_ttl=60, failure_ttl=3600,
                                                description="automations: touched contacts")
    except REDIS_DOWN:
        log.warning("automations: Redis unreachable; the periodic evaluation catches up")


def drain_touched(redis, chunk: int = BATCH) -> int:
    """The drain job: clear the queued flag first (a touch from now on queues another
    job), then evaluate the touched contacts chunk by chunk. Returns how many entered."""
    redis.delete(TOUCH_FLAG)
    total = 0
    while True:
        popped = redis.spop(TOUCHED_KEY, chunk)
        if not popped:
            return total
        ids = sorted(int(v) for v in popped)
        try:
            total += evaluate_contacts(ids)
        except Exception:
            redis.sadd(TOUCHED_KEY, *ids)  # handed back for the next drain
            raise


def entry_rows(automation_id: int, *, after: int | None = None, size: int = 50):
    """Entries of an automation, newest first (keyset on id), with the contact's email."""
    stmt = (select(AutomationEntry, Contact.email)
            .join(Contact, Contact.id == AutomationEntry.contact_id)
            .where(AutomationEntry.automation_id == automation_id))
    if after is not None:
        stmt = stmt.where(AutomationEntry.id < after)
    return db.session.execute(stmt.order_by(AutomationEntry.id.desc()).limit(size)).all()


def entry_count(automation_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(AutomationEntry).where(
        and_(AutomationEntry.automation_id == automation_id))) or 0
