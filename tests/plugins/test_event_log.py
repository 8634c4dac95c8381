"""The event log: verdicts, filters, keyset pages, live first page, failed events apart and
replayable with no double effect, every event field shown as text."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_list
from tests.plugins import factories as f
from webapp.extensions import db
from webapp.models import Contact, PluginEvent
from webapp.plugins.process import process_pending

XSS = "<script>alert(1)</script>"


@pytest.fixture
def events(app):
    lst = make_list()
    shop = f.make_source(lst, kind="shopify", name="Main shop")
    site = f.make_source(lst, name="Blog")
    make_contact(lst, "known@example.com")
    rows = {
        "signup": f.store_shopify(shop, "customers/create",
                                  f.shopify_customer("new@example.com", first=XSS)),
        "visit": f.store_segment(site, f.track("Product Viewed", email="known@example.com",
                                               name=XSS)),
        "broken": f.store(site, channel="api", topic="track", kind="signed_up",
                          body='{"type": "track", "event": "' + XSS + '"'),
    }
    process_pending()
    return {"shop": shop, "site": site, "list": lst, **rows}


def _rows(html: str) -> int:
    return len(re.findall(r'id="event-\d+"', html))


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_the_log_shows_each_event_with_its_verdict_and_escapes_everything(signed_in, events):
    html = _text(signed_in.get("/plugins/events"))
    for key in ("signup", "visit", "broken"):
        assert f'id="event-{events[key].id}"' in html
    assert "Contact added" in html and "Activity recorded" in html
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = _text(signed_in.get(f"/plugins/events/{events['signup'].id}"))
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    broken = _text(signed_in.get(f"/plugins/events/{events['broken'].id}"))
    assert XSS not in broken and "&lt;script&gt;" in broken
    contact = db.session.scalar(select(Contact).where(Contact.email_norm == "new@example.com"))
    card = _text(signed_in.get(f"/contacts/{contact.id}"))
    assert XSS not in card


def test_failed_events_are_listed_apart_and_replay_has_no_double_effect(signed_in, events):
    html = _text(signed_in.get("/plugins/events"))
    failed = html.split('id="failed"', 1)[1].split("</section>", 1)[0]
    assert f'id="failed-{events["broken"].id}"' in failed
    assert f'failed-{events["signup"].id}"' not in failed
    assert "not a JSON object" in failed
    ids = [str(events["broken"].id), str(events["signup"].id)]
    resp = signed_in.post("/plugins/events/replay", {"event_id": ids, "back": "/plugins/events"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/plugins/events"
    db.session.expire_all()
    assert db.session.get(PluginEvent, events["broken"].id).status == "pending"
    assert db.session.get(PluginEvent, events["signup"].id).status == "processed"
    again = signed_in.post("/plugins/events/replay", {"event_id": ids})
    assert again.status_code == 303
    assert process_pending() == 1  # the broken one, once
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 2
    flash = _text(signed_in.get("/plugins/events"))
    assert "Nothing to replay" in flash
    # A "back" address elsewhere is not followed.
    away = signed_in.post("/plugins/events/replay", {"event_id": ids, "back": "//evil.example"})
    assert away.headers["Location"] == "/plugins/events"


def test_filters_and_the_per_source_log(signed_in, events):
    shop, site = events["shop"], events["site"]
    by_status = _text(signed_in.htmx_get("/plugins/events?status=failed"))
    assert f'id="event-{events["broken"].id}"' in by_status
    assert f'id="event-{events["visit"].id}"' not in by_status
    by_kind = _text(signed_in.htmx_get("/plugins/events?kind=product_viewed"))
    assert f'id="event-{events["visit"].id}"' in by_kind
    assert f'id="event-{events["signup"].id}"' not in by_kind
    by_email = _text(signed_in.htmx_get("/plugins/events?email=NEW@example.com"))
    assert f'id="event-{events["signup"].id}"' in by_email and _rows(by_email) == 1
    by_domain = _text(signed_in.htmx_get("/plugins/events?email=@example.com"))
    assert _rows(by_domain) == 2
    by_source = _text(signed_in.htmx_get(f"/plugins/events?source={shop.id}"))
    assert _rows(by_source) == 1
    per_source = _text(signed_in.get(f"/plugins/sources/{site.id}/events"))
    assert f'id="event-{events["visit"].id}"' in per_source
    assert f'id="event-{events["signup"].id}"' not in per_source
    assert signed_in.get("/plugins/sources/99999/events").status_code == 404
    # Unknown filter values are dropped, not errors.
    assert signed_in.get("/plugins/events?status=<x>&kind=nope&source=abc").status_code == 200


def test_the_first_page_polls_while_visible_and_older_pages_hold_still(signed_in, app):
    lst = make_list()
    site = f.make_source(lst)
    for n in range(55):
        f.store_segment(site, f.page(f"anon-{n}", f"/p{n}"))
    first = _text(signed_in.get("/plugins/events"))
    section = re.search(r'<section id="event-rows"[^>]*>', first).group(0)
    assert "every 2s [document.visibilityState == &#39;visible&#39;]" in section \
        or "every 2s [document.visibilityState == 'visible']" in section
    assert 'hx-target="this"' in section and 'hx-swap="outerHTML"' in section
    assert _rows(first) == 50 + 0 and 'rel="next"' in first
    last_id = int(re.findall(r'id="event-(\d+)"', first)[-1])
    older = _text(signed_in.htmx_get(f"/plugins/events?after={last_id}"))
    assert "hx-trigger" not in re.search(r'<section id="event-rows"[^>]*>', older).group(0)
    assert _rows(older) == 5
    # The live partial is the same element, so each poll replaces it in place.
    partial = _text(signed_in.htmx_get("/plugins/events"))
    assert partial.lstrip().startswith("<section id=\"event-rows\"") or \
        '<section id="event-rows"' in partial.split("\n", 3)[-1]
    assert "<html" not in partial
