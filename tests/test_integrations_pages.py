"""Integrations pages: tiles, details, partials, banners, the settings page's OAuth apps."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import OAuthApp
from webapp.security import decrypt

PROVIDERS = ("shopify", "zoho", "magento", "salesforce")


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _tile(html: str, slug: str) -> str:
    match = re.search(rf'<li class="tile" id="tile-{slug}">(.*?)</li>', html, re.S)
    assert match, f"no tile for {slug}"
    return " ".join(match.group(1).split())


# ----------------------------------------------------------------------------- index


def test_main_navigation_links_to_integrations(signed_in):
    html = _html(signed_in.get("/"))
    assert '<a href="/integrations/"' in html
    page = _html(signed_in.get("/integrations/"))
    assert re.search(r'<a href="/integrations/"\s+aria-current="page">Integrations</a>', page)


def test_index_has_a_tile_per_provider_with_a_details_link(signed_in):
    resp = signed_in.get("/integrations/")
    assert resp.status_code == 200
    html = _html(resp)
    for slug, label in (("shopify", "Shopify"), ("zoho", "Zoho CRM"), ("magento", "Magento 2"),
                        ("salesforce", "Salesforce")):
        tile = _tile(html, slug)
        assert f"<h2>{label}</h2>" in tile
        assert "Not connected" in tile
        # a real link (keyboard reachable), shown on :hover and :focus-within
        assert f'<a class="details" href="/integrations/{slug}">Details' in tile
    assert ".tile:hover .details, .tile:focus-within .details" in html


def test_tiles_show_account_name_count_and_needs_reconnect(signed_in):
    make_integration("shopify", "acme.myshopify.com")
    make_integration("magento", "shop.example.com", settings={"base_url": "https://shop.example.com"})
    make_integration("magento", "other.example.com",
                     settings={"base_url": "https://other.example.com"})
    make_integration("salesforce", "acme.my.salesforce.com", status="needs_reconnect",
                     reason="The provider refused our credentials: expired.",
                     settings={"org_id": "00D1"})
    make_integration("zoho", "Zoho", status="disconnected", settings={"data_centre": "eu"})
    html = _html(signed_in.get("/integrations/"))
    assert "Connected" in _tile(html, "shopify") and "acme.myshopify.com" in _tile(html, "shopify")
    assert "2 accounts" in _tile(html, "magento")
    assert "Needs reconnect" in _tile(html, "salesforce")
    assert "Not connected" in _tile(html, "zoho")  # disconnected rows do not count
    # the needs-reconnect banner, with the reason and a Reconnect button
    banner = re.search(r'<div class="banner" role="alert">(.*?)</div>', html, re.S).group(1)
    assert "acme.my.salesforce.com needs reconnecting" in banner
    assert "expired." in banner
    assert re.search(r'href="/integrations/salesforce\?reconnect=\d+#connect">Reconnect', banner)


# --------------------------------------------------------------------------- details


@pytest.mark.parametrize("slug", PROVIDERS)
def test_details_page_explains_what_is_imported_and_offers_connect(signed_in, slug):
    resp = signed_in.get(f"/integrations/{slug}")
    assert resp.status_code == 200
    html = _html(resp)
    assert "What is imported" in html
    assert 'id="connect"' in html
    if slug in ("shopify", "magento"):
        assert ">Connect</button>" in html


def test_details_page_words_for_groups_and_sources(signed_in):
    html = _html(signed_in.get("/integrations/zoho"))
    assert "<strong>Contacts</strong>: all contacts, or one of your custom views." in html
    assert "<strong>Leads</strong>" in html
    html = _html(signed_in.get("/integrations/shopify"))
    assert "only those carrying one tag" in html


def test_oauth_buttons_need_app_credentials(signed_in, app):
    for slug in ("zoho", "salesforce"):
        html = _html(signed_in.get(f"/integrations/{slug}"))
        assert "Settings" in html and f"TRIBUTARY_{slug.upper()}_CLIENT_ID" in html
    html = _html(signed_in.get("/integrations/shopify"))
    assert "Connect with Shopify" not in html
    app.config.update(SHOPIFY_CLIENT_ID="cid", SHOPIFY_CLIENT_SECRET="csecret",
                      ZOHO_CLIENT_ID="zid", ZOHO_CLIENT_SECRET="zsecret",
                      SALESFORCE_CLIENT_ID="sid", SALESFORCE_CLIENT_SECRET="ssecret")
    assert "Connect with Shopify" in _html(signed_in.get("/integrations/shopify"))
    zoho = _html(signed_in.get("/integrations/zoho"))
    assert "Connect with Zoho" in zoho and 'name="data_centre"' in zoho
    assert "Europe (zoho.eu)" in zoho
    sf = _html(signed_in.get("/integrations/salesforce"))
    assert "Log in with Salesforce" in sf
    assert 'value="production" checked' in sf and 'value="sandbox"' in sf


def test_api_base_override_only_with_loopback_setting(signed_in, app):
    app.config.update(SHOPIFY_CLIENT_ID="cid", SHOPIFY_CLIENT_SECRET="csecret")
    assert 'name="api_base"' not in _html(signed_in.get("/integrations/shopify"))
    app.config["ALLOW_LOOPBACK_PROVIDERS"] = True
    html = _html(signed_in.get("/integrations/shopify"))
    assert 'name="api_base"' in html and "API base URL" in html


def test_unknown_provider_is_404(signed_in):
    assert signed_in.get("/integrations/hubspot").status_code == 404
    assert signed_in.htmx_get("/integrations/hubspot/connect").status_code == 404
    assert signed_in.post("/integrations/hubspot/connect", {}).status_code == 404
    assert signed_in.post("/integrations/hubspot/oauth/start", {}).status_code == 404
    assert signed_in.get("/integrations/hubspot/oauth/callback?code=x").status_code == 404
    # wrong kind of connect for the provider
    assert signed_in.post("/integrations/zoho/connect", {}).status_code == 404
    assert signed_in.post("/integrations/magento/oauth/start", {}).status_code == 404
    assert signed_in.get("/integrations/magento/oauth/callback").status_code == 404
    # an integration of another provider
    row = make_integration("shopify")
    assert signed_in.get(f"/integrations/zoho/{row.id}/disconnect").status_code == 404
    assert signed_in.get("/integrations/shopify/999999/disconnect").status_code == 404


def test_pages_need_sign_in(client):
    resp = client.get("/integrations/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    resp = client.get("/integrations/salesforce/oauth/callback?code=x&state=y")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_connected_account_shows_status_account_and_masked_credentials(signed_in):
    row = make_integration("shopify", "acme.myshopify.com",
                           credentials={"access_token": "shpat_0123456789abcdefWXYZ"})
    html = _html(signed_in.get("/integrations/shopify"))
    assert f'id="integration-{row.id}"' in html
    assert '<span class="badge ok">Connected</span>' in html
    assert "acme.myshopify.com" in html
    assert "shpat_0123456789abcdefWXYZ" not in html
    assert "••••WXYZ" in html
    assert "Connect another shop" in html
    assert "Lists fed by this integration" in html
    assert "No list is fed by this integration yet." in html


def test_lists_fed_by_the_integration(signed_in):
    row = make_integration("shopify")
    make_import(row, "Spring buyers", state="active")
    make_import(row, "VIP", state="needs_attention")
    html = _html(signed_in.get("/integrations/shopify"))
    section = " ".join(html.split("Lists fed by this integration", 1)[1].split())
    # the per-list rows (tests/test_recurring_actions.py covers them in depth)
    assert re.search(r'Spring buyers</a>.*?<span class="badge state-active">Active</span>', section)
    assert re.search(r'VIP</a>.*?<span class="badge state-needs_attention">Needs attention</span>',
                     section)


def test_needs_reconnect_banner_and_reconnect_mode(signed_in):
    row = make_integration("shopify", "acme.myshopify.com", status="needs_reconnect",
                           reason="The provider refused our credentials: token revoked.")
    html = _html(signed_in.get("/integrations/shopify"))
    assert "acme.myshopify.com needs reconnecting." in html
    assert "token revoked." in html
    assert '<span class="badge warn">Needs reconnect</span>' in html
    resp = signed_in.get(f"/integrations/shopify?reconnect={row.id}")
    html = _html(resp)
    assert "Reconnect acme.myshopify.com</h2>" in html
    assert f'name="integration_id" value="{row.id}"' in html
    assert 'value="acme.myshopify.com"' in html  # the shop is filled in
    # a reconnect id of another provider is ignored
    html = _html(signed_in.get(f"/integrations/magento?reconnect={row.id}"))
    assert "Reconnect acme" not in html


def test_connect_partial_for_htmx_and_redirect_otherwise(signed_in):
    resp = signed_in.htmx_get("/integrations/shopify/connect")
    assert resp.status_code == 200
    html = _html(resp)
    assert "<html" not in html and 'id="connect"' in html
    assert "HX-Request" in resp.headers["Vary"]
    resp = signed_in.get("/integrations/shopify/connect")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/integrations/shopify#connect")


def test_details_page_csp_allows_posting_to_the_sign_in_hosts(signed_in):
    default = signed_in.get("/integrations/").headers["Content-Security-Policy"]
    sf = signed_in.get("/integrations/salesforce").headers["Content-Security-Policy"]
    assert "form-action 'self' https://login.salesforce.com https://test.salesforce.com" in sf
    assert sf.split("form-action")[0] == default.split("form-action")[0]
    zoho = signed_in.get("/integrations/zoho").headers["Content-Security-Policy"]
    assert "https://accounts.zoho.eu" in zoho and "127.0.0.1" not in zoho
    magento = signed_in.get("/integrations/magento").headers["Content-Security-Policy"]
    assert magento == default


def test_links_keep_href_beside_hx_get(signed_in):
    make_integration("shopify")
    html = _html(signed_in.get("/integrations/shopify"))
    for tag in re.findall(r"<a [^>]*hx-get=[^>]*>", html):
        assert ' href="' in tag


# -------------------------------------------------------------------- settings page


def test_settings_oauth_apps_save_mask_and_remove(signed_in, app):
    html = _html(signed_in.get("/settings/"))
    assert "OAuth apps" in html
    assert "http://localhost/integrations/salesforce/oauth/callback" in html
    resp = signed_in.post("/settings/oauth/salesforce",
                          {"client_id": "3MVG9abc", "client_secret": "very-secret-value-7a7b"})
    assert resp.status_code == 302
    row = db.session.scalar(select(OAuthApp).where(OAuthApp.provider == "salesforce"))
    assert row.client_id == "3MVG9abc"
    assert "very-secret" not in row.client_secret_encrypted
    assert decrypt(row.client_secret_encrypted) == "very-secret-value-7a7b"
    html = _html(signed_in.get("/settings/"))
    assert "very-secret-value-7a7b" not in html and "very-secret" not in html
    assert "••••7a7b" in html
    assert "Leave empty to keep the saved secret." in html
    # an empty secret keeps the saved one
    signed_in.post("/settings/oauth/salesforce", {"client_id": "3MVG9new", "client_secret": ""})
    db.session.expire_all()
    row = db.session.scalar(select(OAuthApp).where(OAuthApp.provider == "salesforce"))
    assert row.client_id == "3MVG9new"
    assert decrypt(row.client_secret_encrypted) == "very-secret-value-7a7b"
    # the integrations page now offers the sign-in
    assert "Log in with Salesforce" in _html(signed_in.get("/integrations/salesforce"))
    resp = signed_in.post("/settings/oauth/salesforce/delete")
    assert resp.status_code == 302
    assert db.session.scalar(select(OAuthApp)) is None


def test_settings_oauth_app_validation_and_unknown_provider(signed_in):
    resp = signed_in.post("/settings/oauth/zoho", {"client_id": "", "client_secret": ""})
    assert resp.status_code == 422
    html = _html(resp)
    assert "Paste the app&#39;s client id" in html
    assert "Paste the app&#39;s client secret." in html
    assert signed_in.post("/settings/oauth/magento", {"client_id": "x"}).status_code == 404
    assert signed_in.post("/settings/oauth/nope/delete").status_code == 404


def test_settings_shows_environment_source_with_last_4_only(signed_in, app):
    app.config.update(ZOHO_CLIENT_ID="1000.ENVCLIENT", ZOHO_CLIENT_SECRET="env-secret-abcd9876")
    html = _html(signed_in.get("/settings/"))
    assert "From the environment (TRIBUTARY_ZOHO_CLIENT_ID)" in html
    assert "env-secret-abcd9876" not in html and "••••9876" in html
    from webapp.services.integrations import app_credentials

    assert app_credentials("zoho").source == "environment"
    signed_in.post("/settings/oauth/zoho", {"client_id": "1000.DB", "client_secret": "db-secret"})
    creds = app_credentials("zoho")
    assert (creds.client_id, creds.client_secret, creds.source) == ("1000.DB", "db-secret",
                                                                     "settings")


def test_update_credentials_link_loads_the_reconnect_forms_in_place(signed_in):
    row = make_integration("shopify", "acme.myshopify.com")
    html = _html(signed_in.get("/integrations/shopify"))
    assert (f'href="/integrations/shopify?reconnect={row.id}#connect"\n'
            f'       hx-get="/integrations/shopify/connect?reconnect={row.id}"') in html
    resp = signed_in.htmx_get(f"/integrations/shopify/connect?reconnect={row.id}")
    partial = _html(resp)
    assert "<html" not in partial
    assert "Reconnect acme.myshopify.com</h2>" in partial
    assert f'name="integration_id" value="{row.id}"' in partial
    resp = signed_in.get(f"/integrations/shopify/connect?reconnect={row.id}")
    assert resp.headers["Location"].endswith(f"/integrations/shopify?reconnect={row.id}#connect")
