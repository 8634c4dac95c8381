"""Erase or export one person's data (Shopify's mandatory topics).

Erasing removes the person's contact rows (in every list for a team member, in the source's
list for a Shopify `customers/redact`), their consent ledger (it cascades with the contact),
their stitched visitor ids, and every stored event that names them or their visitor ids;
what stays is an anonymised audit line (`PrivacyRequest`: a SHA-256 of the email, counts,
who asked). Erasing adds nothing to the suppression list unless the team member asks (the
list keeps the email itself). An export is JSON of the same data, built on request.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from ..commerce import erase_contact_data
from ..extensions import db
from ..imports.rules import normalise_email
from ..models import (
    ConsentEvent,
    Contact,
    PluginEvent,
    PluginSource,
    PrivacyRequest,
    Suppression,
    VisitorIdentity,
)
from ..models.base import utcnow
from ..models.workspace import insert_or_nothing


def email_digest(norm: str) -> str:
    return hashlib.sha256(norm.encode()).hexdigest()


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _people(session: Session, norm: str, list_id: int | None) -> list[Contact]:
    stmt = select(Contact).where(Contact.email_norm == norm)
    if list_id is not None:
        stmt = stmt.where(Contact.list_id == list_id)
    return list(session.scalars(stmt.order_by(Contact.id)))


def _visitors(session: Session, contact_ids: list[int], source_id: int | None):
    if not contact_ids:
        return []
    stmt = select(VisitorIdentity).where(VisitorIdentity.contact_id.in_(contact_ids))
    if source_id is not None:
        stmt = stmt.where(VisitorIdentity.source_id == source_id)
    return list(session.scalars(stmt))


def _events_of(norm: str, contact_ids: list[int], visitors, source_id: int | None):
    """The condition "this event is about the person": their email, contact or visitor id."""
    about = [PluginEvent.email_norm == norm]
    if contact_ids:
        about.append(PluginEvent.contact_id.in_(contact_ids))
    pairs = [(v.source_id, v.anonymous_id) for v in visitors]
    if pairs:
        about.append(tuple_(PluginEvent.source_id, PluginEvent.anonymous_id).in_(pairs))
    condition = or_(*about)
    if source_id is not None:
        condition = and_(PluginEvent.source_id == source_id, condition)
    return condition


def export_person(email: str, *, session: Session | None = None, list_id: int | None = None,
                  source_id: int | None = None) -> dict[str, Any]:
    """Everything stored about the person: contacts, consent history, visitor ids, events."""
    session = session or db.session
    norm = normalise_email(email)
    people = _people(session, norm, list_id)
    ids = [c.id for c in people]
    visitors = _visitors(session, ids, source_id)
    ledger = list(session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id.in_(ids))
                                  .order_by(ConsentEvent.id))) if ids else []
    events = list(session.scalars(select(PluginEvent).where(
        _events_of(norm, ids, visitors, source_id)).order_by(PluginEvent.id).limit(10_000)))
    def body(text: str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return {
        "email": norm, "exported_at": utcnow().isoformat(),
        "contacts": [{
            "list": c.list.name, "email": c.email, "name": c.name, "custom": c.custom,
            "origin": c.origin, "status": c.status, "consent_state": c.consent_state,
            "consent_source": c.consent_source, "consent_at": _iso(c.consent_at),
            "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at),
            "cycle": c.cycle.name if c.cycle else None, "cycle_day": c.cycle_day,
        } for c in people],
        "consent_history": [{"contact": e.contact_id, "state": e.state, "source": e.source,
                             "at": _iso(e.at), "note": e.note} for e in ledger],
        "visitor_ids": [{"source": v.source_id, "anonymous_id": v.anonymous_id,
                         "stitched_at": _iso(v.stitched_at)} for v in visitors],
        "events": [{"id": e.id, "source": e.source_id, "kind": e.kind, "name": e.name,
                    "occurred_at": _iso(e.occurred_at), "received_at": _iso(e.received_at),
                    "body": body(e.body)} for e in events],
    }


def erase_person(email: str, *, session: Session | None = None, requested_by: str,
                 user_id: int | None = None, list_id: int | None = None,
                 source_id: int | None = None, event_id: int | None = None,
                 suppress: bool = False) -> PrivacyRequest:
    """Erase the person (inside the caller's transaction) and add the audit line."""
    session = session or db.session
    norm = normalise_email(email)
    people = _people(session, norm, list_id)
    ids = [c.id for c in people]
    visitors = _visitors(session, ids, source_id)
    condition = _events_of(norm, ids, visitors, source_id)
    if event_id is not None:
        condition = and_(condition, PluginEvent.id != event_id)
    events = session.execute(delete(PluginEvent).where(condition)).rowcount or 0
    if ids:  # the consent ledger and visitor ids go with the contacts (ON DELETE CASCADE)
        erase_contact_data(ids)  # orders' personal fields, carts, visits, automation entries
        session.execute(delete(ConsentEvent).where(ConsentEvent.contact_id.in_(ids)))
        session.execute(delete(VisitorIdentity).where(VisitorIdentity.contact_id.in_(ids)))
        session.execute(delete(Contact).where(Contact.id.in_(ids)))
    digest = email_digest(norm)
    session.execute(update(PrivacyRequest).where(PrivacyRequest.email_digest == digest,
                                                 PrivacyRequest.export_json.is_not(None))
                    .values(export_json=None))
    if suppress:
        insert_or_nothing(Suppression.__table__, {"kind": "email", "value": norm,
                                                  "note": "erased on request",
                                                  "created_at": utcnow()}, ["kind", "value"])
    audit = PrivacyRequest(kind="erase", email_digest=digest, requested_by=requested_by[:120],
                           user_id=user_id, source_id=source_id, event_id=event_id,
                           contacts_removed=len(ids), events_removed=events)
    session.add(audit)
    session.flush()
    return audit


def erase_shop(session: Session, source: PluginSource, event_id: int) -> PrivacyRequest:
    """Shopify `shop/redact`: the shop's events and visitor ids, and the contacts this
    source added (origin plugin or form, first consent evidence from this source)."""
    # The contact's first ledger line is the evidence of the event that added it.
    first = (select(ConsentEvent.source).where(ConsentEvent.contact_id == Contact.id)
             .order_by(ConsentEvent.id).limit(1).scalar_subquery())
    ids = list(session.scalars(select(Contact.id).where(
        Contact.list_id == source.list_id, Contact.origin.in_(("plugin", "form")),
        Contact.created_run_id.is_(None), first.like(f"plugin:{source.id}:%"))))
    events = session.execute(delete(PluginEvent).where(
        PluginEvent.source_id == source.id, PluginEvent.id != event_id)).rowcount or 0
    session.execute(delete(VisitorIdentity).where(VisitorIdentity.source_id == source.id))
    if ids:
        erase_contact_data(ids)
        session.execute(delete(ConsentEvent).where(ConsentEvent.contact_id.in_(ids)))
        session.execute(delete(Contact).where(Contact.id.in_(ids)))
    audit = PrivacyRequest(kind="shop_erase", requested_by="shopify", source_id=source.id,
                           event_id=event_id, contacts_removed=len(ids), events_removed=events)
    session.add(audit)
    session.flush()
    return audit


def _customer_email(body: dict) -> str:
    customer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
    email = customer.get("email") or body.get("email") or ""
    return email.strip() if isinstance(email, str) else ""


def handle_event(session: Session, row: Any) -> tuple[dict[str, Any], str]:
    """Process one privacy event (in the batch's transaction): (verdict, status)."""
    source = session.get(PluginSource, row.source_id)
    try:
        body = json.loads(row.body)
    except (ValueError, TypeError):
        body = None
    if source is None or not isinstance(body, dict):
        return {"outcome": "failed", "why": "The request's body is not a JSON object; "
                "nothing was changed."}, "failed"
    if row.kind == "shop_redact":
        audit = erase_shop(session, source, row.id)
        return {"outcome": "erased", "why": f"The shop's data was erased: "
                f"{audit.contacts_removed} contacts and {audit.events_removed} events.",
                "privacy": audit.id}, "processed"
    email = _customer_email(body)
    if not email:
        return {"outcome": "failed", "why": "The request names no customer email; nothing "
                "was changed."}, "failed"
    if row.kind == "redact":
        audit = erase_person(email, session=session, requested_by="shopify",
                             list_id=source.list_id, source_id=source.id, event_id=row.id)
        # The request itself names the person: keep only what the audit needs.
        session.execute(update(PluginEvent).where(PluginEvent.id == row.id).values(
            body=json.dumps({"redacted": True, "shop_domain": body.get("shop_domain")}),
            email_norm=None, anonymous_id=None, user_id=None))
        return {"outcome": "erased", "why": f"The customer's data was erased: "
                f"{audit.contacts_removed} contacts and {audit.events_removed} events.",
                "privacy": audit.id}, "processed"
    data = export_person(email, session=session, list_id=source.list_id, source_id=source.id)
    export = PrivacyRequest(kind="export", email_digest=email_digest(normalise_email(email)),
                            requested_by="shopify", source_id=source.id, event_id=row.id,
                            export_json=json.dumps(data, ensure_ascii=False))
    session.add(export)
    session.flush()
    return {"outcome": "exported", "why": "The customer's data export is ready to download "
            f"({len(data['contacts'])} contacts, {len(data['events'])} events).",
            "privacy": export.id}, "processed"


def export_of_event(event_id: int) -> PrivacyRequest | None:
    return db.session.scalar(select(PrivacyRequest).where(
        PrivacyRequest.event_id == event_id, PrivacyRequest.kind == "export",
        PrivacyRequest.export_json.is_not(None)))


def erasures_count() -> int:
    return db.session.scalar(select(func.count()).select_from(PrivacyRequest)
                             .where(PrivacyRequest.kind == "erase")) or 0
