"""The shop pages in a real browser: the demo history's revenue and chart on the Shop
page, the abandoned cart that an order recovered, a contact's orders and recommendations."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.commerce.helpers import make_source
from tests.conftest import PASSWORD
from webapp.commerce.demo import seed_history
from webapp.extensions import db
from webapp.models import Contact


def test_shop_pages_show_revenue_recovered_carts_and_recommendations(
        page: Page, live_server: str, user, app, output_path: str):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    seed_history(make_source().id)
    shopper = db.session.scalar(select(Contact).where(Contact.email_norm == "shopper1@example.com"))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Shop", exact=True).click()
    expect(page.get_by_role("heading", name="Shop", exact=True)).to_be_visible()
    expect(page.locator("#revenue")).to_contain_text("EUR")
    expect(page.locator('figure svg rect:not([height="0.0"])').first).to_be_visible()
    page.screenshot(path=str(shots / "shop-dashboard.png"), full_page=True)
    page.get_by_role("link", name="Abandoned carts").click()
    page.get_by_label("Show").select_option("recovered")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#cart-rows")).to_contain_text("shopper1@example.com")
    expect(page.locator("#revenue-recovered")).to_contain_text("95.00 EUR")
    page.goto(f"{live_server}/contacts/{shopper.id}")
    expect(page.locator("#lifetime-value")).to_contain_text("EUR")
    expect(page.locator(".recommendations li").first).to_be_visible()
    page.screenshot(path=str(shots / "shop-contact.png"), full_page=True)
