"""Connecting in a real browser against the simulators: Shopify with a token, Salesforce
through its OAuth log-in (the browser follows the redirect chain), then Disconnect."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from simulators.shopify import SHOP
from tests.conftest import PASSWORD
from tests.test_integrations_support import Sim
from webapp.extensions import db
from webapp.models import Integration


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture
def sims():
    running = {name: Sim(name) for name in ("shopify", "salesforce")}
    yield running
    for sim in running.values():
        sim.stop()


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


@pytest.mark.e2e
def test_connect_shopify_and_salesforce_then_disconnect(page: Page, live_server: str, user,
                                                        app, sims, output_path: str):
    shopify, salesforce = sims["shopify"], sims["salesforce"]
    app.config.update(SALESFORCE_CLIENT_ID=salesforce.app.state.client_id,
                      SALESFORCE_CLIENT_SECRET=salesforce.app.state.client_secret)
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # The integrations page: four tiles; Details shows on hover and on keyboard focus
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integrations", exact=True)).to_be_visible()
    expect(page.locator(".tile")).to_have_count(4)
    details = page.locator("#tile-shopify .details")
    assert details.evaluate("el => getComputedStyle(el).opacity") == "0"
    page.locator("#tile-shopify").hover()
    expect(details).to_have_css("opacity", "1")
    page.mouse.move(1, 1)
    expect(details).to_have_css("opacity", "0")
    page.locator("#tile-zoho .details").focus()
    page.keyboard.press("Shift+Tab")  # back to Shopify's Details link, by keyboard
    expect(details).to_be_focused()
    expect(details).to_have_css("opacity", "1")
    page.screenshot(path=str(shots / "integrations_page.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Shopify", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="What is imported")).to_be_visible()

    # Shopify with an Admin API token: a wrong token first (plain words, no reload)
    page.get_by_label("Shop domain").fill(SHOP)
    page.get_by_label("Admin API access token", exact=True).fill("shpat_wrong_token_0000")
    page.locator("#connect summary").first.click()
    page.get_by_label("API base URL").fill(shopify.url)
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator("#connect-error")).to_contain_text("Shopify rejected the access token")
    expect(page.get_by_label("Shop domain")).to_have_value(SHOP)
    expect(page.get_by_label("Admin API access token", exact=True)).to_have_value("")
    token_input = page.get_by_label("Admin API access token", exact=True)
    token_input.fill(shopify.app.initial_tokens["access_token"])
    page.get_by_role("button", name="Connect", exact=True).click()
    named = f"Tributary Demo ({SHOP})"  # the shop's name from shop.json, its domain beside it
    expect(page.get_by_text(f"Shopify {named} connected. The connection test passed.")
           ).to_be_visible()
    # a new connection lands on "Set up recurring imports"; back to the details page
    expect(page.get_by_role("heading", name="Set up recurring imports")).to_be_visible()
    page.get_by_role("link", name="← Shopify").click()
    expect(page.get_by_role("heading", name=named)).to_be_visible()
    expect(page.get_by_text("Lists fed by this integration")).to_be_visible()
    assert shopify.app.initial_tokens["access_token"] not in page.content()
    page.screenshot(path=str(shots / "details_page.png"), full_page=True)

    # 200 % zoom of a 1280 px window: nothing scrolls sideways
    page.set_viewport_size({"width": 640, "height": 900})
    _no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Salesforce: "Log in with Salesforce"; the browser follows authorize -> callback
    page.get_by_role("link", name="← Integrations").click()
    expect(page.locator("#tile-shopify")).to_contain_text(named)
    page.locator("#tile-salesforce").hover()
    page.locator("#tile-salesforce .details").click()
    page.get_by_label("Sandbox (test.salesforce.com)").check()
    page.get_by_label("Production (login.salesforce.com)").check()
    page.locator("#connect summary").click()
    page.get_by_label("Login host URL").fill(salesforce.url)
    page.get_by_role("button", name="Log in with Salesforce").click()
    expect(page).to_have_url(re.compile(r"/integrations/\d+/imports/new$"))
    org = "Acme Corporation"  # SELECT Name FROM Organization
    expect(page.get_by_text(f"Salesforce {org} connected.")).to_be_visible()
    page.get_by_role("link", name="← Salesforce").click()
    expect(page).to_have_url(re.compile(r"/integrations/salesforce$"))
    db.session.expire_all()
    row = db.session.scalar(select(Integration).where(Integration.provider == "salesforce"))
    assert row is not None and row.status == "connected"

    # Disconnect: the inline confirmation (htmx), then the POST
    page.get_by_role("link", name=re.compile(r"^Disconnect")).click()
    expect(page.get_by_text(f"Disconnect {org}?")).to_be_visible()
    page.get_by_role("button", name="Disconnect", exact=True).click()
    expect(page.get_by_text(re.compile(r"disconnected: its credentials were erased"))
           ).to_be_visible()
    expect(page.get_by_role("heading", name="Disconnected accounts")).to_be_visible()
    db.session.expire_all()
    row = db.session.get(Integration, row.id)
    assert row.status == "disconnected" and row.credentials_encrypted is None
    page.set_viewport_size({"width": 640, "height": 900})
    _no_sideways_scroll(page)
    page.get_by_role("link", name="← Integrations").click()
    expect(page.locator("#tile-salesforce")).to_contain_text("Not connected")
    _no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Needs reconnect: a banner with the reason and a Reconnect button, on both pages
    db.session.execute(
        update(Integration).where(Integration.provider == "shopify")
        .values(status="needs_reconnect",
                status_reason="The provider refused our credentials: token revoked."))
    db.session.commit()
    page.reload()
    banner = page.get_by_role("alert").filter(has_text="needs reconnecting")
    expect(banner).to_contain_text("token revoked.")
    expect(page.locator("#tile-shopify")).to_contain_text("Needs reconnect")
    page.screenshot(path=str(shots / "needs_reconnect.png"), full_page=True)
    banner.get_by_role("link", name=re.compile("^Reconnect")).click()
    expect(page.get_by_role("heading", name=f"Reconnect {named}")).to_be_visible()
    page.get_by_label("Admin API access token", exact=True).fill(
        shopify.app.initial_tokens["access_token"])
    page.locator("#connect summary").first.click()
    page.get_by_label("API base URL").first.fill(shopify.url)
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_text(f"Shopify {named} reconnected.")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="needs reconnecting")).to_have_count(0)

    # The settings page's OAuth apps section (secret never shown back)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="OAuth apps")).to_be_visible()
    expect(page.locator("#oauth-apps")).to_contain_text("From the environment")
    assert salesforce.app.state.client_secret not in page.content()
    page.screenshot(path=str(shots / "settings_oauth_apps.png"), full_page=True)
    page.set_viewport_size({"width": 640, "height": 900})
    _no_sideways_scroll(page)
