"""The dashboard: integrations and imports that need someone, recent runs with status and
counts (previews left out), the next scheduled imports (time once when the zone is UTC),
plan usage and the lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.factories import make_contacts
from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import ImportRun
from webapp.models.base import utcnow


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert match, section_id
    return match.group(0)


def _run(imp, status="completed", trigger="manual", **kw) -> ImportRun:
    now = utcnow()
    run = ImportRun(import_id=imp.id, status=status, trigger_kind=trigger, queued_at=now,
                    started_at=now, finished_at=now, **kw)
    db.session.add(run)
    db.session.commit()
    return run


def test_dashboard_shows_what_needs_attention(signed_in):
    dead = make_integration("zoho", "Acme CRM", status="needs_reconnect",
                            reason="Zoho refused the saved sign-in.")
    make_import(dead, "Leads")
    shop = make_integration("shopify", "acme.myshopify.com")
    drift = make_import(shop, "Drift", state="needs_attention")
    drift.state_reason = "The mapped field “Loyalty” no longer exists at the source."
    failing = make_import(shop, "Failing")
    failing.consecutive_failures = 3
    fine = make_import(shop, "Fine")
    stopped = make_import(shop, "Stopped", state="stopped")
    db.session.commit()
    _run(failing, status="failed", error="The store did not answer.")
    _run(fine)
    _run(stopped, status="failed", error="Old failure of a stopped import.")

    html = _text(signed_in.get("/"))
    box = _section(html, "attention")
    items = re.findall(r'<li class="attention-item attention-([a-z_]+)">', box)
    assert items == ["needs_reconnect", "needs_attention", "failing"]
    assert "Zoho CRM · Acme CRM" in box and "Zoho refused the saved sign-in." in box
    assert "Shopify · acme.myshopify.com → Drift" in box and "no longer exists" in box
    assert "→ Failing" in box and "Failed 3 times in a row: The store did not answer." in box
    assert "→ Fine" not in box and "Stopped" not in box
    assert f'href="/integrations/shopify#import-row-{drift.id}"' in box


def test_dashboard_without_problems_says_so(signed_in):
    html = _text(signed_in.get("/"))
    assert "Nothing: every integration is connected" in _section(html, "attention")
    assert "No import has run yet" in _section(html, "recent-runs")
    assert "No import is scheduled" in _section(html, "next-imports")


def test_recent_runs_newest_first_with_status_and_counts_without_previews(signed_in):
    shop = make_integration("shopify", "acme.myshopify.com")
    imp = make_import(shop, "Newsletter")
    older = _run(imp, added=120, updated=3, rejected=2)
    preview = _run(imp, trigger="preview", added=999)
    newer = _run(imp, status="completed_with_errors", added=1500, updated=40, rejected=17)
    box = _section(_text(signed_in.get("/")), "recent-runs")
    assert re.findall(r'<tr id="dash-run-(\d+)">', box) == [str(newer.id), str(older.id)]
    assert str(preview.id) not in re.findall(r'dash-run-(\d+)', box)
    assert "Completed with errors" in box and "1,500" in box and ">17<" in box
    assert f'href="/imports/runs/{newer.id}"' in box


def test_next_scheduled_imports_soonest_first_time_printed_once_in_utc(signed_in):
    shop = make_integration("shopify", "acme.myshopify.com")
    later, sooner = make_import(shop, "Later"), make_import(shop, "Sooner")
    berlin, stopped = make_import(shop, "Berlin"), make_import(shop, "Off", state="stopped")
    base = datetime(2030, 1, 2, 5, 0, tzinfo=UTC)
    later.next_run_at, later.time_zone = base + timedelta(hours=5), "UTC"
    sooner.next_run_at, sooner.time_zone = base, "UTC"
    berlin.next_run_at, berlin.time_zone = base + timedelta(hours=2), "Europe/Berlin"
    stopped.next_run_at = base
    db.session.commit()
    box = _section(_text(signed_in.get("/")), "next-imports")
    order = re.findall(r"→ (\w+)</a>", box)
    assert order == ["Sooner", "Berlin", "Later"]
    assert box.count("2030-01-02 05:00 UTC") == 1  # not printed twice for a UTC zone
    assert "2030-01-02 08:00 CET (Europe/Berlin)" in box and "2030-01-02 07:00 UTC" in box


def test_dashboard_keeps_usage_and_lists(signed_in):
    from tests.factories import make_list

    make_contacts(make_list("Alpha"), 30)
    html = _text(signed_in.get("/"))
    assert "Plan usage" in html and "List-extension fee this billing cycle" in html
    assert "Alpha" in html and ">30<" in html
