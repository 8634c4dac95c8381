"""Workspace settings: name, plan limit, list-extension price and currency, time zone."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..models import WorkspaceSettings
from ..services import settings as service
from ..services.usage import current_usage

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _render(form: dict, errors: dict, status: int = 200):
    return render_template(
        "settings/index.html", form=form, errors=errors, usage=current_usage(),
        time_zones=service.time_zones(), currencies=service.currencies(),
    ), status


@bp.get("/")
def index():
    row = WorkspaceSettings.get()
    form = {"name": row.name, "subscriber_limit": row.subscriber_limit,
            "extension_price": f"{row.extension_price:.2f}", "currency": row.currency,
            "time_zone": row.time_zone}
    return _render(form, {})


@bp.post("/")
def save():
    values, errors = service.validate(request.form)
    if errors:
        return _render(request.form, errors, 422)
    service.save(values)
    flash("Settings saved.", "success")
    return redirect(url_for("settings.index"))
