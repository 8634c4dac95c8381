"""The Shopify source page's order history widget: the button and what it does, a start
(form and htmx), the self-replacing progress that polls only while the run is live, the
outcome in plain words, and no button where history cannot be imported."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.commerce.test_history_import import shop_source
from tests.test_integrations_support import sim_fixture
from webapp.commerce import history
from webapp.extensions import db
from webapp.models import Integration, OrderHistoryRun, PluginSource

shopify = sim_fixture("shopify")

SENTENCE = ("Past orders count in revenue, abandoned-cart recovery and recommendations, but "
            "start no automation.")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _widget(html: str) -> str:
    match = re.search(r'<div id="order-history"[^>]*>', html)
    assert match, html
    return match.group(0)


def test_the_source_page_offers_the_history_import_and_shows_its_progress(signed_in, shopify):
    source = shop_source(shopify)
    page = _text(signed_in.get(f"/plugins/{source.id}"))
    assert "Import order history" in page and SENTENCE in page
    assert "hx-trigger" not in _widget(page)  # nothing runs: no polling

    started = signed_in.post(f"/plugins/{source.id}/history", htmx=True)
    assert started.status_code == 200 and "HX-Request" in started.headers["Vary"]
    html = _text(started)
    widget = _widget(html)
    assert 'data-status="queued"' in widget and 'hx-trigger="every 2s"' in widget
    assert f'hx-get="/plugins/{source.id}/history"' in widget and 'hx-swap="outerHTML"' in widget
    assert "Import order history</button>" not in html  # one run at a time

    run = db.session.scalar(select(OrderHistoryRun).where(OrderHistoryRun.source_id == source.id))
    assert history.claim(run.id)
    db.session.execute(OrderHistoryRun.__table__.update().values(pages=2, orders_imported=80))
    db.session.commit()
    running = _text(signed_in.htmx_get(f"/plugins/{source.id}/history"))
    assert "80 orders imported so far (2 pages)" in running
    assert 'hx-trigger="every 2s"' in _widget(running)

    db.session.execute(OrderHistoryRun.__table__.update().values(status="queued", lease=None,
                                                                pages=0, orders_imported=0))
    db.session.commit()
    assert history.execute(run.id) == "done"
    done = _text(signed_in.htmx_get(f"/plugins/{source.id}/history"))
    assert "300 orders imported" in done and "hx-trigger" not in _widget(done)
    assert "Import order history</button>" in done  # may be run again
    # Without htmx the widget's URL is the source page.
    plain = signed_in.get(f"/plugins/{source.id}/history")
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"/plugins/{source.id}")


def test_a_form_start_flashes_and_a_second_start_is_refused(signed_in, shopify):
    source = shop_source(shopify)
    first = signed_in.post(f"/plugins/{source.id}/history", follow_redirects=True)
    assert "Order history import started." in _text(first)
    second = signed_in.post(f"/plugins/{source.id}/history", follow_redirects=True)
    assert "An order history import of this store is already running." in _text(second)
    assert len(list(db.session.scalars(select(OrderHistoryRun)))) == 1


def test_a_failed_run_shows_its_reason_and_offers_to_continue(signed_in, shopify):
    source = shop_source(shopify)
    db.session.add(OrderHistoryRun(source_id=source.id, status="failed", pages=3,
                                   orders_imported=120, cursor={"last_id": 5_000_120},
                                   error="Shopify refused the request (HTTP 403)."))
    db.session.commit()
    html = _text(signed_in.get(f"/plugins/{source.id}"))
    assert "120 orders imported before it stopped: Shopify refused the request (HTTP 403)." \
        in html
    assert "Start it again to continue where it stopped." in html
    assert "Import order history</button>" in html


def test_no_button_where_history_cannot_be_imported(signed_in, shopify):
    source = shop_source(shopify, with_contacts=False)
    integration = db.session.get(Integration, source.integration_id)
    integration.status = "needs_reconnect"
    db.session.commit()
    html = _text(signed_in.get(f"/plugins/{source.id}"))
    assert "Connect the Shopify store on the Integrations page first." in html
    assert "Import order history</button>" not in html
    refused = signed_in.post(f"/plugins/{source.id}/history", follow_redirects=True)
    assert "Connect the Shopify store on the Integrations page first." in _text(refused)
    website = PluginSource(kind="website", name="Site", list_id=source.list_id)
    db.session.add(website)
    db.session.commit()
    assert "Order history" not in _text(signed_in.get(f"/plugins/{website.id}"))
    assert db.session.scalar(select(OrderHistoryRun.id)) is None


def test_a_run_that_stopped_moving_offers_to_continue(signed_in, shopify):
    from datetime import timedelta

    from webapp.models.base import utcnow

    source = shop_source(shopify)
    db.session.add(OrderHistoryRun(source_id=source.id, status="running", pages=2,
                                   orders_imported=80, cursor={"last_id": 5_000_080},
                                   updated_at=utcnow() - timedelta(minutes=20)))
    db.session.commit()
    html = _text(signed_in.get(f"/plugins/{source.id}"))
    assert "80 orders imported, then the import stopped moving" in html
    assert "hx-trigger" not in _widget(html) and "Import order history</button>" in html
    started = _text(signed_in.post(f"/plugins/{source.id}/history", htmx=True))
    assert "Order history import started." in started
    assert 'hx-trigger="every 2s"' in _widget(started)
