"""Preview (dry run): what an import would add, update, skip and reject for the first
≤ 1,000 records, with sample rows. Writes no contacts and moves no cursor."""

from __future__ import annotations

from ..extensions import db
from ..models import ImportRun
from .pipeline import PREVIEW_LIMIT
from .runs import create_run, enqueue, execute

__all__ = ["PREVIEW_LIMIT", "preview_now", "start_preview"]


def start_preview(import_id: int, user_id: int | None = None) -> ImportRun:
    """Queue a preview run (pages poll its row; `run.preview` holds the result)."""
    run, _ = create_run(import_id, "preview", user_id=user_id)
    enqueue(run.id)
    return run


def preview_now(import_id: int, *, provider_factory=None, user_id: int | None = None) -> dict:
    """Run a preview synchronously (CLI, tests); returns the summary dict."""
    run, _ = create_run(import_id, "preview", user_id=user_id)
    run_id = run.id
    execute(run_id, provider_factory=provider_factory)
    run = db.session.get(ImportRun, run_id)
    return run.preview or {"error": run.error}
