"""The pages a marketing team expects, in a real browser: the dashboard, a list's contacts
with filters (count and export follow), a run page's rejected and skipped rows filtered by
reason with a 128+-character email wrapped; readable choices (time-zone search, the browser's
zone preselected); layout (radio dots beside their labels, dates on one line) and focus
(failed submit, Disconnect). Screenshots under the test output folder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert

from tests.conftest import PASSWORD
from tests.factories import make_contacts, make_cycle, make_suppression
from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import ImportRun, RejectedRow
from webapp.models.base import utcnow

LONG_EMAIL = "very.long." + "x" * 130 + "@example.com"


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "timezone_id": "America/New_York"}


def _sign_in(page: Page, live_server: str, user) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def _one_line(page: Page, selector: str) -> None:
    """Every matching element is a single line of text."""
    heights = page.eval_on_selector_all(selector, """els => els.map(e => {
        const lh = parseFloat(getComputedStyle(e).lineHeight) || 20;
        return e.getBoundingClientRect().height / lh; })""")
    assert heights and max(heights) < 1.5, heights


def _seed():
    shop = make_integration("shopify", "acme.myshopify.com")
    make_integration("zoho", "Acme CRM", status="needs_reconnect",
                     reason="Zoho refused the saved sign-in; reconnect to continue.")
    imp = make_import(shop, "Newsletter")
    imp.next_run_at, imp.time_zone = utcnow() + timedelta(hours=3), "Europe/Paris"
    failing = make_import(shop, "Wholesale")
    failing.consecutive_failures = 2
    db.session.commit()
    now = utcnow()
    runs = []
    for i, (target, status) in enumerate([(imp, "completed"), (failing, "failed"),
                                          (imp, "completed_with_errors")]):
        run = ImportRun(import_id=target.id, trigger_kind="manual", status=status,
                        queued_at=now - timedelta(minutes=10 - i),
                        started_at=now - timedelta(minutes=10 - i), finished_at=now,
                        fetched=1200 + i, added=1000 + i, updated=150, skipped=2,
                        rejected=3 if status != "failed" else 0,
                        rejected_by_reason={"syntax_error": 2, "already_in_queue": 1},
                        error="The store did not answer in time." if status == "failed" else "")
        db.session.add(run)
        runs.append(run)
    db.session.commit()
    last = runs[-1]
    db.session.execute(insert(RejectedRow), [
        {"run_id": last.id, "source_id": "1001", "email": LONG_EMAIL, "name": "Lena Long",
         "reason": "syntax_error", "detail": "longer than 128 characters"},
        {"run_id": last.id, "source_id": "1002", "email": "bob@", "name": "Bob",
         "reason": "syntax_error", "detail": "no domain"},
        {"run_id": last.id, "source_id": "1003", "email": "ann@example.com", "name": "Ann",
         "reason": "already_in_queue", "detail": "the same email came earlier in this run"},
        {"run_id": last.id, "source_id": "1004", "email": "", "name": "Nora Nomail",
         "reason": "no_email", "detail": "no email address at the source"},
        {"run_id": last.id, "source_id": "1005", "email": "", "name": "Ned Nomail",
         "reason": "no_email", "detail": "no email address at the source"},
    ])
    lst = imp.list
    cycle = make_cycle(lst, "Welcome")
    make_contacts(lst, 60, prefix="sub", origin="import", consent_state="subscribed",
                  created_run_id=runs[0].id, cycle_id=cycle.id, cycle_day=0)
    make_contacts(lst, 25, prefix="gone", start=100, status="unsubscribed",
                  consent_state="opted_out", origin="import", created_run_id=last.id)
    make_contacts(lst, 15, prefix="manual", start=200)
    make_suppression("spam@example.com")
    db.session.commit()
    return imp, lst, last


@pytest.mark.e2e
def test_dashboard_contacts_filters_and_run_page(page: Page, live_server: str, user, app,
                                                output_path: str):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    imp, lst, run = _seed()
    _sign_in(page, live_server, user)

    # Dashboard: what needs attention, recent runs, next imports, usage
    attention = page.locator("#attention")
    expect(attention).to_contain_text("Needs reconnect")
    expect(attention).to_contain_text("Zoho CRM · Acme CRM")
    expect(attention).to_contain_text("Failing")
    expect(attention).to_contain_text("The store did not answer in time.")
    expect(page.locator("#recent-runs tbody tr")).to_have_count(3)
    expect(page.locator("#recent-runs")).to_contain_text("Completed with errors")
    expect(page.locator("#next-imports")).to_contain_text("Newsletter")
    expect(page.locator("#next-imports")).to_contain_text("(Europe/Paris)")
    expect(page.get_by_role("heading", name="Plan usage")).to_be_visible()
    # the forecast of the next 24 hours' runs, inside the plan usage card (issue 9 item 13)
    forecast = page.locator("#next-runs-forecast")
    expect(forecast).to_contain_text("The 1 run due in the next 24 hours adds about 1,001")
    expect(page.locator(f"#next-run-{imp.id}")).to_contain_text(
        "about 1,001 new, at most 1,002 (the last 2 runs added 1,000 to 1,002)")
    _one_line(page, "#recent-runs time")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    # Contacts: filter by status (live), the count and export link follow, paging keeps it
    page.goto(f"{live_server}/lists/{lst.id}/contacts")
    expect(page.locator("#contact-count")).to_contain_text("100 contacts")
    page.get_by_label("Status").select_option("subscribed")
    expect(page.locator("#contact-count")).to_contain_text("75 of 100 contacts match")
    expect(page).to_have_url(f"{live_server}/lists/{lst.id}/contacts?status=subscribed")
    page.get_by_label("Origin").select_option("import")
    expect(page.locator("#contact-count")).to_contain_text("60 of 100 contacts match")
    expect(page.locator("#contact-rows tbody tr")).to_have_count(50)
    export = page.locator("#contact-export")
    expect(export).to_have_attribute(
        "href", f"/lists/{lst.id}/contacts.csv?status=subscribed&origin=import")
    expect(export).to_contain_text("Download these contacts")
    page.screenshot(path=str(shots / "contacts_with_filters.png"), full_page=True)
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#contact-rows tbody tr")).to_have_count(10)
    expect(page.locator("#contact-count")).to_contain_text("60 of 100 contacts match")
    with page.expect_download() as download_info:
        export.click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("email,name,status,consent")
    assert len(text.splitlines()) == 61 and "gone100" not in text
    page.set_viewport_size({"width": 640, "height": 900})  # 200 % zoom of 1280 px
    _no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Run page: every kept row, a 128+-character email wraps inside its card; filter by reason
    page.goto(f"{live_server}/imports/runs/{run.id}")
    rows = page.locator("#run-rejects tbody tr")
    expect(rows).to_have_count(5)
    table_fits = page.eval_on_selector(
        "#run-rejects .scroll-x", "el => el.scrollWidth <= el.clientWidth + 1")
    assert table_fits, "the long email pushes the rejects table off screen"
    page.get_by_label("Reason", exact=True).select_option("no_email")
    expect(rows).to_have_count(2)
    expect(page.locator("#run-rejects")).to_contain_text("Nora Nomail")
    expect(page.locator("#run-rejects a[download]")).to_have_attribute(
        "href", f"/imports/runs/{run.id}/rejects.csv?reason=no_email")
    page.screenshot(path=str(shots / "run_page_rejects_by_reason.png"), full_page=True)
    page.get_by_label("Reason", exact=True).select_option("")
    expect(rows).to_have_count(5)
    page.screenshot(path=str(shots / "run_page.png"), full_page=True)

    # Dates stay on one line in Import statistics and Suppression
    page.set_viewport_size({"width": 900, "height": 900})
    page.goto(f"{live_server}/imports/runs/")
    _one_line(page, ".runs-table time")
    page.goto(f"{live_server}/suppression/")
    _one_line(page, "table time")


@pytest.mark.e2e
def test_choices_layout_and_focus(page: Page, live_server: str, user, app, output_path: str):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    app.config.update(SALESFORCE_CLIENT_ID="sf-client", SALESFORCE_CLIENT_SECRET="sf-secret")
    shop = make_integration("shopify", "acme.myshopify.com")
    _sign_in(page, live_server, user)

    # Settings: the browser's zone (America/New_York) is preselected over the default UTC,
    # and the zone list can be searched
    page.goto(f"{live_server}/settings/")
    zone = page.locator("#f-time_zone")
    expect(zone).to_have_value("America/New_York")
    expect(page.locator(".browser-zone")).to_contain_text("America/New_York")
    page.get_by_label("Search time zones").fill("kolk")
    expect(zone).to_have_value("Asia/Kolkata")
    visible = zone.evaluate("s => Array.from(s.options).filter(o => !o.hidden).length")
    assert visible == 1
    expect(page.locator("#f-currency option[value=EUR]")).to_have_text("EUR · Euro")

    # A failed submit puts focus on the field at fault
    page.get_by_label("Workspace name").fill("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#f-name")).to_be_focused()

    # Radio dots sit beside their labels (Magento, Salesforce)
    for provider, name in (("magento", "auth_mode"), ("salesforce", "environment")):
        page.goto(f"{live_server}/integrations/{provider}")
        radios = page.locator(f"input[type=radio][name={name}]")
        expect(radios.first).to_be_visible()
        for i in range(radios.count()):
            gap = radios.nth(i).evaluate("""r => {
                const box = r.getBoundingClientRect();
                const label = r.closest('label');
                const range = document.createRange();
                range.selectNodeContents(label);
                const rects = Array.from(range.getClientRects())
                    .filter(x => x.left > box.right - 1);
                return {width: box.width, gap: Math.min(...rects.map(x => x.left)) - box.right};
            }""")
            assert gap["width"] < 24 and 0 <= gap["gap"] < 16, (provider, gap)
        page.screenshot(path=str(shots / f"{provider}_connect_form.png"), full_page=True)

    # Magento: a failed submit (htmx swap) puts focus on the field at fault
    page.goto(f"{live_server}/integrations/magento")
    page.get_by_role("button", name="Connect").first.click()
    expect(page.locator("#f-base_url")).to_be_focused()

    # Disconnect: the inline confirmation takes focus; afterwards the outcome message does
    page.goto(f"{live_server}/integrations/shopify")
    page.locator(f"#integration-{shop.id}-actions").get_by_role("link", name="Disconnect").click()
    confirm = page.locator(f"#integration-{shop.id}-actions").get_by_role("button",
                                                                       name="Disconnect")
    expect(confirm).to_be_focused()
    confirm.click()
    flash = page.locator(".flash")
    expect(flash).to_contain_text("disconnected")
    expect(flash).to_be_focused()


@pytest.mark.e2e
def test_preview_reject_table_wraps_a_long_email(page: Page, live_server: str, app, user):
    """The Preview's sample tables keep a 128+-character email inside the card."""
    from flask import render_template

    sample = {"source_id": "77", "email": LONG_EMAIL, "reason": "syntax_error",
              "detail": "longer than 128 characters"}
    result = {"records": 3, "would_add": 1, "would_update": 0, "unchanged": 0,
              "would_skip": 0, "would_reject": 2, "warnings": 0,
              "rejected_by_reason": {"syntax_error": 2},
              "samples": {"reject": [sample, {**sample, "source_id": "78",
                                              "email": "b" * 140 + "@example.com"}]}}
    with app.test_request_context():
        html = render_template("imports_setup/_preview.html",
                               preview={"problem": None, "result": result})
    page.set_viewport_size({"width": 1000, "height": 800})
    page.goto(f"{live_server}/login")  # same origin, so the stylesheet loads
    page.set_content(f'<html><head><link rel="stylesheet" href="{live_server}/static/app.css">'
                     f'</head><body><main style="max-width:900px">{html}</main></body></html>')
    expect(page.locator("#preview table tbody tr")).to_have_count(2)
    fits = page.eval_on_selector("#preview .scroll-x",
                                 "el => el.scrollWidth <= el.clientWidth + 1")
    assert fits, "a long email pushes the preview's reject table off screen"
