"""`make demo`'s plugin wiring (scripts/demo.py): the demo shop starts on its own port unconnected,
and connect_plugin_demo, given the sources' keys, points the shop at the app and sends signed
store webhooks to each delivery URL until stopped."""

from __future__ import annotations

import importlib.util
import sys
import urllib.request

import pytest

from tests.capture import CaptureServer
from tests.conftest import ROOT
from webapp.devserver import free_port


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_script"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("demo_script", None)


@pytest.fixture
def receiver():
    server = CaptureServer()
    yield server
    server.stop()


def test_the_shop_starts_on_its_port_and_connects_with_the_keys(demo, receiver, monkeypatch):
    port = free_port()
    monkeypatch.setenv("TRIBUTARY_DEMO_SHOP_PORT", str(port))
    running, shop = demo.start_demo_shop("http://127.0.0.1:5999/")
    try:
        assert running.url == f"http://127.0.0.1:{port}"
        home = urllib.request.urlopen(running.url + "/", timeout=5).read().decode()
        assert "not connected to Tributary yet" in home and "data-key" not in home
        with pytest.raises(SystemExit, match="TRIBUTARY_DEMO_SHOP_PORT"):
            demo.start_demo_shop("http://127.0.0.1:5999")  # the port is taken now
        keys = demo.DemoPluginKeys(
            public_key="pk_demo", server_key="sk_demo",
            shopify_url=receiver.url + "/hooks/shopify/2", shopify_secret="shopify-secret",
            woocommerce_url=receiver.url + "/hooks/woocommerce/3", woocommerce_secret="woo")
        stop, thread = demo.connect_plugin_demo(shop, "http://127.0.0.1:5999", keys,
                                                people=2, every=30)
        home = urllib.request.urlopen(running.url + "/", timeout=5).read().decode()
        assert ('<script async src="http://127.0.0.1:5999/static/tributary.js" '
                'data-key="pk_demo" data-host="http://127.0.0.1:5999"></script>') in home
        receiver.wait_for(lambda r: {p.path for p in r.posts()} == {
            "/hooks/shopify/2", "/hooks/woocommerce/3"} and len(r.posts()) >= 8)
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
        woo = [p for p in receiver.posts() if p.path == "/hooks/woocommerce/3"]
        assert woo[0].body == b"webhook_id=1"  # the ping first, as WooCommerce does
        assert all("X-Wc-Webhook-Signature" in p.headers for p in woo[1:])
        shopify = [p for p in receiver.posts() if p.path == "/hooks/shopify/2"]
        assert all("X-Shopify-Hmac-Sha256" in p.headers for p in shopify)
    finally:
        shop.close()
        running.stop()

