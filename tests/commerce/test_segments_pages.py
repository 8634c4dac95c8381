"""The segment builder and the automation pages through the app: live count and sample
while editing (htmx), builder buttons, saving, the dry run, switching on, entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.commerce.segment_factories import make_order, make_shop
from tests.factories import make_contact, make_cycle, make_list
from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow
from webapp.models.commerce import Automation, AutomationEntry, Segment

pytestmark = pytest.mark.usefixtures("app")

FORM = {"name": "Recent buyers", "op": "and", "g0_op": "and", "g0_c0_type": "purchased",
        "g0_c0_what": "anything", "g0_c0_days": "30"}


@pytest.fixture
def buyers():
    lst = make_list("Shop")
    shop = make_shop(lst)
    old = utcnow() - timedelta(days=60)
    ann = make_contact(lst, "ann@example.com", created_at=old)
    bob = make_contact(lst, "bob@example.com", created_at=old)
    make_order(shop, ann.id, placed_at=utcnow() - timedelta(days=2), event_id=41)
    make_order(shop, bob.id, placed_at=utcnow() - timedelta(days=45))
    return {"list": lst, "ann": ann, "bob": bob}


def test_builder_page_shows_the_live_count_and_sample(signed_in, buyers):
    page = signed_in.get("/segments/new").get_data(as_text=True)
    assert 'hx-post="/segments/preview"' in page and 'id="segment-preview"' in page
    resp = signed_in.post("/segments/preview", FORM, htmx=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'data-count="1"' in html
    assert "ann@example.com" in html and "bob@example.com" not in html
    wider = signed_in.post("/segments/preview", {**FORM, "g0_c0_days": "90"}, htmx=True)
    assert 'data-count="2"' in wider.get_data(as_text=True)
    bad = signed_in.post("/segments/preview", {**FORM, "g0_c0_days": "zero"}, htmx=True)
    assert "Days is a whole number" in bad.get_data(as_text=True)


def test_builder_buttons_add_and_remove_conditions_and_groups(signed_in, buyers):
    resp = signed_in.post("/segments/builder", {**FORM, "add": "0"}, htmx=True)
    html = resp.get_data(as_text=True)
    assert 'name="g0_c1_type"' in html and 'hx-swap-oob="true"' in html
    resp = signed_in.post("/segments/builder", {**FORM, "add_group": "1"}, htmx=True)
    assert 'name="g1_c0_type"' in resp.get_data(as_text=True)
    changed = {**FORM, "g0_c0_type": "visited"}
    html = signed_in.post("/segments/builder", changed, htmx=True).get_data(as_text=True)
    assert 'name="g0_c0_url"' in html and 'name="g0_c0_what"' not in html
    # Without JavaScript the same buttons re-render the page, saving nothing.
    page = signed_in.post("/segments/new", {**FORM, "add": "0"})
    assert page.status_code == 200 and 'name="g0_c1_type"' in page.get_data(as_text=True)
    assert db.session.scalars(select(Segment)).all() == []


def test_save_and_edit_a_segment(signed_in, buyers):
    resp = signed_in.post("/segments/new", FORM)
    assert resp.status_code == 302
    segment = db.session.scalars(select(Segment)).one()
    assert segment.definition == {"op": "and", "items": [{"op": "and", "items": [
        {"type": "purchased", "what": "anything", "days": 30}]}]}
    page = signed_in.get(f"/segments/{segment.id}").get_data(as_text=True)
    assert 'value="Recent buyers"' in page and 'data-count="1"' in page
    listing = signed_in.get("/segments/").get_data(as_text=True)
    assert "purchased anything in the last 30 days" in listing
    refused = signed_in.post(f"/segments/{segment.id}", {**FORM, "g0_c0_days": ""})
    assert refused.status_code == 422
    assert "Days is a whole number" in refused.get_data(as_text=True)


def _automation(signed_in, buyers, **extra) -> Automation:
    segment = Segment(name="Buyers", definition={"op": "and", "items": [
        {"type": "purchased", "what": "anything", "days": 30}]})
    db.session.add(segment)
    db.session.commit()
    cycle = make_cycle(buyers["list"], "Thank you", days=10)
    resp = signed_in.post("/automations/", {
        "name": "Thank buyers", "segment_id": str(segment.id), "action": "enrol",
        "cycle_id": str(cycle.id), "cycle_day": "2", **extra})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return db.session.scalars(select(Automation)).one()


def test_create_dry_run_switch_on_and_entries_with_why(signed_in, buyers):
    auto = _automation(signed_in, buyers)
    assert auto.enabled is False and auto.action["cycle_day"] == 2
    dry = signed_in.htmx_get(f"/automations/{auto.id}/dry-run?days=7").get_data(as_text=True)
    assert 'data-dry-run-total="1"' in dry and "ann@example.com" in dry
    assert db.session.scalars(select(AutomationEntry)).all() == []
    resp = signed_in.post(f"/automations/{auto.id}/switch", {"on": "1"})
    assert resp.status_code == 302
    again = signed_in.post(f"/automations/{auto.id}/switch", {"on": "1"})
    assert again.status_code == 302
    entries = db.session.scalars(select(AutomationEntry)).all()
    assert [e.contact_id for e in entries] == [buyers["ann"].id]
    ann = db.session.get(Contact, buyers["ann"].id)
    db.session.refresh(ann)
    assert ann.cycle_day == 2 and ann.cycle_id == auto.action["cycle_id"]
    page = signed_in.get(f"/automations/{auto.id}").get_data(as_text=True)
    assert "ann@example.com" in page and "event #41" in page and "enrolled at day 2" in page
    signed_in.post(f"/automations/{auto.id}/switch", {"on": "0"})
    db.session.refresh(auto)
    assert auto.enabled is False


def test_automation_form_refuses_in_plain_words(signed_in, buyers):
    resp = signed_in.post("/automations/", {"name": "X", "segment_id": "", "action": "enrol"})
    assert resp.status_code == 422
    assert "Choose the segment" in resp.get_data(as_text=True)
    auto = _automation(signed_in, buyers)
    resp = signed_in.post(f"/automations/{auto.id}", {
        "name": "Thank buyers", "segment_id": str(auto.segment_id), "action": "enrol",
        "cycle_id": str(auto.action["cycle_id"]), "cycle_day": "99"})
    assert resp.status_code == 422
    assert "The day is a whole number from 0 to 10" in resp.get_data(as_text=True)


def test_deleting_pages(signed_in, buyers):
    auto = _automation(signed_in, buyers)
    assert "Thank buyers" in signed_in.get(
        f"/segments/{auto.segment_id}/delete").get_data(as_text=True)
    assert signed_in.post(f"/automations/{auto.id}/delete").status_code == 302
    assert db.session.scalars(select(Automation)).all() == []
    assert signed_in.post(f"/segments/{auto.segment_id}/delete").status_code == 302
    assert db.session.scalars(select(Segment)).all() == []
