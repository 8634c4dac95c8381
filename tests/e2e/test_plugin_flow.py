"""Plugin imports end to end in Chromium: the demo shop carries the snippet of a website
source made with the set-up services; a visitor signs up through its form with consent,
adds a product to the cart and orders; the events reach our tracking API, are processed,
and the team sees the contact with its timeline and the order on the Shop page."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from simulators import demo_shop
from tests.e2e.test_import_flows import _sign_in
from tests.factories import make_list
from webapp.extensions import db
from webapp.models import Contact, Order, PluginEvent
from webapp.plugins import sources
from webapp.plugins.process import process_pending


def _wait_for_events(kinds: set[str], timeout: float = 20.0) -> None:
    """Until the receivers have stored events of every kind in `kinds`."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        stored = set(db.session.scalars(select(PluginEvent.kind).distinct()))
        if kinds <= stored:
            return
        assert time.monotonic() < deadline, f"stored {sorted(stored)}, wanted {sorted(kinds)}"
        time.sleep(0.2)
        db.session.rollback()


@pytest.fixture
def shop():
    running, state = demo_shop.start(retry_delays=(0.2, 0.4))
    yield running.url, state
    state.close()
    running.stop()


def test_sign_up_and_cart_on_the_shop_show_on_the_contact(page: Page, app, live_server,
                                                         user, shop):
    shop_url, state = shop
    newsletter = make_list("Newsletter")
    with app.test_request_context("/", base_url=live_server):
        made = sources.create("website", MultiDict([
            ("name", "Demo shop"), ("list_id", str(newsletter.id)),
            ("add_events", "signed_up"), ("add_events", "form_submitted"),
            ("allowed_origins", shop_url)]))
    keys = {k.kind: k.secret for k in made.new_keys}
    state.configure(live_server, keys["public"], keys["server"])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(shop_url + "/")
    page.get_by_label("Email").fill("dora@example.com")
    page.get_by_label("First name").fill("Dora")
    page.get_by_label("Yes, send me the newsletter").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Thanks for signing up!")).to_be_visible()
    page.goto(shop_url + "/")
    page.get_by_role("link", name="Tea sampler").click()
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#added")).to_contain_text("Tea sampler is in your cart")
    page.get_by_role("link", name="Cart").click()
    page.get_by_label("Email for the receipt").fill("dora@example.com")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    assert errors == []

    _wait_for_events({"page", "form_submitted", "product_added", "checkout_started",
                      "order_completed"})
    assert process_pending() > 0
    dora = db.session.scalar(select(Contact).where(Contact.email_norm == "dora@example.com"))
    assert dora is not None and dora.list_id == newsletter.id
    assert (dora.origin, dora.status, dora.consent_state) == ("form", "subscribed",
                                                              "subscribed")
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1
    order = db.session.scalar(select(Order))
    assert order is not None and order.contact_id == dora.id and float(order.total) == 31.9

    _sign_in(page, live_server, user)
    page.goto(f"{live_server}/contacts/{dora.id}")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Submitted a sign-up form")
    expect(timeline).to_contain_text("Added Tea sampler to the cart")
    expect(timeline).to_contain_text("Placed order")
    expect(timeline).to_contain_text("from Demo shop")
    page.screenshot(path="test-results/plugin-contact-timeline.png", full_page=True)
    page.goto(f"{live_server}/shop/")  # the order counts as revenue on the Shop dashboard
    expect(page.locator("main")).to_contain_text("31.90")
    expect(page.get_by_role("link", name=order.external_id).first).to_be_visible()


def test_reloading_the_page_that_shows_a_new_key_rotates_nothing(page: Page, app, live_server,
                                                                 user):
    """The browser's reload of the answer to "New server key" re-posts the form: the page
    then says the key was shown once, and both valid keys stay as they were."""
    from webapp.models import PluginKey

    lst = make_list("Keys list")
    with app.test_request_context("/", base_url=live_server):
        made = sources.create("website", MultiDict([
            ("name", "Keys site"), ("list_id", str(lst.id)),
            ("allowed_origins", "https://shop.example")]))
    source_id = made.source.id
    _sign_in(page, live_server, user)
    page.goto(f"{live_server}/plugins/{source_id}")
    page.get_by_role("button", name="New server key").click()
    new_key = page.locator("#new-key-server")
    expect(new_key).to_be_visible()
    shown = new_key.inner_text()

    def server_keys():
        db.session.expire_all()
        rows = db.session.scalars(select(PluginKey).where(
            PluginKey.source_id == source_id, PluginKey.kind == "server")
            .order_by(PluginKey.id)).all()
        return [(r.id, r.expires_at, r.revoked_at) for r in rows]

    before = server_keys()
    assert len(before) == 2
    page.reload()  # re-posts the rotate form
    expect(page.get_by_text("This key was shown once already; rotate again for a new one.")
           ).to_be_visible()
    assert page.url.endswith(f"/plugins/{source_id}")
    expect(page.locator("#new-key-server")).to_have_count(0)
    assert shown not in page.content()
    assert server_keys() == before
    page.reload()  # now a plain GET: nothing re-posted
    assert server_keys() == before
