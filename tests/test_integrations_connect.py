"""Connecting against the simulators: token forms, OAuth sign-ins (state, HMAC, PKCE, data
centres), the connection test before saving, reconnect, and no secret ever in a page."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from simulators.shopify import SHOP
from tests.test_integrations_support import (
    Sim,
    follow_to_callback,
    make_integration,
    query_of,
    sim_fixture,
)
from webapp.extensions import db
from webapp.imports import credentials as creds_store
from webapp.models import Integration, WorkspaceNotice
from webapp.services.integrations import SESSION_PREFIX


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


shopify = sim_fixture("shopify")
salesforce = sim_fixture("salesforce")
zoho = sim_fixture("zoho")
magento = sim_fixture("magento")


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _rows(provider: str | None = None) -> list[Integration]:
    db.session.expire_all()
    query = select(Integration).order_by(Integration.id)
    if provider:
        query = query.where(Integration.provider == provider)
    return list(db.session.scalars(query))


def _use_app(app, provider: str, sim: Sim) -> None:
    st = sim.app.state
    app.config[f"{provider.upper()}_CLIENT_ID"] = st.client_id
    app.config[f"{provider.upper()}_CLIENT_SECRET"] = st.client_secret


def _all_pages(signed_in) -> str:
    return "".join(_html(signed_in.get(url)) for url in (
        "/integrations/", "/integrations/shopify", "/integrations/zoho", "/integrations/magento",
        "/integrations/salesforce", "/settings/"))


# ------------------------------------------------------------------ Shopify token


def test_shopify_token_connects_after_a_passing_test(signed_in, shopify):
    token = shopify.app.initial_tokens["access_token"]
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": token, "api_base": shopify.url})
    assert resp.status_code == 303, _html(resp)
    assert resp.headers["Location"].endswith(f"/integrations/{_rows()[0].id}/imports/new")
    [row] = _rows()
    named = f"Tributary Demo ({SHOP})"  # the shop's name, its myshopify domain beside it
    assert (row.provider, row.name, row.status) == ("shopify", named, "connected")
    assert row.settings["account_name"] == "Tributary Demo"
    assert row.settings["api_base"] == f"{shopify.url}/{SHOP}"
    assert token not in row.credentials_encrypted
    assert creds_store.load(row)["access_token"] == token
    assert row.last_checked_at is not None
    page = _html(signed_in.get("/integrations/shopify"))
    assert f"Shopify {named} connected. The connection test passed." in page
    assert token not in _all_pages(signed_in)
    assert "••••" + token[-4:] in page


def test_shopify_bad_shop_domain_is_refused_next_to_the_input(signed_in, shopify):
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": "shop.example.com", "access_token": "shpat_x", "api_base": shopify.url})
    assert resp.status_code == 422
    html = _html(resp)
    assert 'id="f-token-shop-error"' in html
    assert "That is not a Shopify shop address: use the name.myshopify.com form" in html
    assert 'value="shop.example.com"' in html  # the shop is kept, the token is not
    assert "shpat_x" not in html
    assert _rows() == []
    # htmx: the connect section alone, 200 so htmx swaps it in
    resp = signed_in.post("/integrations/shopify/connect", {"shop": "bad_shop!",
                                                             "access_token": "t"}, htmx=True)
    assert resp.status_code == 200
    html = _html(resp)
    assert "<html" not in html and 'id="connect"' in html and "field-error" in html


def test_shopify_missing_token_is_refused(signed_in):
    resp = signed_in.post("/integrations/shopify/connect", {"shop": SHOP, "access_token": ""})
    assert resp.status_code == 422
    assert "Paste the Admin API access token" in _html(resp)


def test_shopify_wrong_token_says_why_in_plain_words(signed_in, shopify):
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": "shpat_wrongwrongwrong1234", "api_base": shopify.url})
    assert resp.status_code == 422
    html = _html(resp)
    assert "The connection test failed: Shopify rejected the access token" in html
    assert 'id="connect-error"' in html
    assert "shpat_wrongwrongwrong1234" not in html
    assert _rows() == []
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": "shpat_wrong", "api_base": shopify.url}, htmx=True)
    assert resp.status_code == 200 and "Shopify rejected the access token" in _html(resp)


def test_shopify_unknown_shop_is_a_plain_error(signed_in, shopify):
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": "nobody.myshopify.com", "access_token": "shpat_x", "api_base": shopify.url})
    assert resp.status_code == 422
    assert "unknown shop" in _html(resp)


def test_api_base_is_ignored_without_the_loopback_setting(app):
    """Without ALLOW_LOOPBACK_PROVIDERS a posted override is dropped: the real shop is used
    (not called here: no network in tests)."""
    from webapp.providers.forms import loopback_base
    from webapp.providers.shopify import Shopify
    from webapp.services import integrations as service

    def shopify_api_base(form):  # the Shopify form's reading of its API base override
        return Shopify.settings_from_form(
            form, kind="oauth", allow_loopback=service.allow_loopback())[0].get("api_base")

    form = {"shop": SHOP, "api_base": "http://127.0.0.1:9"}
    with app.test_request_context():
        assert shopify_api_base(form) == f"http://127.0.0.1:9/{SHOP}"
        app.config["ALLOW_LOOPBACK_PROVIDERS"] = False
        assert shopify_api_base(form) is None
        assert loopback_base({"login_host": "http://127.0.0.1:9"}, "login_host",
                             service.allow_loopback()) is None


def test_htmx_connect_redirects_with_hx_redirect(signed_in, shopify):
    token = shopify.app.initial_tokens["access_token"]
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": token, "api_base": shopify.url}, htmx=True)
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == f"/integrations/{_rows()[0].id}/imports/new"


def test_connecting_the_same_shop_again_updates_its_row(signed_in, shopify):
    token = shopify.app.initial_tokens["access_token"]
    data = {"shop": SHOP, "access_token": token, "api_base": shopify.url}
    signed_in.post("/integrations/shopify/connect", data)
    signed_in.post("/integrations/shopify/connect", data)
    assert len(_rows()) == 1


def test_reconnect_updates_the_row_and_clears_the_notice(signed_in, shopify):
    row = make_integration("shopify", SHOP, status="needs_reconnect",
                           reason="The provider refused our credentials: revoked.",
                           settings={"shop": SHOP, "api_base": f"{shopify.url}/{SHOP}"},
                           credentials={"access_token": "shpat_dead"})
    db.session.add(WorkspaceNotice(key=f"reconnect:{row.id}", message="Reconnect Shopify",
                                   integration_id=row.id))
    db.session.commit()
    token = shopify.app.initial_tokens["access_token"]
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": token, "api_base": shopify.url,
        "integration_id": str(row.id)})
    assert resp.status_code == 303
    [again] = _rows()
    assert again.id == row.id
    assert (again.status, again.status_reason) == ("connected", "")
    assert again.name == f"Tributary Demo ({SHOP})"  # the old name gives way at reconnect
    assert creds_store.load(again)["access_token"] == token
    notice = db.session.scalar(select(WorkspaceNotice))
    assert notice.dismissed_at is not None and notice.key is None
    page = _html(signed_in.get("/integrations/shopify"))
    assert f"Shopify Tributary Demo ({SHOP}) reconnected." in page
    assert "needs reconnecting" not in page


def test_reconnect_refuses_another_account(signed_in, shopify):
    row = make_integration("shopify", "other.myshopify.com", status="needs_reconnect",
                           settings={"shop": "other.myshopify.com"})
    token = shopify.app.initial_tokens["access_token"]
    resp = signed_in.post("/integrations/shopify/connect", {
        "shop": SHOP, "access_token": token, "api_base": shopify.url,
        "integration_id": str(row.id)})
    assert resp.status_code == 422
    assert "this connection is for other.myshopify.com" in _html(resp)
    [same] = _rows()
    assert same.status == "needs_reconnect"


# ------------------------------------------------------------------ Shopify OAuth


def _shopify_start(signed_in, shopify, shop=SHOP):
    resp = signed_in.post("/integrations/shopify/oauth/start",
                          {"shop": shop, "api_base": shopify.url})
    assert resp.status_code == 303, _html(resp)
    return resp.headers["Location"]


def test_shopify_oauth_round_trip(signed_in, app, shopify):
    _use_app(app, "shopify", shopify)
    location = _shopify_start(signed_in, shopify)
    assert location.startswith(f"{shopify.url}/{SHOP}/admin/oauth/authorize?")
    query = query_of(location)
    assert query["redirect_uri"] == "http://localhost/integrations/shopify/oauth/callback"
    assert query["scope"] == "read_customers,read_orders"
    callback = follow_to_callback(location)
    resp = signed_in.get(callback)
    assert resp.status_code == 303, _html(resp)
    [row] = _rows()
    saved = creds_store.load(row)
    assert saved["refresh_token"].startswith("shprt_") and saved["expires_at"]
    assert row.settings["shop"] == SHOP
    html = _all_pages(signed_in)
    assert saved["access_token"] not in html and saved["refresh_token"] not in html
    # the pending sign-in was single use: replaying the callback is refused
    resp = signed_in.get(callback)
    assert resp.status_code == 400
    assert "does not belong to a connection started here" in _html(resp)


def test_shopify_oauth_tampered_hmac_is_refused(signed_in, app, shopify):
    _use_app(app, "shopify", shopify)
    callback = follow_to_callback(_shopify_start(signed_in, shopify))
    tampered = callback.replace("shop=", "shop=x", 1).replace(f"x{SHOP}", "evil.myshopify.com")
    resp = signed_in.get(tampered)
    assert resp.status_code == 400
    assert "signature does not match" in _html(resp)
    assert _rows() == []


def test_shopify_oauth_wrong_state_is_refused(signed_in, app, shopify):
    _use_app(app, "shopify", shopify)
    _shopify_start(signed_in, shopify)  # the pending state in this session
    # a correctly signed callback, but for a sign-in started elsewhere
    code = shopify.app.state.issue_code()
    from webapp.providers.shopify import callback_hmac

    params = {"code": code, "shop": SHOP, "state": "someone-elses-state",
              "timestamp": str(int(__import__("time").time()))}
    params["hmac"] = callback_hmac(params, shopify.app.state.client_secret)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    resp = signed_in.get(f"/integrations/shopify/oauth/callback?{query}")
    assert resp.status_code == 400
    assert "state mismatch" in _html(resp)
    assert _rows() == []


def test_oauth_callback_without_a_pending_sign_in_is_refused(signed_in, app, shopify):
    _use_app(app, "shopify", shopify)
    for provider in ("shopify", "zoho", "salesforce"):
        resp = signed_in.get(f"/integrations/{provider}/oauth/callback?code=abc&state=xyz")
        assert resp.status_code == 400
        assert "refused" in _html(resp)
    assert _rows() == []


def test_oauth_start_without_app_credentials_says_so(signed_in):
    resp = signed_in.post("/integrations/zoho/oauth/start", {"data_centre": "eu"})
    assert resp.status_code == 422
    assert "no Zoho CRM app credentials yet" in _html(resp)


def test_pending_sign_in_is_encrypted_in_the_session(signed_in, app, salesforce):
    _use_app(app, "salesforce", salesforce)
    signed_in.post("/integrations/salesforce/oauth/start",
                   {"environment": "production", "login_host": salesforce.url})
    with signed_in.client.session_transaction() as sess:
        token = sess[SESSION_PREFIX + "salesforce"]
    from webapp.security import decrypt

    pending = json.loads(decrypt(token))
    assert pending["verifier"] not in token and pending["state"] not in token
    cookie = signed_in.client.get_cookie("session").value
    assert pending["verifier"] not in cookie


def test_expired_pending_sign_in_is_refused(signed_in, app, salesforce, monkeypatch):
    _use_app(app, "salesforce", salesforce)
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "production", "login_host": salesforce.url})
    callback = follow_to_callback(resp.headers["Location"])
    import webapp.services.integrations as service

    later = service.time.time() + service.OAUTH_TTL_SECONDS + 5
    monkeypatch.setattr(service.time, "time", lambda: later)
    resp = signed_in.get(callback)
    assert resp.status_code == 400
    assert "in the last 10 minutes" in _html(resp)


# ---------------------------------------------------------------------- Salesforce


def test_salesforce_pkce_round_trip(signed_in, app, salesforce):
    _use_app(app, "salesforce", salesforce)
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "production", "login_host": salesforce.url})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    query = query_of(location)
    assert location.startswith(f"{salesforce.url}/services/oauth2/authorize?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["scope"] == "api refresh_token"
    assert query["redirect_uri"] == "http://localhost/integrations/salesforce/oauth/callback"
    before = salesforce.app.state.token_requests
    resp = signed_in.get(follow_to_callback(location))
    assert resp.status_code == 303, _html(resp)
    assert salesforce.app.state.token_requests == before + 1  # code + verifier accepted
    [row] = _rows()
    assert row.provider == "salesforce" and row.status == "connected"
    assert row.settings["instance_url"] == salesforce.url
    assert row.settings["org_id"]
    assert row.name == "Acme Corporation"  # SELECT Name FROM Organization
    saved = creds_store.load(row)
    assert saved["refresh_token"] and saved["client_secret"] == salesforce.app.state.client_secret
    html = _all_pages(signed_in)
    for secret in (saved["access_token"], saved["refresh_token"], saved["client_secret"]):
        assert secret not in html


def test_salesforce_wrong_verifier_is_refused(signed_in, app, salesforce):
    """The verifier kept server-side must match the challenge sent: swap in another one."""
    _use_app(app, "salesforce", salesforce)
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "production", "login_host": salesforce.url})
    callback = follow_to_callback(resp.headers["Location"])
    from webapp.security import decrypt, encrypt

    with signed_in.client.session_transaction() as sess:
        pending = json.loads(decrypt(sess[SESSION_PREFIX + "salesforce"]))
        pending["verifier"] = "x" * 64
        sess[SESSION_PREFIX + "salesforce"] = encrypt(json.dumps(pending))
    resp = signed_in.get(callback)
    assert resp.status_code == 400
    assert "PKCE code verifier did not match" in _html(resp)
    assert _rows() == []


def test_salesforce_wrong_state_and_denied_access_are_refused(signed_in, app, salesforce):
    _use_app(app, "salesforce", salesforce)
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "production", "login_host": salesforce.url})
    callback = follow_to_callback(resp.headers["Location"])
    path, _, query = callback.partition("?")
    params = query_of(callback)
    resp = signed_in.get(f"{path}?code={params['code']}&state=forged")
    assert resp.status_code == 400
    assert "does not belong to this session" in _html(resp)
    signed_in.post("/integrations/salesforce/oauth/start",
                   {"environment": "production", "login_host": salesforce.url})
    with signed_in.client.session_transaction() as sess:
        from webapp.security import decrypt

        state = json.loads(decrypt(sess[SESSION_PREFIX + "salesforce"]))["state"]
    resp = signed_in.get(f"{path}?error=access_denied&state={state}")
    assert resp.status_code == 400
    assert "Access was declined" in _html(resp)
    assert _rows() == []


def test_salesforce_sandbox_and_my_domain_login_hosts(signed_in, app):
    app.config.update(SALESFORCE_CLIENT_ID="cid", SALESFORCE_CLIENT_SECRET="secret")
    resp = signed_in.post("/integrations/salesforce/oauth/start", {"environment": "sandbox"})
    assert resp.headers["Location"].startswith(
        "https://test.salesforce.com/services/oauth2/authorize?")
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "my_domain", "my_domain": "acme.my.salesforce.com"})
    assert resp.headers["Location"].startswith("https://acme.my.salesforce.com/services/oauth2/")
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "my_domain", "my_domain": "evil.example.com"})
    assert resp.status_code == 422
    assert "My Domain login address" in _html(resp)


# ----------------------------------------------------------------------------- Zoho


def test_zoho_data_centre_then_oauth_with_accounts_server(signed_in, app, zoho):
    _use_app(app, "zoho", zoho)
    resp = signed_in.post("/integrations/zoho/oauth/start",
                          {"data_centre": "eu", "accounts_server": zoho.url})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location.startswith(f"{zoho.url}/oauth/v2/auth?")
    assert query_of(location)["access_type"] == "offline"
    callback = follow_to_callback(location)
    params = query_of(callback)
    assert params["accounts-server"] == zoho.url and params["location"] == "us"
    resp = signed_in.get(callback)
    assert resp.status_code == 303, _html(resp)
    [row] = _rows()
    assert row.provider == "zoho" and row.status == "connected"
    assert row.settings["accounts_server"] == zoho.url
    assert row.settings["api_domain"] == zoho.url
    assert row.name == "Zylker Corp"  # GET /crm/v8/org → org[0].company_name
    assert "ZohoCRM.org.READ" in query_of(location)["scope"].split(",")
    saved = creds_store.load(row)
    assert saved["refresh_token"] and saved["access_token"]
    html = _all_pages(signed_in)
    assert saved["refresh_token"] not in html and saved["access_token"] not in html


def test_zoho_authorize_url_follows_the_data_centre(signed_in, app):
    app.config.update(ZOHO_CLIENT_ID="1000.X", ZOHO_CLIENT_SECRET="s")
    resp = signed_in.post("/integrations/zoho/oauth/start", {"data_centre": "eu"})
    assert resp.headers["Location"].startswith("https://accounts.zoho.eu/oauth/v2/auth?")
    resp = signed_in.post("/integrations/zoho/oauth/start", {"data_centre": "ca"})
    assert resp.headers["Location"].startswith("https://accounts.zohocloud.ca/oauth/v2/auth?")
    resp = signed_in.post("/integrations/zoho/oauth/start", {"data_centre": "mars"})
    assert resp.status_code == 422
    assert "Choose the data centre" in _html(resp)


def test_zoho_foreign_accounts_server_is_refused(signed_in, app):
    app.config.update(ZOHO_CLIENT_ID="1000.X", ZOHO_CLIENT_SECRET="s",
                      ALLOW_LOOPBACK_PROVIDERS=False)
    signed_in.post("/integrations/zoho/oauth/start", {"data_centre": "eu"})
    with signed_in.client.session_transaction() as sess:
        from webapp.security import decrypt

        state = json.loads(decrypt(sess[SESSION_PREFIX + "zoho"]))["state"]
    resp = signed_in.get(f"/integrations/zoho/oauth/callback?code=1000.c&state={state}"
                         "&location=eu&accounts-server=https%3A%2F%2Fevil.example.com")
    assert resp.status_code == 400
    assert "not a Zoho accounts server" in _html(resp)
    assert _rows() == []


# -------------------------------------------------------------------------- Magento


def test_magento_oauth1_credentials_connect(signed_in, magento):
    creds = magento.config()["credentials"]
    resp = signed_in.post("/integrations/magento/connect", {
        "base_url": magento.url, "auth_mode": "oauth1", **creds})
    assert resp.status_code == 303, _html(resp)
    [row] = _rows()
    assert row.settings == {"base_url": magento.url, "auth_mode": "oauth1",
                            "account_name": "Luma Outdoor Store"}
    assert creds_store.load(row) == creds
    assert row.name == f"Luma Outdoor Store ({urlsplit(magento.url).netloc})"
    html = _all_pages(signed_in)
    for secret in creds.values():
        assert secret not in html


def test_magento_bearer_refused_by_the_store_says_why(signed_in, magento):
    token = magento.config()["credentials"]["access_token"]
    resp = signed_in.post("/integrations/magento/connect", {
        "base_url": magento.url, "auth_mode": "bearer", "access_token": token})
    assert resp.status_code == 422
    html = _html(resp)
    assert "The connection test failed:" in html
    assert token not in html
    assert _rows() == []


def test_magento_form_validation(signed_in):
    resp = signed_in.post("/integrations/magento/connect",
                          {"base_url": "shop", "access_token": "t"})
    assert resp.status_code == 422 and "Enter the store&#39;s address" in _html(resp)
    resp = signed_in.post("/integrations/magento/connect", {
        "base_url": "https://shop.example.com", "auth_mode": "oauth1", "access_token": "t"})
    assert resp.status_code == 422 and "Paste the integration&#39;s Consumer Key." in _html(resp)
    resp = signed_in.post("/integrations/magento/connect", {
        "base_url": "https://shop.example.com", "store_code": "Bad Code!", "access_token": "t"})
    assert resp.status_code == 422 and "store view code" in _html(resp)


def test_magento_private_address_refused_without_loopback(signed_in, app):
    app.config["ALLOW_LOOPBACK_PROVIDERS"] = False
    resp = signed_in.post("/integrations/magento/connect", {
        "base_url": "http://127.0.0.1:9/", "access_token": "t"})
    assert resp.status_code == 422 and "must start with https://" in _html(resp)
    resp = signed_in.post("/integrations/magento/connect", {
        "base_url": "https://127.0.0.1:9", "access_token": "t"})
    assert resp.status_code == 422
    assert "private or local address" in _html(resp)
    assert db.session.scalar(select(func.count(Integration.id))) == 0
