"""Dashboard: what needs attention, recent runs, the next scheduled imports, plan usage and
the list-extension fee, and the lists with their contact counts."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..services import dashboard, dashboard_forecast, runs_view
from ..services.lists import all_lists, counts_by_list
from ..services.usage import current_usage

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    return render_template(
        "dashboard/index.html", lists=all_lists(), counts=counts_by_list(), usage=current_usage(),
        attention=dashboard.attention(), runs=dashboard.recent_runs(),
        upcoming=dashboard.next_imports(), next_runs=dashboard_forecast.next_runs(),
        view=runs_view,
    )
