"""Processing stored plugin events: pending events in id order, in batches.

One batch is one transaction, like the import engine's page (`imports/pipeline.py`): claim,
plan reads-only (contacts, visitor ids, suppressions of the batch, then the events one by
one in order, so each contact's events apply in the order they came), then write contacts,
consent ledger rows, stitched visitor ids and every event's status and verdict together.
A worker killed mid-batch leaves nothing half done: the batch is still pending.

One writer at a time, on both databases, so per-contact order holds across batches and
workers: PostgreSQL takes a transaction-level advisory lock before claiming (the rows are
also claimed `FOR UPDATE SKIP LOCKED`), SQLite starts the batch with `BEGIN IMMEDIATE`
(its single write lock). An event leaves `pending` in the same transaction as its effects,
so processing is exactly once; a replay sets a failed event pending again.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..extensions import db
from ..imports import upsert
from ..imports.rules import check_email, normalise_email
from ..models import ConsentEvent, Contact, PluginEvent, PluginSource, Suppression, VisitorIdentity
from ..models.base import utcnow

log = logging.getLogger(__name__)

# PostgreSQL: a batch is ~25 statements whatever its size, so bigger batches mean fewer round
# trips per event (1,000: the horse's memory stays flat, a batch still commits in < 1 s).
BATCH = 1000
# SQLite holds its one write lock for the whole batch (planning included): smaller batches
# keep receivers' commits from waiting behind it for long (~0.1 s rather than ~0.2 s).
SQLITE_BATCH = 200
QUEUE = "plugins"
LOCK_ID = 7_311_946_050  # PostgreSQL advisory lock: the one event processor
PRIVACY_KINDS = ("redact", "shop_redact", "data_request")
# Kinds that may update an existing contact's name and consent (the rest are activity).
PROFILE_KINDS = ("signed_up", "form_submitted", "identify", "customer_updated",
                 "consent_updated", "order_completed", "order_paid", "checkout_started")
# Kinds that change no contact here (their effect, if any, happens when they are received).
NOTHING_TO_DO = {
    "uninstalled": "The app was uninstalled from the shop; no contact changes.",
    "ping": "A test delivery from the store; no contact changes.",
}
# A refund adjusts the order it names, found by the order's id in its shop, whatever the
# email (none, unknown or malformed): the order, not the person, is what it changes.
REFUND_KINDS = ("order_refunded",)
# The browser key can never lower an existing contact's consent.
CANNOT_LOWER = ("browser",)

events_t = PluginEvent.__table__


@dataclass
class Person:
    """One contact of a list while a batch is planned: what is stored, then what changes."""

    email: str
    norm: str
    id: int | None = None
    name: str = ""
    status: str = "subscribed"
    consent_state: str = "unknown"
    consent_source: str = ""
    consent_at: datetime | None = None
    unsubscribed_locally: bool = False
    new: bool = False
    dirty: bool = False
    promote: bool = False  # subscribe again: it was unsubscribed only for want of consent
    origin: str = "plugin"
    cycle: tuple[int, int] | None = None  # a new contact's cycle and start day
    ledger: list[tuple[str, str, datetime, str]] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one batch did: events handled and counts by outcome."""

    events: int = 0
    outcomes: Counter = field(default_factory=Counter)
    added: int = 0


# --------------------------------------------------------------------------- payloads


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int = 255) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def payload_email(body: dict) -> str:
    """The email carried by an event, for rows whose intake found none (consent updates
    carry `email_address`; privacy requests `customer.email`)."""
    for value in (body.get("email"), body.get("email_address"),
                  _dict(body.get("customer")).get("email"),
                  _dict(body.get("billing")).get("email"),
                  _dict(body.get("traits")).get("email"),
                  _dict(_dict(body.get("context")).get("traits")).get("email"),
                  _dict(body.get("properties")).get("email")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def payload_name(body: dict) -> str:
    """A person's name from Segment traits, a Shopify customer or a WooCommerce billing."""
    for holder in (_dict(body.get("traits")), _dict(_dict(body.get("context")).get("traits")),
                   body, _dict(body.get("customer")), _dict(body.get("billing"))):
        if _text(holder.get("name")):
            return _text(holder.get("name"))
        first = _text(holder.get("firstName") or holder.get("first_name"))
        last = _text(holder.get("lastName") or holder.get("last_name"))
        if first or last:
            return f"{first} {last}".strip()[:255]
    return ""


_SHOPIFY_CONSENT = {"subscribed": "subscribed", "unsubscribed": "opted_out",
                    "not_subscribed": "not_subscribed", "pending": "not_subscribed",
                    "invalid": "not_subscribed", "redacted": "not_subscribed"}


def payload_consent(channel: str, body: dict) -> str:
    """subscribed, opted_out, not_subscribed or unknown. Segment: `traits.marketing_consent`
    or `properties.consent` (true/false); Shopify: `email_marketing_consent.state`
    (unsubscribed is an opt-out); WooCommerce carries none."""
    if channel in ("api", "browser"):
        for holder in (_dict(body.get("traits")), _dict(_dict(body.get("context")).get("traits")),
                       _dict(body.get("properties"))):
            for key in ("marketing_consent", "consent"):
                if isinstance(holder.get(key), bool):
                    return "subscribed" if holder[key] else "not_subscribed"
        return "unknown"
    if channel == "shopify":
        for holder in (body, _dict(body.get("customer"))):
            state = _dict(holder.get("email_marketing_consent")).get("state")
            if isinstance(state, str):
                return _SHOPIFY_CONSENT.get(state.lower(), "unknown")
    return "unknown"


# --------------------------------------------------------------------------- claiming


def _claim(session: Session, size: int) -> list[Any]:
    """Take the write position and the next pending events (rows of plugin_events)."""
    session.commit()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Custom plans only, for this transaction: psycopg prepares a statement after five
        # uses, and PostgreSQL's generic plans for the batch's array-valued statements scan
        # (a young table has no statistics; unnest(param) is guessed at 100 rows).
        connection.execute(text("SELECT pg_advisory_xact_lock(:k), "
                                "set_config('plan_cache_mode', 'force_custom_plan', true)"),
                           {"k": LOCK_ID})
        ids = select(events_t.c.id).where(events_t.c.status == "pending") \
            .order_by(events_t.c.id).limit(size).with_for_update(skip_locked=True)
    else:
        raw = connection.connection.dbapi_connection
        if not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        ids = select(events_t.c.id).where(events_t.c.status == "pending") \
            .order_by(events_t.c.id).limit(size)
    claimed = [row[0] for row in connection.execute(ids)]
    if not claimed:
        return []
    return list(connection.execute(select(events_t).where(events_t.c.id.in_(claimed))
                                   .order_by(events_t.c.id)))


# --------------------------------------------------------------------------- the batch


class _Plan:
    """Reads-only planning of one batch: people by (list, email), verdicts by event."""

    def __init__(self, session: Session, rows: list[Any], sources: dict[int, PluginSource],
                 now: datetime):
        self.session, self.sources, self.now = session, sources, now
        self.rows = rows
        self.bodies: dict[int, dict | None] = {}
        self.emails: dict[int, str] = {}
        self.people: dict[tuple[int, str], Person] = {}
        self.visitors: dict[tuple[int, str], int | tuple[int, str]] = {}
        self.new_visitors: dict[tuple[int, str], tuple[int, str]] = {}
        self.results: dict[int, dict[str, Any]] = {}
        self.contact_ids: dict[tuple[int, str], int] = {}  # filled by _write
        self.suppressed_emails: set[str] = set()
        self.suppressed_domains: set[str] = set()
        self.refund_orders: dict[int, str] = {}  # refund event id -> the order's external id
        self.orders: dict[tuple[int, str], int | None] = {}  # known order -> its contact

    def load(self) -> None:
        by_list: dict[int, set[str]] = {}
        anonymous: set[tuple[int, str]] = set()
        for row in self.rows:
            try:
                body = json.loads(row.body)
            except (ValueError, TypeError, RecursionError):
                body = None
            body = body if isinstance(body, dict) else None
            self.bodies[row.id] = body
            email = row.email_norm or (normalise_email(payload_email(body)) if body else "")
            self.emails[row.id] = email
            source = self.sources.get(row.source_id)
            if email and source is not None:
                by_list.setdefault(source.list_id, set()).add(email)
            if row.anonymous_id:
                anonymous.add((row.source_id, row.anonymous_id))
        for list_id, norms in by_list.items():
            for norm, stored in upsert.existing_contacts(self.session, list_id, norms).items():
                self.people[(list_id, norm)] = _person(stored)
        if anonymous:
            sources = {s for s, _a in anonymous}
            ids = [a for _s, a in anonymous]
            for source_id, anon, contact_id in self.session.execute(
                    select(VisitorIdentity.source_id, VisitorIdentity.anonymous_id,
                           VisitorIdentity.contact_id)
                    .where(VisitorIdentity.source_id.in_(sources),
                           VisitorIdentity.anonymous_id.in_(ids))):
                self.visitors[(source_id, anon)] = contact_id
        norms = {n for group in by_list.values() for n in group}
        if norms:
            domains = {n.rpartition("@")[2] for n in norms}
            for kind, value in self.session.execute(
                    select(Suppression.kind, Suppression.value).where(or_(
                        and_(Suppression.kind == "email", Suppression.value.in_(norms)),
                        and_(Suppression.kind == "domain", Suppression.value.in_(domains))))):
                (self.suppressed_emails if kind == "email" else
                 self.suppressed_domains).add(value.strip().lower())

        if any(row.kind in REFUND_KINDS for row in self.rows):
            self._load_refund_orders()

    def _load_refund_orders(self) -> None:
        """The orders this batch's refunds name, known when stored already or arriving in
        this batch (the batch's e-commerce writes apply the refund to them either way)."""
        from ..commerce.facts import read
        from ..models import Order, Shop

        wanted: set[tuple[int, str]] = set()
        for row in self.rows:
            if row.kind not in REFUND_KINDS and not row.kind.startswith("order_"):
                continue
            order = read(row).order
            if order is None:
                continue
            if row.kind in REFUND_KINDS:
                self.refund_orders[row.id] = order.external_id
                wanted.add((row.source_id, order.external_id))
            if order.snapshot and row.kind not in REFUND_KINDS:
                self.orders.setdefault((row.source_id, order.external_id), None)
        if not wanted:
            return
        for source_id, external_id, contact_id in self.session.execute(
                select(Shop.source_id, Order.external_id, Order.contact_id)
                .join(Order, Order.shop_id == Shop.id)
                .where(Shop.source_id.in_({s for s, _e in wanted}),
                       Order.external_id.in_({e for _s, e in wanted}),
                       Order.source_updated_at.is_not(None))):  # not a refund's stub
            if (source_id, external_id) in wanted:
                self.orders[(source_id, external_id)] = contact_id

    def _refund(self, row: Any) -> None:
        """The verdict of a refund no contact was found for: the order it names is adjusted
        all the same, or (not arrived yet) keeps the refund until it does."""
        external_id = self.refund_orders.get(row.id)
        if not external_id:
            return self._result(row, "ignored", "ignored",
                                "The refund names no order id, so there is no order to "
                                "adjust; nothing was changed.")
        key = (row.source_id, external_id)
        if key in self.orders:
            self._result(row, "processed", "refunded",
                         f"Refund applied to order {external_id} of this shop (found by its "
                         "id; a refund needs no email).")
            if self.orders[key] is not None:
                self._attach(row.id, self.orders[key])
            return None
        return self._result(row, "processed", "refund_waiting",
                            f"Order {external_id} has not arrived yet: the refund is kept "
                            "with it and counts as soon as the order arrives.")

    # -------------------------------------------------------------- one event

    def judge(self, row: Any) -> None:
        source = self.sources.get(row.source_id)
        body = self.bodies.get(row.id)
        if source is None:
            return self._result(row, "failed", "ignored", "The event's source is gone.")
        if body is None:
            return self._result(row, "failed", "failed",
                                "The event's body is not a JSON object; nothing was changed.")
        if row.kind in NOTHING_TO_DO:
            return self._result(row, "ignored", "ignored", NOTHING_TO_DO[row.kind])
        email = self.emails[row.id]
        if email and row.kind in REFUND_KINDS and check_email(email):
            email = ""  # a malformed email cannot stop a refund: the order id decides
        if email:
            bad = check_email(email)
            if bad:
                return self._result(row, "failed", "failed",
                                    f"The email address is not valid ({bad[1]}); nothing "
                                    "was changed.")
        person = self.people.get((source.list_id, email)) if email else None
        if email and person is None and row.kind in (source.add_events or []):
            person = self._create(row, source, email, body)
            if isinstance(person, str):
                return self._result(row, "ignored", "ignored", person)
            outcome = "created"
            changes = [f"added as {person.status}", f"consent {person.consent_state}"]
        elif person is not None:
            changes = self._update(row, source, person, body) \
                if row.kind in PROFILE_KINDS else []
            outcome = "updated" if changes else "activity"
        else:
            person = None
            outcome, changes = "", []
        stitched = ""
        key = (row.source_id, row.anonymous_id) if row.anonymous_id else None
        if person is None and row.kind in REFUND_KINDS and (
                key is None or self.visitors.get(key) is None):
            return self._refund(row)
        if person is None and key is not None:
            known = self.visitors.get(key)
            if known is None:
                kept = ("Kept as an anonymous visitor's activity; it joins the contact when "
                        "the visitor identifies.")
                return self._result(row, "processed", "anonymous", kept)
            verdict = self._result(row, "processed", "activity",
                                   "Activity of a visitor who identified earlier.")
            self._attach(row.id, known)
            return verdict
        if person is None:
            if not email:
                return self._result(row, "ignored", "ignored",
                                    "The event names no email and no visitor id.")
            kind = row.kind.replace("_", " ")
            article = "an" if kind[:1] in ("a", "e", "i", "o", "u") else "a"
            return self._result(row, "ignored", "ignored",
                                f"{email} is not on the list, and {article} {kind} event does "
                                "not add contacts (the source's settings say which do).")
        if key is not None and key not in self.visitors:
            self.visitors[key] = (source.list_id, person.norm)
            self.new_visitors[key] = (source.list_id, person.norm)
            stitched = row.anonymous_id
        why = {"created": "A new contact from this event.",
               "updated": "The contact's details changed.",
               "activity": "Recorded as the contact's activity."}[outcome]
        if person.new and outcome == "activity":
            why = "Activity of a contact added in the same batch."
        verdict = self._result(row, "processed", outcome, why, changes=changes,
                               stitched=stitched)
        self._attach(row.id, (source.list_id, person.norm))
        return verdict

    def _suppressed(self, norm: str) -> bool:
        return norm in self.suppressed_emails or \
            norm.rpartition("@")[2] in self.suppressed_domains

    def _create(self, row: Any, source: PluginSource, email: str, body: dict) -> Person | str:
        if self._suppressed(email):
            return f"{email} is on the suppression list; it is never added."
        consent = payload_consent(row.channel, body)
        if consent == "opted_out":
            return f"{email} opted out of marketing at the source; never added."
        if consent != "subscribed":
            consent = "unknown"
        subscribed = consent == "subscribed" or source.allow_unconsented_subscribe
        at = row.occurred_at or self.now
        raw = payload_email(body) or email
        person = Person(email=raw if normalise_email(raw) == email else email, norm=email,
                        name=payload_name(body), new=True, dirty=True,
                        status="subscribed" if subscribed else "unsubscribed",
                        consent_state=consent, consent_source=_consent_source(row),
                        consent_at=at,
                        origin="form" if row.kind == "form_submitted" else "plugin",
                        cycle=(source.cycle_id, source.cycle_day or 0) if source.cycle_id
                        else None)
        person.ledger.append((_consent_source(row), consent, at,
                              _ledger_note(row, consent, subscribed)))
        self.people[(source.list_id, email)] = person
        return person

    def _update(self, row: Any, source: PluginSource, person: Person, body: dict) -> list[str]:
        changes: list[str] = []
        name = payload_name(body)
        if name and name != person.name:
            person.name, person.dirty = name, True
            changes.append("name")
        consent = payload_consent(row.channel, body)
        at = row.occurred_at or self.now
        if consent == "opted_out" and person.consent_state != "opted_out":
            if row.channel in CANNOT_LOWER:
                return changes
            person.status, person.consent_state = "unsubscribed", "opted_out"
            person.promote = False
            changes.append("unsubscribed: opted out at the source")
        elif consent == "not_subscribed" and person.consent_state == "subscribed" \
                and person.consent_source.startswith(f"plugin:{row.source_id}:") \
                and row.channel not in CANNOT_LOWER:
            # The same source gave consent earlier and now says no: consent withdrawn.
            person.status, person.consent_state = "unsubscribed", "opted_out"
            person.promote = False
            changes.append("unsubscribed: withdrew marketing consent at the source")
        elif consent == "subscribed" and person.consent_state != "subscribed":
            if person.unsubscribed_locally or person.consent_state == "opted_out":
                changes.append("consent given at the source, but the contact stays "
                               "unsubscribed (never re-subscribed)")
                return changes
            if self._suppressed(person.norm):
                changes.append("consent given, but the email is on the suppression list")
                return changes
            person.consent_state = "subscribed"
            if person.status == "unsubscribed":
                person.status, person.promote = "subscribed", True
            changes.append("consent subscribed")
        else:
            return changes
        person.consent_source, person.consent_at, person.dirty = _consent_source(row), at, True
        person.ledger.append((_consent_source(row), person.consent_state, at,
                              f"{row.kind.replace('_', ' ')} event #{row.id}"))
        return changes

    def _attach(self, event_id: int, who: int | tuple[int, str]) -> None:
        self.results[event_id]["who"] = who

    def _result(self, row: Any, status: str, outcome: str, why: str, *,
                changes: list[str] | None = None, stitched: str = "") -> None:
        verdict: dict[str, Any] = {"outcome": outcome, "why": why}
        if changes:
            verdict["changes"] = changes
        if stitched:
            verdict["stitched"] = stitched
        self.results[row.id] = {"status": status, "verdict": verdict,
                                "error": why if status == "failed" else "", "who": None}


def _person(stored: Any) -> Person:
    return Person(email=stored.email_norm, norm=stored.email_norm, id=stored.id,
                  name=stored.name or "", status=stored.status,
                  consent_state=stored.consent_state, consent_source=stored.consent_source or "",
                  consent_at=stored.consent_at,
                  unsubscribed_locally=bool(stored.unsubscribed_locally))


def _consent_source(row: Any) -> str:
    return f"plugin:{row.source_id}:{row.id}"[:64]


def _ledger_note(row: Any, consent: str, subscribed: bool) -> str:
    what = row.kind.replace("_", " ")
    if consent == "subscribed":
        return f"{what} event #{row.id}: marketing consent given"
    if subscribed:
        return f"{what} event #{row.id}: no consent in the event; added subscribed as the " \
               "source allows"
    return f"{what} event #{row.id}: no marketing consent in the event; added unsubscribed"


def _row(person: Person, list_id: int, now: datetime) -> dict[str, Any]:
    cycle, day = person.cycle if person.new and person.cycle else (None, None)
    # A contact subscribed again is written unsubscribed (so the upsert takes its new
    # consent) and then promoted by _PROMOTE, which re-checks that nothing forbids it.
    status = "unsubscribed" if person.promote else person.status
    return {
        "list_id": list_id, "email": person.email[:254], "email_norm": person.norm,
        "name": person.name, "custom": {}, "origin": person.origin, "status": status,
        "unsubscribed_at": now if status == "unsubscribed" else None,
        "unsubscribed_locally": False, "consent_state": person.consent_state,
        "consent_source": person.consent_source, "consent_at": person.consent_at,
        "consent_run_id": None, "cycle_id": cycle,
        "cycle_day": day,
        "enrolled_at": now if cycle else None, "created_at": now, "updated_at": now,
        "created_run_id": None, "updated_run_id": None, "note": "",
    }


_SET_EVENT = (
    update(events_t).where(events_t.c.id == bindparam("event_id"))
    .values(status=bindparam("new_status"), contact_id=bindparam("new_contact"),
            verdict=bindparam("new_verdict", type_=events_t.c.verdict.type),
            error=bindparam("new_error"),
            processed_at=bindparam("at", type_=events_t.c.processed_at.type),
            attempts=events_t.c.attempts + 1)
)
_PROMOTE = (
    update(Contact.__table__)
    .where(Contact.id == bindparam("cid"), Contact.status == "unsubscribed",
           Contact.unsubscribed_locally.is_(False), Contact.consent_state == "subscribed")
    .values(status="subscribed", unsubscribed_at=None)
)
_STITCH = (
    update(events_t)
    .where(events_t.c.source_id == bindparam("sid"), events_t.c.anonymous_id == bindparam("anon"),
           events_t.c.contact_id.is_(None))
    .values(contact_id=bindparam("cid"))
)


# PostgreSQL: one UPDATE … FROM unnest(arrays) per batch instead of one UPDATE per event.
# `e.id = ANY(ids)` gives the planner the primary key to probe: joined on `v.id` alone, a
# young table's statistics make it scan every event and hash-join them.
_PG_SET_EVENTS = """
UPDATE plugin_events AS e SET status = v.status, contact_id = v.contact_id,
  verdict = v.verdict, error = v.error, processed_at = %(at)s, attempts = e.attempts + 1
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(contacts)s::int[],
            %(verdicts)s::jsonb[], %(errors)s::text[]) AS v(id, status, contact_id, verdict, error)
WHERE e.id = v.id AND e.id = ANY(%(ids)s::bigint[])"""
_PG_STITCH = """
UPDATE plugin_events AS e SET contact_id = v.cid
FROM unnest(%(sids)s::int[], %(anons)s::text[], %(cids)s::int[]) AS v(sid, anon, cid)
WHERE e.source_id = v.sid AND e.anonymous_id = v.anon AND e.contact_id IS NULL"""


def _set_events(session: Session, updates: list[dict[str, Any]]) -> None:
    """Every event's status, contact, verdict and error (one statement on PostgreSQL)."""
    if not updates:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(_SET_EVENT, updates)
        return
    from psycopg.types.json import Jsonb

    connection.exec_driver_sql(_PG_SET_EVENTS, {
        "at": updates[0]["at"], "ids": [u["event_id"] for u in updates],
        "statuses": [u["new_status"] for u in updates],
        "contacts": [u["new_contact"] for u in updates],
        "verdicts": [Jsonb(u["new_verdict"]) for u in updates],
        "errors": [u["new_error"] for u in updates]})


def _stitch(session: Session, visitors: list[dict[str, Any]]) -> None:
    """Earlier events of newly identified visitors join their contact."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(_STITCH, [{"sid": v["source_id"], "anon": v["anonymous_id"],
                                   "cid": v["contact_id"]} for v in visitors])
        return
    connection.exec_driver_sql(_PG_STITCH, {
        "sids": [v["source_id"] for v in visitors],
        "anons": [v["anonymous_id"] for v in visitors],
        "cids": [v["contact_id"] for v in visitors]})


def _write(session: Session, plan: _Plan, now: datetime) -> int:
    """Contacts, promotions, ledger, visitor ids, events: one transaction (the caller's)."""
    rows, added = [], 0
    for (list_id, _norm), person in sorted(plan.people.items()):
        if person.dirty:
            rows.append(_row(person, list_id, now))
            added += person.new
    upsert.upsert_contacts(session, rows)
    ids: dict[tuple[int, str], int] = {}
    fresh: dict[int, list[str]] = {}
    for (list_id, norm), person in plan.people.items():
        if person.id is None:
            fresh.setdefault(list_id, []).append(norm)
        else:
            ids[(list_id, norm)] = person.id
    for list_id, norms in fresh.items():
        for norm, stored in upsert.existing_contacts(session, list_id, norms).items():
            ids[(list_id, norm)] = stored.id
    plan.contact_ids = ids
    promote = [{"cid": ids[key]} for key, p in plan.people.items() if p.promote]
    if promote:
        session.execute(_PROMOTE, promote)
    ledger = [{"contact_id": ids[key], "state": state, "source": source, "at": at,
               "run_id": None, "user_id": None, "note": note[:500], "recorded_at": now}
              for key, person in plan.people.items()
              for source, state, at, note in person.ledger]
    upsert.insert_rows(session, ConsentEvent, ledger)
    updates = []
    # This batch's earlier events of visitors who identified in it take their contact here
    # (the stitch below is then for earlier batches' events: no row updated twice).
    visitor = {row.id: (row.source_id, row.anonymous_id) for row in plan.rows
               if row.anonymous_id}
    for event_id, result in plan.results.items():
        who = result["who"]
        contact = ids.get(who) if isinstance(who, tuple) else who
        verdict = dict(result["verdict"])
        if contact is not None:
            verdict["contact"] = contact
        elif result["status"] == "processed" and visitor.get(event_id) in plan.new_visitors:
            contact = ids.get(plan.new_visitors[visitor[event_id]])
        updates.append({"event_id": event_id, "new_status": result["status"],
                        "new_contact": contact, "new_verdict": verdict,
                        "new_error": result["error"][:500], "at": now})
    _set_events(session, updates)
    visitors = [{"source_id": source_id, "anonymous_id": anon, "contact_id": ids[key],
                 "stitched_at": now} for (source_id, anon), key in plan.new_visitors.items()]
    if visitors:  # one insert-or-nothing; then earlier visits and carts join the contact
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(VisitorIdentity.__table__)
                        .on_conflict_do_nothing(index_elements=["source_id", "anonymous_id"]),
                        visitors)  # compiled once, sent as multi-row batches
        _stitch(session, visitors)
    return added


def _feed_commerce(rows: list[Any], plan: _Plan) -> set[int]:
    """Hand the batch's events, with the contacts they resolved to, to the e-commerce
    writer (same transaction); guests who identified take their carts and visits along.
    Returns the contacts the batch touched."""
    from ..commerce import carts, ingest

    contacts = {row.id: event_contact(plan, row) for row in rows}
    carts.attach_visitors([(source_id, anon, plan.contact_ids[key])
                           for (source_id, anon), key in plan.new_visitors.items()
                           if plan.contact_ids.get(key) is not None])
    events = [SimpleNamespace(**{**row._mapping, "contact_id": contacts[row.id]})
              for row in rows if plan.results.get(row.id, {}).get("status") != "failed"]
    ingest.apply_events(events)
    return {c for c in contacts.values() if c is not None}


def event_contact(plan: _Plan, row: Any) -> int | None:
    """The contact an event of this batch resolved to (after the batch's writes)."""
    who = plan.results.get(row.id, {}).get("who")
    return plan.contact_ids.get(who) if isinstance(who, tuple) else who


def batch_size(session: Session | None = None) -> int:
    dialect = (session or db.session).get_bind().dialect.name
    return SQLITE_BATCH if dialect == "sqlite" else BATCH


def process_batch(size: int | None = None, session: Session | None = None) -> BatchResult:
    """Claim and process up to `size` pending events in one transaction; returns counts.

    A privacy request (redact, data request) is processed alone, in its place in the order,
    so the events before it are written first and those after it see its outcome."""
    from . import privacy

    session = session or db.session
    result = BatchResult()
    rows = _claim(session, size or batch_size(session))
    if not rows:
        session.commit()
        return result
    cut = next((i for i, r in enumerate(rows) if r.kind in PRIVACY_KINDS), None)
    if cut == 0:
        row = rows[0]
        verdict, status = privacy.handle_event(session, row)
        _set_events(session, [{"event_id": row.id, "new_status": status,
                                      "new_contact": None, "new_verdict": verdict,
                                      "new_error": "" if status != "failed" else verdict["why"],
                                      "at": utcnow()}])
        session.commit()
        result.events, result.outcomes[verdict["outcome"]] = 1, 1
        return result
    if cut is not None:
        rows = rows[:cut]
    now = utcnow()
    source_ids = {r.source_id for r in rows}
    sources = {s.id: s for s in session.scalars(
        select(PluginSource).where(PluginSource.id.in_(source_ids)))}
    plan = _Plan(session, rows, sources, now)
    plan.load()
    for row in rows:
        try:
            plan.judge(row)
        except Exception:  # one bad event must not hold up the batch
            log.exception("plugin event %s could not be processed", row.id)
            plan._result(row, "failed", "failed",
                         "The event could not be processed; nothing was changed. "
                         "It can be replayed from the event log.")
    result.added = _write(session, plan, now)
    touched = _feed_commerce(rows, plan)
    session.commit()
    result.events = len(rows)
    result.outcomes.update(r["verdict"]["outcome"] for r in plan.results.values())
    if touched:
        from ..commerce.automations import touch

        touch(touched)  # automations re-evaluate these contacts within seconds
    if result.added:
        from ..imports.forecast import record_overage

        record_overage()  # the cycle's peak for the list-extension fee, as runs do
    return result


def process_pending(max_seconds: float = 240.0, size: int | None = None) -> int:
    """Process batches until no event is pending (or `max_seconds` passed: then queue the
    rest). Returns how many events were processed."""
    started, total = time.monotonic(), 0
    while True:
        batch = process_batch(size)
        total += batch.events
        if not batch.events:
            return total
        if time.monotonic() - started > max_seconds:
            from .nudge import nudge_now

            nudge_now()  # the rest to the waiting job (queued now unless one waits)
            return total


def pending_count(session: Session | None = None) -> int:
    session = session or db.session
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(events_t)
                          .where(events_t.c.status == "pending")) or 0


def sweep() -> int:
    """Periodic safety net: queue processing when events are pending (a nudge lost to a
    Redis outage, a worker killed mid-job, its job gone with it), and fold the refused
    signatures counted in Redis. Returns the number pending."""
    from . import refusals

    refusals.fold()  # refused signatures counted in Redis onto their sources' rows
    pending = pending_count()
    db.session.commit()
    if pending:
        from .nudge import nudge_now

        nudge_now(repair=True)
    return pending
