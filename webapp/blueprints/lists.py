"""Lists: create, rename inline (htmx) or on a page, delete after confirmation."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..extensions import db
from ..models import ContactList
from ..services import lists as service
from ..services.errors import FormError
from ..views_common import wants_partial

bp = Blueprint("lists", __name__, url_prefix="/lists")


@bp.get("/")
def index(errors=None, name="", status=200):
    return render_template(
        "lists/index.html", lists=service.all_lists(), counts=service.counts_by_list(),
        errors=errors or {}, name=name,
    ), status


@bp.post("/")
def create():
    name = request.form.get("name", "")
    try:
        row = service.create_list(name)
    except FormError as exc:
        return index(errors={exc.field: exc.message}, name=name, status=422)
    flash(f"List “{row.name}” created.", "success")
    return redirect(url_for("lists.index"))


@bp.get("/<int:list_id>")
def show(list_id: int):
    row = db.get_or_404(ContactList, list_id)
    total, subscribed = service.counts_by_list().get(row.id, (0, 0))
    return render_template("lists/show.html", lst=row, total=total, subscribed=subscribed)


@bp.get("/<int:list_id>/row")
def row(list_id: int):
    """The list's table row (htmx: cancels an inline rename)."""
    lst = db.get_or_404(ContactList, list_id)
    if not wants_partial():
        return redirect(url_for("lists.index"))
    counts = service.counts_by_list().get(lst.id, (0, 0))
    return render_template("lists/_row.html", lst=lst, counts=counts)


@bp.get("/<int:list_id>/edit")
def edit(list_id: int):
    lst = db.get_or_404(ContactList, list_id)
    template = "lists/_row_edit.html" if wants_partial() else "lists/edit.html"
    return render_template(template, lst=lst, name=lst.name, errors={})


@bp.post("/<int:list_id>/edit")
def rename(list_id: int):
    lst = db.get_or_404(ContactList, list_id)
    name = request.form.get("name", "")
    partial = wants_partial()
    try:
        service.rename_list(lst, name)
    except FormError as exc:
        errors = {exc.field: exc.message}
        if partial:  # 200 so htmx swaps the form with its error in
            return render_template("lists/_row_edit.html", lst=lst, name=name, errors=errors)
        return render_template("lists/edit.html", lst=lst, name=name, errors=errors), 422
    if partial:
        counts = service.counts_by_list().get(lst.id, (0, 0))
        return render_template("lists/_row.html", lst=lst, counts=counts)
    flash(f"List renamed to “{lst.name}”.", "success")
    return redirect(url_for("lists.show", list_id=lst.id))


@bp.get("/<int:list_id>/delete")
def confirm_delete(list_id: int):
    lst = db.get_or_404(ContactList, list_id)
    total, _ = service.counts_by_list().get(lst.id, (0, 0))
    return render_template("lists/confirm_delete.html", lst=lst, total=total)


@bp.post("/<int:list_id>/delete")
def delete(list_id: int):
    lst = db.get_or_404(ContactList, list_id)
    name = lst.name
    service.delete_list(lst)
    if wants_partial():
        return ""  # the row swaps itself out
    flash(f"List “{name}” and its contacts deleted.", "success")
    return redirect(url_for("lists.index"))
