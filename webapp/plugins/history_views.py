"""A Shopify source's order history import: start it (POST) and its self-replacing
progress widget (GET, polled by htmx only while the run is live)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from ..commerce import history
from ..views_common import wants_partial
from . import sources
from .pages import history_context

bp = Blueprint("plugin_history", __name__, url_prefix="/plugins")


def _source_or_404(source_id: int):
    source = sources.get(source_id)
    if source is None:
        abort(404)
    return source


def _partial(source, message: str = "", status: int = 200):
    response = render_template("plugins/_history.html", history_message=message,
                               source=source, **history_context(source))
    return response, status, {"Vary": "HX-Request", "Cache-Control": "no-store"}


@bp.post("/<int:source_id>/history")
def start(source_id: int):
    """Queue the history import; a second start while one runs is refused in plain words."""
    source = _source_or_404(source_id)
    run, reason = history.start(source)
    message = reason or "Order history import started."
    if wants_partial():
        return _partial(source, message)
    flash(message, "error" if run is None else "success")
    return redirect(url_for("plugins.show", source_id=source.id), code=303)


@bp.get("/<int:source_id>/history")
def progress(source_id: int):
    """The widget alone (htmx), or the source page that holds it."""
    source = _source_or_404(source_id)
    if wants_partial():
        return _partial(source)
    return redirect(url_for("plugins.show", source_id=source.id), code=303)
