"""Undo of an import run: the preview to confirm, the start, and the live progress."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user

from ..extensions import db
from ..imports import undo as engine
from ..services import runs_view, undo_view
from ..views_common import wants_partial

bp = Blueprint("undo", __name__, url_prefix="/imports/runs")


def _run_or_404(run_id: int):
    return db.one_or_404(runs_view.run_query(run_id))


@bp.get("/<int:run_id>/undo")
def confirm(run_id: int):
    """What the undo would do (counts, reasons, samples), then a confirm button."""
    run = _run_or_404(run_id)
    refusal = engine.refusal(run)
    summary = None if refusal else engine.preview(run)
    return render_template("runs/undo.html", run=run, refusal=refusal, summary=summary,
                           kept_labels=engine.KEPT, consent_note=undo_view.CONSENT_NOTE,
                           view=runs_view)


@bp.post("/<int:run_id>/undo")
def start(run_id: int):
    run = _run_or_404(run_id)
    undo, refusal = engine.start_undo(run, current_user.id)
    if undo is None:
        flash(refusal, "error")
    else:
        flash("Undo started. Its progress is shown below.", "success")
    return redirect(url_for("runs.show", run_id=run.id) + "#undo")


@bp.get("/<int:run_id>/undo/progress")
def progress(run_id: int):
    """The undo's self-replacing progress element: polls every second only while live;
    the final answer reloads the run page to show the outcome."""
    run = _run_or_404(run_id)
    if not wants_partial():
        return redirect(url_for("runs.show", run_id=run.id) + "#undo")
    undo = engine.undo_of(run.id)
    if undo is None:
        abort(404)
    db.session.refresh(undo)
    response = make_response(render_template("runs/_undo_progress.html", undo=undo,
                                             label=undo_view.progress_label(undo)))
    if not undo.live:
        response.headers["HX-Refresh"] = "true"
    return response
