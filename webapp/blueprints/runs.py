"""Import statistics: the workspace-wide run history (filterable, keyset pages), a run's
page, its live progress partial and the rejected rows as a CSV download."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_htmx import make_response as htmx_response

from ..extensions import db
from ..imports.rejects import iter_csv
from ..imports.runs import cancel_run
from ..services import runs_view, undo_view
from ..services.paging import parse_cursor
from ..views_common import wants_partial

bp = Blueprint("runs", __name__, url_prefix="/imports/runs")


@bp.get("/")
def index():
    filters = runs_view.HistoryFilters.parse(request.args)
    page = runs_view.history_page(filters, after=parse_cursor(request.args.get("after")),
                                  before=parse_cursor(request.args.get("before")))
    context = {"page": page, "filters": filters, "params": filters.params(),
               "view": runs_view, "undone": undo_view.undone_for(page.rows)}
    if wants_partial():
        return render_template("runs/_history.html", **context)
    return render_template("runs/index.html", choices=runs_view.filter_choices(), **context)


@bp.get("/<int:run_id>")
def show(run_id: int):
    run = db.one_or_404(runs_view.run_query(run_id))
    reason = runs_view.clean_reason(request.args.get("reason"))
    rejects = runs_view.rejects_page(run.id, reason,
                                     after=parse_cursor(request.args.get("after")),
                                     before=parse_cursor(request.args.get("before")))
    context = {"run": run, "rejects": rejects, "view": runs_view, "reason": reason,
               "reason_choices": runs_view.reason_choices(run)}
    if wants_partial() and request.args.get("part") == "rejects":
        return render_template("runs/_rejects.html", **context)
    return render_template("runs/show.html", details=runs_view.run_details(run),
                           progress=runs_view.progress_info(run),
                           undo=undo_view.section(run), undo_view=undo_view, **context)


@bp.get("/<int:run_id>/progress")
def progress(run_id: int):
    """The self-replacing progress element: polls (every 1 s) only while the run is live.
    In a details-page row (`at=row`) the final answer also refreshes the row's last-run,
    next-run and state cells out of band; on the run page it reloads the page."""
    run = db.one_or_404(runs_view.run_query(run_id))
    db.session.refresh(run)
    where = "row" if request.values.get("at") == "row" else "page"
    if not wants_partial():
        return redirect(url_for("runs.show", run_id=run.id))
    row = None
    if where == "row" and not run.live:
        row = runs_view.row_for(run.recurring_import)
    return htmx_response(  # on the run page only a poll asks: the final answer reloads it
        render_template("runs/_progress.html", progress=runs_view.progress_info(run),
                        where=where, oob_row=row, view=runs_view),
        refresh=where == "page" and not run.live)


@bp.post("/<int:run_id>/cancel")
def cancel(run_id: int):
    """Cancel a queued run (a running one finishes its page and cannot be canceled)."""
    run = db.one_or_404(runs_view.run_query(run_id))
    canceled = cancel_run(run.id)
    if not wants_partial():
        flash("The run was canceled." if canceled
              else "The run had already started, so it can no longer be canceled.",
              "success" if canceled else "error")
        return redirect(url_for("runs.show", run_id=run.id))
    return progress(run.id)


@bp.get("/<int:run_id>/rejects.csv")
def rejects_csv(run_id: int):
    run = db.one_or_404(runs_view.run_query(run_id))
    reason = runs_view.clean_reason(request.args.get("reason"))
    filename = f"import-run-{run.id}-{reason.replace('_', '-') or 'rejects'}.csv"
    rows = iter_csv(run.id, source=runs_view.run_source_label(run), reason=reason)
    return Response(
        stream_with_context(rows), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store"},
    )
