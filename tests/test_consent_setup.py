"""The consent filter on the set-up page: the stores' default, saving it, the CRM consent
field, and the counts of what each choice would import."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from simulators import shopify as shopify_sim_module
from simulators.dataset import generate
from tests.factories import make_list
from tests.test_import_setup_pages import _form, _html, _Sim
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.models import RecurringImport
from webapp.services import import_source

pytestmark = pytest.mark.usefixtures("app")
PEOPLE = generate(30, seed=5)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture(scope="module")
def shopify_sim():
    sim = _Sim("shopify", PEOPLE)
    yield sim
    sim.running.stop()



@pytest.fixture
def shop(shopify_sim):
    cfg = shopify_sim.config()
    return make_integration("shopify", cfg["settings"]["shop"], settings=cfg["settings"],
                            credentials=cfg["credentials"])


def test_a_store_import_defaults_to_only_subscribed_people(signed_in, shop):
    make_list("Customers")
    page = _html(signed_in.get(f"/integrations/{shop.id}/imports/new"))
    assert re.search(r'name="consent_filter" value="subscribed"\s+checked', page)
    assert re.search(r'name="consent_filter" value="everyone"(?![^>]*checked)[^>]*>', page)
    assert "Everyone who has not opted out" in page
    assert f'hx-get="/integrations/{shop.id}/imports/consent-counts"' in page
    assert 'id="f-consent_field"' not in page  # a store reports the opt-in itself


def test_the_consent_filter_is_saved_and_prefilled(signed_in, shop):
    lst = make_list("Customers")
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form(lst.id, consent_filter="everyone"))
    assert resp.status_code == 303, _html(resp)
    imp = db.session.scalar(select(RecurringImport))
    assert imp.consent_filter == "everyone"
    page = _html(signed_in.get(f"/imports/{imp.id}/settings"))
    assert re.search(r'name="consent_filter" value="everyone"\s+checked', page)
    resp = signed_in.post(f"/imports/{imp.id}/settings", _form(lst.id, consent_filter="bogus"))
    assert resp.status_code == 422 and "Choose whom the import takes" in _html(resp)


def test_consent_counts_say_how_many_each_choice_would_import(signed_in, shop):
    states = [shopify_sim_module.consent_state(p) for p in PEOPLE if p.email]
    everyone = sum(1 for s in states if s not in ("unsubscribed", "redacted", "invalid"))
    subscribed = states.count("subscribed")
    assert 0 < subscribed < everyone < len(states)
    page = _html(signed_in.htmx_get(
        f"/integrations/{shop.id}/imports/consent-counts?group=customers&source=all"))
    assert f"first {len(states)} records with an email" in page
    assert f"<strong>{everyone}</strong> have not opted out" in page
    assert f"<strong>{subscribed}</strong> are subscribed to marketing" in page
    assert "sample" in page


def test_a_crm_import_picks_a_yes_no_field_for_subscribed_only(signed_in, monkeypatch):
    from webapp.providers.base import Field

    crm = make_integration("zoho", "Zoho CRM")
    monkeypatch.setattr(import_source, "groups",
                        lambda i: [type("G", (), {"id": "leads", "label": "Leads"})()])
    monkeypatch.setattr(import_source, "sources",
                        lambda i, g: [type("S", (), {"id": "all", "label": "All"})()])
    monkeypatch.setattr(import_source, "source_fields", lambda i, g: [
        Field("Email", "Email", "email"), Field("Newsletter", "Newsletter", "boolean"),
        Field("City", "City")])
    lst = make_list("Leads")
    page = _html(signed_in.get(f"/integrations/{crm.id}/imports/new"))
    assert re.search(r'name="consent_filter" value="everyone"\s+checked', page)
    assert '<option value="Newsletter">Newsletter (Newsletter)</option>' in page
    assert 'value="City"' not in page
    form = _form(lst.id, group="leads", source="all", consent_filter="subscribed")
    resp = signed_in.post(f"/integrations/{crm.id}/imports/new", form)
    assert resp.status_code == 422
    assert re.search(r'id="f-consent_field"[^>]*aria-invalid="true"', _html(resp))
    resp = signed_in.post(f"/integrations/{crm.id}/imports/new", {**form, "consent_field": "City"})
    assert resp.status_code == 422 and "yes/no field" in _html(resp)
    resp = signed_in.post(f"/integrations/{crm.id}/imports/new",
                          {**form, "consent_field": "Newsletter"})
    assert resp.status_code == 303, _html(resp)
    imp = db.session.scalar(select(RecurringImport))
    assert (imp.consent_filter, imp.consent_field) == ("subscribed", "Newsletter")


def test_preview_shows_what_each_consent_choice_would_import(signed_in, shop):
    from webapp.models import ImportRun

    lst = make_list("Customers")
    signed_in.post(f"/integrations/{shop.id}/imports/new", _form(lst.id))
    imp = db.session.scalar(select(RecurringImport))
    imp.mapping = {"email": "email"}
    imp.ignore_unmapped = True
    db.session.commit()
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/preview", {}, htmx=True))
    choices = db.session.scalar(select(ImportRun)).preview["consent_choices"]
    assert 0 < choices["subscribed"] < choices["everyone"]
    assert (f"“Everyone who has not opted out” would import <strong>{choices['everyone']}"
            "</strong>") in page
    assert (f"“Only people subscribed to marketing” would import "
            f"<strong>{choices['subscribed']}</strong>") in page
