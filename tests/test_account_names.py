"""Accounts are named as people know them (issue 9 item 16): the name the provider gives at
connect time shows on the tiles, the details page, run pages, the dashboard and the filters;
where the provider refuses the name, the address (or the Zoho data centre) stands in."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from simulators.shopify import SHOP
from tests.test_integrations_support import Sim, follow_to_callback, sim_fixture
from webapp.extensions import db
from webapp.models import ImportRun, Integration, RecurringImport
from webapp.models.base import utcnow
from webapp.providers.zoho import oauth as zoho_mod


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


shopify = sim_fixture("shopify")
zoho = sim_fixture("zoho")
magento = sim_fixture("magento")
salesforce = sim_fixture("salesforce")


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _only(provider: str) -> Integration:
    db.session.expire_all()
    [row] = db.session.scalars(select(Integration).where(Integration.provider == provider))
    return row


def _use_app(app, provider: str, sim: Sim) -> None:
    st = sim.app.state
    app.config[f"{provider.upper()}_CLIENT_ID"] = st.client_id
    app.config[f"{provider.upper()}_CLIENT_SECRET"] = st.client_secret


def _connect_shopify(signed_in, shopify) -> Integration:
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": shopify.app.initial_tokens["access_token"],
        "api_base": shopify.url})
    assert resp.status_code == 303, _html(resp)
    return _only("shopify")


def test_shop_name_shows_everywhere_the_integration_is_named(signed_in, shopify):
    from tests.factories import make_list

    row = _connect_shopify(signed_in, shopify)
    named = f"Tributary Demo ({SHOP})"
    assert row.name == named
    lst = make_list("Newsletter")
    imp = RecurringImport(integration_id=row.id, list_id=lst.id, group="customers",
                          source="all", state="active", next_run_at=utcnow())
    db.session.add(imp)
    db.session.commit()
    now = utcnow()
    run = ImportRun(import_id=imp.id, status="completed", trigger_kind="manual",
                    queued_at=now, started_at=now, finished_at=now, added=3)
    db.session.add(run)
    db.session.commit()
    label = f"Shopify · {named}"

    tiles = _html(signed_in.get("/integrations/"))
    tile = re.search(r'<li class="tile" id="tile-shopify">(.*?)</li>', tiles, re.S).group(1)
    assert named in tile
    details = _html(signed_in.get("/integrations/shopify"))
    assert f'-name">{named}</h2>' in details
    assert f"<dt>Account</dt><dd>{named}</dd>" in details
    run_page = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert label in run_page
    history = _html(signed_in.get("/imports/runs/"))
    assert f'<option value="{row.id}">{label}</option>' in history  # the filter
    assert f"<td>{label}</td>" in history  # the history table
    dashboard = _html(signed_in.get("/"))
    assert f"{label} → Newsletter" in dashboard  # recent runs and next imports
    contacts = _html(signed_in.get(f"/lists/{lst.id}/contacts"))
    assert f"{label} (customers)" in contacts  # the contacts page's import filter


def test_a_row_keeps_its_old_name_until_reconnected(signed_in, shopify):
    from tests.test_integrations_support import make_integration

    old = make_integration("shopify", SHOP, settings={
        "shop": SHOP, "api_base": f"{shopify.url}/{SHOP}"})
    assert SHOP in _html(signed_in.get("/integrations/shopify"))
    assert "Tributary Demo" not in _html(signed_in.get("/integrations/shopify"))
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": shopify.app.initial_tokens["access_token"],
        "api_base": shopify.url, "integration_id": str(old.id)})
    assert resp.status_code == 303
    assert _only("shopify").name == f"Tributary Demo ({SHOP})"
    assert f"Tributary Demo ({SHOP})" in _html(signed_in.get("/integrations/shopify"))


def test_zoho_org_name_and_the_data_centre_fallback(signed_in, app, zoho, monkeypatch):
    _use_app(app, "zoho", zoho)

    def connect() -> Integration:
        resp = signed_in.post("/integrations/zoho/oauth/start",
                              {"data_centre": "us", "accounts_server": zoho.url})
        resp = signed_in.get(follow_to_callback(resp.headers["Location"]))
        assert resp.status_code == 303, _html(resp)
        return _only("zoho")

    row = connect()
    assert row.name == "Zylker Corp"
    page = _html(signed_in.get("/integrations/zoho"))
    assert "Zoho CRM Zylker Corp connected." in page
    # A grant without ZohoCRM.org.READ (as connections made before it was asked):
    monkeypatch.setattr(zoho_mod, "SCOPES", tuple(
        s for s in zoho_mod.SCOPES if s != "ZohoCRM.org.READ"))
    row = connect()
    assert row.name == "United States data centre (zoho.com)"
    assert "account_name" not in row.settings  # the stale name is not kept
    page = _html(signed_in.get("/integrations/zoho"))
    assert "Zoho CRM United States data centre (zoho.com) reconnected." in page
    assert "Zoho CRM Zoho CRM" not in page


def test_magento_store_name_and_the_host_fallback(signed_in, magento):
    creds = magento.config()["credentials"]
    host = urlsplit(magento.url).netloc
    form = {"base_url": magento.url, "auth_mode": "oauth1", **creds}
    assert signed_in.post("/integrations/magento/connect", form).status_code == 303
    assert _only("magento").name == f"Luma Outdoor Store ({host})"
    magento.app.state.store_access = False
    try:
        assert signed_in.post("/integrations/magento/connect", form).status_code == 303
    finally:
        magento.app.state.store_access = True
    assert _only("magento").name == host


def test_salesforce_org_name_and_the_host_fallback(signed_in, app, salesforce):
    _use_app(app, "salesforce", salesforce)

    def connect() -> Integration:
        resp = signed_in.post("/integrations/salesforce/oauth/start",
                              {"environment": "production", "login_host": salesforce.url})
        resp = signed_in.get(follow_to_callback(resp.headers["Location"]))
        assert resp.status_code == 303, _html(resp)
        return _only("salesforce")

    assert connect().name == "Acme Corporation"
    salesforce.app.state.organization_readable = False
    try:
        row = connect()
    finally:
        salesforce.app.state.organization_readable = True
    assert row.name == urlsplit(salesforce.url).netloc
