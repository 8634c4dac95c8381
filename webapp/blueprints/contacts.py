"""A list's contacts (keyset pages, live search) and one contact's detail."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from ..extensions import db
from ..models import Contact, ContactList
from ..models.base import utcnow
from ..services import contacts as service
from ..services import contacts_list as listing
from ..services.errors import FormError
from ..services.lists import contact_count
from ..services.paging import parse_cursor
from ..views_common import wants_partial

bp = Blueprint("contacts", __name__)


@bp.get("/lists/<int:list_id>/contacts")
def index(list_id: int):
    """The list's contacts, narrowed by filters and search. An htmx request gets the rows;
    one that changes the filters (no cursor) also gets the count and export link out of
    band, so paging never pays for the count."""
    lst = db.get_or_404(ContactList, list_id)
    q = service.clean_query(request.args.get("q"))
    filters = listing.ContactFilters.parse(request.args)
    after = parse_cursor(request.args.get("after"))
    before = parse_cursor(request.args.get("before"))
    page = listing.page(lst.id, filters, q, after=after, before=before)
    view_params = {**filters.params(), **({"q": q} if q else {})}
    params = {"list_id": lst.id, **view_params}
    context = {"lst": lst, "page": page, "q": q, "params": params, "filters": filters,
               "export_params": view_params,
               "cycle_names": {c.id: c.name for c in lst.cycles}}
    if wants_partial():
        paging = after is not None or before is not None
        context["summary"] = None if paging else _summary(lst.id, filters, q)
        context["oob_summary"] = context["summary"] is not None
        return render_template("contacts/_rows.html", **context)
    return render_template("contacts/index.html", summary=_summary(lst.id, filters, q),
                           choices=listing.filter_choices(lst.id), **context)


def _summary(list_id: int, filters, q: str) -> dict:
    """The count line: the list's total and how many match the filters (a search term is
    not counted: it would scan the list on every keystroke)."""
    if q:
        return {"total": None, "matching": None}
    total = contact_count(list_id)
    return {"total": total,
            "matching": listing.count(list_id, filters) if filters.active else total}


@bp.get("/lists/<int:list_id>/contacts.csv")
def export(list_id: int):
    """The list's contacts (or the filtered view) as a streamed CSV download."""
    lst = db.get_or_404(ContactList, list_id)
    q = service.clean_query(request.args.get("q"))
    filters = listing.ContactFilters.parse(request.args)
    stamp = f"{utcnow():%Y-%m-%d}"
    slug = "".join(ch if ch.isalnum() else "-" for ch in lst.name.lower()).strip("-")[:40]
    name = f"contacts-{slug or lst.id}{'-filtered' if filters.active or q else ''}-{stamp}.csv"
    return Response(
        stream_with_context(listing.iter_export(lst.id, filters, q)), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Cache-Control": "no-store"})


def _show(contact: Contact, *, errors: dict | None = None, evidence: str = "",
          status: int = 200):
    history = service.consent_history(contact)
    manual = next((e for e in history if e.user_id is not None), None)
    return render_template("contacts/show.html", contact=contact,
                           custom=service.custom_values(contact), history=history,
                           last_manual=manual, suppression=service.suppression_of(contact),
                           errors=errors or {}, evidence=evidence), status


@bp.get("/contacts/<int:contact_id>")
def show(contact_id: int):
    return _show(db.get_or_404(Contact, contact_id))


@bp.route("/contacts/<int:contact_id>/unsubscribe", methods=["GET", "POST"])
def unsubscribe(contact_id: int):
    """Ask first (GET, or a POST without confirm=yes); the confirmed POST unsubscribes and
    records who did it and why."""
    contact = db.get_or_404(Contact, contact_id)
    reason = " ".join(request.form.get("reason", "").split())[:400]
    if request.method == "GET" or request.form.get("confirm") != "yes":
        if contact.status == "unsubscribed" and contact.unsubscribed_locally:
            flash(f"{contact.email} was unsubscribed already.", "info")
            return redirect(url_for("contacts.show", contact_id=contact.id))
        return render_template("contacts/confirm_unsubscribe.html", contact=contact,
                               reason=reason)
    if service.unsubscribe(contact, current_user, reason):
        flash(f"{contact.email} is unsubscribed; imports will not re-subscribe it.", "success")
    else:
        flash(f"{contact.email} was unsubscribed already.", "info")
    return redirect(url_for("contacts.show", contact_id=contact.id))


@bp.post("/contacts/<int:contact_id>/resubscribe")
def resubscribe(contact_id: int):
    """Re-subscribe by a team member, only with the evidence of consent written down."""
    contact = db.get_or_404(Contact, contact_id)
    evidence = request.form.get("evidence", "")[:500]
    try:
        service.resubscribe(contact, current_user, evidence)
    except FormError as exc:
        return _show(contact, errors={exc.field: exc.message}, evidence=evidence, status=422)
    flash(f"{contact.email} is subscribed again; the evidence is in its consent history.",
          "success")
    return redirect(url_for("contacts.show", contact_id=contact.id), code=303)
