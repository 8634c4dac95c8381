"""Per-list actions on the integration details page: Stop imports, Resume, Import now, and
the row partial those actions re-render (a full-page post redirects back to the page)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..imports import actions
from ..models import RecurringImport
from ..services import runs_view
from ..views_common import wants_partial

bp = Blueprint("recurring", __name__, url_prefix="/imports")

FLASH_TONES = {"ok": "success", "warn": "info", "bad": "error"}


@bp.app_template_global("import_rows")
def import_rows(integration) -> list[runs_view.ImportRow]:
    """The details page's per-list rows of one integration (called from the template)."""
    return runs_view.rows_for(integration)


@bp.app_template_global("run_progress")
def run_progress(run) -> runs_view.ProgressInfo:
    return runs_view.progress_info(run)


def _import_or_404(import_id: int) -> RecurringImport:
    """The import, which must belong to the integration the page is about when the request
    names one (`integration` in the form or query): another integration's import is a 404."""
    imp = db.get_or_404(RecurringImport, import_id)
    claimed = request.values.get("integration")
    if claimed is not None and claimed != str(imp.integration_id):
        abort(404)
    return imp


def _details_url(imp: RecurringImport) -> str:
    return url_for("integrations.show", provider=imp.integration.provider) + \
        f"#import-row-{imp.id}"


def _answer(imp: RecurringImport, message: str, tone: str = "ok"):
    """The re-rendered row (htmx), or back to the details page with the message flashed."""
    if wants_partial():
        return render_template("recurring/_row.html",
                               row=runs_view.row_for(imp, message, tone))
    flash(f"{imp.list.name}: {message}", FLASH_TONES.get(tone, "info"))
    return redirect(_details_url(imp), code=303)


@bp.get("/<int:import_id>/row")
def row(import_id: int):
    imp = _import_or_404(import_id)
    if not wants_partial():
        return redirect(_details_url(imp))
    return render_template("recurring/_row.html", row=runs_view.row_for(imp))


@bp.post("/<int:import_id>/stop")
def stop(import_id: int):
    imp = _import_or_404(import_id)
    return _answer(imp, actions.stop(imp))


@bp.post("/<int:import_id>/resume")
def resume(import_id: int):
    imp = _import_or_404(import_id)
    ok, message = actions.resume(imp)
    return _answer(imp, message, "ok" if ok else "bad")


@bp.post("/<int:import_id>/run")
def import_now(import_id: int):
    imp = _import_or_404(import_id)
    _run, message, tone = actions.import_now(imp, current_user.get_id() and current_user.id)
    return _answer(imp, message, tone)
