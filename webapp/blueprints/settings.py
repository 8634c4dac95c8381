"""Workspace settings: name, plan limit, list-extension price and currency, time zone, and
the OAuth app credentials per provider."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ..authz import require_admin
from ..models import WorkspaceSettings
from ..services import settings as service
from ..services.usage import current_usage

bp = Blueprint("settings", __name__, url_prefix="/settings")
bp.before_request(require_admin)  # workspace settings and OAuth apps: admins only


def _render(form: dict, errors: dict, status: int = 200, oauth_errors=None, oauth_form=None):
    return render_template(
        "settings/index.html", form=form, errors=errors, usage=current_usage(),
        time_zones=service.time_zones(), currencies=service.currencies(),
        oauth_apps=service.oauth_apps(), oauth_errors=oauth_errors or {},
        oauth_form=oauth_form or {},
    ), status


def _current_form() -> dict:
    row = WorkspaceSettings.get()
    return {"name": row.name, "subscriber_limit": row.subscriber_limit,
            "extension_price": f"{row.extension_price:.2f}", "currency": row.currency,
            "time_zone": row.time_zone}


@bp.get("/")
def index():
    return _render(_current_form(), {})


@bp.post("/")
def save():
    values, errors = service.validate(request.form)
    if errors:
        return _render(request.form, errors, 422)
    service.save(values)
    flash("Settings saved.", "success")
    return redirect(url_for("settings.index"))


@bp.post("/oauth/<provider>")
def save_oauth_app(provider: str):
    """An OAuth app's client id and secret (the secret is never shown back)."""
    label = service.OAUTH_APP_LABELS.get(provider) or abort(404)
    errors = service.save_oauth_app(provider, request.form)
    if errors:
        form = {provider: {"client_id": request.form.get("client_id", "")}}
        return _render(_current_form(), {}, 422, oauth_errors={provider: errors},
                       oauth_form=form)
    flash(f"{label} app credentials saved.", "success")
    return redirect(url_for("settings.index") + "#oauth-apps")


@bp.post("/oauth/<provider>/delete")
def delete_oauth_app(provider: str):
    label = service.OAUTH_APP_LABELS.get(provider) or abort(404)
    if service.delete_oauth_app(provider):
        flash(f"{label} app credentials removed from the settings.", "success")
    return redirect(url_for("settings.index") + "#oauth-apps")
