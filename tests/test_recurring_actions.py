"""Details-page rows and per-list actions: Stop imports, Resume, Import now, the row partial,
the live progress bar; bad input (unknown or another integration's import → 404)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from tests.factories import make_list
from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import ImportRun, RecurringImport
from webapp.models.base import utcnow

MAPPING = {"email": "email", "Full name": "name"}


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _ready_import(integration=None, list_name="Newsletter", **kw) -> RecurringImport:
    integration = integration or make_integration()
    imp = make_import(integration, list_name)
    imp.mapping = dict(MAPPING)
    imp.run_hour, imp.time_zone = kw.get("run_hour", 6), kw.get("time_zone", "Europe/Berlin")
    imp.next_run_at = utcnow() + timedelta(hours=5)
    db.session.commit()
    return imp


def _run(imp, status="completed", trigger="manual", **counts) -> ImportRun:
    now = utcnow()
    run = ImportRun(import_id=imp.id, trigger_kind=trigger, status=status,
                    queued_at=now - timedelta(minutes=2), started_at=now - timedelta(minutes=2),
                    finished_at=None if status in ("queued", "running") else now, **counts)
    db.session.add(run)
    db.session.commit()
    return run


def _row(html: str, imp_id: int) -> str:
    match = re.search(rf'<li class="import-row[^"]*" id="import-row-{imp_id}".*?</li>', html, re.S)
    assert match, f"no row for import {imp_id}"
    return match.group(0)


def _runs(imp_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(ImportRun)
                             .where(ImportRun.import_id == imp_id))


# ------------------------------------------------------------------ the details page


def test_details_page_shows_a_row_per_list_with_last_and_next_run(signed_in):
    integration = make_integration()
    imp = _ready_import(integration, "Newsletter")
    other = _ready_import(integration, "VIP customers")
    run = _run(imp, fetched=300, added=280, updated=10, rejected=10)
    html = _html(signed_in.get("/integrations/shopify"))
    row = _row(html, imp.id)
    assert f'href="/lists/{imp.list_id}/contacts">Newsletter</a>' in row
    assert "Active" in row
    assert f'href="/imports/runs/{run.id}"' in row
    assert "300 fetched · 280 added · 10 updated · 10 rejected" in row
    assert "Completed" in row
    # next run in the import's time zone and in UTC
    local = imp.next_run_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert f"{local:%Y-%m-%d %H:%M}" in row and "(Europe/Berlin)" in row
    assert f"{imp.next_run_at:%Y-%m-%d %H:%M} UTC" in row
    assert "No run yet." in _row(html, other.id)
    # Configure imports for another list, More actions with the three actions
    assert f'href="/integrations/{integration.id}/imports/new"' in html
    assert "<summary>More actions" in row
    assert f'action="/imports/{imp.id}/stop"' in row
    assert f'href="/imports/{imp.id}/settings">Edit settings' in row
    assert f'action="/imports/{imp.id}/run"' in row
    assert 'operations.js' in html


def test_row_shows_needs_attention_reason_and_stopped_state(signed_in):
    integration = make_integration()
    imp = _ready_import(integration, "Newsletter")
    imp.state, imp.state_reason = "needs_attention", "The source field loyalty no longer exists."
    stopped = _ready_import(integration, "Stopped list")
    stopped.state, stopped.next_run_at = "stopped", None
    db.session.commit()
    html = _html(signed_in.get("/integrations/shopify"))
    row = _row(html, imp.id)
    assert "Needs attention" in row and "The source field loyalty no longer exists." in row
    srow = _row(html, stopped.id)
    assert "Stopped" in srow and "None: imports are stopped." in srow
    assert f'action="/imports/{stopped.id}/resume"' in srow
    assert f'action="/imports/{stopped.id}/stop"' not in srow


def test_row_partial_and_bad_ids(signed_in):
    a = make_integration("shopify", "a.myshopify.com")
    b = make_integration("shopify", "b.myshopify.com")
    imp = _ready_import(a)
    resp = signed_in.htmx_get(f"/imports/{imp.id}/row?integration={a.id}")
    assert resp.status_code == 200
    html = _html(resp)
    assert html.lstrip().startswith(f'<li class="import-row state-active" id="import-row-{imp.id}"')
    assert "<html" not in html
    assert signed_in.htmx_get(f"/imports/{imp.id}/row?integration={b.id}").status_code == 404
    assert signed_in.htmx_get("/imports/99999/row").status_code == 404
    # without htmx: back to the details page at the row
    resp = signed_in.get(f"/imports/{imp.id}/row")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/integrations/shopify#import-row-{imp.id}")


def test_actions_404_for_another_integrations_import_or_unknown_id(signed_in):
    a = make_integration("shopify", "a.myshopify.com")
    b = make_integration("shopify", "b.myshopify.com")
    imp = _ready_import(a)
    for action in ("stop", "resume", "run"):
        resp = signed_in.post(f"/imports/{imp.id}/{action}", {"integration": b.id}, htmx=True)
        assert resp.status_code == 404, action
        assert signed_in.post(f"/imports/424242/{action}", htmx=True).status_code == 404
    db.session.refresh(imp)
    assert imp.state == "active" and _runs(imp.id) == 0


def test_actions_need_csrf(signed_in):
    imp = _ready_import()
    resp = signed_in.client.post(f"/imports/{imp.id}/stop", data={})
    assert resp.status_code == 400
    db.session.refresh(imp)
    assert imp.state == "active"


# ------------------------------------------------------------------ stop / resume


def test_stop_and_resume_with_htmx_rerender_the_row(signed_in):
    imp = _ready_import()
    integration_id = imp.integration_id
    resp = signed_in.post(f"/imports/{imp.id}/stop", {"integration": integration_id}, htmx=True)
    assert resp.status_code == 200
    html = _html(resp)
    assert html.lstrip().startswith(
        f'<li class="import-row state-stopped" id="import-row-{imp.id}"')
    assert "Imports stopped." in html and "Resume" in html
    db.session.refresh(imp)
    assert imp.state == "stopped" and imp.next_run_at is None
    # twice: harmless
    html = _html(signed_in.post(f"/imports/{imp.id}/stop", {"integration": integration_id},
                                htmx=True))
    assert "stopped already" in html

    before = utcnow()
    resp = signed_in.post(f"/imports/{imp.id}/resume", {"integration": integration_id}, htmx=True)
    html = _html(resp)
    assert "Imports resumed. Next run:" in html
    assert f'action="/imports/{imp.id}/stop"' in html
    db.session.refresh(imp)
    assert imp.state == "active"
    # the next slot at 06:00 Europe/Berlin, within the next 24 hours
    assert before < imp.next_run_at <= before + timedelta(hours=25)
    local = imp.next_run_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (6, 0)


def test_resume_without_a_run_hour_is_24_hours_later(signed_in):
    imp = _ready_import(run_hour=None, time_zone=None)
    imp.run_hour = None
    imp.state = "stopped"
    db.session.commit()
    before = utcnow()
    signed_in.post(f"/imports/{imp.id}/resume", htmx=True)
    db.session.refresh(imp)
    assert imp.state == "active"
    assert abs((imp.next_run_at - before) - timedelta(hours=24)) < timedelta(minutes=1)


def test_stop_full_page_redirects_with_a_flash(signed_in):
    imp = _ready_import()
    resp = signed_in.post(f"/imports/{imp.id}/stop")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/integrations/shopify#import-row-{imp.id}")
    html = _html(signed_in.get("/integrations/shopify"))
    assert "Newsletter: Imports stopped." in html
    db.session.refresh(imp)
    assert imp.state == "stopped"


def test_resume_refused_while_the_integration_needs_reconnect(signed_in):
    integration = make_integration(status="needs_reconnect", reason="token expired")
    imp = _ready_import(integration)
    imp.state = "stopped"
    db.session.commit()
    html = _html(signed_in.post(f"/imports/{imp.id}/resume", htmx=True))
    assert "Reconnect the integration first: token expired" in html
    db.session.refresh(imp)
    assert imp.state == "stopped"


# ------------------------------------------------------------------ import now


def test_import_now_twice_makes_one_run_and_shows_live_progress(signed_in):
    imp = _ready_import()
    resp = signed_in.post(f"/imports/{imp.id}/run", {"integration": imp.integration_id},
                          htmx=True)
    assert resp.status_code == 200
    html = _html(resp)
    assert "Import started." in html
    run = db.session.scalar(select(ImportRun).where(ImportRun.import_id == imp.id))
    assert run.trigger_kind == "manual" and run.status == "queued" and run.job_id
    assert run.requested_by_id == signed_in.user.id
    # the row carries the polling progress element
    assert f'hx-get="/imports/runs/{run.id}/progress?at=row"' in html
    assert 'hx-trigger="every 1s"' in html
    html = _html(signed_in.post(f"/imports/{imp.id}/run", {"integration": imp.integration_id},
                                htmx=True))
    assert "A run is already in progress." in html
    assert _runs(imp.id) == 1


def test_import_now_full_page_redirects(signed_in):
    imp = _ready_import()
    resp = signed_in.post(f"/imports/{imp.id}/run")
    assert resp.status_code == 303
    assert _runs(imp.id) == 1
    resp = signed_in.post(f"/imports/{imp.id}/run")
    assert resp.status_code == 303
    assert _runs(imp.id) == 1
    html = _html(signed_in.get("/integrations/shopify"))
    assert "A run is already in progress." in html


def test_import_now_refused_when_the_integration_needs_reconnect(signed_in):
    integration = make_integration(status="needs_reconnect",
                                   reason="The provider refused our credentials: expired.")
    imp = _ready_import(integration)
    html = _html(signed_in.post(f"/imports/{imp.id}/run", htmx=True))
    assert "Reconnect the integration first: The provider refused our credentials: expired." \
        in html
    assert _runs(imp.id) == 0
    # the menu says why beside the button, and the row says the schedule is paused
    page = _html(signed_in.get("/integrations/shopify"))
    row = _row(page, imp.id)
    assert "Reconnect the integration first" in row
    assert "Paused until the integration is reconnected." in row


def test_import_now_refused_without_an_email_mapping(signed_in):
    imp = _ready_import()
    imp.mapping = {"Full name": "name"}
    db.session.commit()
    html = _html(signed_in.post(f"/imports/{imp.id}/run", htmx=True))
    assert "Assign the Email column" in html
    assert _runs(imp.id) == 0


def test_preview_runs_are_not_the_rows_last_or_live_run(signed_in):
    imp = _ready_import()
    _run(imp, status="running", trigger="preview")
    html = _html(signed_in.get("/integrations/shopify"))
    row = _row(html, imp.id)
    assert "No run yet." in row and "every 1s" not in row


# ------------------------------------------------------------------ progress


def test_progress_polls_only_while_live(signed_in):
    imp = _ready_import()
    run = _run(imp, status="running", fetched=120, added=100, updated=5)
    resp = signed_in.htmx_get(f"/imports/runs/{run.id}/progress?at=row")
    html = _html(resp)
    assert resp.status_code == 200
    assert html.count("hx-get=") == 1
    assert 'hx-trigger="every 1s"' in html and 'hx-target="this"' in html
    assert 'hx-swap="outerHTML"' in html
    assert "<progress" in html and "Running: 120 fetched, 105 written so far" in html
    assert "hx-swap-oob" not in html

    run.status, run.finished_at = "completed", utcnow()
    db.session.commit()
    html = _html(signed_in.htmx_get(f"/imports/runs/{run.id}/progress?at=row"))
    assert "hx-trigger" not in html and "hx-get" not in html
    assert 'value="1" max="1"' in html
    assert "Completed: 120 fetched · 100 added · 5 updated · 0 rejected" in html
    # the row's last run, next run and state cells refresh out of band
    assert f'id="import-last-{imp.id}" hx-swap-oob="true"' in html
    assert f'id="import-next-{imp.id}" hx-swap-oob="true"' in html
    assert f'href="/imports/runs/{run.id}"' in html


def test_progress_on_the_run_page_reloads_it_when_finished(signed_in):
    imp = _ready_import()
    run = _run(imp, status="queued")
    resp = signed_in.htmx_get(f"/imports/runs/{run.id}/progress")
    assert "Queued: waiting for a worker" in _html(resp)
    assert "HX-Refresh" not in resp.headers
    run.status, run.finished_at = "failed", utcnow()
    db.session.commit()
    resp = signed_in.htmx_get(f"/imports/runs/{run.id}/progress")
    assert resp.headers["HX-Refresh"] == "true"
    assert "hx-trigger" not in _html(resp)


def test_progress_bad_ids_and_full_page(signed_in):
    assert signed_in.htmx_get("/imports/runs/9999/progress").status_code == 404
    imp = _ready_import()
    run = _run(imp, status="running")
    resp = signed_in.get(f"/imports/runs/{run.id}/progress")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/imports/runs/{run.id}")


def test_row_values_are_escaped(signed_in):
    integration = make_integration()
    lst = make_list("<img src=x onerror=alert(1)>")
    imp = RecurringImport(integration_id=integration.id, list_id=lst.id, group="customers",
                          source="all", mapping=dict(MAPPING), state="needs_attention",
                          state_reason="<script>alert(2)</script>")
    db.session.add(imp)
    db.session.commit()
    html = _html(signed_in.get("/integrations/shopify"))
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
