"""The browser snippet (webapp/static/tributary.js) in Chromium, installed with the one tag on
a page of another origin, sending to a capture server standing in for Tributary: the exact
Segment batches (page, form submit with consent, product added, identify), the anonymous id
kept across pages, sendBeacon on leaving, retries with backoff, and no error in the page."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.capture import CaptureServer

SNIPPET = Path(__file__).resolve().parents[2] / "webapp" / "static" / "tributary.js"
PK = "pk_test_0123456789abcdef"

PAGE = """<!doctype html><html><head><title>Shop &amp; more</title>
<script async src="{app}/static/tributary.js" data-key="{pk}" data-host="{app}"></script>
</head><body>
<form data-tributary-form="newsletter" action="/thanks" method="get">
  <input type="email" name="email" aria-label="Email">
  <input type="text" name="first_name" aria-label="First name">
  <label><input type="checkbox" name="consent" data-tributary-consent> Send me news</label>
  <button type="submit">Sign up</button>
</form>
<button id="add" onclick="tributary.track('Product Added',
  {{product_id: 'sku-1', name: 'Blue mug', price: 12.5, quantity: 1, currency: 'EUR'}})">
  Add to cart</button>
<a id="next" href="/next">Next page</a>
</body></html>"""
THANKS = "<!doctype html><title>Thanks</title><p>Thanks"


@pytest.fixture
def tracker():
    server = CaptureServer(files={"/static/tributary.js": ("text/javascript",
                                                           SNIPPET.read_bytes())})
    yield server
    server.stop()


@pytest.fixture
def shop(tracker):
    html = PAGE.format(app=tracker.url, pk=PK).encode()
    server = CaptureServer(files={"/": ("text/html", html), "/next": ("text/html", html),
                                  "/thanks": ("text/html", THANKS.encode())})
    yield server
    server.stop()


def _events(tracker: CaptureServer) -> list[dict]:
    return [event for r in tracker.posts("/v1/batch") for event in r.json()["batch"]]


def _wait_events(tracker, predicate, timeout=10.0) -> list[dict]:
    return tracker.wait_for(lambda t: (lambda ev: ev if predicate(ev) else None)(_events(t)),
                            timeout)


def _guard_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_page_form_consent_cart_and_identify_arrive_as_segment_batches(page: Page, tracker,
                                                                        shop):
    errors = _guard_errors(page)
    page.goto(shop.url + "/")
    events = _wait_events(tracker, lambda ev: any(e["type"] == "page" for e in ev))
    first = tracker.posts("/v1/batch")[0]
    assert first.headers["Content-Type"] == "text/plain;charset=UTF-8"  # CORS-simple
    assert first.headers["Origin"] == shop.url
    payload = first.json()
    assert payload["writeKey"] == PK and payload["sentAt"].endswith("Z")
    pageview = events[0]
    assert pageview["type"] == "page"
    assert str(uuid.UUID(pageview["messageId"])) == pageview["messageId"]
    anonymous = pageview["anonymousId"]
    assert str(uuid.UUID(anonymous)) == anonymous
    assert pageview["timestamp"].endswith("Z")
    assert pageview["context"]["page"] == {"url": shop.url + "/", "path": "/", "referrer": "",
                                           "title": "Shop & more"}
    assert pageview["context"]["userAgent"] == page.evaluate("navigator.userAgent")
    assert page.evaluate("localStorage.getItem('tributary_aid')") == anonymous

    page.click("#add")
    page.evaluate("tributary.identify('  Ann@Example.com ', {first_name: 'Ann'})")
    events = _wait_events(tracker, lambda ev: len(ev) >= 3)
    added = next(e for e in events if e.get("event") == "Product Added")
    assert added["type"] == "track" and added["anonymousId"] == anonymous
    assert added["properties"] == {"product_id": "sku-1", "name": "Blue mug", "price": 12.5,
                                   "quantity": 1, "currency": "EUR"}
    ident = next(e for e in events if e["type"] == "identify")
    assert ident["traits"] == {"first_name": "Ann", "email": "Ann@Example.com"}
    # both calls came within the 2-second window: one batch, not one request per event
    assert [len(r.json()["batch"]) for r in tracker.posts("/v1/batch")] == [1, 2]

    page.fill("input[name=email]", "bob@example.com")
    page.fill("input[name=first_name]", "Bob")
    page.check("[data-tributary-consent]")
    page.click("button[type=submit]")
    page.wait_for_url("**/thanks?**")
    events = _wait_events(tracker, lambda ev: sum(e["type"] == "identify" for e in ev) == 2)
    form = next(e for e in events if e.get("event") == "Form Submitted")
    assert form["properties"] == {"email": "bob@example.com", "consent": True,
                                  "form": "newsletter"}
    assert form["traits"] == {"email": "bob@example.com"}
    assert form["context"]["page"]["path"] == "/"
    second = [e for e in events if e["type"] == "identify"][1]
    assert second["traits"] == {"email": "bob@example.com", "first_name": "Bob"}
    assert events.index(form) < events.index(second)
    ids = [e["messageId"] for e in events]
    assert len(ids) == len(set(ids)) == 5
    assert {e["anonymousId"] for e in events} == {anonymous}
    assert errors == []


def test_unticked_consent_is_sent_as_false_and_the_id_survives_a_new_page(page: Page,
                                                                          tracker, shop):
    page.goto(shop.url + "/")
    _wait_events(tracker, lambda ev: ev)
    page.fill("input[name=email]", "cy@example.com")
    page.click("button[type=submit]")
    page.wait_for_url("**/thanks?**")
    events = _wait_events(tracker, lambda ev: any(e["type"] == "identify" for e in ev))
    form = next(e for e in events if e.get("event") == "Form Submitted")
    assert form["properties"]["consent"] is False
    page.goto(shop.url + "/next")
    events = _wait_events(tracker, lambda ev: sum(e["type"] == "page" for e in ev) == 2)
    assert len({e["anonymousId"] for e in events}) == 1
    assert [e["context"]["page"]["referrer"] for e in events if e["type"] == "page"] == [
        "", ""]


def test_leaving_the_page_hands_the_queue_to_send_beacon(page: Page, tracker, shop):
    page.goto(shop.url + "/")
    _wait_events(tracker, lambda ev: ev)
    page.click("#add")  # queued for the 2-second flush …
    page.click("#next")  # … but the page goes away first
    _wait_events(tracker, lambda ev: any(e.get("event") == "Product Added"
                                          for e in ev), timeout=5)
    beacon = next(r for r in tracker.posts("/v1/batch")
                  if any(e.get("event") == "Product Added" for e in r.json()["batch"]))
    # a Blob's type is lower-cased by the browser: the receiver compares case-insensitively
    assert beacon.headers["Content-Type"] == "text/plain;charset=utf-8"
    assert beacon.headers.get("Sec-Fetch-Mode") == "no-cors"  # sendBeacon, not fetch
    _wait_events(tracker, lambda ev: sum(e["type"] == "page" for e in ev) == 2)
    assert sum(e.get("event") == "Product Added" for e in _events(tracker)) == 1


def test_failed_sends_are_retried_with_backoff_and_kept_across_pages(page: Page, tracker,
                                                                     shop):
    failing = {"left": 3}

    def answer(captured):
        if captured.path == "/v1/batch" and failing["left"] > 0:
            failing["left"] -= 1
            return 503, 0.0
        return 200, 0.0

    tracker.answer = answer
    errors = _guard_errors(page)
    page.goto(shop.url + "/")
    tracker.wait_for(lambda t: len(t.posts("/v1/batch")) >= 4, timeout=20)
    batches = tracker.posts("/v1/batch")
    sent = [r.json()["batch"] for r in tracker.posts("/v1/batch")]
    assert all(b == sent[0] for b in sent)  # the same events again, same messageIds
    gaps = [b.at - a.at for a, b in zip(batches, batches[1:], strict=False)]
    assert gaps[1] > gaps[0] * 1.2 and gaps[2] > gaps[1] * 1.2, gaps  # backing off
    assert page.evaluate("localStorage.getItem('tributary_queue')") is None  # delivered
    assert errors == []

    # A queue left in storage by an earlier page (the server was down) is sent by the next.
    tracker.answer = lambda c: (503, 0.0)
    page.click("#add")
    tracker.wait_for(lambda t: any(e.get("event") == "Product Added"
                                   for r in t.posts("/v1/batch") for e in r.json()["batch"]))
    stored = json.loads(page.evaluate("localStorage.getItem('tributary_queue')"))
    assert [e.get("event") for e in stored] == ["Product Added"]
    page.evaluate("navigator.sendBeacon = () => false")  # the browser refuses on leaving
    tracker.answer = None
    left = time.time()
    page.goto(shop.url + "/next")
    tracker.wait_for(lambda t: any(e["type"] == "page" and e["context"]["page"]["path"]
                                   == "/next" for e in _events(t)))
    later = [e["messageId"] for r in tracker.posts("/v1/batch") if r.at >= left
             for e in r.json()["batch"]]
    assert stored[0]["messageId"] in later  # sent again by the next page, same messageId
    tracker.wait_for(lambda t: page.evaluate("localStorage.getItem('tributary_queue')") is None)


def test_a_batch_goes_out_while_another_script_holds_the_keepalive_quota(page: Page,
                                                                        tracker, shop):
    """Keepalive fetches share one 64 KB in-flight budget per page, with every script on
    it: while another script's large keepalive request waits for its answer, the browser
    refuses ours. The batch then goes out at once without keepalive, not after a backoff."""
    tracker.answer = lambda c: (200, 8.0) if c.path == "/slow" else (200, 0.0)
    page.goto(shop.url + "/")
    _wait_events(tracker, lambda ev: ev)
    refused = page.evaluate("""async (url) => {
        fetch(url + '/slow', {method: 'POST', body: 'x'.repeat(40000), keepalive: true,
                              mode: 'no-cors'});
        await new Promise(r => setTimeout(r, 300));
        try { await fetch(url + '/probe', {method: 'POST', body: 'y'.repeat(40000),
                                           keepalive: true, mode: 'no-cors'}); return false; }
        catch (e) { return true; }
    }""", tracker.url)
    assert refused  # the quota is real: a second keepalive request is refused meanwhile
    started = time.monotonic()
    page.evaluate("tributary.track('During the slow send', {blob: 'z'.repeat(30000)}); "
                  "tributary.flush()")
    _wait_events(tracker, lambda ev: any(e.get("event") == "During the slow send"
                                          for e in ev), timeout=5)
    assert time.monotonic() - started < 4  # well before the slow request is answered


def test_the_snippet_never_throws_into_the_page(page: Page, tracker, shop):
    errors = _guard_errors(page)
    page.goto(shop.url + "/")
    _wait_events(tracker, lambda ev: ev)
    page.evaluate("""() => {
        tributary.track(); tributary.track(42, 'x'); tributary.identify(null);
        tributary.identify('', {}); tributary.page({}, null);
        const loop = {}; loop.self = loop; tributary.track('Loop', loop);
        Object.defineProperty(window, 'localStorage', {get() { throw new Error('blocked'); }});
        tributary.track('After storage broke', {ok: true}); tributary.flush();
    }""")
    events = _wait_events(tracker, lambda ev: any(e.get("event") == "After storage broke"
                                                  for e in ev))
    assert not any(e.get("event") == "Loop" for e in events)  # unserialisable: not sent
    assert errors == []
    size, gzipped = SNIPPET.stat().st_size, len(gzip.compress(SNIPPET.read_bytes()))
    assert size < 12_000 and gzipped < 5_000, (size, gzipped)  # a few KB, served as is


def test_oversized_events_are_dropped_and_a_dead_server_is_given_up_on(page: Page, tracker,
                                                                        shop):
    tracker.answer = lambda c: (503, 0.0)
    page.clock.install()
    page.goto(shop.url + "/")
    page.evaluate("""() => {
        tributary.track('Too big', {blob: 'x'.repeat(40000)});
        tributary.track('Fits', {blob: 'y'.repeat(20000)});
        tributary.track('Also fits', {blob: 'z'.repeat(20000)});
        tributary.track('Third', {blob: 'w'.repeat(20000)});
    }""")
    def advance() -> None:
        """One minute on the page's clock; the sends themselves are real, so wait for a
        send it causes and let its answer reach the page before the clock moves again."""
        before = len(tracker.posts("/v1/batch"))
        page.clock.run_for(61_000)
        deadline = time.monotonic() + 1.5
        while len(tracker.posts("/v1/batch")) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)

    # Until the eighth try (a busy machine may need more minutes than tries), then four
    # more minutes: no ninth try comes.
    for _ in range(40):
        if len(tracker.posts("/v1/batch")) >= 8:
            break
        advance()
    for _ in range(4):
        advance()
    batches = [r.json()["batch"] for r in tracker.posts("/v1/batch")]
    assert len(batches) == 8  # MAX_TRIES: then this page stops; the queue waits in storage
    names = [e.get("event") or e["type"] for e in batches[0]]
    assert names == ["page", "Fits", "Also fits"]  # under fetch keepalive's 64 KB
    assert all(len(tracker.posts("/v1/batch")[i].body) < 64_000 for i in range(8))
    stored = json.loads(page.evaluate("localStorage.getItem('tributary_queue')"))
    assert [e.get("event") or e["type"] for e in stored] == ["page", "Fits", "Also fits",
                                                               "Third"]


class _TrackingStandIn:
    """The app with POST /v1/batch answered here (recorded) — the receiving side is tested
    on its own; this checks what the "try it" page's snippet sends and lists."""

    def __init__(self, app):
        self.app, self.batches = app, []

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/v1/batch" and environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            self.batches.append(json.loads(environ["wsgi.input"].read(size)))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"success": true}']
        return self.app(environ, start_response)


@pytest.fixture
def try_server(app):
    from werkzeug.serving import make_server

    from webapp.devserver import free_port

    stand_in = _TrackingStandIn(app.wsgi_app)
    app.wsgi_app = stand_in
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", stand_in
    server.shutdown()
    thread.join(timeout=5)


def test_try_page_sends_with_the_sources_key_and_lists_what_was_sent(page: Page, try_server,
                                                                      user):
    from tests.conftest import PASSWORD
    from tests.factories import make_list
    from webapp.extensions import db
    from webapp.models.plugins import PluginKey, PluginSource
    from webapp.security import encrypt

    base, stand_in = try_server
    source = PluginSource(kind="website", name="Our site", list_id=make_list("Site").id,
                          allowed_origins=[base])
    db.session.add(source)
    db.session.flush()
    db.session.add(PluginKey(source_id=source.id, kind="public", prefix="pk_try",
                             digest="0" * 64, secret_encrypted=encrypt("pk_try_key")))
    db.session.commit()
    errors = _guard_errors(page)
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/plugins/sources/{source.id}/try")
    log = page.locator("#try-log li")
    expect(log).to_have_count(1, timeout=10_000)  # the page view of the visit itself
    expect(log.first).to_contain_text("1 event, accepted: page /plugins/sources/")
    page.get_by_role("button", name="Add a mug to the cart").click()
    page.get_by_label("Email").fill("tess@example.com")
    page.get_by_label("Send me the newsletter").check()
    page.get_by_role("button", name="Sign up").click()
    expect(log.first).to_contain_text("track “Form Submitted” with consent; identify "
                                      "tess@example.com", timeout=10_000)
    page.get_by_role("button", name="Send a page view").click()
    expect(log).to_have_count(3, timeout=10_000)
    events = [e for b in stand_in.batches for e in b["batch"]]
    assert {b["writeKey"] for b in stand_in.batches} == {"pk_try_key"}
    assert [e.get("event", e["type"]) for e in events] == [
        "page", "Product Added", "Form Submitted", "identify", "page"]
    assert events[1]["properties"]["product_id"] == "demo-mug"
    assert events[2]["properties"]["consent"] is True
    assert page.url.endswith("/try")  # the form did not navigate
    assert errors == []
