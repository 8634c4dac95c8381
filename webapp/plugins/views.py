"""Plugin sources pages: the "Plugin imports" section of the Integrations page, a set-up
page per source kind, a page per source (settings, keys, enable/disable, bad signatures).
New keys are shown once, on the answer to the request that made them; the forms that make
them carry a one-time token, so a reload re-posting one changes nothing."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ..hardening import parse_id
from ..models import ContactList, Cycle
from ..services.errors import FormError
from . import keys, sources
from .pages import source_context

bp = Blueprint("plugins", __name__, url_prefix="/plugins")


@bp.app_template_global()
def plugin_sources_summary():
    """What the Integrations page's "Plugin imports" section lists (tiles and sources)."""
    return {"kinds": sources.KINDS, "sources": sources.all_sources()}


def _source_or_404(source_id: int):
    source = sources.get(source_id)
    if source is None:
        abort(404)
    return source


def _kind() -> str:
    kind = request.values.get("kind", "website")
    if kind not in sources.KINDS:
        abort(404)
    return kind


def _choices() -> dict:
    from sqlalchemy import select

    from ..extensions import db

    return {
        "lists": list(db.session.scalars(select(ContactList).order_by(ContactList.name))),
        "cycles": list(db.session.scalars(select(Cycle).order_by(Cycle.name))),
        "add_choices": sources.ADD_EVENT_CHOICES,
        "integrations": sources.shopify_integrations(),
    }


@bp.app_template_global()
def plugin_form_token() -> str:
    """A fresh one-time token for a form that shows a key (the hidden `once` field)."""
    return keys.new_form_token()


OUT_OF_DATE = sources.OUT_OF_DATE
SHOWN_ALREADY = "This key was shown once already; rotate again for a new one."


def _shown_already(source_id: int | None, message: str = SHOWN_ALREADY):
    """A re-post of a form whose key was shown: nothing changed, off to the source's page
    (a GET, so a further reload re-posts nothing)."""
    flash(message, "error")
    if source_id and sources.get(source_id) is not None:
        return redirect(url_for("plugins.show", source_id=source_id), code=303)
    return redirect(url_for("integrations.index"), code=303)


def _once(response):
    """Pages that show a key: never cached, never stored by the browser."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/new", methods=["GET", "POST"])
def new():
    """The set-up page of a new source (`?kind=shopify|woocommerce|website`)."""
    kind = _kind()
    form, errors = {"add_events": sources.DEFAULT_ADD_EVENTS}, {}
    status = 200
    if request.method == "POST":
        form = {**request.form.to_dict(), "add_events": request.form.getlist("add_events")}
        try:
            made = sources.create(kind, request.form, once=request.form.get("once", ""))
        except sources.ShownAlready as done:
            return _shown_already(done.source_id, "This source was set up already and its "
                                  "keys were shown once; rotate a key for a new one.")
        except FormError as exc:
            errors, status = {exc.field: exc.message}, 422
            if exc.field == "once":
                flash(exc.message, "error")
        else:
            flash(f"{sources.KINDS[kind]} {made.source.name} set up.", "success")
            return _once(make_response(render_template(
                "plugins/show.html", new_keys=made.new_keys,
                **source_context(made.source), **_choices())))
    return render_template("plugins/new.html", kind=kind, kind_label=sources.KINDS[kind],
                           form=form, errors=errors, **_choices()), status


@bp.get("/<int:source_id>")
def show(source_id: int):
    source = _source_or_404(source_id)
    return render_template("plugins/show.html", new_keys=[], errors={},
                           **source_context(source), **_choices())


@bp.post("/<int:source_id>")
def save(source_id: int):
    source = _source_or_404(source_id)
    try:
        sources.update(source, request.form)
    except FormError as exc:
        from ..extensions import db

        db.session.rollback()
        return render_template("plugins/show.html", new_keys=[],
                               errors={exc.field: exc.message},
                               **source_context(source), **_choices()), 422
    flash("Settings saved.", "success")
    return redirect(url_for("plugins.show", source_id=source.id), code=303)


@bp.post("/<int:source_id>/enable")
def enable(source_id: int):
    source = _source_or_404(source_id)
    if sources.enable(source):
        flash(f"{source.name} enabled: events are received.", "success")
    else:
        flash(f"{source.name} could not be enabled: {source.status_reason}", "error")
    return redirect(url_for("plugins.show", source_id=source.id), code=303)


@bp.post("/<int:source_id>/disable")
def disable(source_id: int):
    source = _source_or_404(source_id)
    sources.disable(source)
    flash(f"{source.name} disabled: its events are refused until it is enabled again.",
          "success")
    return redirect(url_for("plugins.show", source_id=source.id), code=303)


@bp.post("/<int:source_id>/rotate")
def rotate(source_id: int):
    """A new key of the kind asked; the old one works 24 hours more (or until revoked)."""
    source = _source_or_404(source_id)
    once = request.form.get("once")
    if not keys.form_token_ok(once):
        flash(OUT_OF_DATE, "error")
        return redirect(url_for("plugins.show", source_id=source.id), code=303)
    try:
        made = sources.rotate_key(source, request.form.get("kind", ""), once=once)
    except sources.ShownAlready:
        return _shown_already(source_id)
    if made is None:
        abort(404)
    flash("New key made. The previous one keeps working for 24 hours, or until you revoke "
          "it below.", "success")
    return _once(make_response(render_template(
        "plugins/show.html", new_keys=[made], errors={}, **source_context(source),
        **_choices())))


@bp.post("/<int:source_id>/revoke")
def revoke(source_id: int):
    source = _source_or_404(source_id)
    key_id = parse_id(request.form.get("key_id"))
    if key_id and sources.revoke_key(source, key_id):
        flash("Key revoked: it stops working now.", "success")
    else:
        flash("That key cannot be revoked: it is the only valid one of its kind (make a new "
              "one first) or was revoked already.", "error")
    return redirect(url_for("plugins.show", source_id=source.id), code=303)


