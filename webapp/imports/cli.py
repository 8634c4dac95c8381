"""`flask imports list|run|history|undo` and `flask secrets rotate`."""

from __future__ import annotations

import time

import click
from sqlalchemy import select

from ..extensions import db
from ..models import ImportRun, RecurringImport

imports_cli = click.Group("imports", help="Recurring imports: list, run now, history.")
secrets_cli = click.Group("secrets", help="Stored secrets (integration credentials).")


def _counts(run: ImportRun) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted((run.rejected_by_reason or {}).items()))
    return (f"fetched {run.fetched}, added {run.added}, updated {run.updated}, "
            f"unchanged {run.unchanged}, skipped {run.skipped}, rejected {run.rejected}"
            + (f" ({reasons})" if reasons else "") + f", warnings {run.warnings}")


@imports_cli.command("list")
def list_imports() -> None:
    """Every recurring import with its state and next run."""
    rows = db.session.scalars(select(RecurringImport).order_by(RecurringImport.id)).all()
    if not rows:
        click.echo("No recurring imports.")
    for imp in rows:
        nxt = imp.next_run_at.isoformat(timespec="minutes") if imp.next_run_at else "-"
        reason = f" ({imp.state_reason})" if imp.state_reason else ""
        click.echo(f"{imp.id}\t{imp.integration.provider}\t{imp.group}/{imp.source}\t"
                   f"list {imp.list_id}\t{imp.criteria}\t{imp.state}{reason}\tnext {nxt}")


@imports_cli.command("run")
@click.argument("import_id", type=int)
@click.option("--preview", is_flag=True, help="Dry run: count and sample, write nothing.")
@click.option("--wait", is_flag=True, help="Wait for the worker and print progress.")
@click.option("--here", is_flag=True, help="Run in this process instead of a worker.")
def run_import(import_id: int, preview: bool, wait: bool, here: bool) -> None:
    """Start a run of IMPORT_ID now (like "Import now")."""
    from .runs import execute, start_run

    if db.session.get(RecurringImport, import_id) is None:
        raise click.ClickException(f"No recurring import {import_id}.")
    run = start_run(import_id, "preview" if preview else "manual", queue=not here)
    if run is None:
        raise click.ClickException("Could not start a run.")
    run_id = run.id
    click.echo(f"Run {run_id} {run.status}.")
    if here:
        execute(run_id)
    elif not wait:
        return
    last = None
    while True:
        db.session.expire_all()
        run = db.session.get(ImportRun, run_id)
        line = f"[{run.status}] {run.fetched} fetched, {run.written} written"
        if line != last:
            click.echo(line)
            last = line
        if not run.live:
            break
        time.sleep(0.5)
    click.echo(_counts(run))
    if run.preview:
        p = run.preview
        click.echo(f"Preview: would add {p['would_add']}, update {p['would_update']}, "
                   f"skip {p['would_skip']}, reject {p['would_reject']}")
    if run.error:
        click.echo(f"Error: {run.error}")


@imports_cli.command("history")
@click.argument("import_id", type=int)
@click.option("--limit", default=20, show_default=True)
def history(import_id: int, limit: int) -> None:
    """The latest runs of IMPORT_ID."""
    runs = db.session.scalars(
        select(ImportRun).where(ImportRun.import_id == import_id)
        .order_by(ImportRun.id.desc()).limit(limit)).all()
    if not runs:
        click.echo("No runs yet.")
    for run in runs:
        started = run.started_at.isoformat(timespec="seconds") if run.started_at else "-"
        click.echo(f"{run.id}\t{run.trigger_kind}\t{run.status}\t{started}\t{_counts(run)}"
                   + (f"\t{run.error}" if run.error else ""))


@secrets_cli.command("rotate")
def rotate_secrets() -> None:
    """Re-encrypt every stored secret under the first key of TRIBUTARY_ENCRYPTION_KEY."""
    from .credentials import rotate_all

    click.echo(f"Re-encrypted {rotate_all()} stored secret(s) under the first key.")


def _undo_counts(summary: dict) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["kept_by_reason"].items()))
    return (f"removed {summary['removed']}, restored {summary['restored']}, "
            f"kept {summary['kept']}" + (f" ({reasons})" if reasons else "")
            + f", already gone {summary['gone']}")


@imports_cli.command("undo")
@click.argument("run_id", type=int)
@click.option("--preview", is_flag=True, help="Only say what the undo would do.")
def undo_run(run_id: int, preview: bool) -> None:
    """Undo import run RUN_ID here: remove what it added, restore what it changed, keep
    what people (or other sources) did since; never re-subscribe anyone."""
    from . import undo

    run = db.session.get(ImportRun, run_id)
    if run is None:
        raise click.ClickException(f"No import run {run_id}.")
    why = undo.refusal(run)
    if why:
        raise click.ClickException(why)
    if preview:
        p = undo.preview(run)
        counts = _undo_counts({"removed": p["would_remove"], "restored": p["would_restore"],
                               "kept": p["would_keep"], "gone": p["gone"],
                               "kept_by_reason": p["kept_by_reason"]})
        click.echo(f"Preview of the undo of run {run_id}: would have {counts}")
        click.echo(f"Opt-outs left in place: {p['opt_outs_kept']}; enrolments removed: "
                   f"{p['enrolments_removed']}")
        for outcome, rows in p["samples"].items():
            for row in rows:
                click.echo(f"  {outcome}\t{row['email']}\t{row['detail']}")
        return
    started, why = undo.start_undo(run, queue=False)
    if started is None:
        raise click.ClickException(why)
    undo_id = started.id
    status = undo.execute(undo_id)
    db.session.expire_all()
    done = db.session.get(undo.ImportUndo, undo_id)
    click.echo(f"Undo {undo_id} of run {run_id}: {status or done.status}.")
    click.echo(_undo_counts({"removed": done.removed, "restored": done.restored,
                             "kept": done.kept, "gone": done.gone,
                             "kept_by_reason": done.kept_by_reason or {}}))
    if done.error:
        click.echo(f"Error: {done.error}")
