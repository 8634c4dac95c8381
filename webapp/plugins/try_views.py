"""The "try it" page of a website source: the install tag, and the snippet embedded in the
page with buttons that send a page view, a sign-up and a cart event, listing what it sent."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for

from ..extensions import db
from ..models.plugins import PluginSource
from . import keys

bp = Blueprint("plugin_try", __name__, url_prefix="/plugins/sources")


def source_public_key(source: PluginSource) -> str | None:
    """The source's newest valid public key, to show in the tag (None when there is none
    or it was encrypted under a key no longer configured)."""
    try:
        return keys.public_key(source.id)
    except ValueError:
        return None


def install_tag(app_url: str, key: str) -> str:
    """The one tag a site owner pastes into every page (the contract's form)."""
    return (f'<script async src="{app_url}/static/tributary.js" data-key="{key}" '
            f'data-host="{app_url}"></script>')


@bp.get("/<int:source_id>/try")
def index(source_id: int):
    source = db.session.get(PluginSource, source_id)
    if source is None:
        abort(404)
    app_url = request.host_url.rstrip("/")
    key = source_public_key(source) if source.kind == "website" else None
    return render_template(
        "plugin_try/index.html", source=source, key=key, app_url=app_url,
        tag=install_tag(app_url, key) if key else "",
        origin_allowed=app_url in (source.allowed_origins or []),
        snippet_url=url_for("static", filename="tributary.js"),
    )
