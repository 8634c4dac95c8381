"""Undo in a real browser with a REAL worker: Import now → the run page → Undo this run… →
the preview → confirm → live progress → "undone by … at …" → the list back to what it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from simulators.dataset import generate
from tests.conftest import PASSWORD
from tests.e2e import test_operations
from tests.factories import make_list
from tests.imports.workers import start_simulator
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.models import Contact, ImportRun, ImportUndo, RecurringImport
from webapp.models.base import utcnow

app_config, worker = test_operations.app_config, test_operations.worker  # the same fixtures
PEOPLE = generate(120, seed=31)
KNOWN = [p.email for p in PEOPLE if p.kind == "normal"][:3]  # already on the list


@pytest.fixture
def shopify_sim():
    running, _app, config = start_simulator("shopify", PEOPLE)
    yield config
    running.stop()


def _list_state(list_id: int) -> list[tuple]:
    db.session.expire_all()
    return [(c.email_norm, c.name, c.custom, c.status, c.consent_state, c.updated_at)
            for c in db.session.scalars(select(Contact).where(Contact.list_id == list_id)
                                        .order_by(Contact.email_norm))]


@pytest.mark.e2e
@pytest.mark.usefixtures("worker")
def test_import_then_undo_preview_then_undo(page: Page, live_server: str, user, app,
                                            shopify_sim, output_path: str):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    integration = make_integration("shopify", shopify_sim["settings"]["shop"],
                                   settings=shopify_sim["settings"],
                                   credentials=shopify_sim["credentials"])
    target = make_list("Newsletter")
    for i, email in enumerate(KNOWN):
        db.session.add(Contact(list_id=target.id, email=email, email_norm=email,
                               name=f"Known {i}", origin="manual"))
    imp = RecurringImport(integration_id=integration.id, list_id=target.id, group="customers",
                          source="all", mapping={"email": "email", "Full name": "name"},
                          consent_confirmed_by_id=user.id, consent_confirmed_at=utcnow())
    db.session.add(imp)
    db.session.commit()
    before = _list_state(target.id)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Import now from the details page; wait for the live progress to complete
    page.goto(f"{live_server}/integrations/shopify")
    row = page.locator(f"#import-row-{imp.id}")
    row.locator("summary").click()
    row.get_by_role("button", name="Import now").click()
    expect(row.locator(".run-progress")).to_have_attribute(
        "data-status", re.compile(r"^completed"), timeout=60_000)
    db.session.expire_all()
    run = db.session.scalar(select(ImportRun).where(ImportRun.import_id == imp.id))
    assert run.updated == len(KNOWN) and run.added > 50
    assert _list_state(target.id) != before

    # The run page → Undo this run… → the preview, nothing changed yet
    page.goto(f"{live_server}/imports/runs/{run.id}")
    page.get_by_role("link", name="Undo this run…").click()
    expect(page.get_by_role("heading", name=f"Undo import run #{run.id}: Newsletter")
           ).to_be_visible()
    expect(page.locator("#would-remove")).to_have_text(f"{run.added:,}")
    expect(page.locator("#would-restore")).to_have_text(str(len(KNOWN)))
    expect(page.locator("#would-keep")).to_have_text("0")
    expect(page.get_by_text("never re-subscribes anyone")).to_be_visible()
    page.screenshot(path=str(shots / "undo_preview.png"), full_page=True)
    assert len(_list_state(target.id)) == len(KNOWN) + run.added

    # Confirm: the undo runs as a job on the worker, with live progress on the run page
    page.get_by_role("button", name=f"Undo run #{run.id}").click()
    expect(page.get_by_text("Undo started.")).to_be_visible()
    expect(page.locator(".undone-by")).to_contain_text(f"Undone by {user.email} at",
                                                       timeout=60_000)
    expect(page.locator("#undo-counts")).to_contain_text(f"{run.added:,}")
    page.screenshot(path=str(shots / "undo_done.png"), full_page=True)
    db.session.expire_all()
    undo = db.session.scalar(select(ImportUndo).where(ImportUndo.run_id == run.id))
    assert undo.status == "completed" and undo.requested_by_id == user.id
    assert (undo.removed, undo.restored, undo.kept) == (run.added, len(KNOWN), 0)

    # The list is back to what it was, and the contacts page shows just the known ones
    assert _list_state(target.id) == before
    page.goto(f"{live_server}/lists/{target.id}/contacts")
    for email in KNOWN:
        expect(page.get_by_text(email)).to_be_visible()
    expect(page.get_by_text("Known 0")).to_be_visible()

    # Import statistics marks the run as undone
    page.goto(f"{live_server}/imports/runs/")
    expect(page.locator(f"#run-{run.id}")).to_contain_text(f"Undone by {user.email}")
