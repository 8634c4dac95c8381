"""Placeholder; the pages helper writes this module."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    return "dashboard"
