"""The mapping page at 30 fields in a real browser: one row per field by default, the field
filter, live saving with the move warning and Undo, a custom field created inline offered in
every select at once, and the switch to the grid; screenshots of both views."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from simulators.shopify import SHOP
from tests.e2e.test_import_flows import XSS_NAME, _no_sideways_scroll, _sign_in, _target
from tests.e2e.test_import_flows import app_config as app_config  # noqa: F401
from tests.e2e.test_import_flows import no_dialogs as no_dialogs  # noqa: F401
from tests.e2e.test_import_flows import shopify as shopify  # noqa: F401
from tests.factories import make_list
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.imports.rules import FULL_NAME
from webapp.models import CustomField, RecurringImport
from webapp.services.mapping import Column


def _row(page: Page, source: str):
    return page.locator(f"#row-{Column(source, source, 'text').key}")


def _saved(source: str):
    db.session.expire_all()
    return db.session.scalar(select(RecurringImport)).mapping.get(source)


@pytest.mark.e2e
def test_mapping_page_both_views(page: Page, live_server: str, user, app, shopify,
                                 no_dialogs, output_path):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    cfg = shopify.config()
    integration = make_integration("shopify", SHOP, settings=cfg["settings"],
                                   credentials=cfg["credentials"])
    imp = RecurringImport(integration_id=integration.id, list_id=make_list("Customers").id,
                          group="customers", source="all", state="stopped", mapping={})
    db.session.add(imp)
    db.session.commit()
    _sign_in(page, live_server, user)
    page.goto(f"{live_server}/imports/{imp.id}/mapping")

    # 30 source fields: one row per field, samples in each row, nothing scrolls sideways
    rows = page.locator(".mapping-list tbody tr")
    expect(rows).to_have_count(30)
    expect(page.get_by_label("One row per field")).to_be_checked()
    expect(page.locator("#samples-status")).to_contain_text("Sample values from the first 5")
    expect(_row(page, "email")).to_contain_text("@example.org")
    expect(_row(page, "first_name")).to_contain_text(XSS_NAME)  # as text
    expect(_target(page, "email")).to_have_value("email")
    _no_sideways_scroll(page)
    page.screenshot(path=str(shots / "mapping_list_view.png"), full_page=True)

    # the filter: a name search, then unassigned only
    page.get_by_label("Find a field").fill("phone")
    expect(rows).to_have_count(2)
    expect(page.locator("#filter-count")).to_have_text("Showing 2 of 30 fields.")
    expect(page).to_have_url(re.compile(r"[?&]q=phone"))
    page.get_by_label("Find a field").fill("")
    expect(rows).to_have_count(30)
    page.get_by_label("Show unassigned only").check()
    expect(rows).to_have_count(28)
    expect(_row(page, "email")).to_have_count(0)
    page.get_by_label("Show unassigned only").uncheck()
    expect(rows).to_have_count(30)

    # choosing Name on another row moves it: a warning that says from where, and Undo
    _target(page, "first_name").select_option("name")
    notice = page.locator("#mapping-notice")
    expect(notice).to_contain_text(
        "Name was on Full name (first + last name); that column is now unassigned.")
    expect(_target(page, FULL_NAME)).to_have_value("?")
    assert _saved(FULL_NAME) == "?" and _saved("first_name") == "name"
    page.screenshot(path=str(shots / "mapping_move_warning.png"), full_page=False)
    notice.get_by_role("button", name="Undo").click()
    expect(notice).to_contain_text("Undone: Name is back on Full name")
    expect(_target(page, FULL_NAME)).to_have_value("name")
    expect(_target(page, "first_name")).to_have_value("?")
    assert _saved(FULL_NAME) == "name" and _saved("first_name") == "?"

    # a custom field made inline is a choice in every other row at once
    _target(page, "custom.loyalty_tier").select_option(label="New custom field…")
    expect(page.get_by_label("Name", exact=True)).to_have_value("loyalty_tier")
    page.get_by_role("button", name="Create field").click()
    expect(page.get_by_text("Custom field loyalty_tier created.")).to_be_visible()
    field = db.session.scalar(select(CustomField).where(CustomField.name == "loyalty_tier"))
    expect(_target(page, "custom.loyalty_tier")).to_have_value(str(field.id))
    note = _target(page, "note")
    expect(note.locator(f'option[value="{field.id}"]')).to_have_count(1)
    expect(note).to_have_value("?")  # the new choice did not change what is chosen
    assert page.locator(f'select[name="target"] option[value="{field.id}"]').count() == 30
    note.select_option(str(field.id))  # and it saves, moving the field with a warning
    expect(notice).to_contain_text("loyalty_tier was on")
    assert _saved("note") == field.id

    # the switch: the grid of columns, which saves live too
    page.get_by_label("Columns side by side").check()
    grid = page.get_by_role("region", name=re.compile("Source fields with sample values"))
    expect(grid).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]view=grid"))
    expect(page.locator("#samples")).to_contain_text("Record 1")
    expect(page.locator(".mapping-grid thead th.map-col")).to_have_count(30)
    _target(page, "tags").select_option("name")
    expect(notice).to_contain_text("Name was on Full name")
    assert _saved("tags") == "name"
    _no_sideways_scroll(page)  # only the grid scrolls sideways
    page.screenshot(path=str(shots / "mapping_grid_view.png"), full_page=True)
    page.reload()
    expect(page.get_by_label("Columns side by side")).to_be_checked()
    expect(_target(page, "tags")).to_have_value("name")
