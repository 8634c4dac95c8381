"""The foundation flow in a real browser: sign in, create a list, add a custom field, open
the list and find a contact with the live search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.factories import make_contact, make_contacts
from webapp.extensions import db
from webapp.models import ContactList, CustomField


@pytest.mark.e2e
def test_foundation_flow(page: Page, live_server: str, user, output_path: str):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Create a list
    page.get_by_role("link", name="Lists").first.click()
    page.get_by_label("List name").fill("Spring customers")
    page.get_by_role("button", name="Create list").click()
    expect(page.get_by_text("List “Spring customers” created.")).to_be_visible()
    lst = db.session.scalar(select(ContactList).where(ContactList.name == "Spring customers"))
    assert lst is not None

    # Add a custom field
    page.get_by_role("link", name="Custom fields").click()
    page.get_by_label("Name", exact=True).fill("loyalty_tier")
    page.get_by_label("Format").select_option("single_select")
    page.get_by_label("Allowed values (one per line)").fill("Gold\nSilver")
    page.get_by_role("button", name="Create field").click()
    expect(page.get_by_text("Custom field loyalty_tier created.")).to_be_visible()
    db.session.expire_all()
    assert db.session.scalar(select(CustomField.format)) == "single_select"

    # Seed ~200 contacts, then open the list and its contacts
    make_contacts(lst, 200)
    make_contact(lst, "grace.hopper@navy.example", name="Grace Hopper",
                 custom={"loyalty_tier": "Gold"})
    page.get_by_role("link", name="Lists").first.click()
    page.get_by_role("link", name="Spring customers", exact=True).click()
    expect(page.get_by_role("heading", name="Spring customers")).to_be_visible()
    page.get_by_role("link", name="Browse and search contacts").click()
    rows = page.locator("#contact-rows tbody tr")
    expect(rows).to_have_count(50)
    expect(page.get_by_role("link", name="person0@example.com")).to_be_visible()

    # Live search: type, wait for htmx to swap the rows in, no button pressed
    page.get_by_label("Search by email or name").press_sequentially("hopp", delay=40)
    expect(rows).to_have_count(1)
    expect(page.get_by_role("link", name="grace.hopper@navy.example")).to_be_visible()
    expect(page.get_by_role("link", name="person0@example.com")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/contacts\?q=hopp$"))

    # The contact's page shows the custom value
    page.get_by_role("link", name="grace.hopper@navy.example").click()
    expect(page.get_by_text("Gold")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("link", name="grace.hopper@navy.example")).to_be_visible()

    # 200 % zoom of a 1280 px window: a 640 px viewport; nothing may overflow sideways
    page.set_viewport_size({"width": 640, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.keyboard.press("Tab")  # keyboard: the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.set_viewport_size({"width": 1280, "height": 900})

    shot = Path(output_path) / "foundation_flow.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
