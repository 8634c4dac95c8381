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
