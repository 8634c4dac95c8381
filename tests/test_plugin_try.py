"""The "try it" page of a website source: the install tag with the source's current public
key (never a revoked or expired one), the snippet embedded with buttons and a marked sign-up
form, plain words when there is no key or the source is not a website, names shown as text."""

from __future__ import annotations

import hashlib
import html
from datetime import timedelta

import pytest

from tests.factories import make_list
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.plugins import PluginKey, PluginSource
from webapp.plugins.try_views import source_public_key
from webapp.security import encrypt

pytestmark = pytest.mark.usefixtures("app")


def _source(kind="website", name="Our site", origins=("http://localhost",)) -> PluginSource:
    source = PluginSource(kind=kind, name=name, list_id=make_list(f"List {name}").id,
                          allowed_origins=list(origins))
    db.session.add(source)
    db.session.commit()
    return source


def _key(source, value, **kw) -> PluginKey:
    key = PluginKey(source_id=source.id, kind=kw.pop("kind", "public"), prefix=value[:10],
                    digest=hashlib.sha256(value.encode()).hexdigest(),
                    secret_encrypted=encrypt(value), **kw)
    db.session.add(key)
    db.session.commit()
    return key


def test_the_page_shows_the_install_tag_and_embeds_the_snippet(signed_in):
    source = _source()
    _key(source, "pk_live_first", created_at=utcnow() - timedelta(days=2))
    _key(source, "pk_live_rotated")  # rotation: two valid, the newer one is shown
    _key(source, "sk_server_never_shown", kind="server")
    resp = signed_in.get(f"/plugins/sources/{source.id}/try")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    tag = ('<script async src="http://localhost/static/tributary.js" '
           'data-key="pk_live_rotated" data-host="http://localhost"></script>')
    shown = page.split('id="install-tag"><code>')[1].split("</code>")[0]
    assert html.unescape(shown) == tag  # shown as text, to copy
    assert ('<script async src="/static/tributary.js" data-key="pk_live_rotated" '
            'data-host="http://localhost"></script>') in page
    assert "pk_live_first" not in page and "sk_server_never_shown" not in page
    assert '<form id="try-form" data-tributary-form="try-it"' in page
    assert 'data-tributary-consent' in page
    for button in ("Send a page view", "Add a mug to the cart", "Sign up"):
        assert button in page
    assert 'id="try-log"' in page and "/static/plugin_try.js" in page
    assert 'id="origin-note"' not in page  # http://localhost is an allowed origin
    assert 'name="email"' not in page  # without JavaScript the form sends no address


def test_revoked_and_expired_keys_are_never_shown(signed_in):
    source = _source()
    _key(source, "pk_revoked", revoked_at=utcnow())
    _key(source, "pk_expired", expires_at=utcnow() - timedelta(minutes=1))
    page = signed_in.get(f"/plugins/sources/{source.id}/try").get_data(as_text=True)
    assert "pk_revoked" not in page and "pk_expired" not in page
    assert "has no browser key yet" in page and "tributary.js" not in page
    _key(source, "pk_in_grace", expires_at=utcnow() + timedelta(hours=1))
    assert source_public_key(source) == "pk_in_grace"


def test_a_page_origin_outside_the_allowed_origins_is_pointed_out(signed_in):
    source = _source(origins=["https://shop.example"])
    _key(source, "pk_x")
    page = signed_in.get(f"/plugins/sources/{source.id}/try").get_data(as_text=True)
    assert 'id="origin-note"' in page and "<code>http://localhost</code>" in page


def test_store_sources_get_plain_words_and_unknown_sources_404(signed_in):
    shop = _source(kind="shopify", name="Store")
    _key(shop, "pk_shop")
    page = signed_in.get(f"/plugins/sources/{shop.id}/try").get_data(as_text=True)
    assert "This page is for website sources" in page and "pk_shop" not in page
    assert signed_in.get(f"/plugins/sources/{shop.id + 1000}/try").status_code == 404


def test_names_are_shown_as_text_and_a_stale_key_is_no_error(signed_in, app):
    source = _source(name="<script>alert(1)</script>")
    key = _key(source, "pk_ok")
    key.secret_encrypted = "not-a-fernet-token"
    db.session.commit()
    resp = signed_in.get(f"/plugins/sources/{source.id}/try")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "has no browser key yet" in page


def test_signed_out_visitors_are_sent_to_sign_in(client):
    source = _source()
    resp = client.get(f"/plugins/sources/{source.id}/try")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
