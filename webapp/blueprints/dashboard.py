"""Dashboard: lists with their contact counts, plan usage and the list-extension fee."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..services.lists import all_lists, counts_by_list
from ..services.usage import current_usage

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    return render_template(
        "dashboard/index.html", lists=all_lists(), counts=counts_by_list(), usage=current_usage()
    )
