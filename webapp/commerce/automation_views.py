"""Automation pages: the list, create and edit, switch on or off, the dry run, and each
automation's entries with why they entered. Thin views over `commerce.automations`."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..models import ContactList, CustomField, Cycle
from ..models.base import utcnow
from ..models.commerce import Automation, Segment
from ..views_common import wants_partial
from . import automations, segments
from .automations import ActionError

bp = Blueprint("automations", __name__, url_prefix="/automations")
log = logging.getLogger(__name__)
DRY_RUN_DAYS = (1, 7, 14, 30, 90)


def _get_or_404(automation_id: int) -> Automation:
    row = db.session.get(Automation, automation_id)
    if row is None:
        abort(404)
    return row


def _choices() -> dict:
    cycles = db.session.execute(
        select(Cycle.id, Cycle.name, ContactList.name.label("list_name"), Cycle.length_days)
        .join(ContactList, ContactList.id == Cycle.list_id)
        .order_by(ContactList.name, Cycle.name)).all()
    return {
        "segments": [(str(s.id), s.name) for s in db.session.execute(
            select(Segment.id, Segment.name).order_by(Segment.name))],
        "lists": [(str(r.id), r.name) for r in db.session.execute(
            select(ContactList.id, ContactList.name).order_by(ContactList.name))],
        "cycles": [(str(c.id), f"{c.list_name} · {c.name} ({c.length_days} days)")
                   for c in cycles],
        "fields": db.session.scalars(select(CustomField.name).order_by(CustomField.name)).all(),
    }


def _form_of(row: Automation | None) -> dict:
    if row is None:
        return {"action": "add_to_list", "cycle_day": "0"}
    action = row.action or {}
    return {"name": row.name, "segment_id": str(row.segment_id),
            "action": action.get("kind", ""), "list_id": str(action.get("list_id", "")),
            "cycle_id": str(action.get("cycle_id", "")),
            "cycle_day": str(action.get("cycle_day", "0")), "field": action.get("field", ""),
            "value": "" if action.get("value") is None else str(action.get("value")),
            "rerun_after_days": str(row.rerun_after_days or "")}


@bp.get("/")
def index(form=None, errors=None, status=200):
    rows = db.session.execute(
        select(Automation, Segment.name.label("segment_name"))
        .join(Segment, Segment.id == Automation.segment_id).order_by(Automation.name)).all()
    counts = dict(db.session.execute(
        select(automations.AutomationEntry.automation_id, func.count())
        .group_by(automations.AutomationEntry.automation_id)).all())
    return render_template("automations/index.html", rows=rows, counts=counts,
                           form=form or _form_of(None), errors=errors or {},
                           choices=_choices(), describe=automations.describe_action), status


def _apply(row: Automation | None, form) -> Automation:
    """Check the form and write it onto `row` (or a new automation); raises ActionError."""
    name = " ".join(str(form.get("name") or "").split())
    if not name or len(name) > 120 or "\x00" in name:
        raise ActionError("name", "Give the automation a name of at most 120 characters.")
    taken = select(Automation.id).where(func.lower(Automation.name) == name.lower())
    if row is not None:
        taken = taken.where(Automation.id != row.id)
    if db.session.scalar(taken.limit(1)) is not None:
        raise ActionError("name", f"An automation named “{name}” exists already.")
    segment = automations._get(Segment, form.get("segment_id"))
    if segment is None:
        raise ActionError("segment_id", "Choose the segment that starts the automation.")
    action = automations.clean_action(form)
    rerun = automations.clean_rerun(form.get("rerun_after_days"))
    if row is None:
        row = Automation(name=name, enabled=False)
        db.session.add(row)
    row.name, row.segment_id, row.action, row.rerun_after_days = (name, segment.id, action,
                                                                   rerun)
    return row


@bp.post("/")
def create():
    try:
        row = _apply(None, request.form)
        db.session.commit()
    except ActionError as exc:
        db.session.rollback()
        return index(form=request.form, errors={exc.field: exc.message}, status=422)
    flash(f"Automation “{row.name}” created, switched off: try a dry run first.", "success")
    return redirect(url_for("automations.show", automation_id=row.id))


def _show(row: Automation, form=None, errors=None, status=200):
    after = request.args.get("after", "")
    after_id = int(after) if after.isdigit() and int(after) < 2**63 else None
    entries = automations.entry_rows(row.id, after=after_id)
    segment = db.session.get(Segment, row.segment_id)
    return render_template(
        "automations/show.html", row=row, segment=segment, entries=entries,
        total=automations.entry_count(row.id), form=form or _form_of(row),
        errors=errors or {}, choices=_choices(), action=automations.describe_action(row.action),
        days_choices=DRY_RUN_DAYS, page_size=50), status


@bp.get("/<int:automation_id>")
def show(automation_id: int):
    return _show(_get_or_404(automation_id))


@bp.post("/<int:automation_id>")
def update(automation_id: int):
    row = _get_or_404(automation_id)
    try:
        _apply(row, request.form)
        db.session.commit()
    except ActionError as exc:
        db.session.rollback()
        return _show(_get_or_404(automation_id), form=request.form,
                     errors={exc.field: exc.message}, status=422)
    flash("Automation saved.", "success")
    return redirect(url_for("automations.show", automation_id=row.id))


@bp.post("/<int:automation_id>/switch")
def switch(automation_id: int):
    """Switch on (the contacts matching now enter at once, the first batch here, the rest
    by a job) or off."""
    row = _get_or_404(automation_id)
    on = request.form.get("on") == "1"
    automations.switch(row, on)
    db.session.commit()
    if on:
        outcome = automations.evaluate(row.id, max_batches=1)
        if outcome.entered >= automations.BATCH:
            _enqueue(row.id)
        people = "contact" if outcome.entered == 1 else "contacts"
        flash(f"Automation switched on: {outcome.entered:,} {people} entered now.", "success")
    else:
        flash("Automation switched off: no one enters until it is switched on again.",
              "success")
    return redirect(url_for("automations.show", automation_id=row.id))


def _enqueue(automation_id: int) -> None:
    from ..background import REDIS_DOWN, get_queue

    try:
        get_queue("default").enqueue("webapp.jobs.evaluate_automation", automation_id,
                                     result_ttl=3600, description="automation evaluation")
    except REDIS_DOWN:
        log.warning("automation %s: Redis unreachable; the periodic job catches up",
                    automation_id)


@bp.get("/<int:automation_id>/dry-run")
def dry_run(automation_id: int):
    """Who would have entered over the last N days (nothing is written)."""
    row = _get_or_404(automation_id)
    raw = request.args.get("days", "7")
    days = int(raw) if raw.isdigit() and int(raw) in DRY_RUN_DAYS else 7
    result = automations.dry_run(automations.definition_of(row), days, now=utcnow())
    template = "automations/_dry_run.html" if wants_partial() else "automations/dry_run.html"
    return render_template(template, row=row, result=result, days=days,
                           days_choices=DRY_RUN_DAYS)


@bp.route("/<int:automation_id>/delete", methods=["GET", "POST"])
def delete(automation_id: int):
    row = _get_or_404(automation_id)
    if request.method == "GET":
        return render_template("automations/confirm_delete.html", row=row,
                               total=automations.entry_count(row.id))
    name = row.name
    db.session.delete(row)
    db.session.commit()
    flash(f"Automation “{name}” deleted.", "success")
    return redirect(url_for("automations.index"))


def segment_words(segment: Segment | None) -> str:
    if segment is None:
        return "—"
    try:
        cleaned = segments.clean_definition(segment.definition)
    except segments.DefinitionError:
        return "—"
    return segments.describe_definition(cleaned, segments.names_for(cleaned))


bp.add_app_template_global(segment_words, "segment_words")
