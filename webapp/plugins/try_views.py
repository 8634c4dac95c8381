"""The "try it" page of a website source: the install tag, and the snippet embedded in the
page with buttons that send a page view, a sign-up and a cart event, listing what it sent."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import or_, select

from ..extensions import db
from ..models.base import utcnow
from ..models.plugins import PluginKey, PluginSource
from ..security import decrypt

bp = Blueprint("plugin_try", __name__, url_prefix="/plugins/sources")


def source_public_key(source: PluginSource) -> str | None:
    """The source's newest valid public key, to show in the tag. Stands in for
    `webapp.plugins.keys.public_key(source.id)` (the receive side) until both are merged."""
    now = utcnow()
    token = db.session.scalar(
        select(PluginKey.secret_encrypted)
        .where(PluginKey.source_id == source.id, PluginKey.kind == "public",
               PluginKey.revoked_at.is_(None), PluginKey.secret_encrypted.is_not(None),
               or_(PluginKey.expires_at.is_(None), PluginKey.expires_at > now))
        .order_by(PluginKey.created_at.desc(), PluginKey.id.desc())
        .limit(1)
    )
    try:
        return decrypt(token) if token else None
    except ValueError:  # encrypted under a key no longer configured: treat as no key
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
