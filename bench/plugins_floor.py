"""The floor for the acknowledgement benchmark: a bare WSGI app that does only what must
be done per request (verify the key or the Shopify HMAC, insert the raw body with plain
sqlite3, commit) so bench/plugins_ack.py can print our ratio to it.

Run by that benchmark under gunicorn with deploy/gunicorn.conf.py; settings in FLOOR_*."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import threading

_local = threading.local()
DB = os.environ.get("FLOOR_DB", "/tmp/floor.sqlite")
KEY_DIGEST = os.environ.get("FLOOR_KEY_DIGEST", "")
SHOPIFY_SECRET = os.environ.get("FLOOR_SHOPIFY_SECRET", "").encode()


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        _local.conn = conn
    return conn


def _answer(start_response, status: str, body: bytes):
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > 512 * 1024:
        return _answer(start_response, "413 Payload Too Large", b'{"success":false}')
    body = environ["wsgi.input"].read(length)
    if environ.get("PATH_INFO", "").startswith("/hooks/shopify/"):
        given = environ.get("HTTP_X_SHOPIFY_HMAC_SHA256", "").encode()
        expected = base64.b64encode(hmac.new(SHOPIFY_SECRET, body, hashlib.sha256).digest())
        ok = hmac.compare_digest(given, expected)
    else:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        try:
            user = base64.b64decode(auth.partition(" ")[2]).decode().partition(":")[0]
        except ValueError:
            user = ""
        ok = hmac.compare_digest(hashlib.sha256(user.encode()).hexdigest(), KEY_DIGEST)
    if not ok:
        return _answer(start_response, "401 Unauthorized", b'{"success":false}')
    _db().execute("INSERT INTO events (body) VALUES (?)", (body.decode("utf-8"),))
    return _answer(start_response, "200 OK", b'{"success":true}')


def create(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()


def count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
