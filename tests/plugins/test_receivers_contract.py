"""The receivers' contract, one suite over every receiver (as tests/providers/test_contract.py
is for providers): Shopify webhook, WooCommerce webhook, tracking API with the server key,
with the browser key, and a source requiring Standard Webhooks signatures. Only what is
visible over HTTP and in the database is asserted, so the suite holds across a rewrite of
the receivers; the durable cases also run through a real gunicorn (wsgi:app)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import create_engine, text
from werkzeug.datastructures import MultiDict

from tests.conftest import _config, process_env
from tests.factories import make_list
from tests.plugins.conftest import BASE_URL, ORIGIN, b64_hmac, basic, compact, make_source
from tests.route_walk import guard_network
from tests.security.servers import dead_port
from tests.test_integrations_support import make_integration
from webapp.devserver import free_port
from webapp.extensions import db
from webapp.plugins import refusals, sources

ROOT = Path(__file__).resolve().parents[2]
SHOP_SECRET = "shpss_contract_suite_secret"
DEEP = b'{"id": 1, "x": ' + b"[" * 200 + b"]" * 200 + b"}"
SESSION_COOKIE = "session"


@dataclass
class Req:
    """One HTTP request to a receiver: what a sender would put on the wire."""

    path: str
    body: bytes
    headers: dict = field(default_factory=dict)


def _fresh_rows(database_url: str, source_id: int) -> list[dict]:
    """The stored events of a source, read through a new connection of a new engine: what is
    there is committed, whatever the app's session holds."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT dedup_key, body, status FROM plugin_events WHERE source_id = :s "
                "ORDER BY id"), {"s": source_id}).mappings().all()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def _refused_count(database_url: str, source_id: int) -> int:
    """The source's refused count as its row holds it once Redis's counts are folded."""
    refusals.fold()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT bad_signatures FROM plugin_sources WHERE id = :s"),
                                {"s": source_id}).scalar_one()
    finally:
        engine.dispose()


# --------------------------------------------------------------------- the receivers


class Receiver:
    """A receiver under contract. Subclasses say how a valid delivery, a forged one, an
    unknown source, an oversized body, malformed bodies and a duplicate look for it."""

    name = ""
    signed = True  # a forged body is refused 401 and counted on the source
    limit = ""  # the limit the 413 names
    unreadable_status = (400,)  # a body that is not JSON at all

    def setup(self, monkeypatch) -> None:
        raise NotImplementedError

    def delivery(self, payload: dict | None = None, **kw) -> Req:
        raise NotImplementedError

    def stored_matches(self, row: dict, req: Req) -> bool:
        """Is `row` the raw event of `req`?"""
        return row["body"] == req.body.decode("utf-8")

    def forged(self) -> Req:
        """A valid delivery whose body was changed by one byte after signing."""
        req = self.delivery()
        tampered = req.body.replace(b"a", b"b", 1)
        assert tampered != req.body and len(tampered) == len(req.body)
        return Req(req.path, tampered, req.headers)

    def unknown(self) -> Req:
        raise NotImplementedError

    def oversized(self) -> Req:
        raise NotImplementedError

    def malformed(self) -> list[tuple[str, Req, str | None]]:
        """(what, request, the field the 400 names; None: any field)."""
        raise NotImplementedError

    def duplicates(self) -> list[Req]:
        """Three deliveries of one event (a sender's retries) that must be stored once."""
        raise NotImplementedError

    def disable(self) -> None:
        from webapp.models.plugins import PluginSource

        db.session.get(PluginSource, self.source_id).status = "disabled"
        db.session.commit()


class ShopifyWebhook(Receiver):
    name = "shopify"
    limit = "1 MB"

    def setup(self, monkeypatch) -> None:
        """A store connected with a token, so its webhooks are signed with the custom app's
        API secret key (no Shopify needed: subscribing fails, the source is enabled by hand)."""
        guard_network(monkeypatch)
        integration = make_integration("shopify", "contract.myshopify.com", settings={
            "shop": "contract.myshopify.com",
            "api_base": f"http://127.0.0.1:{dead_port()}/contract"},
            credentials={"access_token": "shpat_contract"})
        lst = make_list("Contract shop")
        form = MultiDict({"name": "Contract shop", "list_id": str(lst.id),
                          "integration_id": str(integration.id), "api_secret": SHOP_SECRET})
        with current_app.test_request_context(base_url=BASE_URL):
            source = sources.create("shopify", form).source
        source.status = "enabled"
        db.session.commit()
        self.source_id = source.id

    def _req(self, body: bytes, *, webhook_id: str | None = None,
             topic: str = "customers/create", secret: str = SHOP_SECRET,
             source_id: int | None = None) -> Req:
        headers = {"X-Shopify-Hmac-Sha256": b64_hmac(secret, body), "X-Shopify-Topic": topic,
                   "X-Shopify-Shop-Domain": "contract.myshopify.com",
                   "X-Shopify-API-Version": "2025-01",
                   "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
                   "X-Shopify-Triggered-At": "2026-11-30T10:00:00.123Z",
                   "Content-Type": "application/json"}
        return Req(f"/hooks/shopify/{source_id or self.source_id}", body, headers)

    def delivery(self, payload=None, **kw) -> Req:
        payload = payload or {"id": 706405506930370084, "email": "ann@example.com",
                              "first_name": "Ann", "updated_at": "2026-11-30T05:00:00-05:00"}
        return self._req(compact(payload), **kw)

    def unknown(self) -> Req:
        return self.delivery(source_id=999999)

    def oversized(self) -> Req:
        return self.delivery({"id": 1, "email": "a@example.com", "note": "a" * (1024 * 1024)})

    def malformed(self):
        return [("bad JSON", self._req(b'{"id": 1, oops'), "body"),
                ("invalid UTF-8", self._req(b'{"id": 1, "email": "\xff\xfe"}'), "body"),
                ("deep nesting", self._req(DEEP), "body"),
                ("not an object", self._req(b"[1, 2]"), "body"),
                ("a bare number", self._req(b"42"), "body"),
                ("no topic", Req(self._req(b'{"id": 1}').path, b'{"id": 1}', {
                    k: v for k, v in self._req(b'{"id": 1}').headers.items()
                    if k != "X-Shopify-Topic"}), "X-Shopify-Topic")]

    def duplicates(self) -> list[Req]:
        hook = str(uuid.uuid4())
        return [self.delivery(webhook_id=hook) for _ in range(3)]


class WooCommerceWebhook(Receiver):
    name = "woocommerce"
    limit = "1 MB"

    def setup(self, monkeypatch) -> None:
        source, keys = make_source("woocommerce")
        self.source_id, self.secret = source.id, keys["signing"]

    def _req(self, body: bytes, *, topic: str = "customer.created",
             delivery: str | None = None, source_id: int | None = None) -> Req:
        resource, _, action = topic.partition(".")
        headers = {"X-WC-Webhook-Signature": b64_hmac(self.secret, body),
                   "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": resource,
                   "X-WC-Webhook-Event": action, "X-WC-Webhook-ID": "12",
                   "X-WC-Webhook-Source": "https://woo.example/",
                   "X-WC-Webhook-Delivery-ID": delivery or uuid.uuid4().hex,
                   "Content-Type": "application/json"}
        return Req(f"/hooks/woocommerce/{source_id or self.source_id}", body, headers)

    def delivery(self, payload=None, **kw) -> Req:
        payload = payload or {"id": int(uuid.uuid4().int % 10**6), "email": "cy@example.com",
                              "first_name": "Cy", "date_modified_gmt": "2026-11-30T10:00:00"}
        return self._req(compact(payload), **kw)

    def unknown(self) -> Req:
        return self.delivery(source_id=999999)

    def oversized(self) -> Req:
        return self.delivery({"id": 1, "date_modified_gmt": "2026-11-30T10:00:00",
                              "note": "a" * (1024 * 1024)})

    def malformed(self):
        return [("bad JSON", self._req(b'{"id": 1, oops'), "body"),
                ("invalid UTF-8", self._req(b'{"id": 1, "email": "\xff\xfe"}'), "body"),
                ("deep nesting", self._req(DEEP), "body"),
                ("id of the wrong type", self._req(compact(
                    {"id": {"x": 1}, "date_modified_gmt": "2026-11-30T10:00:00"})), "id"),
                ("not an object", self._req(b"[1, 2]"), None)]

    def duplicates(self) -> list[Req]:
        """One change (resource id + modification time) under three delivery ids."""
        payload = {"id": 77, "email": "cy@example.com",
                   "date_modified_gmt": "2026-11-30T10:05:00"}
        return [self.delivery(payload, delivery=uuid.uuid4().hex) for _ in range(3)]


def _event(**extra) -> dict:
    return {"type": "page", "name": "Home", "anonymousId": "anon-contract",
            "messageId": str(uuid.uuid4()), "timestamp": "2026-11-30T10:00:00Z",
            "properties": {"path": "/", "title": "Home"}, **extra}


class TrackingServerKey(Receiver):
    name = "tracking-server"
    signed = False  # no signature: a forged credential is the key changed by one byte
    limit = "500 KB"

    def setup(self, monkeypatch) -> None:
        source, keys = make_source("website")
        self.source_id, self.keys = source.id, keys

    def auth(self, body: bytes) -> dict:
        return {**basic(self.keys["server"]), "Content-Type": "application/json"}

    def wrap(self, events) -> bytes:
        return json.dumps({"batch": events}).encode()

    def delivery(self, payload=None, **kw) -> Req:
        body = self.wrap([payload or _event()])
        return Req("/v1/batch", body, self.auth(body))

    def stored_matches(self, row: dict, req: Req) -> bool:
        """The tracking API stores each event of a batch on its own, as sent."""
        sent = json.loads(req.body)["batch"]
        return any(json.loads(row["body"]) == event for event in sent)

    def forged(self) -> Req:
        req = self.delivery()
        key = self.keys["server"]
        wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
        return Req(req.path, req.body, {**req.headers, **basic(wrong)})

    def unknown(self) -> Req:
        body = self.wrap([_event()])
        return Req("/v1/batch", body, {**basic("sk_" + "x" * 40),
                                       "Content-Type": "application/json"})

    def oversized(self) -> Req:
        body = self.wrap([_event(properties={"blob": "a" * 30 * 1024}) for _ in range(20)])
        return Req("/v1/batch", body, self.auth(body))

    def malformed(self):
        def raw(body: bytes) -> Req:
            return Req("/v1/batch", body, self.auth(body))

        half = self.wrap([_event(), _event(anonymousId={"x": 1})])
        return [("bad JSON", raw(b'{"batch": [oops'), "body"),
                ("invalid UTF-8", raw(b'{"batch": [{"type": "page", "name": "\xff\xfe"}]}'),
                 "body"),
                ("deep nesting", raw(self.wrap([_event(properties=json.loads(
                    "[" * 100 + "]" * 100))])), "body"),
                ("batch of the wrong type", raw(self.wrap("nope")),
                 "batch"),
                ("a good event then a bad one", raw(half), "batch[1].anonymousId")]

    def duplicates(self) -> list[Req]:
        """One messageId in three batches, beside a new event each time."""
        one = _event()
        reqs = [self.delivery() for _ in range(3)]
        for n, req in enumerate(reqs):
            body = self.wrap([one, _event(name=f"Other {n}")])
            reqs[n] = Req(req.path, body, self.auth(body))
        return reqs

    def duplicates_expected(self) -> int:
        return 4  # the repeated event once, plus the three others


class TrackingBrowserKey(TrackingServerKey):
    """The snippet's way: the public key in the body (sendBeacon cannot set headers), text/
    plain, from an allowed Origin. A body that cannot be read carries no readable key."""

    name = "tracking-browser"
    unreadable_status = (400, 401)

    def auth(self, body: bytes) -> dict:
        return {"Origin": ORIGIN, "Content-Type": "text/plain;charset=UTF-8"}

    def wrap(self, events) -> bytes:
        return json.dumps({"batch": events, "writeKey": self.keys["public"]}).encode()

    def forged(self) -> Req:
        key = self.keys["public"]
        wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
        body = json.dumps({"batch": [_event()], "writeKey": wrong}).encode()
        return Req("/v1/batch", body, self.auth(body))

    def unknown(self) -> Req:
        body = json.dumps({"batch": [_event()], "writeKey": "pk_" + "x" * 40}).encode()
        return Req("/v1/batch", body, self.auth(body))


class TrackingSigned(TrackingServerKey):
    """A source that requires Standard Webhooks signatures (signed by the official library)."""

    name = "tracking-signed"
    signed = True

    def setup(self, monkeypatch) -> None:
        source, keys = make_source("website", require_signature="on")
        self.source_id, self.keys = source.id, keys

    def auth(self, body: bytes) -> dict:
        from datetime import UTC, datetime

        from standardwebhooks.webhooks import Webhook

        msg_id = f"msg_{uuid.uuid4().hex}"
        when = datetime.fromtimestamp(time.time(), UTC)
        try:
            signature = Webhook(self.keys["signing"]).sign(msg_id, when, body.decode())
        except UnicodeDecodeError:  # the library signs text: sign these bytes by hand
            secret = base64.b64decode(self.keys["signing"].removeprefix("whsec_"))
            content = f"{msg_id}.{int(when.timestamp())}.".encode() + body
            signature = "v1," + base64.b64encode(
                hmac.new(secret, content, hashlib.sha256).digest()).decode()
        return {**basic(self.keys["server"]), "Content-Type": "application/json",
                "webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signature}

    def forged(self) -> Req:
        return Receiver.forged(self)


RECEIVERS = [ShopifyWebhook, WooCommerceWebhook, TrackingServerKey, TrackingBrowserKey,
             TrackingSigned]


@pytest.fixture(params=RECEIVERS, ids=lambda r: r.name)
def receiver(request, app, monkeypatch) -> Receiver:
    made = request.param()
    made.setup(monkeypatch)
    return made


# ------------------------------------------------------------------ two transports


@dataclass
class Answer:
    """What came back over the wire, the same whichever way the request went."""

    status: int
    mimetype: str
    cookies: list[str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@pytest.fixture(scope="module")
def gunicorn(database_url, redis_url):
    """The app as deployed (deploy/gunicorn.conf.py, wsgi:app), one worker, on loopback."""
    port = free_port()
    env = {**process_env(_config(database_url, redis_url)),
           "TRIBUTARY_BIND": f"127.0.0.1:{port}", "TRIBUTARY_WEB_WORKERS": "1"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
         "--access-logfile", "/dev/null", "wsgi:app"], cwd=ROOT, env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            conn.getresponse().read()
            conn.close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "gunicorn did not start"
            time.sleep(0.2)
    yield port
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _over_http(port: int, req: Req, method: str) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, req.path, body=req.body, headers=req.headers)
        resp = conn.getresponse()
        mimetype = (resp.getheader("Content-Type") or "").partition(";")[0].strip()
        cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
        return Answer(resp.status, mimetype, cookies, resp.read())
    finally:
        conn.close()


@pytest.fixture(params=["test-client", "gunicorn"])
def transport(request, app):
    """Send a request through Flask's test client, or over HTTP to a real gunicorn serving
    wsgi:app (so the contract holds whatever sits in front of the app)."""
    if request.param == "gunicorn":
        port = request.getfixturevalue("gunicorn")
        return lambda req, method="POST": _over_http(port, req, method)
    client = app.test_client()

    def send(req: Req, method: str = "POST") -> Answer:
        resp = client.open(req.path, method=method, data=req.body, headers=req.headers)
        return Answer(resp.status_code, resp.mimetype, resp.headers.getlist("Set-Cookie"),
                      resp.get_data())
    return send


def assert_json(answer: Answer) -> dict:
    assert answer.mimetype == "application/json", (answer.status, answer.mimetype)
    body = answer.json()
    assert isinstance(body, dict)
    return body


def assert_no_session_cookie(answer: Answer) -> None:
    assert not any(c.split("=", 1)[0].strip() == SESSION_COOKIE for c in answer.cookies), (
        answer.cookies)


def assert_plain_refusal(answer: Answer, status) -> dict:
    """A JSON error in plain words: the status, a message, no exception text, no cookie."""
    assert answer.status in (status if isinstance(status, tuple) else (status,)), (
        answer.status, answer.body[:300])
    body = assert_json(answer)
    message = body.get("error") or body.get("message")
    assert isinstance(message, str) and message.strip()
    for leak in ("Traceback", "Error:", "Exception", "sqlalchemy", "psycopg", "sqlite3"):
        assert leak not in message
    assert_no_session_cookie(answer)
    return body


def _ok(answer: Answer) -> None:
    assert 200 <= answer.status < 300, (answer.status, answer.body[:300])
    assert_json(answer)
    assert_no_session_cookie(answer)


# ------------------------------------------------------------------------ the contract


def test_valid_delivery_is_2xx_json_and_committed_before_the_answer(
        transport, receiver, database_url):
    req = receiver.delivery()
    _ok(transport(req))
    rows = _fresh_rows(database_url, receiver.source_id)  # right after the answer
    assert len(rows) == 1 and receiver.stored_matches(rows[0], req)
    assert rows[0]["status"] == "pending"


def test_no_csrf_token_is_demanded(app, transport, receiver, database_url):
    """CSRF protection is on for the app's forms, and the receivers still take a POST
    carrying no token and no session."""
    assert app.config.get("WTF_CSRF_ENABLED", True)
    login = app.test_client().post("/login", data={"email": "x@example.com", "password": "x"})
    assert login.status_code == 400  # a form without its token is refused...
    _ok(transport(receiver.delivery()))  # ...a receiver's POST, with no cookie, is not
    assert len(_fresh_rows(database_url, receiver.source_id)) == 1


def test_a_forged_delivery_gets_401_stores_nothing_and_is_counted(
        transport, receiver, database_url):
    before = _refused_count(database_url, receiver.source_id)
    assert_plain_refusal(transport(receiver.forged()), 401)
    assert _fresh_rows(database_url, receiver.source_id) == []
    # A signature is checked against a known source: counted there. A wrong key names no
    # source, so there is nothing to count it on.
    assert _refused_count(database_url, receiver.source_id) == before + (
        1 if receiver.signed else 0)


def test_an_unknown_source_is_refused_plainly(transport, receiver, database_url):
    assert_plain_refusal(transport(receiver.unknown()), (401, 404))
    assert _fresh_rows(database_url, receiver.source_id) == []


def test_a_disabled_source_is_refused_plainly(transport, receiver, database_url):
    receiver.disable()
    assert_plain_refusal(transport(receiver.delivery()), 403)
    assert _fresh_rows(database_url, receiver.source_id) == []


def test_an_oversized_body_gets_413_naming_the_limit(transport, receiver, database_url):
    body = assert_plain_refusal(transport(receiver.oversized()), 413)
    assert receiver.limit in (body.get("error") or body.get("message"))
    assert _fresh_rows(database_url, receiver.source_id) == []


def test_a_10_mb_body_gets_413(client, receiver, database_url):
    """Through the test client only: over a socket the server may rightly close the
    connection before a 10 MB upload is through (the 413 above covers that path)."""
    req = receiver.delivery()
    resp = client.post(req.path, data=b'{"x": "' + b"a" * (10 * 1024 * 1024) + b'"}',
                       headers=req.headers)
    answer = Answer(resp.status_code, resp.mimetype, resp.headers.getlist("Set-Cookie"),
                    resp.get_data())
    assert_plain_refusal(answer, 413)
    assert _fresh_rows(database_url, receiver.source_id) == []


def test_malformed_bodies_get_400_naming_the_field_and_store_nothing(
        transport, receiver, database_url):
    for what, req, field_name in receiver.malformed():
        answer = transport(req)
        unreadable = field_name == "body"
        body = assert_plain_refusal(answer, receiver.unreadable_status if unreadable else 400)
        if answer.status == 400:
            assert body.get("field"), what
            if field_name is not None:
                assert body["field"] == field_name, (what, body)
        assert _fresh_rows(database_url, receiver.source_id) == [], what


def test_a_duplicate_delivery_is_acknowledged_and_stored_once(
        transport, receiver, database_url):
    for req in receiver.duplicates():
        _ok(transport(req))
    expected = getattr(receiver, "duplicates_expected", lambda: 1)()
    rows = _fresh_rows(database_url, receiver.source_id)
    assert len(rows) == expected
    assert len({r["dedup_key"] for r in rows}) == expected


def test_a_wrong_method_gets_405(transport, receiver, database_url):
    req = receiver.delivery()
    for method in ("GET", "PUT", "DELETE"):
        answer = transport(req, method)
        assert_plain_refusal(answer, 405)  # JSON, like every other refusal
    assert _fresh_rows(database_url, receiver.source_id) == []


def test_a_delivery_carrying_a_session_cookie_gets_no_cookie_back(
        transport, receiver, database_url):
    """A browser that is signed in (the try-it page, our own origin) sends its session
    cookie along: the receiver neither reads nor re-issues it."""
    req = receiver.delivery()
    answer = transport(Req(req.path, req.body, {**req.headers,
                                                "Cookie": f"{SESSION_COOKIE}=abc.def.ghi"}))
    _ok(answer)
    assert_no_session_cookie(answer)
