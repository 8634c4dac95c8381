"""System status: database, Redis, workers, scheduler tick, periodic jobs."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..services.status import current_status
from ..views_common import wants_partial

bp = Blueprint("status", __name__, url_prefix="/status")


@bp.get("/")
def index():
    template = "status/_checks.html" if wants_partial() else "status/index.html"
    return render_template(template, status=current_status())
