"""The dashboard's plan usage forecasts the next 24 hours of scheduled runs (issue 9 item 13):
expected additions from each import's last runs or its counted source, whether that crosses
the plan limit, and the fee from the one forecast computation (imports/forecast.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from tests.factories import make_contacts, make_list
from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.imports import forecast as fees
from webapp.models import ImportRun, WorkspaceSettings
from webapp.models.base import utcnow
from webapp.services import dashboard_forecast


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _box(html: str) -> str:
    match = re.search(r'<div class="next-runs-forecast".*?</div>', html, re.S)
    assert match, "no forecast box"
    return " ".join(match.group(0).split())


def _plan(limit: int, price: str, subscribed: int) -> None:
    settings = WorkspaceSettings.get()
    settings.subscriber_limit, settings.extension_price = limit, Decimal(price)
    db.session.commit()
    make_contacts(make_list("Existing"), subscribed)


def _run(imp, added: int, *, status="completed", trigger="scheduled", source_total=None):
    now = utcnow()
    db.session.add(ImportRun(import_id=imp.id, status=status, trigger_kind=trigger,
                             queued_at=now, started_at=now, finished_at=now, added=added,
                             source_total=source_total))
    db.session.commit()


def _due(imp, hours: float) -> None:
    imp.next_run_at = utcnow() + timedelta(hours=hours)
    db.session.commit()


def test_next_runs_forecast_crosses_the_limit(signed_in):
    _plan(100, "15.00", 95)
    shop = make_integration("shopify", "Acme Outdoor (acme.myshopify.com)")
    learnt = make_import(shop, "Newsletter")
    _run(learnt, 10)
    _run(learnt, 20)
    _run(learnt, 999, trigger="preview")  # previews are not runs: not learnt from
    _run(learnt, 500, status="failed")  # nor failed runs
    _due(learnt, 2)
    counted = make_import(shop, "Leads")  # never finished a run; a preview counted the source
    _run(counted, 0, trigger="preview", source_total=7)
    _due(counted, 5)
    unknown = make_import(shop, "Fresh")  # nothing to learn from
    _due(unknown, 6)
    updates = make_import(shop, "Updates")
    updates.criteria = "update_only"
    _run(updates, 50)
    _due(updates, 1)
    later = make_import(shop, "Later")  # due after the window
    _run(later, 1000)
    _due(later, 30)
    stopped = make_import(shop, "Stopped", state="stopped")
    _run(stopped, 1000)
    _due(stopped, 1)

    nxt = dashboard_forecast.next_runs()
    assert [r.imp.id for r in nxt.runs] == [updates.id, learnt.id, counted.id, unknown.id]
    assert (nxt.total.low, nxt.total.expected, nxt.total.high) == (0, 15 + 7, 20 + 7)
    assert nxt.unknown == 1
    # The fee is the forecast module's own: 95 + 22 = 117 → 17 over → 1 block × 15.00.
    same = fees.forecast(nxt.total)
    assert (nxt.fee.after.count, nxt.fee.extra_fee, nxt.fee.headline) == (
        117, same.extra_fee, same.headline)
    assert nxt.fee.extra_fee == Decimal("15.00") and nxt.crosses_limit

    box = _box(_html(signed_in.get("/")))
    assert "The next 24 hours" in box
    assert f"<strong>{same.headline}.</strong>" in box
    assert "These runs are expected to take you over the plan limit of 100." in box
    assert 'data-crosses="yes"' in box
    assert ("The 4 runs due in the next 24 hours add about 22 new contacts (0 to 27): "
            "about 117 subscribers, 17 over the limit of 100") in box
    assert "→ Newsletter" in box and (
        'about 15 new, at most 20 <span class="muted">(the last 2 runs added 10 to 20)') in box
    assert ('→ Leads, <span class="when">' in box and 'up to 7 new <span class="muted">'
            "(first full run: the source holds 7 records)") in box
    assert "→ Updates" in box and (
        '0 new <span class="muted">(Update existing only adds no contacts.)') in box
    assert "→ Fresh" in box and "not estimated yet" in box
    assert "Later" not in box and "Stopped" not in box


def test_next_runs_within_the_plan_and_what_the_most_could_do(signed_in):
    _plan(100, "15.00", 80)
    shop = make_integration("shopify", "acme.myshopify.com")
    imp = make_import(shop, "Newsletter")
    for added in (2, 4, 30):
        _run(imp, added)
    _due(imp, 3)
    nxt = dashboard_forecast.next_runs()
    assert (nxt.total.expected, nxt.total.high) == (12, 30)
    assert not nxt.crosses_limit and nxt.may_cross_limit
    box = _box(_html(signed_in.get("/")))
    assert "Probably no extra fee this billing cycle (at most 15.00 USD more)" in box
    assert "At the most they could take you over the plan limit of 100." in box
    assert 'data-crosses="no"' in box


def test_no_run_due_says_so(signed_in):
    shop = make_integration("shopify", "acme.myshopify.com")
    _due(make_import(shop, "Newsletter"), 40)
    assert dashboard_forecast.next_runs().fee is None
    assert "No import is due in the next 24 hours." in _box(_html(signed_in.get("/")))
