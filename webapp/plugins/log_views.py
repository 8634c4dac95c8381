"""The event log pages (workspace-wide and per source), an event's page, replay, and the
contact page's privacy actions (erase this person, export their data)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Contact, PluginEvent, PluginSource
from ..models.base import utcnow
from ..services.paging import parse_cursor
from ..views_common import wants_partial
from . import log, privacy

bp = Blueprint("plugin_log", __name__)


def _source_or_404(source_id: int) -> PluginSource:
    source = db.session.get(PluginSource, source_id)
    if source is None:
        abort(404)
    return source


def _render_log(source: PluginSource | None):
    """The log page, or (htmx) its self-replacing rows: the first page polls every 2 s
    while the tab is visible; a page reached by the pager does not poll."""
    filters = log.LogFilters.parse(request.args, source.id if source else None)
    after = parse_cursor(request.args.get("after"))
    before = parse_cursor(request.args.get("before"))
    page = log.events_page(filters, after=after, before=before)
    endpoint = "plugin_log.source_log" if source else "plugin_log.index"
    route = {"source_id": source.id} if source else {}
    params = {**route, **filters.params(with_source=source is None)}
    context = {"source": source, "filters": filters, "page": page, "params": params,
               "endpoint": endpoint, "live": after is None and before is None,
               "names": log.source_names(), "log": log}
    if wants_partial():
        return render_template("plugin_log/_rows.html", **context)
    return render_template("plugin_log/index.html", failed=log.failed_page(filters),
                           counts=log.status_counts(source.id if source else None),
                           kinds=log.EVENT_KINDS, statuses=log.STATUS_LABELS, **context)


@bp.get("/plugins/events")
def index():
    return _render_log(None)


@bp.get("/plugins/sources/<int:source_id>/events")
def source_log(source_id: int):
    return _render_log(_source_or_404(source_id))


@bp.get("/plugins/events/<int:event_id>")
def show(event_id: int):
    event = db.session.get(PluginEvent, event_id)
    if event is None:
        abort(404)
    return render_template("plugin_log/show.html", event=event, log=log,
                           body=log.pretty_body(event), line=log.describe(event),
                           export=privacy.export_of_event(event.id),
                           contact=db.session.get(Contact, event.contact_id)
                           if event.contact_id else None)


@bp.get("/plugins/events/<int:event_id>/export.json")
def event_export(event_id: int):
    """The data export a Shopify `customers/data_request` built, as a JSON download."""
    export = privacy.export_of_event(event_id)
    if export is None:
        abort(404)
    return _json_download(export.export_json, f"data-request-{event_id}")


@bp.post("/plugins/events/replay")
def replay():
    """Replay one failed event or the selected ones; processed events are left alone."""
    ids = [int(v) for v in request.form.getlist("event_id") if v.isdigit() and len(v) < 19]
    count = log.replay(ids)
    if count:
        flash(f"{count} failed event{'s' if count != 1 else ''} queued to be processed again.",
              "success")
    else:
        flash("Nothing to replay: only failed events can be replayed.", "info")
    back = request.form.get("back", "")
    if not back.startswith("/plugins/") or back.startswith("//"):
        back = url_for("plugin_log.index")
    return redirect(back, code=303)


def _contact_or_404(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    return contact


@bp.get("/contacts/<int:contact_id>/export.json")
def export_contact(contact_id: int):
    """Everything stored about this person (every list), as a JSON download."""
    contact = _contact_or_404(contact_id)
    data = privacy.export_person(contact.email_norm)
    return _json_download(json.dumps(data, ensure_ascii=False, indent=2),
                          f"person-{contact.id}")


@bp.route("/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
def erase_contact(contact_id: int):
    """Ask first; the confirmed POST erases the person everywhere and keeps an anonymised
    audit line."""
    contact = _contact_or_404(contact_id)
    if request.method == "GET" or request.form.get("confirm") != "yes":
        count = db.session.query(Contact).filter(
            Contact.email_norm == contact.email_norm).count()
        return render_template("plugin_log/confirm_erase.html", contact=contact, lists=count)
    email, list_id = contact.email, contact.list_id
    audit = privacy.erase_person(contact.email_norm,
                                 requested_by=f"team member {current_user.email}",
                                 user_id=current_user.id,
                                 suppress=request.form.get("suppress") == "yes")
    db.session.commit()
    flash(f"{email} was erased: {audit.contacts_removed} contact "
          f"row{'s' if audit.contacts_removed != 1 else ''} and {audit.events_removed} "
          f"event{'s' if audit.events_removed != 1 else ''}.", "success")
    return redirect(url_for("contacts.index", list_id=list_id), code=303)


def _json_download(text: str, stem: str) -> Response:
    return Response(text, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{stem}-{utcnow():%Y-%m-%d}.json"',
        "Cache-Control": "no-store"})


@bp.app_template_global("plugin_timeline")
def plugin_timeline(contact_id: int):
    """The contact page's activity timeline (newest first), with each event's source."""
    rows, more = log.timeline(contact_id)
    return {"rows": rows, "more": more, "names": log.source_names() if rows else {}}
