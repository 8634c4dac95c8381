"""The event log (per source and workspace-wide), replay of failed events, and the contact
timeline: reads of stored plugin events, newest first, keyset-paginated."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from ..extensions import db
from ..imports.rules import normalise_email
from ..models import PluginEvent, PluginSource
from ..models.plugins import EVENT_KINDS, EVENT_STATUSES
from ..services.paging import Page, keyset

STATUS_LABELS = {"pending": "Pending", "processed": "Processed", "failed": "Failed",
                 "ignored": "Ignored"}
OUTCOME_LABELS = {"created": "Contact added", "updated": "Contact updated",
                  "activity": "Activity recorded", "anonymous": "Anonymous visitor",
                  "ignored": "Ignored", "failed": "Failed", "erased": "Erased",
                  "exported": "Export built", "refunded": "Order refunded",
                  "refund_waiting": "Refund kept for its order"}
REPLAY_MAX = 500
TIMELINE_SIZE = 30


@dataclass(frozen=True)
class LogFilters:
    """The log's filters, parsed from the query string (anything unknown is dropped)."""

    status: str = ""
    kind: str = ""
    source: int | None = None
    email: str = ""

    @classmethod
    def parse(cls, args, source_id: int | None = None) -> LogFilters:
        status = args.get("status", "")
        kind = args.get("kind", "")
        raw_source = args.get("source", "")
        source = source_id if source_id is not None else (
            int(raw_source) if raw_source.isdigit() and len(raw_source) < 10 else None)
        email = normalise_email(" ".join(args.get("email", "").split()))[:254]
        return cls(status if status in EVENT_STATUSES else "",
                   kind if kind in EVENT_KINDS else "", source, email)

    @property
    def active(self) -> bool:
        return bool(self.status or self.kind or self.email or self.source is not None)

    def params(self, with_source: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.status:
            out["status"] = self.status
        if self.kind:
            out["kind"] = self.kind
        if self.email:
            out["email"] = self.email
        if with_source and self.source is not None:
            out["source"] = self.source
        return out


def _filtered(filters: LogFilters, status: str | None = None):
    stmt = select(PluginEvent)
    if filters.source is not None:
        stmt = stmt.where(PluginEvent.source_id == filters.source)
    status = status or filters.status
    if status:
        stmt = stmt.where(PluginEvent.status == status)
    if filters.kind:
        stmt = stmt.where(PluginEvent.kind == filters.kind)
    if filters.email:
        if "@" in filters.email and not filters.email.startswith("@"):
            stmt = stmt.where(PluginEvent.email_norm == filters.email)
        else:
            stmt = stmt.where(PluginEvent.email_norm.like(
                f"%{filters.email.replace('%', '').replace('_', '')}%"))
    return stmt


def events_page(filters: LogFilters, *, after: int | None = None,
                before: int | None = None) -> Page:
    """One page of the log, newest first."""
    return keyset(_filtered(filters), PluginEvent.id, after=after, before=before,
                  descending=True)


def failed_page(filters: LogFilters, size: int = 50) -> Page:
    """Failed events, listed apart above the log (newest first), for replay."""
    return keyset(_filtered(filters, "failed"), PluginEvent.id, size=size, descending=True)


def failed_count(source_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(PluginEvent).where(PluginEvent.status == "failed")
    if source_id is not None:
        stmt = stmt.where(PluginEvent.source_id == source_id)
    return db.session.scalar(stmt) or 0


def status_counts(source_id: int | None = None) -> dict[str, int]:
    stmt = select(PluginEvent.status, func.count()).group_by(PluginEvent.status)
    if source_id is not None:
        stmt = stmt.where(PluginEvent.source_id == source_id)
    counts = dict.fromkeys(EVENT_STATUSES, 0)
    counts.update({status: n for status, n in db.session.execute(stmt)})
    return counts


def source_names() -> dict[int, str]:
    return {s.id: s.name for s in db.session.scalars(select(PluginSource).order_by(
        PluginSource.name))}


def replay(event_ids: list[int]) -> int:
    """Set failed events pending again (others are left alone: a processed event already
    had its effect) and queue processing. Returns how many were set pending."""
    ids = sorted({i for i in event_ids if isinstance(i, int) and i > 0})[:REPLAY_MAX]
    if not ids:
        return 0
    result = db.session.execute(
        update(PluginEvent).where(PluginEvent.id.in_(ids), PluginEvent.status == "failed")
        .values(status="pending", error="", processed_at=None))
    db.session.commit()
    if result.rowcount:
        from .nudge import nudge_now

        nudge_now()
    return result.rowcount or 0


def body_of(event: PluginEvent) -> dict[str, Any]:
    try:
        body = json.loads(event.body)
    except (ValueError, TypeError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def pretty_body(event: PluginEvent) -> str:
    """The body for the event page: indented JSON, or the raw text if it is not JSON."""
    try:
        return json.dumps(json.loads(event.body), indent=2, ensure_ascii=False)[:64_000]
    except (ValueError, TypeError, RecursionError):
        return event.body[:64_000]


def _first(*values: Any) -> str:
    for value in values:
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            return str(value)[:200]
    return ""


def describe(event: PluginEvent) -> str:
    """One line for the timeline and the log: what happened, in the team's words."""
    body = body_of(event)
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    page_ctx = (body.get("context") or {}).get("page") if isinstance(
        body.get("context"), dict) else None
    page_ctx = page_ctx if isinstance(page_ctx, dict) else {}
    kind = event.kind
    product = _first(props.get("name"), props.get("product_id"), props.get("sku"))
    order = _first(props.get("order_id"), body.get("name"), body.get("order_number"),
                   body.get("id") if event.channel != "api" else None)
    total = _first(props.get("total"), props.get("revenue"), body.get("total_price"),
                   body.get("total"))
    currency = _first(props.get("currency"), body.get("currency"))
    money = f" {total} {currency}".rstrip() if total else ""
    if kind == "page":
        return "Visited " + (_first(props.get("title"), body.get("name"), page_ctx.get("title"),
                                    props.get("path"), page_ctx.get("path")) or "a page")
    if kind == "signed_up":
        return "Signed up"
    if kind == "form_submitted":
        return "Submitted a sign-up form"
    if kind == "identify":
        return "Identified"
    if kind == "product_viewed":
        return f"Viewed product {product}".rstrip()
    if kind == "product_added":
        return f"Added {product or 'a product'} to the cart"
    if kind == "product_removed":
        return f"Removed {product or 'a product'} from the cart"
    if kind == "cart_viewed":
        return "Viewed the cart"
    if kind == "checkout_started":
        return f"Started checkout{money}"
    if kind == "order_completed":
        return " ".join(f"Placed order {order}{money}".split())
    if kind == "order_paid":
        return f"Paid order {order}{money}".strip()
    if kind == "order_refunded":
        return f"Refund for order {order}".strip()
    if kind == "order_cancelled":
        return f"Cancelled order {order}".strip()
    if kind == "customer_updated":
        return "Customer details updated"
    if kind == "consent_updated":
        return "Marketing consent updated"
    if kind == "custom":
        return f"Custom event {event.name or event.topic}".strip()
    return kind.replace("_", " ").capitalize()


def timeline(contact_id: int, before: int | None = None,
             size: int = TIMELINE_SIZE) -> tuple[list[tuple[PluginEvent, str]], bool]:
    """The contact's events, newest first (by id: the order they came in), each with its
    line; and whether older ones follow."""
    stmt = select(PluginEvent).where(PluginEvent.contact_id == contact_id)
    if before is not None:
        stmt = stmt.where(PluginEvent.id < before)
    rows = list(db.session.scalars(stmt.order_by(PluginEvent.id.desc()).limit(size + 1)))
    return [(e, describe(e)) for e in rows[:size]], len(rows) > size
