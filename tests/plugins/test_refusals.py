"""Refused signatures are counted in Redis and folded into the source's row periodically:
no database write per refused request, the page shows the exact count, folding is
idempotent, and with Redis down the count is still kept (at most one write a second)."""

from __future__ import annotations

import re

import pytest
from redis import Redis
from sqlalchemy import event

from tests.plugins.conftest import b64_hmac, compact, make_source
from webapp.extensions import db
from webapp.models.plugins import PluginSource
from webapp.plugins import process, refusals
from webapp.plugins.refusals import COUNTS

BODY = compact({"id": 1, "date_modified_gmt": "2026-11-30T10:00:00"})


@pytest.fixture(autouse=True)
def _fresh_tallies():
    """No tally, timer or Redis pause left over from another test."""
    yield
    for timer in list(refusals._timers.values()):
        timer.cancel()
    refusals._timers.clear()
    refusals._unwritten.clear()
    refusals._written_at.clear()
    refusals._skip_redis_until = 0.0


@pytest.fixture
def woo(app):
    return make_source("woocommerce")


def _forge(client, source, secret: str, n: int) -> None:
    headers = {"X-WC-Webhook-Signature": b64_hmac(secret, BODY),
               "X-WC-Webhook-Topic": "customer.created", "Content-Type": "application/json"}
    for _ in range(n):
        resp = client.post(f"/hooks/woocommerce/{source.id}", data=BODY + b" ", headers=headers)
        assert resp.status_code == 401 and resp.is_json


def _shown(signed_in, source) -> int:
    html = signed_in.get(f"/plugins/{source.id}").get_data(as_text=True)
    return int(re.search(r"Refused signatures: (\d+)", html).group(1))


def _row(source) -> PluginSource:
    db.session.expire_all()
    return db.session.get(PluginSource, source.id)


class SourceWrites:
    """Counts the statements that write plugin_sources."""

    def __init__(self):
        self.count = 0

    def __call__(self, conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE PLUGIN_SOURCES"):
            self.count += 1

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self)


def test_a_flood_of_refusals_writes_nothing_and_the_page_shows_the_exact_count(
        app, client, signed_in, woo, redis_url):
    source, keys = woo
    updated = _row(source).updated_at
    with SourceWrites() as writes:
        _forge(client, source, keys["signing"], 60)
    assert writes.count == 0
    row = _row(source)
    assert row.bad_signatures == 0 and row.updated_at == updated
    assert int(Redis.from_url(redis_url).hget(COUNTS, str(source.id))) == 60
    assert _shown(signed_in, source) == 60

    assert refusals.fold() == 60
    row = _row(source)
    assert row.bad_signatures == 60 and row.last_bad_signature_at is not None
    assert row.updated_at == updated  # the receivers' secrets cache stays valid
    assert _shown(signed_in, source) == 60
    assert refusals.fold() == 0  # folding again adds nothing
    process.sweep()  # the periodic job folds too
    assert _row(source).bad_signatures == 60 and _shown(signed_in, source) == 60

    _forge(client, source, keys["signing"], 5)
    assert _shown(signed_in, source) == 65
    process.sweep()
    assert _row(source).bad_signatures == 65 and _shown(signed_in, source) == 65


def test_a_fold_that_stopped_before_clearing_is_finished_not_overwritten(
        app, client, signed_in, woo, redis_url, monkeypatch):
    source, keys = woo
    _forge(client, source, keys["signing"], 4)
    redis = Redis.from_url(redis_url)
    redis.rename(COUNTS, refusals.FOLDING[0])  # taken by a fold that stopped there
    _forge(client, source, keys["signing"], 3)
    assert _shown(signed_in, source) == 7
    assert refusals.fold() == 4
    assert refusals.fold() == 3
    assert refusals.fold() == 0
    assert _row(source).bad_signatures == 7 and _shown(signed_in, source) == 7


def test_redis_down_still_counts_with_at_most_one_write_a_second(
        app, client, signed_in, woo, monkeypatch):
    source, keys = woo
    updated = _row(source).updated_at
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(refusals, "_redis", lambda: dead)
    with SourceWrites() as writes:
        _forge(client, source, keys["signing"], 40)  # well within a second
    assert writes.count == 1  # the first refusal; the others wait for the second to pass
    assert _row(source).bad_signatures == 1
    assert _shown(signed_in, source) == 40  # the page counts what this process holds
    refusals.write_unwritten()
    row = _row(source)
    assert row.bad_signatures == 40 and row.last_bad_signature_at is not None
    assert row.updated_at == updated
    assert refusals.fold() == 0  # nothing to fold, and no error, with Redis away


def test_redis_down_the_tally_is_written_when_the_second_is_up(
        app, client, woo, monkeypatch):
    source, keys = woo
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(refusals, "_redis", lambda: dead)
    monkeypatch.setattr(refusals, "WRITE_EVERY", 0.3)
    _forge(client, source, keys["signing"], 5)
    timer = refusals._timers[source.id]
    timer.join(5)
    assert _row(source).bad_signatures == 5 and not refusals._unwritten
