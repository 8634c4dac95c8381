"""Every main page fits a 1280-pixel screen and a laptop at 200 % zoom (640 CSS pixels):
nothing scrolls sideways but the mapping grid's own container, and the menus stay usable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.factories import make_contacts, make_field, make_list
from tests.test_integrations_support import Sim
from webapp.extensions import db
from webapp.imports import credentials
from webapp.models import (
    Contact,
    ImportRun,
    Integration,
    RecurringImport,
    RejectedRow,
    Suppression,
)
from webapp.models.base import utcnow

SIZES = ({"width": 1280, "height": 900}, {"width": 640, "height": 450})


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture
def shopify():
    sim = Sim("shopify")
    yield sim
    sim.stop()


def _seed(shopify) -> dict[str, str]:
    lst = make_list("A list with a rather long name for narrow screens")
    make_contacts(lst, 60)
    make_field("loyalty_tier")
    db.session.add(Suppression(kind="domain", value="blocked.example"))
    config = shopify.config()
    integration = Integration(provider="shopify", name=config["settings"]["shop"],
                              settings=config["settings"], status="connected")
    credentials.store(integration, config["credentials"])
    db.session.add(integration)
    db.session.flush()
    imp = RecurringImport(integration_id=integration.id, list_id=lst.id, group="customers",
                          source="all", state="active", mapping={"email": "email"},
                          next_run_at=utcnow() + timedelta(hours=3))
    db.session.add(imp)
    db.session.flush()
    now = utcnow()
    run = ImportRun(import_id=imp.id, status="completed_with_errors", fetched=70, added=60,
                    rejected=1, rejected_by_reason={"syntax_error": 1}, pages=1,
                    started_at=now - timedelta(seconds=5), finished_at=now,
                    timings={"fetch": 1.0, "write": 0.5})
    db.session.add(run)
    db.session.flush()
    db.session.add(RejectedRow(run_id=run.id, source_id="7", email="bob@",
                               reason="syntax_error", detail="An email address needs a domain"))
    db.session.commit()
    contact = db.session.scalars(db.select(Contact).limit(1)).one()
    return {
        "dashboard": "/", "lists": "/lists/", "contacts": f"/lists/{lst.id}/contacts",
        "contact": f"/contacts/{contact.id}", "cycles": f"/lists/{lst.id}/cycles/",
        "fields": "/fields/", "suppression": "/suppression/", "settings": "/settings/",
        "team": "/team/",
        "status": "/status/", "integrations": "/integrations/",
        "details": "/integrations/shopify", "setup": f"/imports/{imp.id}/settings",
        "mapping": f"/imports/{imp.id}/mapping", "statistics": "/imports/runs",
        "run": f"/imports/runs/{run.id}",
    }


@pytest.mark.e2e
def test_pages_fit_1280_and_200_percent_zoom(page: Page, live_server: str, user, shopify,
                                             output_path):
    pages = _seed(shopify)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    for size in SIZES:
        page.set_viewport_size(size)
        for name, path in pages.items():
            response = page.goto(live_server + path)
            assert response is not None and response.status == 200, (name, response)
            page.wait_for_load_state("networkidle")
            expect(page.locator("h1").first).to_be_visible()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:  # keep the evidence under the test output folder
                Path(output_path).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{output_path}/{name}-{size['width']}.png")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {size}"
        # The main navigation stays reachable by keyboard at this size.
        page.goto(live_server + "/")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        assert focused, "nothing took the keyboard focus"
