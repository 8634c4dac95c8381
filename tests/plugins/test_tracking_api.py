"""The Segment-compatible tracking API: keys, the browser key's origins and events, CORS,
limits and JSON errors, de-duplication by messageId, Standard Webhooks signatures."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.plugins.conftest import ORIGIN, basic, make_source, stored
from webapp.extensions import db
from webapp.models.plugins import PluginSource
from webapp.plugins import refusals


def event(kind="track", **extra):
    base = {"type": kind, "messageId": str(uuid.uuid4()), "anonymousId": "anon-1",
            "timestamp": "2026-11-30T10:00:00Z"}
    if kind == "track":
        base["event"] = "Signed Up"
    return {**base, **extra}


def post(client, path, body, headers=None, raw=None, content_type="application/json"):
    data = raw if raw is not None else json.dumps(body)
    return client.post(path, data=data, headers=headers or {}, content_type=content_type)


def test_batch_with_the_server_key_is_stored_with_its_columns(client, website):
    source, keys = website
    batch = [event(traits={"email": "  Ann@Example.COM "}, userId="u1"),
             event("identify", traits={"email": "bob@example.com"}),
             event("page", name="Home", context={"page": {"url": "https://shop.example/"}}),
             event(event="Wishlist Shared")]
    resp = post(client, "/v1/batch", {"batch": batch}, basic(keys["server"]))
    assert resp.status_code == 200 and resp.get_json() == {"success": True}
    rows = stored(source.id)
    assert [r.kind for r in rows] == ["signed_up", "identify", "page", "custom"]
    assert [r.channel for r in rows] == ["api"] * 4
    assert rows[0].email_norm == "ann@example.com" and rows[0].user_id == "u1"
    assert rows[1].email_norm == "bob@example.com" and rows[1].anonymous_id == "anon-1"
    assert rows[2].name == "Home" and rows[3].name == "Wishlist Shared"
    assert rows[0].dedup_key == batch[0]["messageId"] and rows[0].status == "pending"
    assert json.loads(rows[3].body) == batch[3]
    assert rows[0].occurred_at.isoformat() == "2026-11-30T10:00:00+00:00"


def test_single_endpoints_take_their_type_from_the_path(client, website):
    source, keys = website
    for path, body in (("/v1/identify", {"userId": "7", "traits": {"email": "c@example.com"}}),
                       ("/v1/track", {"userId": "7", "event": "Order Completed"}),
                       ("/v1/page", {"anonymousId": "a", "name": "Pricing"})):
        assert post(client, path, body, basic(keys["server"])).status_code == 200
    assert [r.kind for r in stored(source.id)] == ["identify", "order_completed", "page"]


def test_same_message_id_in_two_batches_is_stored_once(client, website):
    source, keys = website
    one = event()
    for _ in range(2):
        resp = post(client, "/v1/batch", {"batch": [one, event()]}, basic(keys["server"]))
        assert resp.status_code == 200
    assert len(stored(source.id)) == 3


def test_bad_or_missing_keys_get_401_and_store_nothing(client, website):
    source, keys = website
    for headers in ({}, basic("sk_wrong"), basic(keys["server"] + "x"),
                    {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}):
        resp = post(client, "/v1/batch", {"batch": [event()]}, headers)
        assert resp.status_code == 401, headers
        assert "key" in resp.get_json()["error"]
    assert stored(source.id) == []


def test_browser_key_only_from_allowed_origins_and_only_browser_events(client, website):
    source, keys = website
    beacon = {"batch": [event("page"), event(event="Product Added")], "writeKey": keys["public"]}
    refused = post(client, "/v1/batch", None, {"Origin": "https://evil.example"},
                   raw=json.dumps(beacon), content_type="text/plain;charset=UTF-8")
    assert refused.status_code == 403 and refused.get_json()["field"] == "Origin"
    assert "Access-Control-Allow-Origin" not in refused.headers
    no_origin = post(client, "/v1/batch", beacon)
    assert no_origin.status_code == 403
    ok = post(client, "/v1/batch", None, {"Origin": ORIGIN}, raw=json.dumps(beacon),
              content_type="text/plain;charset=UTF-8")
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert [r.channel for r in stored(source.id)] == ["browser", "browser"]
    for server_only in (event(event="Order Completed"), event(event="Custom Thing"),
                        event("group")):
        resp = post(client, "/v1/batch", {"batch": [event("page"), server_only],
                                          "writeKey": keys["public"]}, {"Origin": ORIGIN})
        assert resp.status_code == 403, server_only
    assert len(stored(source.id)) == 2  # nothing of the refused batches, not even the page


def test_preflight_answers_allowed_origins_only(client, website):
    ok = client.options("/v1/batch", headers={"Origin": ORIGIN,
                                               "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
    bad = client.options("/v1/batch", headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers


def test_limits_answer_413_naming_the_limit(client, website):
    source, keys = website
    auth = basic(keys["server"])
    big = event(properties={"blob": "x" * 33 * 1024})
    resp = post(client, "/v1/batch", {"batch": [event(), big]}, auth)
    assert resp.status_code == 413 and "32 KB per event" in resp.get_json()["error"]
    assert resp.get_json()["field"] == "batch[1]"
    many = post(client, "/v1/batch", {"batch": [event() for _ in range(501)]}, auth)
    assert many.status_code == 413 and "500 per batch" in many.get_json()["error"]
    heavy = [event(properties={"blob": "y" * 20 * 1024}) for _ in range(30)]
    resp = post(client, "/v1/batch", {"batch": heavy}, auth)
    assert resp.status_code == 413 and "500 KB per batch" in resp.get_json()["error"]
    huge = post(client, "/v1/batch", None, auth, raw=b"{" + b" " * (10 * 1024 * 1024) + b"}")
    assert huge.status_code == 413 and "500 KB per batch" in huge.get_json()["error"]
    single = post(client, "/v1/track", event(properties={"blob": "z" * 40 * 1024}), auth)
    assert single.status_code == 413 and "32 KB per event" in single.get_json()["error"]
    assert stored(source.id) == []


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    (b"\xff\xfe{}", "body"),
    (b"[" * 5000 + b"]" * 5000, "body"),
    (json.dumps({"batch": "nope"}).encode(), "batch"),
    (json.dumps({"batch": []}).encode(), "batch"),
    (json.dumps({"batch": [1]}).encode(), "batch[0]"),
    (json.dumps({"batch": [{"type": "track", "anonymousId": "a"}]}).encode(),
     "batch[0].event"),
    (json.dumps({"batch": [{"type": "shout", "anonymousId": "a"}]}).encode(), "batch[0].type"),
    (json.dumps({"batch": [{"type": "page"}]}).encode(), "batch[0].userId"),
    (json.dumps({"batch": [{"type": "page", "anonymousId": {"x": 1}}]}).encode(),
     "batch[0].anonymousId"),
    (json.dumps({"batch": [{"type": "page", "anonymousId": "a", "traits": []}]}).encode(),
     "batch[0].traits"),
    (json.dumps({"batch": [{"type": "page", "anonymousId": "a", "timestamp": "soon"}]}).encode(),
     "batch[0].timestamp"),
    (json.dumps({"batch": [{"type": "identify", "anonymousId": "a",
                            "traits": {"email": 42}}]}).encode(), "batch[0].traits.email"),
    (json.dumps({"batch": [{"type": "page", "anonymousId": "a\u0000b"}]}).encode(),
     "batch[0].anonymousId"),
    (b'{"batch": [{"type": "page", "anonymousId": "\\ud800"}]}', "batch[0]"),
    (json.dumps({"batch": [{"type": "page", "anonymousId": "a",
                            "properties": {"deep": json.loads("[" * 40 + "]" * 40)}}]}).encode(),
     "body"),
])
def test_malformed_input_gets_400_naming_the_field(client, website, body, field):
    source, keys = website
    resp = post(client, "/v1/batch", None, basic(keys["server"]), raw=body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["field"] == field
    assert stored(source.id) == []


def test_script_text_and_bad_emails_are_stored_as_sent(client, website):
    """`<script>` is data, shown escaped later; a malformed email is kept for the processor
    to reject with its reason (its verdict), not refused at intake."""
    source, keys = website
    hostile = "<script>alert(1)</script>"
    resp = post(client, "/v1/batch", {"batch": [
        event(event=hostile, traits={"email": "not-an-email", "name": hostile})]},
        basic(keys["server"]))
    assert resp.status_code == 200
    row = stored(source.id)[0]
    assert row.name == hostile and row.email_norm == "not-an-email"


def test_a_disabled_source_refuses_events(client, website):
    source, keys = website
    source.status = "disabled"
    db.session.commit()
    resp = post(client, "/v1/batch", {"batch": [event()]}, basic(keys["server"]))
    assert resp.status_code == 403 and stored(source.id) == []


def test_key_rotation_keeps_two_valid_then_the_old_one_stops(client, app):
    from datetime import timedelta

    from webapp.models.base import utcnow
    from webapp.plugins import keys as keys_mod
    from webapp.plugins import sources

    source, keys = make_source("website")
    old = keys["server"]
    new = sources.rotate_key(source, "server").secret
    for key in (old, new):
        assert post(client, "/v1/batch", {"batch": [event()]}, basic(key)).status_code == 200
    # A second rotation ends the oldest at once: never more than two valid.
    newest = sources.rotate_key(source, "server").secret
    assert post(client, "/v1/batch", {"batch": [event()]}, basic(old)).status_code == 401
    assert len(keys_mod.valid(source.id, "server")) == 2
    # The grace period ends after 24 hours.
    for row in keys_mod.valid(source.id, "server"):
        if row.expires_at:
            row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert post(client, "/v1/batch", {"batch": [event()]}, basic(new)).status_code == 401
    assert post(client, "/v1/batch", {"batch": [event()]}, basic(newest)).status_code == 200
    # Stored as a digest only.
    assert all(newest not in (r.digest or "") and r.secret_encrypted is None
               for r in keys_mod.valid(source.id, "server"))


# ----------------------------------------------------------- Standard Webhooks signatures


@pytest.fixture
def signed_source(app):
    return make_source("website", require_signature="on")


def _signed(keys, body: bytes, *, msg_id=None, stamp=None, secret=None):
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.fromtimestamp(stamp if stamp is not None else time.time(), UTC)
    signature = Webhook(secret or keys["signing"]).sign(msg_id, when, body.decode())
    return {**basic(keys["server"]), "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": signature}


def test_standard_webhooks_signatures_from_the_official_signer(client, signed_source):
    source, keys = signed_source
    body = json.dumps({"batch": [event()]}).encode()
    assert post(client, "/v1/batch", None, _signed(keys, body), raw=body).status_code == 200
    assert len(stored(source.id)) == 1


def test_unsigned_stale_tampered_or_wrong_key_signatures_get_401_and_are_counted(
        client, signed_source):
    source, keys = signed_source
    body = json.dumps({"batch": [event()]}).encode()
    # Each case is signed just before it is sent, 310 s out: the header carries whole
    # seconds, so a stamp only just past the 300 s tolerance could round back inside it.
    cases = [
        (lambda: basic(keys["server"]), body),  # unsigned
        (lambda: _signed(keys, body, stamp=time.time() - 310), body),  # too old
        (lambda: _signed(keys, body, stamp=time.time() + 310), body),  # too far ahead
        (lambda: _signed(keys, body), body[:-2] + b" }"),  # one byte changed
        (lambda: _signed(keys, body, secret="whsec_" + "QUJD" * 8), body),  # another secret
    ]
    for headers, sent in cases:
        resp = post(client, "/v1/batch", None, headers(), raw=sent)
        assert resp.status_code == 401, resp.get_json()
    refusals.fold()  # the counts kept in Redis onto the row
    db.session.expire_all()
    row = db.session.get(PluginSource, source.id)
    assert row.bad_signatures == len(cases) and row.last_bad_signature_at is not None
    assert stored(source.id) == []


def test_a_replayed_signed_request_has_no_second_effect(client, signed_source):
    """Decision: a replay inside the 300 s window is acknowledged (a sender's retry looks
    the same) but stores nothing new, its events being de-duplicated; outside it, 401."""
    source, keys = signed_source
    body = json.dumps({"batch": [event(), event()]}).encode()
    headers = _signed(keys, body)
    for _ in range(3):
        assert post(client, "/v1/batch", None, headers, raw=body).status_code == 200
    assert len(stored(source.id)) == 2
    old = _signed(keys, body, stamp=time.time() - 400)
    assert post(client, "/v1/batch", None, old, raw=body).status_code == 401
