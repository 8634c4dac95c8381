"""The undo pages: the run page's link, the preview to confirm, the start as a job, the
live progress partial, "undone by … at …" on the run page and in Import statistics."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.imports.fakes import FakeProvider, rec
from webapp.extensions import db
from webapp.imports import undo as engine
from webapp.imports.cli import imports_cli
from webapp.models import Contact, ImportUndo


def _html(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def _emails(list_id: int) -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(Contact.email_norm)
                                     .where(Contact.list_id == list_id)))


def test_preview_confirm_progress_and_undone_by(signed_in, make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"), rec(2, "bob@example.com"),
                                        rec(3, "out@example.com", consent="opted_out")]))
    page = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert f'href="/imports/runs/{run.id}/undo"' in page and "Undo this run…" in page

    preview = _html(signed_in.get(f"/imports/runs/{run.id}/undo"))
    assert re.search(r'id="would-remove">2<', preview)
    assert re.search(r'id="would-restore">0<', preview)
    assert "never re-subscribes anyone" in preview and "ann@example.com" in preview
    assert _emails(imp.list_id) == ["ann@example.com", "bob@example.com"]  # nothing yet

    resp = signed_in.post(f"/imports/runs/{run.id}/undo")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/{run.id}#undo")
    queued = db.session.scalar(select(ImportUndo).where(ImportUndo.run_id == run.id))
    assert queued.status == "queued" and queued.job_id  # a job on the queue, id only
    assert queued.requested_by_id == signed_in.user.id
    waiting = _html(signed_in.get(f"/imports/runs/{run.id}"))  # the run page polls it
    assert f'hx-get="/imports/runs/{run.id}/undo/progress" hx-trigger="every 1s"' in waiting
    live = _html(signed_in.htmx_get(f"/imports/runs/{run.id}/undo/progress"))
    assert 'hx-trigger="every 1s"' in live and "Undo queued" in live

    assert engine.execute(queued.id) == "completed"
    final = signed_in.htmx_get(f"/imports/runs/{run.id}/undo/progress")
    assert "hx-trigger" not in _html(final) and final.headers["HX-Refresh"] == "true"
    assert _emails(imp.list_id) == []

    page = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert f"undone by {signed_in.user.email} at" in page
    assert "Undo this run…" not in page
    history = _html(signed_in.get("/imports/runs/"))
    assert f"Undone by {signed_in.user.email} at" in history
    again = signed_in.post(f"/imports/runs/{run.id}/undo", follow_redirects=True)
    assert "This run was undone already." in _html(again)


def test_kept_contacts_are_listed_on_the_run_page(signed_in, make_import, run_import):
    from webapp.services import contacts as contact_service

    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"), rec(2, "bob@example.com")]))
    ann = db.session.scalar(select(Contact).where(Contact.email_norm == "ann@example.com"))
    contact_service.unsubscribe(ann, signed_in.user)
    started, _ = engine.start_undo(run, signed_in.user.id, queue=False)
    engine.execute(started.id)
    page = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert "ann@example.com</a>" in page and "an undo never re-subscribes" in page
    assert 'data-reason="unsubscribed"' in page


def test_refused_undo_says_why(signed_in, make_import, run_import):
    imp = make_import()
    first = run_import(imp, FakeProvider([rec(1, "ann@example.com")]))
    second = run_import(imp, FakeProvider([rec(2, "ann@example.com", first="Ann")]))
    page = _html(signed_in.get(f"/imports/runs/{first.id}"))
    assert f"Undo run #{second.id} first" in page and "Undo this run…" not in page
    confirm = _html(signed_in.get(f"/imports/runs/{first.id}/undo"))
    assert f"Undo run #{second.id} first" in confirm and "<form" not in confirm.split(
        "undo-refusal")[1]
    resp = signed_in.post(f"/imports/runs/{first.id}/undo", follow_redirects=True)
    assert f"Undo run #{second.id} first" in _html(resp)
    assert db.session.scalar(select(ImportUndo)) is None


def test_cli_undo_preview_then_undo(app, make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"), rec(2, "bob@example.com")]))
    runner = app.test_cli_runner()
    shown = runner.invoke(imports_cli, ["undo", str(run.id), "--preview"])
    assert shown.exit_code == 0, shown.output
    assert "would have removed 2, restored 0, kept 0" in shown.output
    assert _emails(imp.list_id) == ["ann@example.com", "bob@example.com"]
    done = runner.invoke(imports_cli, ["undo", str(run.id)])
    assert done.exit_code == 0, done.output
    assert f"of run {run.id}: completed" in done.output and "removed 2" in done.output
    assert _emails(imp.list_id) == []
    again = runner.invoke(imports_cli, ["undo", str(run.id)])
    assert again.exit_code != 0 and "undone already" in again.output
