"""Sources pages: the "Plugin imports" section, set-up pages per kind, keys shown once and
stored hashed or encrypted, rotation and revocation, enable/disable, refused signatures
shown, and a disconnect removing the Shopify webhooks."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.factories import make_cycle, make_list
from tests.plugins.conftest import b64_hmac, basic
from tests.test_integrations_support import make_integration, sim_fixture
from webapp.extensions import db
from webapp.models.plugins import PluginKey, PluginSource

shopify = sim_fixture("shopify")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _token(signed_in, url: str) -> str:
    """The one-time token of the (first) key-showing form on the page at `url`."""
    return re.search(r'name="once" value="([^"]+)"', _text(signed_in.get(url))).group(1)


def _key(html: str, kind: str) -> str:
    return re.search(rf'id="new-key-{kind}">([^<]+)<', html).group(1)


def test_integrations_page_has_the_plugin_imports_section(signed_in):
    html = _text(signed_in.get("/integrations/"))
    assert "Plugin imports" in html
    for kind in ("shopify", "woocommerce", "website"):
        assert f'href="/plugins/new?kind={kind}"' in html


def _create_website(signed_in, **extra):
    lst = make_list(f"Site list {len(extra)}-{sorted(extra)}")
    data = {"name": "Our site", "list_id": str(lst.id),
            "allowed_origins": "https://shop.example\nhttp://localhost:8080/",
            "add_events": ["signed_up", "form_submitted"],
            "once": _token(signed_in, "/plugins/new?kind=website"), **extra}
    return signed_in.post("/plugins/new?kind=website", data), lst


def test_website_source_keys_are_shown_once_and_stored_hashed(signed_in, client):
    resp, lst = _create_website(signed_in)
    html = _text(resp)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    server, public, signing = (_key(html, k) for k in ("server", "public", "signing"))
    assert server.startswith("sk_") and public.startswith("pk_")
    assert signing.startswith("whsec_")
    source = db.session.scalar(select(PluginSource))
    assert source.allowed_origins == ["https://shop.example", "http://localhost:8080"]
    assert source.add_events == ["signed_up", "form_submitted"]
    assert not source.allow_unconsented_subscribe and not source.require_signature
    stored = {r.kind: r for r in db.session.scalars(select(PluginKey))}
    assert stored["server"].secret_encrypted is None and server not in stored["server"].digest
    assert signing not in stored["signing"].secret_encrypted
    page = _text(signed_in.get(f"/plugins/{source.id}"))
    assert server not in page and signing not in page
    assert f'data-key="{public}"' in page  # the install tag: public keys are not secret
    assert server[:12] in page  # the prefix tells keys apart
    # The key works at once.
    resp = client.post("/v1/track", json={"userId": "1", "event": "Signed Up"},
                       headers=basic(server))
    assert resp.status_code == 200


def test_set_up_form_refuses_bad_input_in_plain_words(signed_in):
    resp = signed_in.post("/plugins/new?kind=website", {"name": "", "list_id": ""})
    assert resp.status_code == 422 and "Give the source a name" in _text(resp)
    resp, _ = _create_website(signed_in, allowed_origins="https://shop.example/path")
    assert resp.status_code == 422 and "one a line" in _text(resp)
    lst = make_list("Other")
    cycle = make_cycle(lst, days=10)
    resp, _ = _create_website(signed_in, cycle_id=str(cycle.id), cycle_day="3")
    assert resp.status_code == 422 and "cycle of the chosen list" in _text(resp)
    assert db.session.scalar(select(PluginSource)) is None
    assert signed_in.get("/plugins/new?kind=nonsense").status_code == 404


def test_cycle_and_options_are_saved_and_editable(signed_in):
    lst = make_list("Cycled")
    cycle = make_cycle(lst, days=10)
    resp = signed_in.post("/plugins/new?kind=website", {
        "name": "Cycled site", "list_id": str(lst.id), "cycle_id": str(cycle.id),
        "cycle_day": "2", "add_events": ["identify"], "allow_unconsented_subscribe": "on",
        "require_signature": "on", "once": _token(signed_in, "/plugins/new?kind=website")})
    assert resp.status_code == 200
    source = db.session.scalar(select(PluginSource))
    assert (source.cycle_id, source.cycle_day) == (cycle.id, 2)
    assert source.add_events == ["identify"] and source.allow_unconsented_subscribe
    assert source.require_signature
    resp = signed_in.post(f"/plugins/{source.id}", {"name": "Renamed", "list_id": str(lst.id),
                                                    "add_events": ["signed_up"]})
    assert resp.status_code == 303
    db.session.expire_all()
    source = db.session.get(PluginSource, source.id)
    assert source.name == "Renamed" and source.cycle_id is None
    assert source.add_events == ["signed_up"] and not source.require_signature


def test_rotate_then_revoke_the_old_key(signed_in, client):
    resp, _ = _create_website(signed_in)
    old = _key(_text(resp), "server")
    source = db.session.scalar(select(PluginSource))
    rotated = signed_in.post(f"/plugins/{source.id}/rotate", {
        "kind": "server", "once": _token(signed_in, f"/plugins/{source.id}")})
    assert rotated.headers["Cache-Control"] == "no-store"
    new = _key(_text(rotated), "server")
    assert new != old
    for key in (old, new):
        assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                           headers=basic(key)).status_code == 200
    page = _text(signed_in.get(f"/plugins/{source.id}"))
    assert "valid until" in page and "Revoke now" in page
    old_row = db.session.scalar(select(PluginKey).where(
        PluginKey.kind == "server", PluginKey.expires_at.is_not(None)))
    assert signed_in.post(f"/plugins/{source.id}/revoke",
                          {"key_id": str(old_row.id)}).status_code == 303
    assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                       headers=basic(old)).status_code == 401
    assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                       headers=basic(new)).status_code == 200
    # The last valid key of a kind cannot be revoked.
    new_row = db.session.scalar(select(PluginKey).where(
        PluginKey.kind == "server", PluginKey.revoked_at.is_(None)))
    signed_in.post(f"/plugins/{source.id}/revoke", {"key_id": str(new_row.id)})
    assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                       headers=basic(new)).status_code == 200


def test_woocommerce_page_shows_url_secret_once_topics_and_refused_signatures(signed_in,
                                                                              client):
    lst = make_list("Woo list")
    resp = signed_in.post("/plugins/new?kind=woocommerce", {
        "name": "Woo shop", "list_id": str(lst.id), "add_events": ["signed_up"],
        "once": _token(signed_in, "/plugins/new?kind=woocommerce")})
    html = _text(resp)
    secret = _key(html, "signing")
    source = db.session.scalar(select(PluginSource))
    url = f"http://localhost/hooks/woocommerce/{source.id}"
    assert url in html
    for topic in ("customer.created", "customer.updated", "order.created", "order.updated"):
        assert topic in html
    client.post(f"/hooks/woocommerce/{source.id}", data=b'{"id": 1}',
                headers={"X-WC-Webhook-Signature": b64_hmac("wrong", b'{"id": 1}'),
                         "X-WC-Webhook-Topic": "customer.created"})
    page = _text(signed_in.get(f"/plugins/{source.id}"))
    assert secret not in page and url in page
    assert re.search(r"Refused signatures: 1 \(last <time", page)


def test_disable_and_enable_from_the_page(signed_in, client):
    resp, _ = _create_website(signed_in)
    server = _key(_text(resp), "server")
    source = db.session.scalar(select(PluginSource))
    assert signed_in.post(f"/plugins/{source.id}/disable").status_code == 303
    assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                       headers=basic(server)).status_code == 403
    assert "Disabled" in _text(signed_in.get(f"/plugins/{source.id}"))
    signed_in.post(f"/plugins/{source.id}/enable")
    assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                       headers=basic(server)).status_code == 200
    assert "Our site" in _text(signed_in.get("/integrations/"))


def test_shopify_source_from_the_page_and_disconnect_removes_webhooks(signed_in, shopify):
    shopify.app.state.webhooks.clear()
    cfg = shopify.config()
    integration = make_integration("shopify", cfg["settings"]["shop"],
                                   settings=cfg["settings"], credentials=cfg["credentials"])
    lst = make_list("Shop list")
    resp = signed_in.post("/plugins/new?kind=shopify", {
        "name": "Demo shop", "list_id": str(lst.id), "integration_id": str(integration.id),
        "add_events": ["signed_up"], "once": _token(signed_in, "/plugins/new?kind=shopify")})
    assert resp.status_code == 200
    source = db.session.scalar(select(PluginSource))
    assert source.status == "enabled" and len(shopify.app.state.webhook_subscriptions()) == 13
    assert "13 subscriptions in the store" in _text(resp)
    resp = signed_in.post(f"/integrations/shopify/{integration.id}/disconnect")
    assert resp.status_code == 303
    assert shopify.app.state.webhook_subscriptions() == []
    db.session.expire_all()
    assert db.session.get(PluginSource, source.id).status == "disabled"


def test_set_up_pages_per_kind(signed_in):
    shop = _text(signed_in.get("/plugins/new?kind=shopify"))
    assert "Choose a connected store" in shop and "API secret key" in shop
    assert "allowed_origins" not in shop
    site = _text(signed_in.get("/plugins/new?kind=website"))
    assert 'name="allowed_origins"' in site and 'name="require_signature"' in site
    assert "Choose a connected store" not in site
    woo = _text(signed_in.get("/plugins/new?kind=woocommerce"))
    assert "allowed_origins" not in woo and "Set up a WooCommerce store" in woo
    # Defaults: registrations and form sign-ups add contacts; unconsented is off.
    assert re.search(r'value="signed_up" checked', site)
    assert re.search(r'value="form_submitted" checked', site)
    assert not re.search(r'value="identify" checked', site)
    assert not re.search(r'name="allow_unconsented_subscribe" checked', site)


def test_the_source_page_links_its_event_log_and_try_it_page(signed_in):
    _create_website(signed_in)
    source = db.session.scalar(select(PluginSource))
    page = _text(signed_in.get(f"/plugins/{source.id}"))
    assert f'href="/plugins/sources/{source.id}/events"' in page
    assert f'href="/plugins/sources/{source.id}/try"' in page


# ------------------------------------------------------- a reload re-posting a key form


def test_reloading_the_rotated_key_page_rotates_nothing(signed_in, client):
    """The browser's reload re-posts the rotate form with its token: the key was shown once,
    nothing changes, and both keys valid during the rotation keep working."""
    resp, _ = _create_website(signed_in)
    old = _key(_text(resp), "server")
    source = db.session.scalar(select(PluginSource))
    form = {"kind": "server", "once": _token(signed_in, f"/plugins/{source.id}")}
    rotated = signed_in.post(f"/plugins/{source.id}/rotate", form)
    assert rotated.status_code == 200
    new = _key(_text(rotated), "server")
    before = [(k.id, k.expires_at, k.revoked_at) for k in db.session.scalars(
        select(PluginKey).where(PluginKey.kind == "server").order_by(PluginKey.id))]
    for _ in range(2):  # reload, and reload again
        again = signed_in.post(f"/plugins/{source.id}/rotate", form)
        assert again.status_code == 303
        assert again.headers["Location"].endswith(f"/plugins/{source.id}")
        page = _text(signed_in.get(again.headers["Location"]))
        assert "This key was shown once already; rotate again for a new one." in page
        assert old not in page and new not in page and 'id="new-key-' not in page
    db.session.expire_all()
    after = [(k.id, k.expires_at, k.revoked_at) for k in db.session.scalars(
        select(PluginKey).where(PluginKey.kind == "server").order_by(PluginKey.id))]
    assert after == before and len(after) == 2
    for key in (old, new):  # two valid keys during the rotation, as before the reload
        assert client.post("/v1/track", json={"userId": "1", "event": "X"},
                           headers=basic(key)).status_code == 200
    # A fresh form from the page rotates again, as asked.
    fresh = signed_in.post(f"/plugins/{source.id}/rotate", {
        "kind": "server", "once": _token(signed_in, f"/plugins/{source.id}")})
    assert fresh.status_code == 200 and _key(_text(fresh), "server") not in (old, new)


def test_reloading_the_set_up_answer_makes_no_second_source(signed_in):
    lst = make_list("Once list")
    data = {"name": "Once site", "list_id": str(lst.id), "add_events": ["signed_up"],
            "allowed_origins": "https://shop.example",
            "once": _token(signed_in, "/plugins/new?kind=website")}
    first = signed_in.post("/plugins/new?kind=website", data)
    assert first.status_code == 200 and _key(_text(first), "server")
    source = db.session.scalar(select(PluginSource))
    keys_before = db.session.scalar(select(func.count(PluginKey.id)))
    again = signed_in.post("/plugins/new?kind=website", data)
    assert again.status_code == 303 and again.headers["Location"].endswith(
        f"/plugins/{source.id}")
    page = _text(signed_in.get(again.headers["Location"]))
    assert "keys were shown once" in page and 'id="new-key-' not in page
    assert db.session.scalar(select(func.count(PluginSource.id))) == 1
    assert db.session.scalar(select(func.count(PluginKey.id))) == keys_before


def test_a_key_form_without_its_token_changes_nothing(signed_in):
    resp, _ = _create_website(signed_in)
    source = db.session.scalar(select(PluginSource))
    count = db.session.scalar(select(func.count(PluginKey.id)))
    for form in ({"kind": "server"}, {"kind": "server", "once": "short"}):
        resp = signed_in.post(f"/plugins/{source.id}/rotate", form)
        assert resp.status_code == 303
        assert "out of date" in _text(signed_in.get(resp.headers["Location"]))
    lst = make_list("No token")
    resp = signed_in.post("/plugins/new?kind=website", {"name": "No token",
                                                        "list_id": str(lst.id)})
    assert resp.status_code == 422 and "out of date" in _text(resp)
    assert db.session.scalar(select(func.count(PluginSource.id))) == 1
    assert db.session.scalar(select(func.count(PluginKey.id))) == count
    # Only a digest of a used token is kept.
    from webapp.models.plugins import PluginFormToken

    assert all(len(t.digest) == 64 for t in db.session.scalars(select(PluginFormToken)))
