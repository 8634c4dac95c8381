"""Compatibility with the official Segment library (`segment-analytics-python`): pointed at
a real HTTP server of ours, its calls arrive, plain and gzipped, and retries of a batch are
stored once."""

from __future__ import annotations

import threading

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError
from werkzeug.serving import make_server

from tests.plugins.conftest import make_source, stored


@pytest.fixture
def server(app):
    """The app on a real socket (werkzeug, threaded), as a Segment library meets it."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(5)


@pytest.mark.parametrize("gzip", [False, True])
def test_official_segment_client_calls_are_stored(app, server, gzip):
    source, keys = make_source("website")
    errors = []
    client = Client(keys["server"], host=server, sync_mode=True, gzip=gzip, max_retries=0,
                    on_error=lambda error, batch: errors.append(error))
    client.identify("user-42", {"email": "Grace@Example.com", "marketing_consent": True})
    client.track("user-42", "Order Completed", {"order_id": "1001", "total": 42.5})
    client.track(anonymous_id="anon-9", event="Product Viewed", properties={"sku": "A1"})
    client.page("user-42", category="Docs", name="Pricing", properties={"url": "/pricing"})
    client.track("user-42", "Newsletter Toggled", {"on": False})
    client.flush()
    assert errors == []
    rows = stored(source.id)
    assert [r.kind for r in rows] == ["identify", "order_completed", "product_viewed", "page",
                                      "custom"]
    assert rows[0].email_norm == "grace@example.com" and rows[0].user_id == "user-42"
    assert rows[2].anonymous_id == "anon-9" and rows[4].name == "Newsletter Toggled"
    assert all(r.dedup_key and r.channel == "api" for r in rows)


def test_a_bad_write_key_is_reported_to_the_client(app, server):
    make_source("website")
    client = Client("sk_not_ours", host=server, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as refused:
        client.track("u", "Signed Up")
    assert refused.value.status == 401 and refused.value.code == "unauthorized"
    assert stored() == []
