"""The detail pages in a real browser: from the Shop dashboard into an order of the demo
history, then into a product of that order, on a wide and a narrow window."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.commerce.helpers import make_source
from tests.conftest import PASSWORD
from webapp.commerce.demo import seed_history


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def test_dashboard_to_an_order_to_its_product(page: Page, live_server: str, user, app,
                                              output_path: str):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    seed_history(make_source().id)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Shop", exact=True).click()
    page.locator("#latest-orders a").first.click()
    expect(page.get_by_role("heading", name="Status history")).to_be_visible()
    expect(page.locator("#order-total")).to_contain_text("EUR")
    expect(page.locator("#order-steps li").first).to_contain_text("Placed")
    page.screenshot(path=str(shots / "order-detail-1280.png"), full_page=True)
    product = page.locator("#order-lines tbody a").first
    name = product.inner_text()
    product.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_role("heading", name="Bought together with")).to_be_visible()
    expect(page.locator("#product-sales")).to_contain_text("Last 30 days")
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=str(shots / "product-detail-420.png"), full_page=True)
    _no_sideways_scroll(page)
    page.go_back()
    expect(page.locator("#order-lines")).to_be_visible()
    _no_sideways_scroll(page)
