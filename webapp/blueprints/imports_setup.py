"""Set up recurring imports and assign custom fields: the set-up form, its htmx partials
(sources of a group, cycles of a list, the fee forecast), the mapping grid with live
assignment, inline custom fields, Preview and Import."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from ..customfields import FieldDefinitionError
from ..extensions import db
from ..hardening import parse_id
from ..models import RecurringImport
from ..models.lists import FIELD_FORMATS, FIELD_TYPES
from ..services import import_forecast, import_form, import_source, mapping_grid
from ..services import mapping as rules
from ..services.settings import time_zones
from ..views_common import redirect_after_post, wants_partial

bp = Blueprint("imports_setup", __name__)


def _integration_or_404(integration_id: int):
    return db.one_or_404(import_form.connected_integration(integration_id))


def _import_or_404(import_id: int) -> RecurringImport:
    """The import; an id that belongs to another integration than the one named is a 404."""
    imp = db.get_or_404(RecurringImport, import_id)
    if request.args.get("integration_id", type=int) not in (None, imp.integration_id):
        abort(404)  # an import id that belongs to another integration
    return imp


def _details_url(imp_or_integration) -> str:
    integration = getattr(imp_or_integration, "integration", imp_or_integration)
    return url_for("integrations.show", provider=integration.provider)


# ------------------------------------------------------------------ the set-up form


def _setup_page(integration, values, imp=None, errors=None, status=200):
    trouble, groups, sources = None, [], []
    try:
        groups = import_source.groups(integration)
        if not values.group and len(groups) == 1:
            values.group = groups[0].id
        if values.group in {g.id for g in groups}:
            sources = import_source.sources(integration, values.group)
    except import_source.SourceTrouble as exc:
        trouble = exc
    list_id = values.selected_list_id()
    consent_fields = []
    if trouble is None and values.group in {g.id for g in groups}:
        try:
            consent_fields = import_source.consent_fields(integration, values.group)
        except import_source.SourceTrouble:
            consent_fields = []
    context = {
        "integration": integration, "label": import_source.label(integration), "imp": imp,
        "values": values, "errors": errors or {}, "trouble": trouble, "groups": groups,
        "sources": sources, "lists": import_form.lists(), "cycles": import_form.cycles_of(list_id),
        "criteria": import_form.CRITERIA_HELP, "time_zones": time_zones(),
        "new_list": import_form.NEW_LIST, "consent_filters": import_form.CONSENT_FILTER_HELP,
        "consent_fields": consent_fields, "is_store": integration.provider in import_source.STORES,
    }
    return render_template("imports_setup/setup.html", **context), status


def _submit(integration, imp=None):
    values, input_errors = import_form.read_form(request.form)
    if request.form.get("action") == "reload":  # the no-JS "show sources / cycles" button
        return _setup_page(integration, values, imp)
    try:
        saved = import_form.save_setup(integration, values, current_user.id, imp,
                                       input_errors)
    except import_form.SetupErrors as exc:
        return _setup_page(integration, values, imp, exc.errors, status=422)
    except import_source.SourceTrouble as exc:
        return _setup_page(integration, values, imp, {"group": exc.message}, status=422)
    flash("Settings saved. Now assign the source fields." if imp is None
          else "Settings saved.", "success")
    return redirect(url_for("imports_setup.mapping", import_id=saved.id), code=303)


@bp.route("/integrations/<int:integration_id>/imports/new", methods=["GET", "POST"])
def new(integration_id: int):
    integration = _integration_or_404(integration_id)
    if request.method == "POST":
        return _submit(integration)
    values = import_form.SetupValues(
        time_zone=import_form.workspace_zone(),
        consent_filter=import_form.default_consent_filter(integration))
    if request.args.get("list_id"):
        values.list_id = request.args["list_id"]
    return _setup_page(integration, values)


@bp.route("/imports/<int:import_id>/settings", methods=["GET", "POST"])
def edit(import_id: int):
    imp = _import_or_404(import_id)
    integration = _integration_or_404(imp.integration_id)
    if request.method == "POST":
        return _submit(integration, imp)
    return _setup_page(integration, import_form.SetupValues.from_import(imp), imp)


@bp.get("/integrations/<int:integration_id>/sources")
def sources(integration_id: int):
    """The source select for a group (htmx when the group changes)."""
    integration = _integration_or_404(integration_id)
    group = (request.args.get("group") or "").strip()
    trouble, items = None, []
    try:
        items = import_source.sources(integration, group)
    except import_source.SourceTrouble as exc:
        trouble = exc
    status = 200 if trouble is None or wants_partial() else 404
    if not wants_partial():
        values = import_form.SetupValues(group=group, time_zone=import_form.workspace_zone())
        return _setup_page(integration, values, status=status)
    return render_template("imports_setup/_source.html", sources=items, trouble=trouble,
                           selected="", error=None, integration=integration, group=group)


@bp.get("/integrations/<int:integration_id>/imports/list-options")
def list_options(integration_id: int):
    """The cycle / start day (or new list name) part of the form for the chosen list."""
    integration = _integration_or_404(integration_id)
    values = import_form.SetupValues.from_form(request.args)
    if not wants_partial():
        return redirect(url_for("imports_setup.new", integration_id=integration.id,
                                list_id=values.list_id or None))
    return render_template("imports_setup/_list_options.html", values=values, errors={},
                           cycles=import_form.cycles_of(values.selected_list_id()),
                           new_list=import_form.NEW_LIST, integration=integration)


@bp.get("/integrations/<int:integration_id>/imports/forecast")
def forecast(integration_id: int):
    """The list-extension fee forecast for the chosen list, group, source and criteria."""
    integration = _integration_or_404(integration_id)
    group = (request.args.get("group") or "").strip()
    source = (request.args.get("source") or "").strip()
    criteria = request.args.get("criteria") or "add_update"
    list_id = parse_id(request.args.get("list_id"))  # none yet, or a new list: nothing on it
    result, trouble = None, None
    if group and source:
        try:
            if source in {s.id for s in import_source.sources(integration, group)}:
                only = import_forecast.forecast_only_subscribed(
                    integration, request.args.get("consent_filter"))
                result = import_forecast.estimate(integration, group, source, criteria,
                                                  list_id=list_id, only_subscribed=only)
        except import_source.SourceTrouble as exc:
            trouble = exc
    template = "imports_setup/_forecast.html" if wants_partial() else \
        "imports_setup/forecast.html"
    return render_template(template, result=result, trouble=trouble, integration=integration)


@bp.get("/integrations/<int:integration_id>/imports/consent-counts")
def consent_counts(integration_id: int):
    """How many of a sample of the source's records each consent filter would import."""
    integration = _integration_or_404(integration_id)
    group = (request.args.get("group") or "").strip()
    source = (request.args.get("source") or "").strip()
    field_name = (request.args.get("consent_field") or "").strip()
    result, trouble = None, None
    if group and source:
        try:
            if source in {s.id for s in import_source.sources(integration, group)}:
                if field_name and field_name not in {
                        f.name for f in import_source.consent_fields(integration, group)}:
                    field_name = ""
                result = import_source.consent_counts(integration, group, source, field_name)
        except import_source.SourceTrouble as exc:
            trouble = exc
    return render_template("imports_setup/_consent_counts.html", result=result,
                           trouble=trouble, integration=integration,
                           is_store=integration.provider in import_source.STORES,
                           consent_field=field_name)


# ------------------------------------------------------------------ the mapping grid

MOVE_KEY = "mapping_move"  # the last assignment that moved a target, for one-step Undo


def _grid(imp, failed_status: int = 200):
    """(columns, mapping, custom fields by id); when the source cannot answer, the request
    ends with the mapping page saying why in plain words."""
    try:
        cols = import_source.columns(imp)
    except import_source.SourceTrouble as exc:
        abort(make_response(_trouble_page(imp, exc, failed_status)))
    mapping = mapping_grid.ensure_mapping(imp, cols)
    fields = mapping_grid.custom_fields()
    return cols, mapping, fields


def _column(cols, source: str) -> rules.Column:
    col = next((c for c in cols if c.name == source), None)
    if col is None:
        abort(404)
    return col


def _view_state(imp, cols) -> dict:
    """The view and the field filter of this request (query string or form). Only the page
    picks a default view; a partial request that does not say its view came from the grid
    (the only view before there were two)."""
    raw = request.values.get("view")
    if request.endpoint != "imports_setup.mapping" and raw not in rules.VIEWS:
        raw = "grid"
    q = " ".join((request.values.get("q") or "").split())[:100]
    unassigned = request.values.get("unassigned") in ("1", "on", "true")
    shown = rules.filter_columns(cols, imp.mapping or {}, q, unassigned)
    return {"view": rules.choose_view(raw, len(cols)), "q": q, "unassigned": unassigned,
            "shown": shown, "total": len(cols)}


def _page_url(imp, state, **extra) -> str:
    return url_for("imports_setup.mapping", import_id=imp.id, view=state["view"],
                   q=state["q"] or None, unassigned=1 if state["unassigned"] else None,
                   **extra)


def _cell_context(imp, col, fields, view="grid", **extra):
    by_id = {f.id: f for f in fields}
    target = mapping_grid.target_of(imp.mapping or {}, col.name)
    return {"imp": imp, "col": col, "target": target, "fields": fields, "view": view,
            "warning": rules.type_fit(col, mapping_grid.field_for(target, by_id)),
            "formats": FIELD_FORMATS, "types": FIELD_TYPES, **{"new_field": None, **extra}}


def _status_context(imp, cols, fields, errors=None, view="grid", undone=None) -> dict:
    """The status bar's context, with the warning (and Undo) of a move still undoable."""
    notice = mapping_grid.move_notice(imp, cols, session.get(MOVE_KEY), {f.id: f for f in fields})
    return {"status": mapping_grid.status(imp, cols, errors), "imp": imp, "notice": notice,
            "undone": undone, "view": view}


def _trouble_page(imp, exc, status=200):
    return render_template("imports_setup/mapping.html", imp=imp, trouble=exc,
                           label=import_source.label(imp.integration)), status


@bp.get("/imports/<int:import_id>/mapping")
def mapping(import_id: int):
    imp = _import_or_404(import_id)
    cols, _mapping, fields = _grid(imp)
    key = request.args.get("new")  # the no-JS "New custom field…" form of one column
    col = next((c for c in cols if c.key == key), None)
    extra = {}
    if request.args.get("samples"):  # the no-JS sample values, rendered in place
        try:
            extra["sample_rows"] = import_source.samples(imp, cols)
        except import_source.SourceTrouble as exc:
            flash(f"Sample values could not be loaded: {exc.message}", "error")
    return _mapping_page(imp, cols, fields, new_field=(col.key, _new_field_form(col))
                         if col else None, **extra)


def _samples_by_column(cols, rows) -> dict[str, list[str]]:
    """Sample rows (one value per column) turned into the values of each column."""
    return {c.name: [row[i] for row in rows] for i, c in enumerate(cols)}


@bp.get("/imports/<int:import_id>/mapping/samples")
def samples(import_id: int):
    """The sample values (htmx on load; a plain GET renders the whole page): the grid's
    rows, or each row's sample cell out of band in the one-row-per-field view."""
    imp = _import_or_404(import_id)
    if not wants_partial():
        return redirect(url_for("imports_setup.mapping", import_id=imp.id))
    trouble, rows, cols = None, [], []
    try:
        cols = import_source.columns(imp)
        rows = import_source.samples(imp, cols)  # always all columns: the cache holds one page
    except import_source.SourceTrouble as exc:
        trouble = exc
    state = _view_state(imp, cols)
    by_column = _samples_by_column(cols, rows)
    if state["view"] == "list":
        return render_template("imports_setup/_list_samples.html", trouble=trouble,
                               shown=state["shown"], by_column=by_column, count=len(rows))
    shown_rows = [[by_column[c.name][i] for c in state["shown"]] for i in range(len(rows))]
    return render_template("imports_setup/_samples.html", rows=shown_rows,
                           cols=state["shown"], trouble=trouble, imp=imp)


def _cell_response(imp, cols, fields, col, moved=(), errors=None, added=None, undone=None,
                   **extra):
    """The changed target cell, plus (out of band) the status bar, the cells a target moved
    away from and, for a field created inline, its option in every other shown select."""
    state = _view_state(imp, cols)
    if not wants_partial():
        return redirect(_page_url(imp, state) + f"#col-{col.key}", code=303)
    shown = {c.name for c in state["shown"]}
    if not extra.get("oob"):  # the cell that posted is on the page even when filtered out
        shown.add(col.name)
    view = state["view"]
    main = _cell_context(imp, col, fields, view, **extra) if col.name in shown else None
    others = [_cell_context(imp, _column(cols, name), fields, view, oob=True)
              for name in moved if name in shown]
    new_options = []
    if added is not None:
        new_options = [c for c in state["shown"] if c.name != col.name]
    return render_template(
        "imports_setup/_assign_response.html", main=main, others=others, added=added,
        new_options=new_options, first_field=added is not None and len(fields) == 1,
        **_status_context(imp, cols, fields, errors, view, undone))


@bp.post("/imports/<int:import_id>/mapping/assign")
def assign(import_id: int):
    imp = _import_or_404(import_id)
    cols, _mapping, fields = _grid(imp, 200 if wants_partial() else 502)
    col = _column(cols, request.form.get("source", ""))
    raw = request.form.get("target", "")
    if raw == "__new__":  # show the inline "New custom field…" form in this column
        if not wants_partial():
            state = _view_state(imp, cols)
            return redirect(_page_url(imp, state, new=col.key) + f"#col-{col.key}",
                            code=303)
        return _cell_response(imp, cols, fields, col, new_field=_new_field_form(col))
    try:
        target = mapping_grid.parse_target(raw)
    except ValueError as exc:
        return _cell_response(imp, cols, fields, col, error=str(exc))
    previous = mapping_grid.target_of(imp.mapping or {}, col.name)
    moved = mapping_grid.assign(imp, col.name, target)
    if moved:  # warn where it came from, and keep what Undo needs
        session[MOVE_KEY] = {"import_id": imp.id, "source": col.name, "target": target,
                             "previous": previous, "others": moved}
    else:
        session.pop(MOVE_KEY, None)
    return _cell_response(imp, cols, fields, col, moved)


@bp.post("/imports/<int:import_id>/mapping/undo")
def undo(import_id: int):
    """One-step Undo of a move: the target goes back to its column, the column that took it
    gets its previous target back."""
    imp = _import_or_404(import_id)
    cols, _mapping, fields = _grid(imp, 200 if wants_partial() else 502)
    move = session.pop(MOVE_KEY, None)
    result = mapping_grid.undo_move(imp, cols, move, {f.id: f for f in fields})
    if result is None:
        if not wants_partial():
            flash("Nothing to undo: the fields changed since.", "error")
            return redirect(_page_url(imp, _view_state(imp, cols)), code=303)
        return render_template("imports_setup/_status.html", **_status_context(
            imp, cols, fields, view=_view_state(imp, cols)["view"],
            undone="Nothing to undo: the fields changed since."))
    changed, done = result
    col = _column(cols, move["source"])
    if not wants_partial():
        flash(done, "success")
    return _cell_response(imp, cols, fields, col, changed, undone=done, oob=True)


def _new_field_form(col, form=None, error=None, error_field=None):
    type_, format_, allowed = rules.guess_type(col)
    values = {"name": rules.suggested_name(col), "type": type_, "format": format_,
              "allowed_values": "\n".join(allowed)}
    if form is not None:
        values.update({k: form.get(k, "") for k in values})
    return {"data": values, "error": error, "error_field": error_field}


@bp.post("/imports/<int:import_id>/mapping/fields")
def create_field(import_id: int):
    """Create a custom field inline for one column and assign it there; every other shown
    select gets it as a choice at once (out of band)."""
    imp = _import_or_404(import_id)
    cols, _mapping, fields = _grid(imp, 200 if wants_partial() else 502)
    col = _column(cols, request.form.get("source", ""))
    try:
        created, moved = mapping_grid.create_field(imp, col, request.form)
    except FieldDefinitionError as exc:
        form = _new_field_form(col, request.form, str(exc), exc.field)
        if not wants_partial():
            return _mapping_page(imp, cols, fields, new_field=(col.key, form), status=422)
        return _cell_response(imp, cols, fields, col, new_field=form)
    session.pop(MOVE_KEY, None)
    fields = mapping_grid.custom_fields()
    if not wants_partial():
        flash(f"Custom field {created.name} created and assigned to {col.label}.", "success")
    return _cell_response(imp, cols, fields, col, moved, added=created,
                          created=f"Custom field {created.name} created.")


def _mapping_page(imp, cols, fields, *, new_field=None, errors=None, preview=None,
                  status=200, **extra):
    state = _view_state(imp, cols)
    cells = []
    for col in state["shown"]:
        form = new_field[1] if new_field and new_field[0] == col.key else None
        cells.append(_cell_context(imp, col, fields, state["view"], new_field=form))
    if "sample_rows" in extra:
        extra["by_column"] = _samples_by_column(cols, extra["sample_rows"])
        extra["sample_rows"] = [[extra["by_column"][c.name][i] for c in state["shown"]]
                                for i in range(len(extra["sample_rows"]))]
    context = {"imp": imp, "cols": state["shown"], "cells": cells, "state": state,
               "trouble": None, "preview": preview, "label": import_source.label(imp.integration),
               **_status_context(imp, cols, fields, errors, state["view"]), **extra}
    if request.method == "GET" and wants_partial():  # the filter or the view switch
        return render_template("imports_setup/_view.html", **context), status
    return render_template("imports_setup/mapping.html", **context), status


@bp.post("/imports/<int:import_id>/mapping/ignore")
def ignore(import_id: int):
    """Save the "Ignore columns marked ?" checkbox."""
    imp = _import_or_404(import_id)
    mapping_grid.set_ignore(imp, request.form.get("ignore_unmapped") in ("on", "1", "true"))
    if not wants_partial():
        return redirect(url_for("imports_setup.mapping", import_id=imp.id), code=303)
    try:
        cols = import_source.columns(imp)
    except import_source.SourceTrouble as exc:
        return _trouble_page(imp, exc)
    return render_template("imports_setup/_status.html", **_status_context(
        imp, cols, mapping_grid.custom_fields(), view=_view_state(imp, cols)["view"]))


@bp.post("/imports/<int:import_id>/mapping/preview")
def preview(import_id: int):
    """The engine's dry run, in this request (at most 1,000 records)."""
    imp = _import_or_404(import_id)
    cols, _mapping, fields = _grid(imp, 200 if wants_partial() else 502)
    problem = None
    result = None
    if not mapping_grid.status(imp, cols).email:
        problem = "Assign a column to Email first: the preview needs it."
    else:
        result = mapping_grid.preview(imp, cols, current_user.id)
    context = {"result": result, "problem": problem, "imp": imp}
    if not wants_partial():
        return _mapping_page(imp, cols, fields, preview=context)
    return render_template("imports_setup/_preview.html", preview=context)


@bp.post("/imports/<int:import_id>/mapping/import")
def start(import_id: int):
    """Import: refuse without Email or with "?" columns unless ignored; else save, enable
    the schedule, start the first run and go to its row on the integration's details page
    (the anchor scrolls the row with the progress bar into view; operations.js focuses it)."""
    imp = _import_or_404(import_id)
    cols, _mapping, fields = _grid(imp, 200 if wants_partial() else 502)
    if "ignore_unmapped" in request.form or request.form.get("ignore_sent"):
        mapping_grid.set_ignore(imp, request.form.get("ignore_unmapped") in ("on", "1", "true"))
    problems = mapping_grid.import_problems(imp, cols)
    if problems:
        if wants_partial():
            return render_template("imports_setup/_status.html", **_status_context(
                imp, cols, fields, problems, _view_state(imp, cols)["view"]))
        return _mapping_page(imp, cols, fields, errors=problems, status=422)
    run = mapping_grid.start_import(imp, cols, current_user.id)
    flash(f"Import into {imp.list.name} started"
          f"{f' (run #{run.id})' if run else ''}; it then runs every 24 hours.", "success")
    return redirect_after_post(f"{_details_url(imp)}#import-row-{imp.id}")  # its row, bar in view
