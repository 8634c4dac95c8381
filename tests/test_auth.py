"""Sign-in, sign-out, rate limiting, CSRF and cookie flags."""

from __future__ import annotations

from cryptography.fernet import Fernet

from webapp import create_app
from webapp.config import DEFAULTS
from webapp.models import User

from .conftest import PASSWORD, csrf_token_from

GOOD_SECRET = "s" * 32


def _login(client, email, password):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_unauthenticated_requests_redirect_to_sign_in(client):
    for url in ("/", "/lists/", "/fields/", "/settings/", "/status/", "/suppression/"):
        resp = client.get(url)
        assert resp.status_code == 302, url
        assert "/login" in resp.headers["Location"]


def test_sign_in_and_out(client, user):
    resp = _login(client, "ADA@example.com ", PASSWORD)
    assert resp.status_code == 302
    assert client.get("/").status_code == 200
    page = client.get("/").get_data(as_text=True)
    resp = client.post("/logout", data={"csrf_token": csrf_token_from(page)})
    assert resp.status_code == 302
    assert client.get("/").status_code == 302


def test_logout_is_not_a_get(signed_in):
    assert signed_in.get("/logout").status_code == 405
    assert signed_in.get("/").status_code == 200


def test_wrong_password_is_refused_then_rate_limited(client, user):
    for _ in range(5):
        resp = _login(client, user.email, "wrong")
        assert resp.status_code == 401
        assert "Wrong email or password" in resp.get_data(as_text=True)
    resp = _login(client, user.email, PASSWORD)  # right password, but locked out now
    assert resp.status_code == 429
    assert "Too many failed sign-ins" in resp.get_data(as_text=True)


def test_next_parameter_cannot_leave_the_site(client, user):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    resp = client.post(
        "/login?next=//evil.example.com/x",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert resp.headers["Location"] == "/"


def test_post_without_csrf_token_is_refused(client, user):
    resp = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)


def test_htmx_header_token_is_accepted_and_missing_refused(signed_in):
    resp = signed_in.client.post("/logout", headers={"HX-Request": "true"})
    assert resp.status_code == 400
    resp = signed_in.client.post(
        "/logout", headers={"HX-Request": "true", "X-CSRFToken": signed_in.csrf}
    )
    assert resp.status_code == 302


def test_body_carries_csrf_token_for_htmx(signed_in):
    html = signed_in.get("/").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_password_hash_is_owasp_strength_by_default(app):
    assert DEFAULTS["PASSWORD_HASH_METHOD"] == "scrypt:131072:8:1"
    prod = create_app({**app.config, "PASSWORD_HASH_METHOD": DEFAULTS["PASSWORD_HASH_METHOD"]})
    with prod.app_context():
        from webapp.security import hash_password

        assert hash_password("x").startswith("scrypt:131072:8:1$")


def test_session_cookie_flags(client, user):
    resp = _login(client, user.email, PASSWORD)
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_production_cookies_are_secure_and_keys_required(tmp_path, monkeypatch):
    import pytest

    from webapp.config import ConfigError, load

    monkeypatch.delenv("TRIBUTARY_SECRET_KEY", raising=False)
    monkeypatch.delenv("TRIBUTARY_ENCRYPTION_KEY", raising=False)
    with pytest.raises(ConfigError, match="TRIBUTARY_SECRET_KEY"):
        load(str(tmp_path), {"ENV": "production", "DATABASE_URL": "sqlite://"})
    with pytest.raises(ConfigError, match="TRIBUTARY_ENCRYPTION_KEY"):
        load(str(tmp_path), {"ENV": "production", "SECRET_KEY": GOOD_SECRET,
                             "DATABASE_URL": "sqlite://"})
    cfg = load(str(tmp_path), {"ENV": "production", "SECRET_KEY": GOOD_SECRET,
                               "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                               "DATABASE_URL": "sqlite://"})
    assert cfg["SESSION_COOKIE_SECURE"] is True


def test_development_keys_are_generated_once(tmp_path):
    from webapp.config import load

    first = load(str(tmp_path), {"ENV": "development"})
    second = load(str(tmp_path), {"ENV": "development"})
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ENCRYPTION_KEY"] == second["ENCRYPTION_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first["SESSION_COOKIE_SECURE"] is False


def test_users_create_cli(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Bob@Example.com"])
    assert result.exit_code == 0, result.output
    assert "with password:" in result.output
    assert User.query.filter_by(email="bob@example.com").one()
    again = runner.invoke(args=["users", "create", "bob@example.com"])
    assert again.exit_code != 0
    first = runner.invoke(args=["users", "ensure-admin"])
    assert first.output == ""  # users exist: nothing printed, nothing created


# --- startup checks (production keys, SQLite file modes) ---------------------------------


def test_production_refuses_a_short_secret_key(tmp_path):
    import pytest

    from webapp.config import ConfigError, load

    with pytest.raises(ConfigError, match="TRIBUTARY_SECRET_KEY is shorter than 32 bytes"):
        load(str(tmp_path), {"ENV": "production", "SECRET_KEY": "s" * 31,
                             "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                             "DATABASE_URL": "sqlite://"})


def test_production_refuses_any_invalid_encryption_key_in_the_list(tmp_path):
    import pytest

    from webapp.config import ConfigError, load

    good = Fernet.generate_key().decode()
    for value, position in ((f"{good},not-a-key", "key 2 of 2"), ("k", "key 1 of 1"),
                            (f"{good[:-2]}", "key 1 of 1")):
        with pytest.raises(ConfigError, match="TRIBUTARY_ENCRYPTION_KEY") as info:
            load(str(tmp_path), {"ENV": "production", "SECRET_KEY": GOOD_SECRET,
                                 "ENCRYPTION_KEY": value, "DATABASE_URL": "sqlite://"})
        assert position in str(info.value)
        assert "not-a-key" not in str(info.value)  # the key itself is never echoed
    cfg = load(str(tmp_path), {"ENV": "production", "SECRET_KEY": GOOD_SECRET,
                               "ENCRYPTION_KEY": f"{good}, {Fernet.generate_key().decode()}",
                               "DATABASE_URL": "sqlite://"})
    assert cfg["ENCRYPTION_KEY"].startswith(good)


def test_sqlite_database_and_wal_files_are_owner_only(tmp_path, app_config):
    import os

    from sqlalchemy import text

    from webapp.extensions import db

    path = tmp_path / "modes.sqlite"
    old = os.umask(0o022)
    try:
        made = create_app({**app_config, "DATABASE_URL": f"sqlite:///{path}"})
        with made.app_context():
            with db.engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            with db.engine.connect() as conn:  # a reader keeps the WAL and SHM files open
                conn.execute(text("SELECT * FROM t")).all()
                for name in ("modes.sqlite", "modes.sqlite-wal", "modes.sqlite-shm"):
                    assert (tmp_path / name).exists(), name
                    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
            db.engine.dispose()
    finally:
        os.umask(old)


# --- request-body limit ---------------------------------------------------------------


def test_body_limit_defaults():
    assert DEFAULTS["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert DEFAULTS["MAX_FORM_MEMORY_SIZE"] == 500_000
    assert DEFAULTS["MAX_FORM_PARTS"] == 1000


def test_two_megabyte_post_gets_a_plain_413_page(client, user):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"email": user.email, "password": "x" * (2 * 1024 * 1024),
                                       "csrf_token": token})
    assert resp.status_code == 413
    html = resp.get_data(as_text=True)
    assert "<html" in html
    assert "too much to send at once: the limit is 1 MB" in html
    assert "Traceback" not in html and "RequestEntityTooLarge" not in html


def test_large_htmx_post_gets_a_small_partial(signed_in):
    resp = signed_in.post("/settings/", data={"name": "x" * (2 * 1024 * 1024)}, htmx=True)
    assert resp.status_code == 413
    html = resp.get_data(as_text=True)
    assert "<html" not in html
    assert "the limit is 1 MB" in html


def test_large_body_is_refused_before_it_is_read(client):
    class Unreadable:
        """A request body that fails the test if anything reads it."""

        def read(self, *args):
            raise AssertionError("the body was read")

        readline = readlines = read

    resp = client.post("/login", content_type="application/x-www-form-urlencoded",
                       environ_overrides={"wsgi.input": Unreadable(),
                                          "CONTENT_LENGTH": str(2 * 1024 * 1024)})
    assert resp.status_code == 413


def test_too_many_form_parts_are_refused(client):
    many = {f"f{i}": "x" for i in range(1500)}
    resp = client.post("/login", data=many, content_type="multipart/form-data")
    assert resp.status_code == 413


# --- proxy hops and HSTS ---------------------------------------------------------------


def _proxied(app_config, hops):
    return create_app({**app_config, "PROXY_HOPS": hops})


def test_one_proxy_hop_trusts_the_forwarded_address_and_scheme(app, app_config, user):
    proxied = _proxied(app_config, 1)
    client = proxied.test_client()
    # Over HTTPS Flask-WTF also wants a same-site Referer.
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
               "Referer": "https://localhost/login"}
    resp = client.get("/login", headers=headers)
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    for _ in range(5):
        assert _login_from(client, headers, user.email, "wrong").status_code == 401
    assert _login_from(client, headers, user.email, "wrong").status_code == 429
    other = {**headers, "X-Forwarded-For": "198.51.100.2"}
    assert _login_from(client, other, user.email, PASSWORD).status_code == 302
    with proxied.app_context():
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import UserSession

        assert db.session.scalar(select(UserSession.ip)) == "198.51.100.2"


def test_without_proxy_hops_forwarded_headers_are_ignored(app, app_config, user):
    client = _proxied(app_config, 0).test_client()
    resp = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in resp.headers
    for n in range(5):  # a different forged address each time: all count for 127.0.0.1
        headers = {"X-Forwarded-For": f"203.0.113.{n}"}
        assert _login_from(client, headers, user.email, "wrong").status_code == 401
    headers = {"X-Forwarded-For": "198.51.100.2"}
    assert _login_from(client, headers, user.email, PASSWORD).status_code == 429


def test_hsts_on_direct_https(client):
    resp = client.get("/login", base_url="https://localhost")
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/login").headers


# --- sign-in throttling ---------------------------------------------------------------


def _login_from(client, headers, email, password):
    token = csrf_token_from(client.get("/login", headers=headers).get_data(as_text=True))
    return client.post("/login", headers=headers,
                       data={"email": email, "password": password, "csrf_token": token})


def test_attacker_elsewhere_locks_nothing_for_the_user(app, app_config, user):
    client = _proxied(app_config, 1).test_client()
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    codes = [_login_from(client, attacker, user.email, "guess").status_code for _ in range(30)]
    assert codes == [401] * 5 + [429] * 25
    assert _login_from(client, attacker, user.email, PASSWORD).status_code == 429
    user_at_home = {"X-Forwarded-For": "198.51.100.10"}
    assert _login_from(client, user_at_home, user.email, PASSWORD).status_code == 302


def test_account_limit_stops_failing_addresses_but_not_a_clean_one(app, app_config, user):
    proxied = _proxied(app_config, 1)
    proxied.config["LOGIN_ACCOUNT_MAX_FAILURES"] = 3
    client = proxied.test_client()
    bots = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(3)]
    for bot in bots:
        assert _login_from(client, bot, user.email, "guess").status_code == 401
    # The account is at its limit: an address that already failed is refused, even with
    # the right password, while its own address limit (5) is not reached.
    assert _login_from(client, bots[0], user.email, PASSWORD).status_code == 429
    # A clean address still gets its password checked.
    assert _login_from(client, {"X-Forwarded-For": "192.0.2.1"}, user.email,
                       "guess").status_code == 401
    assert _login_from(client, {"X-Forwarded-For": "198.51.100.10"}, user.email,
                       PASSWORD).status_code == 302


def test_an_overlong_email_is_a_plain_wrong_sign_in(client, user):
    assert _login(client, "x" * 400 + "@example.com", "guess").status_code == 401


def test_successful_sign_ins_do_not_use_up_the_address_limit(app, user):
    from tests.conftest import SignedIn

    for _ in range(8):
        SignedIn(app.test_client(), user)


def test_parallel_wrong_attempts_never_exceed_the_limit(app, user, monkeypatch):
    """30 simultaneous wrong passwords against a real threaded server: at most 5 checks."""
    import threading
    import time

    import requests
    from werkzeug.serving import make_server

    from webapp import security

    checks = []
    lock = threading.Lock()
    real_check = security.check_password_hash

    def slow_counting_check(pwhash, password):
        with lock:
            checks.append(password)
        time.sleep(0.05)  # widen the window a check-then-count design would lose
        return real_check(pwhash, password)

    monkeypatch.setattr(security, "check_password_hash", slow_counting_check)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    barrier = threading.Barrier(30)
    codes = []
    email = user.email

    def attempt():
        with requests.Session() as http:
            token = csrf_token_from(http.get(f"{base}/login", timeout=30).text)
            barrier.wait(timeout=60)
            resp = http.post(f"{base}/login", timeout=60, allow_redirects=False, data={
                "email": email, "password": "wrong guess", "csrf_token": token})
            with lock:
                codes.append(resp.status_code)

    try:
        workers = [threading.Thread(target=attempt) for _ in range(30)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert len(codes) == 30
    assert len(checks) <= 5
    assert sorted(codes) == [401] * len(checks) + [429] * (30 - len(checks))
    assert codes.count(401) == 5  # the limit is reached, not undershot
