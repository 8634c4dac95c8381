"""Autoresponder cycles of a list: create, edit, delete after confirmation."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..extensions import db
from ..models import ContactList, Cycle
from ..services import lists as service
from ..services.errors import FormError

bp = Blueprint("cycles", __name__, url_prefix="/lists/<int:list_id>/cycles")


@bp.get("/")
def index(list_id: int, errors=None, form=None, status=200):
    lst = db.get_or_404(ContactList, list_id)
    return render_template(
        "lists/cycles.html", lst=lst, enrolled=service.enrolled_counts(lst.id),
        errors=errors or {}, form=form or {"length_days": "30"},
    ), status


@bp.post("/")
def create(list_id: int):
    lst = db.get_or_404(ContactList, list_id)
    try:
        cycle = service.save_cycle(lst.id, request.form.get("name"),
                                   request.form.get("length_days"))
    except FormError as exc:
        return index(lst.id, errors={exc.field: exc.message}, form=request.form, status=422)
    flash(f"Cycle “{cycle.name}” created.", "success")
    return redirect(url_for("cycles.index", list_id=lst.id))


@bp.route("/<int:cycle_id>/edit", methods=["GET", "POST"])
def edit(list_id: int, cycle_id: int):
    lst = db.get_or_404(ContactList, list_id)
    cycle = db.one_or_404(select(Cycle).where(Cycle.id == cycle_id,
                                                   Cycle.list_id == lst.id))
    if request.method == "POST":
        try:
            service.save_cycle(lst.id, request.form.get("name"),
                               request.form.get("length_days"), cycle)
        except FormError as exc:
            return render_template("lists/cycle_edit.html", lst=lst, cycle=cycle,
                                   form=request.form, errors={exc.field: exc.message}), 422
        flash(f"Cycle “{cycle.name}” saved.", "success")
        return redirect(url_for("cycles.index", list_id=lst.id))
    form = {"name": cycle.name, "length_days": str(cycle.length_days)}
    return render_template("lists/cycle_edit.html", lst=lst, cycle=cycle, form=form, errors={})


@bp.route("/<int:cycle_id>/delete", methods=["GET", "POST"])
def delete(list_id: int, cycle_id: int):
    lst = db.get_or_404(ContactList, list_id)
    cycle = db.one_or_404(select(Cycle).where(Cycle.id == cycle_id,
                                                   Cycle.list_id == lst.id))
    if request.method == "GET":
        enrolled = service.enrolled_counts(lst.id).get(cycle.id, 0)
        return render_template("lists/cycle_delete.html", lst=lst, cycle=cycle,
                               enrolled=enrolled)
    name = cycle.name
    service.delete_cycle(cycle)
    flash(f"Cycle “{name}” deleted; its contacts stay on the list.", "success")
    return redirect(url_for("cycles.index", list_id=lst.id))
