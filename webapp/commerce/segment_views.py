"""Segment pages: the list, the builder (live count and sample members while editing,
htmx) and deletion. Thin views over `commerce.segments`."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..extensions import db
from ..models.commerce import Automation, Segment
from ..views_common import wants_partial
from . import segments
from .segments import DefinitionError

bp = Blueprint("segments", __name__, url_prefix="/segments")


def _get_or_404(segment_id: int) -> Segment:
    row = db.session.get(Segment, segment_id)
    if row is None:
        abort(404)
    return row


@bp.get("/")
def index():
    rows = db.session.scalars(select(Segment).order_by(Segment.name)).all()
    counts, described = {}, {}
    for row in rows:
        try:
            cleaned = segments.clean_definition(row.definition)
        except DefinitionError:
            continue
        counts[row.id] = segments.count(cleaned)
        described[row.id] = segments.describe_definition(cleaned, segments.names_for(cleaned))
    return render_template("segments/index.html", rows=rows, counts=counts,
                           described=described)


def _builder_page(segment: Segment | None, name: str, definition: dict, errors: dict,
                  status: int = 200):
    preview = _preview(definition)
    return render_template(
        "segments/edit.html", segment=segment, name=name,
        definition=segments.as_groups(definition), errors=errors, preview=preview,
        choices=segments.builder_choices()), status


def _preview(definition: dict) -> dict:
    """Count and sample members of the definition as typed, or the first problem."""
    try:
        cleaned = segments.clean_definition(definition)
    except DefinitionError as exc:
        return {"error": exc.message, "where": exc.where}
    return {"count": segments.count(cleaned), "sample": segments.sample(cleaned),
            "described": segments.describe_definition(cleaned, segments.names_for(cleaned))}


@bp.get("/new")
def new():
    return _builder_page(None, "", segments.blank_definition(), {})


@bp.post("/new")
def create():
    return _save(None)


@bp.get("/<int:segment_id>")
def edit(segment_id: int):
    segment = _get_or_404(segment_id)
    return _builder_page(segment, segment.name, segment.definition, {})


@bp.post("/<int:segment_id>")
def update(segment_id: int):
    return _save(_get_or_404(segment_id))


def _save(segment: Segment | None):
    definition, edit = segments.from_form(request.form)
    name = request.form.get("name", "")
    if edit or request.form.get("refresh"):  # a builder button without JavaScript
        return _builder_page(segment, name, segments.apply_edit(definition, edit), {})
    try:
        saved = segments.save(name, definition, segment)
        db.session.commit()
    except DefinitionError as exc:
        db.session.rollback()
        return _builder_page(segment, name, definition, {exc.where: exc.message}, 422)
    flash(f"Segment “{saved.name}” saved.", "success")
    return redirect(url_for("segments.edit", segment_id=saved.id))


@bp.post("/builder")
def builder():
    """htmx: the builder re-drawn after a button (add, remove) or a change of kind."""
    definition, edit = segments.from_form(request.form)
    if not wants_partial():
        return redirect(url_for("segments.index"))
    return render_template("segments/_builder.html",
                           definition=segments.as_groups(segments.apply_edit(definition, edit)),
                           errors={}, choices=segments.builder_choices(),
                           preview=_preview(definition), oob=True)


@bp.post("/preview")
def preview():
    """htmx: live count and sample members of the definition as it is being edited."""
    definition, _edit = segments.from_form(request.form)
    if not wants_partial():
        return redirect(url_for("segments.index"))
    return render_template("segments/_preview.html", preview=_preview(definition))


@bp.route("/<int:segment_id>/delete", methods=["GET", "POST"])
def delete(segment_id: int):
    segment = _get_or_404(segment_id)
    used = db.session.scalars(select(Automation.name)
                              .where(Automation.segment_id == segment.id)).all()
    if request.method == "GET":
        return render_template("segments/confirm_delete.html", segment=segment, used=used)
    name = segment.name
    db.session.delete(segment)
    db.session.commit()
    flash(f"Segment “{name}” deleted" + (" with its automations." if used else "."), "success")
    return redirect(url_for("segments.index"))
