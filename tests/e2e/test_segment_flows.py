"""In a real browser: build a segment with the builder (live count while editing, a
condition's kind changed, a group added), create an automation, dry run, switch it on,
and the contact is enrolled on the cycle once — switching on again enrols no one twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.commerce.segment_factories import make_order, make_shop, make_visit
from tests.conftest import PASSWORD
from tests.factories import make_contact, make_cycle, make_list, make_user
from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow
from webapp.models.commerce import AutomationEntry


def test_segment_builder_dry_run_switch_on_enrols_once(page: Page, live_server, app,
                                                       output_path):
    user = make_user(email="ada@example.com", password=PASSWORD, is_admin=True)
    lst = make_list("Shop customers")
    shop = make_shop(lst)
    cycle = make_cycle(lst, "Thank-you mails", days=14)
    old = utcnow() - timedelta(days=60)
    ann = make_contact(lst, "ann@example.com", created_at=old)
    bob = make_contact(lst, "bob@example.com", created_at=old)
    make_order(shop, ann.id, total="120.00", placed_at=utcnow() - timedelta(days=2))
    make_order(shop, bob.id, total="15.00", placed_at=utcnow() - timedelta(days=3))
    make_visit(shop, ann.id, "https://shop.example.com/products/runner",
               utcnow() - timedelta(days=1))

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Segments").first.click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Segment name").fill("Big recent buyers")
    preview = page.locator("#segment-preview")
    expect(preview.locator("[data-count]")).to_have_attribute("data-count", "2", timeout=10000)
    page.get_by_label("Order of at least (optional)").fill("100")
    expect(preview.locator("[data-count]")).to_have_attribute("data-count", "1")
    expect(preview).to_contain_text("ann@example.com")
    # A second condition in the group: a visited page, chosen from the kinds.
    page.get_by_role("button", name="Add a condition").click()
    # The new select reacts once htmx has processed the swapped-in builder: wait for it,
    # as a person would see the condition appear before choosing its kind.
    expect(page.locator("select[name=g0_c1_type]")).to_be_visible()
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    page.locator("select[name=g0_c1_type]").select_option("visited")
    expect(page.locator("input[name=g0_c1_url]")).to_be_visible()
    page.locator("input[name=g0_c1_url]").fill("/products/runner")
    expect(preview).to_contain_text("visited a page containing")
    expect(preview.locator("[data-count]")).to_have_attribute("data-count", "1")
    page.screenshot(path=str(Path(output_path) / "segment-builder.png"), full_page=True)
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment “Big recent buyers” saved.")).to_be_visible()

    page.get_by_role("link", name="Automations").first.click()
    page.get_by_label("Automation name").fill("Thank big buyers")
    page.get_by_label("When a contact newly matches the segment").select_option(
        label="Big recent buyers")
    page.get_by_label("Action").select_option("enrol")
    page.get_by_label("Cycle (for “enrol”)").select_option(str(cycle.id))
    page.get_by_label("At day").fill("1")
    page.get_by_role("button", name="Create automation").click()
    expect(page.get_by_text("switched off: try a dry run first")).to_be_visible()

    page.get_by_label("Over the last").select_option("7")
    page.get_by_role("button", name="Run the dry run").click()
    dry = page.locator("#dry-run")
    expect(dry.locator("[data-dry-run-total]")).to_have_attribute("data-dry-run-total", "1")
    expect(dry).to_contain_text("ann@example.com")
    assert db.session.scalars(select(AutomationEntry)).all() == []

    page.get_by_role("button", name="Switch on").click()
    expect(page.get_by_text("Automation switched on: 1 contact entered now.")).to_be_visible()
    page.get_by_role("button", name="Switch off").click()
    page.get_by_role("button", name="Switch on").click()
    expect(page.get_by_text("Automation switched on: 0 contacts entered now.")).to_be_visible()
    entries = page.locator("#entries").locator("xpath=..")
    expect(entries).to_contain_text("ann@example.com")
    expect(entries).to_contain_text("enrolled at day 1")
    page.screenshot(path=str(Path(output_path) / "automation-page.png"), full_page=True)

    db.session.expire_all()
    rows = db.session.scalars(select(AutomationEntry)).all()
    assert [r.contact_id for r in rows] == [ann.id]
    enrolled = db.session.scalars(select(Contact).where(Contact.cycle_id == cycle.id)).all()
    assert [(c.email, c.cycle_day) for c in enrolled] == [("ann@example.com", 1)]

