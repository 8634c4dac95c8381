"""Privacy: Shopify customers/redact and shop/redact erase, customers/data_request builds a
downloadable export; a team member erases (after a confirm step) or exports a person."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_list
from tests.plugins import factories as f
from webapp.extensions import db
from webapp.models import (
    ConsentEvent,
    Contact,
    PluginEvent,
    PrivacyRequest,
    Suppression,
    VisitorIdentity,
)
from webapp.plugins.privacy import email_digest
from webapp.plugins.process import process_pending


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
def person(app):
    """Ann, stitched to a visitor id, with events on a Shopify source and a site, plus an
    unrelated Bob; Ann is also on a second list."""
    lst = make_list()
    shop = f.make_source(lst, kind="shopify")
    site = f.make_source(lst, add_events=["signed_up", "form_submitted", "identify"])
    f.store_segment(site, f.page("anon-ann", "/shoes"), channel="browser")
    f.store_segment(site, f.identify("ann@example.com", "anon-ann"), channel="browser")
    f.store_shopify(shop, "customers/create", f.shopify_customer("ann@example.com"))
    f.store_shopify(shop, "orders/create", f.shopify_order("ann@example.com"))
    f.store_shopify(shop, "customers/create", f.shopify_customer("bob@example.com"))
    other = make_list("Other")
    make_contact(other, "ann@example.com")
    process_pending()
    ann = db.session.scalar(select(Contact).where(Contact.list_id == lst.id,
                                                  Contact.email_norm == "ann@example.com"))
    return {"list": lst, "other": other, "shop": shop, "site": site, "ann": ann}


def test_customers_redact_erases_the_person_in_the_source_list(person):
    shop, ann = person["shop"], person["ann"]
    assert _count(PluginEvent, PluginEvent.contact_id == ann.id) == 4
    request = f.store_shopify(shop, "customers/redact", f.shopify_redact("ann@example.com"))
    process_pending()
    db.session.expire_all()
    done = db.session.get(PluginEvent, request.id)
    assert done.status == "processed" and done.verdict["outcome"] == "erased"
    assert "ann@example.com" not in done.body and done.email_norm is None
    assert _count(Contact, Contact.id == ann.id) == 0
    assert _count(ConsentEvent, ConsentEvent.contact_id == ann.id) == 0
    # The shop's own events of Ann are gone; the site's events stay (another source).
    assert _count(PluginEvent, PluginEvent.source_id == shop.id,
                  PluginEvent.email_norm == "ann@example.com") == 0
    assert _count(Contact, Contact.email_norm == "bob@example.com") == 1
    assert _count(Contact, Contact.list_id == person["other"].id) == 1
    audit = db.session.scalar(select(PrivacyRequest).where(PrivacyRequest.kind == "erase"))
    assert audit.email_digest == email_digest("ann@example.com")
    assert audit.requested_by == "shopify" and audit.contacts_removed == 1


def test_data_request_builds_an_export_a_team_member_downloads(person, signed_in):
    request = f.store_shopify(person["shop"], "customers/data_request",
                              f.shopify_data_request("ann@example.com"))
    process_pending()
    page = signed_in.get(f"/plugins/events/{request.id}").get_data(as_text=True)
    assert "Download the data export" in page
    resp = signed_in.get(f"/plugins/events/{request.id}/export.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert "attachment" in resp.headers["Content-Disposition"]
    data = json.loads(resp.get_data(as_text=True))
    assert data["email"] == "ann@example.com"
    assert [c["email"] for c in data["contacts"]] == ["ann@example.com"]
    assert {e["kind"] for e in data["events"]} >= {"signed_up", "order_completed"}
    assert data["consent_history"]


def test_shop_redact_erases_the_shop_and_what_it_added(person):
    shop = person["shop"]
    f.store_shopify(shop, "shop/redact", {"shop_id": 954889, "shop_domain": "demo.myshopify.com"})
    process_pending()
    assert _count(PluginEvent, PluginEvent.source_id == shop.id) == 1  # the request itself
    assert _count(Contact, Contact.email_norm == "bob@example.com") == 0
    # Ann was added by the site (identify) before the shop saw her: she stays.
    assert _count(Contact, Contact.id == person["ann"].id) == 1
    assert _count(PluginEvent, PluginEvent.source_id == person["site"].id) == 2


def test_a_team_member_erases_a_person_everywhere_after_confirming(person, signed_in):
    ann = person["ann"]
    card = signed_in.get(f"/contacts/{ann.id}").get_data(as_text=True)
    assert 'id="erase-person"' in card and 'id="export-person"' in card
    ask = signed_in.get(f"/contacts/{ann.id}/erase")
    assert ask.status_code == 200 and "This cannot be undone" in ask.get_data(as_text=True)
    assert "2 lists" in ask.get_data(as_text=True)
    assert signed_in.post(f"/contacts/{ann.id}/erase", {}).status_code == 200  # no confirm
    assert _count(Contact, Contact.email_norm == "ann@example.com") == 2
    export = signed_in.get(f"/contacts/{ann.id}/export.json")
    assert len(json.loads(export.get_data(as_text=True))["contacts"]) == 2
    done = signed_in.post(f"/contacts/{ann.id}/erase", {"confirm": "yes", "suppress": "yes"})
    assert done.status_code == 303
    assert _count(Contact, Contact.email_norm == "ann@example.com") == 0
    assert _count(PluginEvent, PluginEvent.email_norm == "ann@example.com") == 0
    assert _count(PluginEvent, PluginEvent.anonymous_id == "anon-ann") == 0
    assert _count(VisitorIdentity) == 0
    assert _count(Suppression, Suppression.value == "ann@example.com") == 1
    audit = db.session.scalar(select(PrivacyRequest))
    assert audit.user_id == signed_in.user.id and audit.contacts_removed == 2
    assert audit.events_removed == 4
    assert "ann@example.com" not in json.dumps([audit.requested_by, audit.email_digest])
    # Suppressed now: a later sign-up does not bring her back.
    f.store_shopify(person["shop"], "customers/create", f.shopify_customer("ann@example.com"))
    process_pending()
    assert _count(Contact, Contact.email_norm == "ann@example.com") == 0
