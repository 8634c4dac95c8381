"""The Set up recurring imports page: form, htmx partials (sources, list options, forecast),
validation next to the fields, edit, and provider trouble in plain words."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from simulators.dataset import generate
from tests.factories import make_contacts, make_cycle, make_list
from tests.test_integrations_support import SIMULATORS, make_integration
from webapp.extensions import db
from webapp.models import ContactList, Integration, RecurringImport, WorkspaceSettings
from webapp.services import import_source

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


class _Sim:
    def __init__(self, name, people):
        from simulators.server import serve

        self.module = SIMULATORS[name]
        self.app = self.module.create_app(people)
        self.running = serve(self.app)
        self.url = self.running.url

    def config(self):
        return self.module.demo_config(self.app, self.url)


@pytest.fixture(scope="module")
def shopify_sim():
    sim = _Sim("shopify", generate(30, seed=5))
    yield sim
    sim.running.stop()



@pytest.fixture
def shop(shopify_sim):
    cfg = shopify_sim.config()
    return make_integration("shopify", cfg["settings"]["shop"], settings=cfg["settings"],
                            credentials=cfg["credentials"])


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _form(list_id, **extra):
    data = {"list_id": str(list_id), "group": "customers", "source": "all",
            "criteria": "add_update", "consent": "on", "run_hour": "", "time_zone": "UTC"}
    data.update(extra)
    return data


def _imports():
    return list(db.session.scalars(select(RecurringImport)))


def test_new_page_offers_groups_sources_criteria_consent_and_zone(signed_in, shop):
    settings = WorkspaceSettings.get()
    settings.time_zone = "Europe/Berlin"
    db.session.commit()
    make_list("Customers")
    page = _html(signed_in.get(f"/integrations/{shop.id}/imports/new"))
    assert "Set up recurring imports" in page
    assert '<option value="customers" selected>Customers</option>' in page  # one group
    assert 'value="tag:vip"' in page and "All customers" in page
    for label in ("Add and update", "Add new only", "Update existing only"):
        assert label in page
    assert "I confirm we have permission to email these contacts" in page
    assert '<option value="Europe/Berlin" selected>' in page
    assert "Create a new list…" in page
    assert f'hx-get="/integrations/{shop.id}/sources"' in page


def test_save_creates_a_stopped_import_with_the_consent_record(signed_in, shop, user):
    lst = make_list("Customers")
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form(lst.id, run_hour="6", time_zone="Europe/Paris",
                                source="tag:vip", criteria="add_only"))
    assert resp.status_code == 303, _html(resp)
    [imp] = _imports()
    assert resp.headers["Location"].endswith(f"/imports/{imp.id}/mapping")
    assert (imp.list_id, imp.group, imp.source, imp.criteria) == (lst.id, "customers",
                                                                   "tag:vip", "add_only")
    assert (imp.run_hour, imp.time_zone) == (6, "Europe/Paris")
    assert imp.state == "stopped" and imp.next_run_at is None
    assert imp.consent_confirmed_by_id == user.id and imp.consent_confirmed_at is not None


def test_missing_consent_is_refused_next_to_the_checkbox(signed_in, shop):
    lst = make_list("Customers")
    data = _form(lst.id)
    del data["consent"]
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new", data)
    assert resp.status_code == 422
    page = _html(resp)
    assert re.search(r'id="f-consent"[^>]*aria-invalid="true"', page)
    assert 'id="f-consent-error"' in page and "permission to email" in page
    assert _imports() == []


def test_unknown_list_and_missing_source_are_field_errors(signed_in, shop):
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form(99999, source="tag:nope"))
    assert resp.status_code == 422
    page = _html(resp)
    assert 'id="f-list_id-error"' in page and "does not exist" in page
    assert 'id="f-source-error"' in page
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new", _form(""))
    assert "Choose the list to import into." in _html(resp)
    assert _imports() == []


def test_second_import_into_the_same_list_links_to_the_first(signed_in, shop):
    lst = make_list("Customers")
    signed_in.post(f"/integrations/{shop.id}/imports/new", _form(lst.id))
    [first] = _imports()
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new", _form(lst.id))
    assert resp.status_code == 422
    page = _html(resp)
    assert "already imports into that list" in page
    assert f'href="/imports/{first.id}/settings"' in page
    assert len(_imports()) == 1


def test_create_a_new_list_inline(signed_in, shop):
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form("new", new_list_name="  Shop   buyers "))
    assert resp.status_code == 303
    [imp] = _imports()
    assert db.session.get(ContactList, imp.list_id).name == "Shop buyers"
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new", _form("new"))
    assert resp.status_code == 422 and 'id="f-new_list_name-error"' in _html(resp)


def test_cycle_and_start_day_are_checked_against_the_list(signed_in, shop):
    lst, other = make_list("Customers"), make_list("Other")
    cycle = make_cycle(lst, "Welcome", days=14)
    foreign = make_cycle(other, "Elsewhere", days=5)
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form(lst.id, cycle_id=str(cycle.id), cycle_start_day="15"))
    assert resp.status_code == 422 and "from 0 to 14" in _html(resp)
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form(lst.id, cycle_id=str(foreign.id)))
    assert resp.status_code == 422 and "cycle of the chosen list" in _html(resp)
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          _form(lst.id, cycle_id=str(cycle.id), cycle_start_day="3"))
    assert resp.status_code == 303
    [imp] = _imports()
    assert (imp.cycle_id, imp.cycle_start_day) == (cycle.id, 3)


def test_list_options_partial_shows_the_cycles_of_the_chosen_list(signed_in, shop):
    lst = make_list("Customers")
    make_cycle(lst, "Welcome <b>", days=21)
    resp = signed_in.htmx_get(f"/integrations/{shop.id}/imports/list-options?list_id={lst.id}")
    page = _html(resp)
    assert page.lstrip().startswith('<div id="list-options"')
    assert "Welcome &lt;b&gt; (21 days)" in page and 'max="21"' in page
    page = _html(signed_in.htmx_get(f"/integrations/{shop.id}/imports/list-options?list_id=new"))
    assert 'id="f-new_list_name"' in page
    resp = signed_in.get(f"/integrations/{shop.id}/imports/list-options?list_id={lst.id}")
    assert resp.status_code == 302  # no-JS: the whole form with this list chosen


def test_sources_partial_follows_the_group(signed_in, shop):
    resp = signed_in.htmx_get(f"/integrations/{shop.id}/sources?group=customers")
    page = _html(resp)
    assert resp.status_code == 200
    assert page.lstrip().startswith('<div class="field" id="source-field"')
    assert 'value="tag:wholesale"' in page and "<html" not in page
    resp = signed_in.htmx_get(f"/integrations/{shop.id}/sources?group=martians")
    assert resp.status_code == 200 and "Choose a group first." in _html(resp)
    assert 'name="source"' not in _html(resp)
    assert signed_in.get(f"/integrations/{shop.id}/sources?group=martians").status_code == 404
    full = signed_in.get(f"/integrations/{shop.id}/sources?group=customers")
    assert full.status_code == 200 and "<html" in _html(full)
    assert signed_in.htmx_get("/integrations/9999/sources?group=customers").status_code == 404


def test_forecast_says_no_extra_fee_or_the_fee(signed_in, shop):
    url = f"/integrations/{shop.id}/imports/forecast?group=customers&source=all"
    page = _html(signed_in.htmx_get(url + "&criteria=add_update"))
    assert "No extra fee" in page and "holds 30 records, all read: 24 would be new" in page
    settings = WorkspaceSettings.get()
    settings.subscriber_limit = 10
    db.session.commit()
    make_contacts(make_list("Existing"), 5)
    import_source.clear_cache()
    page = _html(signed_in.htmx_get(url + "&criteria=add_update"))
    assert "15.00 USD more" in page and "1 started block" in page
    page = _html(signed_in.htmx_get(url + "&criteria=update_only"))
    assert "No extra fee" in page and "adds no contacts" in page
    page = _html(signed_in.get(url))  # no-JS: a page of its own
    assert "<html" in page and "List-extension fee" in page


def test_edit_prefills_and_saves(signed_in, shop):
    lst = make_list("Customers")
    signed_in.post(f"/integrations/{shop.id}/imports/new", _form(lst.id, run_hour="7"))
    [imp] = _imports()
    page = _html(signed_in.get(f"/imports/{imp.id}/settings"))
    assert "Import settings: Customers" in page
    assert '<option value="7" selected>Daily at 07:00</option>' in page
    assert re.search(r'id="f-consent"(?![^>]*checked)', page)  # confirmed again on each save
    imp.mapping = {"email": "email"}
    imp.cursor = {"last_id": 5}
    db.session.commit()
    resp = signed_in.post(f"/imports/{imp.id}/settings", _form(lst.id, source="tag:vip"))
    assert resp.status_code == 303
    db.session.refresh(imp)
    assert imp.source == "tag:vip" and imp.cursor is None
    assert imp.mapping == {"email": "email"}  # same group: the mapping stays
    assert signed_in.get("/imports/9999/settings").status_code == 404
    other = make_integration("shopify", "other.myshopify.com")
    assert signed_in.get(f"/imports/{imp.id}/settings?integration_id={other.id}"
                         ).status_code == 404


def test_provider_auth_trouble_is_plain_words_and_needs_reconnect(signed_in, shopify_sim):
    cfg = shopify_sim.config()
    bad = make_integration("shopify", cfg["settings"]["shop"], settings=cfg["settings"],
                           credentials={"access_token": "shpat_revoked_0000"})
    resp = signed_in.get(f"/integrations/{bad.id}/imports/new")
    assert resp.status_code == 200
    page = _html(resp)
    assert 'id="source-trouble"' in page and "refused our credentials" in page
    assert "Reconnect" in page
    db.session.expire_all()
    assert db.session.get(Integration, bad.id).status == "needs_reconnect"
    resp = signed_in.post(f"/integrations/{bad.id}/imports/new", _form(make_list().id))
    assert resp.status_code == 422 and "needs reconnecting" in _html(resp)


def test_disconnected_or_unknown_integration_is_404(signed_in):
    gone = make_integration("shopify", "gone.myshopify.com", status="disconnected")
    assert signed_in.get(f"/integrations/{gone.id}/imports/new").status_code == 404
    assert signed_in.get("/integrations/4242/imports/new").status_code == 404


def test_no_js_reload_button_redraws_the_form_without_saving(signed_in, shop):
    lst = make_list("Customers")
    make_cycle(lst, "Welcome", days=10)
    resp = signed_in.post(f"/integrations/{shop.id}/imports/new",
                          {**_form(lst.id), "action": "reload"})
    page = _html(resp)
    assert resp.status_code == 200 and 'id="f-cycle_id"' in page and 'max="10"' in page
    assert "Please fix" not in page
    assert _imports() == []


def test_zone_choice_is_grouped_and_the_edit_page_does_not_promise_a_first_run(signed_in, shop):
    lst = make_list("Customers")
    new_page = _html(signed_in.get(f"/integrations/{shop.id}/imports/new"))
    zone = re.search(r'<select id="f-time_zone".*?</select>', new_page, re.S).group(0)
    assert "data-browser-zone" in zone and '<optgroup label="Europe">' in zone
    assert 'value="Factory"' not in zone
    assert "The first run starts when you press Import on the next page." in new_page
    signed_in.post(f"/integrations/{shop.id}/imports/new", _form(lst.id, run_hour="7"))
    [imp] = _imports()
    edit = _html(signed_in.get(f"/imports/{imp.id}/settings"))
    assert "The first run starts when you press Import" not in edit
    assert "Saving a new hour moves the next run to that hour" in edit
    assert "data-browser-zone" not in edit  # the saved zone stays chosen


def test_provider_answers_are_cached_in_the_app_not_the_process(signed_in, shop, app,
                                                                 app_config):
    from webapp import create_app

    assert signed_in.get(f"/integrations/{shop.id}/imports/new").status_code == 200
    cached = app.extensions[import_source.CACHE_KEY]
    assert any(key[0] == shop.id and key[2] == "groups" for key in cached)
    assert import_source.CACHE_KEY not in create_app(app_config).extensions
    import_source.clear_cache()
    assert app.extensions[import_source.CACHE_KEY] == {}
