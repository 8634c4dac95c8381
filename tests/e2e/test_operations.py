"""Operations in a real browser with a REAL worker process: the details page's list row,
More actions by keyboard, Import now → live progress to completed, Stop imports, Resume,
Disconnect; the Import statistics page. Screenshots under the test output folder."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from simulators.dataset import generate
from tests.conftest import PASSWORD
from tests.factories import make_list
from tests.imports.workers import start_simulator, start_worker, stop_worker, worker_env
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.imports import schedule
from webapp.models import ImportRun, Integration, RecurringImport
from webapp.models.base import utcnow


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture
def shopify_sim():
    running, _app, config = start_simulator("shopify", generate(300, seed=21))
    yield config
    running.stop()


@pytest.fixture
def worker(app_config, redis_url):
    proc = start_worker(worker_env(app_config["DATABASE_URL"], redis_url, app_config))
    yield proc
    stop_worker(proc)


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


@pytest.mark.e2e
def test_details_row_import_now_stop_resume_disconnect(page: Page, live_server: str, user, app,
                                                       shopify_sim, worker, output_path: str):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # An integration and a recurring import, made through the services against the simulator
    integration = make_integration("shopify", shopify_sim["settings"]["shop"],
                                   settings=shopify_sim["settings"],
                                   credentials=shopify_sim["credentials"])
    target = make_list("Newsletter")
    imp = RecurringImport(integration_id=integration.id, list_id=target.id, group="customers",
                          source="all", mapping={"email": "email", "Full name": "name"},
                          run_hour=7, time_zone="Europe/Paris",
                          consent_confirmed_by_id=user.id, consent_confirmed_at=utcnow())
    db.session.add(imp)
    schedule.enable(imp, utcnow() + timedelta(hours=1))
    db.session.commit()
    row_id = f"#import-row-{imp.id}"

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server}/integrations/shopify")
    row = page.locator(row_id)
    expect(row).to_contain_text("Newsletter")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("No run yet.")
    expect(row.locator(".import-next")).to_contain_text("(Europe/Paris)")
    expect(row.locator(".import-next")).to_contain_text("UTC")

    # Keyboard: open More actions with Enter, move with Tab, close with Escape
    summary = row.locator("summary")
    menu = row.locator("details.menu")
    summary.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(row.get_by_role("button", name="Stop imports")).to_be_focused()
    page.keyboard.press("Tab")
    expect(row.get_by_role("link", name="Edit settings")).to_be_focused()
    page.keyboard.press("Tab")
    expect(row.get_by_role("button", name="Import now")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()

    # More actions → Import now: the row re-renders with a live progress bar → completed
    summary.click()
    row.get_by_role("button", name="Import now").click()
    expect(row).to_contain_text("Import started.")
    progress = row.locator(".run-progress")
    expect(progress.locator("progress")).to_be_visible()
    # the simulated people include invalid emails: "completed with errors" (a completion)
    expect(progress).to_have_attribute("data-status", re.compile(r"^completed"),
                                       timeout=60_000)
    expect(progress).to_contain_text(re.compile(r"Completed( with errors)?: 300 fetched"))
    assert progress.get_attribute("hx-trigger") is None  # polling stopped
    # the last-run cell refreshed out of band
    expect(row.locator(".import-last")).to_contain_text("Completed")
    expect(row.locator(".import-last")).to_contain_text("300 fetched")
    page.screenshot(path=str(shots / "details_page_with_progress.png"), full_page=True)
    db.session.expire_all()
    run = db.session.scalar(select(ImportRun).where(ImportRun.import_id == imp.id))
    assert run.status in ("completed", "completed_with_errors")
    assert run.trigger_kind == "manual" and run.fetched == 300 and run.rejected > 0
    page.set_viewport_size({"width": 640, "height": 900})  # 200 % zoom of 1280 px
    _no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # More actions → Stop imports: stopped, Resume offered; focus back on the menu button
    row.locator("summary").click()
    row.get_by_role("button", name="Stop imports").click()
    expect(row).to_contain_text("Imports stopped.")
    expect(row.locator(".import-state")).to_contain_text("Stopped")
    expect(row.locator(".import-next")).to_contain_text("None: imports are stopped.")
    expect(row.locator("summary")).to_be_focused()
    row.locator("summary").click()
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(RecurringImport, imp.id).state == "stopped"

    # Resume
    row.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("Imports resumed. Next run:")
    expect(row.locator(".import-state")).to_contain_text("Active")
    db.session.expire_all()
    resumed = db.session.get(RecurringImport, imp.id)
    assert resumed.state == "active" and resumed.next_run_at is not None

    # Import statistics: the run with its counts; filter live (htmx, URL pushed)
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Import statistics").click()
    expect(page.get_by_role("heading", name="Import statistics")).to_be_visible()
    history_row = page.locator(f"#run-{run.id}")
    expect(history_row).to_contain_text("Newsletter")
    expect(history_row).to_contain_text("Import now")
    expect(history_row).to_contain_text("300")
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No run matches these filters.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"status=failed"))
    page.get_by_label("Status").select_option(run.status)
    expect(page.locator(f"#run-{run.id}")).to_be_visible()
    page.screenshot(path=str(shots / "import_statistics.png"), full_page=True)
    _no_sideways_scroll(page)
    page.locator(f"#run-{run.id}").get_by_role("link", name=f"#{run.id}").click()
    expect(page.get_by_role("heading", name=f"Import run #{run.id}: Newsletter")).to_be_visible()
    expect(page.get_by_text("Walked everything that changed")).to_be_visible()
    expect(page.locator("#reject-reasons")).to_be_visible()
    expect(page.locator("#run-rejects tbody tr").first).to_be_visible()
    page.screenshot(path=str(shots / "run_page.png"), full_page=True)

    # Disconnect with confirmation
    page.goto(f"{live_server}/integrations/shopify")
    page.get_by_role("link", name=re.compile(r"^Disconnect")).click()
    page.get_by_role("button", name="Disconnect", exact=True).click()
    expect(page.get_by_text(re.compile(r"disconnected: its credentials were erased"))
           ).to_be_visible()
    db.session.expire_all()
    assert db.session.get(Integration, integration.id).status == "disconnected"
    assert db.session.get(RecurringImport, imp.id).state == "stopped"
    assert dialogs == []
