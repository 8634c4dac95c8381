"""Setting up imports in a real browser against the simulators, with a real worker process:
connect → Set up recurring imports → Assign custom fields → Import → the run completes on
the details page → the contacts are in the list with their custom value. Shopify with a
token, Salesforce through its OAuth log-in, and imported markup shown as text everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from simulators.dataset import XSS_NAME, generate
from simulators.server import serve
from simulators.shopify import SHOP
from tests.conftest import PASSWORD, ROOT, process_env
from tests.factories import make_field, make_list
from tests.imports.workers import stop_worker
from tests.test_integrations_support import SIMULATORS, make_integration
from webapp.extensions import db
from webapp.imports import runs
from webapp.models import Contact, ContactList, CustomField, ImportRun, RecurringImport
from webapp.services.mapping import Column

PEOPLE = 300
XSS_EMAIL = "<img src=x onerror=alert(1)>"  # rejected as a syntax error: on the rejects page


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


def _people():
    people = generate(PEOPLE, seed=11)
    people[1].first_name = XSS_NAME  # among the mapping grid's sample records
    people[4].email = XSS_EMAIL
    return people


class _Sim:
    def __init__(self, name: str):
        self.module = SIMULATORS[name]
        self.app = self.module.create_app(_people())
        self.running = serve(self.app)
        self.url = self.running.url

    def config(self) -> dict:
        return self.module.demo_config(self.app, self.url)


@pytest.fixture
def shopify():
    sim = _Sim("shopify")
    yield sim
    sim.running.stop()


@pytest.fixture
def salesforce():
    sim = _Sim("salesforce")
    yield sim
    sim.running.stop()


@pytest.fixture
def worker(app, app_config):
    """A real `worker.py imports` process on the live app's database and Redis."""
    env = {**process_env(app_config), "TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS": "1"}
    proc = subprocess.Popen([sys.executable, "worker.py", "imports"], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    yield proc
    stop_worker(proc)



@pytest.fixture
def no_dialogs(page: Page):
    """Any alert/confirm/prompt means imported markup ran as script: fail the test."""
    opened: list[str] = []

    def on_dialog(dialog):
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield opened
    assert opened == [], f"a dialog opened: {opened}"


def _sign_in(page: Page, live_server: str, user) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def _target(page: Page, source: str):
    return page.locator(f"#target-{Column(source, source, 'text').key}")


def _map_and_import(page: Page, shots: Path, prefix: str, *, email: str,
                    tier_source: str) -> None:
    """On the mapping page: Email and Name recognised, samples loaded, Ignore, Import (in
    the grid view: more than 12 fields open one row per field, so switch)."""
    expect(page.get_by_role("heading", name="Assign custom fields")).to_be_visible()
    expect(page.get_by_label("One row per field")).to_be_checked()
    page.get_by_label("Columns side by side").check()
    expect(_target(page, email)).to_have_value("email")
    expect(_target(page, "Full name")).to_have_value("name")
    expect(page.locator("#samples")).to_contain_text("Record 1")
    expect(page.locator("#samples")).to_contain_text(XSS_NAME)  # as text
    grid = page.get_by_role("region", name=re.compile("Source fields with sample values"))
    grid.focus()
    page.keyboard.press("ArrowRight")  # the grid scrolls sideways with the keyboard
    expect(_target(page, tier_source)).not_to_have_value("?")
    # Keyboard scrolling may be smooth: wait for the grid to move rather than read it once.
    grid.evaluate(
        "el => new Promise((ok, no) => { const t0 = Date.now(); (function poll() {"
        " if (el.scrollLeft > 0) ok(); else if (Date.now() - t0 > 5000) no('no scroll');"
        " else requestAnimationFrame(poll); })(); })"
    )
    _no_sideways_scroll(page)  # only the grid scrolls sideways, not the page
    page.screenshot(path=str(shots / f"{prefix}_mapping_page.png"), full_page=True)
    ignore = page.get_by_label("Ignore columns marked “?”")
    page.get_by_role("button", name="Import").click()  # refused: "?" columns left
    expect(page.locator("#mapping-errors")).to_contain_text("tick “Ignore columns marked ?”")
    ignore.check()
    expect(page.locator("#mapping-errors")).to_have_count(0)
    expect(page.get_by_label("Ignore columns marked “?”")).to_be_checked()
    page.get_by_role("button", name="Import").click()


def _lands_on_the_row_with_a_percentage(page: Page, shots: Path, total: int) -> None:
    """After Import: the import's row is focused with its bar in view, and the bar says
    "n of total · %" while the run goes (the source counted its records at the start)."""
    expect(page).to_have_url(re.compile(r"/integrations/shopify#import-row-\d+$"))
    imp = db.session.scalar(select(RecurringImport))
    row = page.locator(f"#import-row-{imp.id}")
    expect(row).to_be_focused()
    bar = row.locator(".run-progress")
    expect(bar).to_be_in_viewport()
    expect(bar).to_contain_text(re.compile(rf"Running: \d+ of {total:,} · \d+ %"),
                                timeout=30_000)
    expect(bar.locator("progress")).to_have_attribute("max", "100")
    page.screenshot(path=str(shots / "shopify_run_progress.png"), full_page=True)


def _wait_completed(page: Page, provider: str, shots: Path, prefix: str) -> ImportRun:
    expect(page).to_have_url(re.compile(rf"/integrations/{provider}(#import-row-\d+)?$"))
    bar = page.locator(".run-progress").first
    expect(bar).to_have_attribute("data-status", re.compile(r"^completed"), timeout=60_000)
    expect(bar).to_contain_text(re.compile("completed", re.I))
    page.screenshot(path=str(shots / f"{prefix}_details_page.png"), full_page=True)
    db.session.expire_all()
    run = db.session.scalar(select(ImportRun).where(ImportRun.trigger_kind == "manual"))
    assert run.status.startswith("completed") and run.added > 0
    return run


def _check_contacts(page: Page, live_server: str, list_id: int, field: str) -> None:
    db.session.expire_all()
    total = db.session.scalar(select(func.count(Contact.id)).where(Contact.list_id == list_id))
    assert total > PEOPLE * 0.8
    page.goto(f"{live_server}/lists/{list_id}/contacts")
    expect(page.get_by_text(f"{total:,}").first).to_be_visible()
    contact = db.session.scalar(
        select(Contact).where(Contact.list_id == list_id,
                              Contact.custom[field].as_string().in_(
                                  ("Bronze", "Silver", "Gold", "Platinum")))
        .order_by(Contact.id).limit(1))
    assert contact is not None
    page.get_by_role("link", name=contact.email).first.click()
    expect(page.get_by_role("heading", name=re.compile(re.escape(contact.email)))
           ).to_be_visible()
    expect(page.locator("#main")).to_contain_text(contact.custom[field])


@pytest.mark.e2e
def test_shopify_token_connect_setup_map_import(page: Page, live_server: str, user, app,
                                                 shopify, worker, no_dialogs, output_path):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    lst = make_list("Shop customers")
    _sign_in(page, live_server, user)
    page.goto(f"{live_server}/integrations/shopify")
    page.get_by_label("Shop domain").fill(SHOP)
    page.get_by_label("Admin API access token", exact=True).fill(
        shopify.app.initial_tokens["access_token"])
    page.locator("#connect summary").first.click()
    page.get_by_label("API base URL").fill(shopify.url)
    page.get_by_role("button", name="Connect", exact=True).click()

    # Set up recurring imports: a missing consent is refused next to the checkbox
    expect(page.get_by_role("heading", name="Set up recurring imports")).to_be_visible()
    page.get_by_label("Import into list").select_option(label="Shop customers")
    expect(page.get_by_label("Source")).to_have_value("all")
    expect(page.locator("#forecast")).to_contain_text("No extra fee")
    expect(page.locator("#forecast")).to_contain_text(f"Shopify holds {PEOPLE} records, all read")
    page.wait_for_load_state("networkidle")  # the list and the source each reload the box
    page.locator("#forecast").screenshot(path=str(shots / "setup_fee_box.png"))
    page.get_by_label("Source").select_option("tag:vip")
    page.get_by_label("Source").select_option("all")
    page.get_by_role("button", name="Save and assign fields").click()
    expect(page.locator("#f-consent-error")).to_contain_text("permission to email")
    page.screenshot(path=str(shots / "setup_page_error.png"), full_page=True)
    # A store defaults to people subscribed at the source; the sample counts each choice
    expect(page.get_by_label("Only people subscribed to marketing")).to_be_checked()
    expect(page.locator("#consent-counts")).to_contain_text("have not opted out")
    page.get_by_label("Everyone who has not opted out").check()
    page.get_by_label("I confirm we have permission to email these contacts").check()
    page.get_by_role("button", name="Save and assign fields").click()

    # Assign custom fields: the loyalty tier metafield to a custom field created inline
    tier = _target(page, "custom.loyalty_tier")
    expect(tier).to_have_value("?")
    tier.select_option(label="New custom field…")
    name = page.get_by_label("Name", exact=True)
    expect(name).to_have_value("loyalty_tier")
    page.get_by_role("button", name="Create field").click()
    expect(page.get_by_text("Custom field loyalty_tier created.")).to_be_visible()
    field = db.session.scalar(select(CustomField).where(CustomField.name == "loyalty_tier"))
    expect(tier).to_have_value(str(field.id))
    shopify.app.state.delay = 0.6  # each request slower: a run long enough to watch
    _map_and_import(page, shots, "shopify", email="email", tier_source="custom.loyalty_tier")
    _lands_on_the_row_with_a_percentage(page, shots, PEOPLE)
    shopify.app.state.delay = 0

    _wait_completed(page, "shopify", shots, "shopify")
    _check_contacts(page, live_server, lst.id, "loyalty_tier")


@pytest.mark.e2e
def test_salesforce_oauth_setup_map_import(page: Page, live_server: str, user, app,
                                            salesforce, worker, no_dialogs, output_path):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    app.config.update(SALESFORCE_CLIENT_ID=salesforce.app.state.client_id,
                      SALESFORCE_CLIENT_SECRET=salesforce.app.state.client_secret)
    make_field("loyalty_tier", "text")  # pre-created: matched by name
    _sign_in(page, live_server, user)
    page.goto(f"{live_server}/integrations/salesforce")
    page.locator("#connect summary").click()
    page.get_by_label("Login host URL").fill(salesforce.url)
    page.get_by_role("button", name="Log in with Salesforce").click()

    expect(page.get_by_role("heading", name="Set up recurring imports")).to_be_visible()
    # the list options reload on that change: type the name once they are in, or the swap
    # empties the field again (a race that shows under load)
    # htmx must be listening before the change, or no request goes out to wait for; with no
    # list yet, "Create a new list…" is already chosen and choosing it again changes nothing
    page.wait_for_function("() => window.htmx !== undefined && document.readyState === 'complete'")
    chooser = page.get_by_label("Import into list")
    if chooser.evaluate("el => el.selectedOptions[0].text") != "Create a new list…":
        with page.expect_response(lambda r: "/imports/list-options" in r.url):
            chooser.select_option(label="Create a new list…")
    expect(page.locator("#list-options")).to_be_visible()
    page.get_by_label("Name of the new list").fill("Salesforce contacts")
    page.get_by_label("Group").select_option(label="Contacts")
    expect(page.get_by_label("Source")).to_contain_text("Lead source: Web")
    page.get_by_label("Source").select_option(label="All contacts")
    page.get_by_label("Update existing only").check()
    expect(page.locator("#forecast")).to_contain_text("adds no contacts")
    page.get_by_label("Add and update").check()
    expect(page.locator("#forecast")).to_contain_text(
        f"Salesforce holds {PEOPLE} records, all read")
    page.get_by_label("Run at").select_option(label="Daily at 06:00")
    page.get_by_label("I confirm we have permission to email these contacts").check()
    page.get_by_role("button", name="Save and assign fields").click()

    _map_and_import(page, shots, "salesforce", email="Email", tier_source="Loyalty_Tier__c")
    _wait_completed(page, "salesforce", shots, "salesforce")
    lst = db.session.scalar(select(ContactList).where(ContactList.name == "Salesforce contacts"))
    imp = db.session.scalar(select(RecurringImport).where(RecurringImport.list_id == lst.id))
    assert (imp.state, imp.run_hour, imp.group) == ("active", 6, "Contact")
    _check_contacts(page, live_server, lst.id, "loyalty_tier")


@pytest.mark.e2e
def test_imported_markup_is_text_everywhere(page: Page, live_server: str, user, app,
                                            shopify, no_dialogs, output_path):
    cfg = shopify.config()
    integration = make_integration("shopify", SHOP, settings=cfg["settings"],
                                   credentials=cfg["credentials"])
    lst = make_list("Shop customers")
    imp = RecurringImport(integration_id=integration.id, list_id=lst.id, group="customers",
                          source="all", state="stopped", mapping={}, ignore_unmapped=True)
    db.session.add(imp)
    db.session.commit()
    _sign_in(page, live_server, user)

    page.goto(f"{live_server}/imports/{imp.id}/mapping?view=grid")
    expect(page.locator("#samples")).to_contain_text(XSS_NAME)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("Would add")
    expect(page.locator("#preview")).to_contain_text(XSS_NAME)

    run = runs.start_run(imp.id, "manual", queue=False)
    runs.execute(run.id)
    db.session.expire_all()
    person = db.session.scalar(select(Contact).where(Contact.name.like("<img%")))
    assert person is not None and person.name.startswith(XSS_NAME)

    page.goto(f"{live_server}/lists/{lst.id}/contacts?q={person.email}")
    expect(page.locator("#main")).to_contain_text(XSS_NAME)
    page.goto(f"{live_server}/contacts/{person.id}")
    expect(page.locator("#main")).to_contain_text(XSS_NAME)
    page.goto(f"{live_server}/imports/runs/{run.id}")
    expect(page.locator("#main")).to_contain_text(XSS_EMAIL)
    assert page.locator("img[src=x]").count() == 0
