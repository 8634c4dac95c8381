"""Custom fields: create, edit, delete (a deleted field's values leave every contact)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..customfields import FORMAT_LABELS, TYPE_LABELS, FieldDefinitionError
from ..extensions import db
from ..models import CustomField
from ..models.lists import CHOICE_FORMATS, FIELD_FORMATS, FIELD_TYPES
from ..services import fields as service

bp = Blueprint("fields", __name__, url_prefix="/fields")

CHOICES = {"types": [(t, TYPE_LABELS[t]) for t in FIELD_TYPES],
           "formats": [(f, FORMAT_LABELS[f]) for f in FIELD_FORMATS],
           "choice_formats": CHOICE_FORMATS}


@bp.get("/")
def index(form=None, errors=None, status=200):
    return render_template(
        "fields/index.html", fields=service.all_fields(), form=form or {},
        errors=errors or {}, **CHOICES,
    ), status


@bp.post("/")
def create():
    try:
        field = service.save_field(request.form)
    except FieldDefinitionError as exc:
        return index(form=request.form, errors={exc.field: str(exc)}, status=422)
    flash(f"Custom field {field.name} created.", "success")
    return redirect(url_for("fields.index"))


@bp.route("/<int:field_id>/edit", methods=["GET", "POST"])
def edit(field_id: int):
    field = db.get_or_404(CustomField, field_id)
    if request.method == "POST":
        try:
            service.save_field(request.form, field)
        except FieldDefinitionError as exc:
            db.session.rollback()
            return render_template("fields/edit.html", field=field, form=request.form,
                                   errors={exc.field: str(exc)}, **CHOICES), 422
        flash(f"Custom field {field.name} saved.", "success")
        return redirect(url_for("fields.index"))
    form = {"type": field.type, "format": field.format, "hidden": field.hidden,
            "allowed_values": "\n".join(field.allowed_values or [])}
    return render_template("fields/edit.html", field=field, form=form, errors={}, **CHOICES)


@bp.route("/<int:field_id>/delete", methods=["GET", "POST"])
def delete(field_id: int):
    field = db.get_or_404(CustomField, field_id)
    if request.method == "GET":
        return render_template("fields/confirm_delete.html", field=field)
    name = field.name
    service.delete_field(field)
    flash(f"Custom field {name} deleted and its values removed from every contact.", "success")
    return redirect(url_for("fields.index"))
