"""A list's contacts (keyset pages, live search) and one contact's detail."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ..extensions import db
from ..models import Contact
from ..services import contacts as service
from ..services.lists import contact_count
from ..services.paging import parse_cursor
from ..views_common import wants_partial
from .lists import get_list_or_404

bp = Blueprint("contacts", __name__)


@bp.get("/lists/<int:list_id>/contacts")
def index(list_id: int):
    lst = get_list_or_404(list_id)
    q = service.clean_query(request.args.get("q"))
    page = service.contacts_page(
        lst.id, q,
        after=parse_cursor(request.args.get("after")),
        before=parse_cursor(request.args.get("before")),
    )
    params = {"list_id": lst.id, **({"q": q} if q else {})}
    if wants_partial():
        return render_template("contacts/_rows.html", lst=lst, page=page, q=q, params=params)
    total = None if q else contact_count(lst.id)
    return render_template("contacts/index.html", lst=lst, page=page, q=q, params=params,
                           total=total)


def _get_contact_or_404(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    return contact


@bp.get("/contacts/<int:contact_id>")
def show(contact_id: int):
    contact = _get_contact_or_404(contact_id)
    return render_template("contacts/show.html", contact=contact,
                           custom=service.custom_values(contact))


@bp.post("/contacts/<int:contact_id>/unsubscribe")
def unsubscribe(contact_id: int):
    contact = _get_contact_or_404(contact_id)
    if service.unsubscribe(contact):
        flash(f"{contact.email} is unsubscribed; imports will not re-subscribe it.", "success")
    else:
        flash(f"{contact.email} was unsubscribed already.", "info")
    return redirect(url_for("contacts.show", contact_id=contact.id))
