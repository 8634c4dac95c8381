"""Suppression list: paste emails or domains (confirming the unsubscribe of matching
contacts already on lists), search, remove."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Suppression
from ..services import suppression as service
from ..services.paging import parse_cursor
from ..views_common import wants_partial

bp = Blueprint("suppression", __name__, url_prefix="/suppression")


def _page_context() -> dict:
    q = " ".join(request.args.get("q", "").split())[:100]
    page = service.entries_page(q, after=parse_cursor(request.args.get("after")),
                                before=parse_cursor(request.args.get("before")))
    return {"page": page, "q": q, "params": {"q": q} if q else {}}


@bp.get("/")
def index():
    if wants_partial():
        return render_template("suppression/_rows.html", **_page_context())
    return render_template("suppression/index.html", result=None, entries="", note="",
                           **_page_context())


@bp.post("/")
def add():
    note = request.form.get("note", "").strip()
    raw = request.form.get("entries", "")
    if request.form.get("confirm") != "yes":
        keys, invalid = service.parse_entries(raw)
        matches = service.matching_subscribed(keys) if keys else []
        if matches:
            return render_template("suppression/confirm.html", entries=raw, note=note,
                                   matches=matches, total=sum(n for _, n in matches),
                                   keys=keys, invalid=invalid)
    result = service.add_entries(raw, note, user_id=current_user.id)
    summary = f"{len(result.added)} added"
    if result.existing:
        summary += f", {len(result.existing)} already on the list"
    if result.unsubscribed:
        summary += (f", {result.unsubscribed:,} subscribed contact"
                    f"{'s' if result.unsubscribed != 1 else ''} unsubscribed")
    if not result.invalid:
        flash(summary + ".", "success")
        return redirect(url_for("suppression.index"))
    # Keep only the invalid lines in the box, so they can be fixed and sent again.
    entries = "\n".join(line for line, _ in result.invalid)
    status = 422 if not result.added else 200
    return render_template("suppression/index.html", result=result, summary=summary,
                           entries=entries, note=note, **_page_context()), status


@bp.post("/<int:entry_id>/delete")
def remove(entry_id: int):
    entry = db.session.get(Suppression, entry_id)
    if entry is None:
        abort(404)
    value = entry.value
    service.remove(entry)
    if wants_partial():
        return ""
    flash(f"{value} removed from the suppression list.", "success")
    return redirect(url_for("suppression.index"))
