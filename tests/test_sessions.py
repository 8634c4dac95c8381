"""Server-side sessions: revocation, idle and absolute expiry, password changes, fixation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import func, select

from webapp import user_sessions
from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.models.base import utcnow
from webapp.security import hash_password

from .conftest import PASSWORD, SignedIn, csrf_token_from

NEW_PASSWORD = "a much longer new passphrase"


class Clock:
    """A controllable utcnow for the session module."""

    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(user_sessions, "utcnow", clock)
    return clock


def _copy_cookie(source, target):
    """What a thief does with a saved cookie: replay it from another client."""
    target.set_cookie("session", source.get_cookie("session").value)


def _signed_out(client, url="/") -> bool:
    resp = client.get(url)
    return resp.status_code == 302 and "/login" in resp.headers["Location"]


def _session_count(user) -> int:
    return db.session.scalar(
        select(func.count(UserSession.id)).where(UserSession.user_id == user.id)
    )


def test_sign_in_creates_a_hashed_record_the_cookie_refers_to(app, signed_in, user):
    with signed_in.client.session_transaction() as sess:
        token = sess[user_sessions.SESSION_KEY]
    record = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert record is not None
    assert token not in record.token_hash  # only a digest is stored
    assert len(record.token_hash) == 64
    assert record.ip == "127.0.0.1"


def test_saved_cookie_stops_working_after_logout(app, signed_in):
    thief = app.test_client()
    _copy_cookie(signed_in.client, thief)
    assert thief.get("/").status_code == 200  # the copy works while the session lives
    signed_in.post("/logout")
    assert _signed_out(signed_in.client)
    assert _signed_out(thief)
    assert _session_count(signed_in.user) == 0


def test_remember_cookie_does_not_bypass_revocation(app, signed_in, user):
    signed_in.post("/logout")
    replay = app.test_client()
    replay.set_cookie("remember_token", encode_cookie(str(user.id)))
    assert _signed_out(replay)


def test_idle_timeout(app, clock, client, user):
    app.config["SESSION_IDLE_SECONDS"] = 3600
    signed_in = SignedIn(client, user)
    clock.advance(minutes=50)
    assert signed_in.get("/").status_code == 200  # activity moves last_seen on
    clock.advance(minutes=50)
    assert signed_in.get("/").status_code == 200
    clock.advance(minutes=61)
    assert _signed_out(client)
    assert _session_count(user) == 0


def test_absolute_lifetime_even_when_active(app, clock, client, user):
    app.config["SESSION_IDLE_SECONDS"] = 3600
    app.config["SESSION_MAX_AGE_SECONDS"] = 3 * 3600
    signed_in = SignedIn(client, user)
    for _ in range(4):
        clock.advance(minutes=40)
        assert signed_in.get("/").status_code == 200
    clock.advance(minutes=40)  # 3 h 20 after sign-in, last activity 40 minutes ago
    assert _signed_out(client)


def test_default_lifetimes():
    from webapp.config import DEFAULTS

    assert DEFAULTS["SESSION_IDLE_SECONDS"] == 12 * 3600
    assert DEFAULTS["SESSION_MAX_AGE_SECONDS"] == 7 * 24 * 3600


def test_last_seen_is_written_at_most_once_a_minute(app, clock, signed_in, user):
    def last_seen():
        db.session.expire_all()
        return db.session.scalar(select(UserSession.last_seen_at))

    first = last_seen()
    clock.advance(seconds=30)
    signed_in.get("/")
    assert last_seen() == first
    clock.advance(seconds=31)
    signed_in.get("/")
    assert last_seen() == clock.now


def test_sign_out_everywhere_ends_another_clients_session(app, signed_in, user):
    other = SignedIn(app.test_client(), user)
    assert other.get("/").status_code == 200
    page = signed_in.get("/account/")
    assert page.status_code == 200
    assert "Sign out everywhere" in page.get_data(as_text=True)
    resp = signed_in.post("/account/sign-out-everywhere")
    assert resp.status_code == 302
    assert _signed_out(other.client)
    assert _signed_out(signed_in.client)
    assert _session_count(user) == 0


def test_account_page_lists_sessions(app, signed_in, user):
    SignedIn(app.test_client(), user)
    html = signed_in.get("/account/").get_data(as_text=True)
    assert html.count("127.0.0.1") == 2
    assert "This browser" in html


def test_password_change_ends_other_sessions_and_keeps_this_one(app, signed_in, user):
    other = SignedIn(app.test_client(), user)
    resp = signed_in.post("/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    })
    assert resp.status_code == 302
    assert signed_in.get("/").status_code == 200
    assert signed_in.get("/account/").status_code == 200
    assert _signed_out(other.client)
    assert _session_count(user) == 1
    # The new password works for a fresh sign-in; the old one does not.
    fresh = app.test_client()
    token = csrf_token_from(fresh.get("/login").get_data(as_text=True))
    old = fresh.post("/login", data={"email": user.email, "password": PASSWORD,
                                     "csrf_token": token})
    assert old.status_code == 401
    new = fresh.post("/login", data={"email": user.email, "password": NEW_PASSWORD,
                                     "csrf_token": token})
    assert new.status_code == 302


@pytest.mark.parametrize("form, message", [
    ({"current_password": "not it", "new_password": NEW_PASSWORD,
      "new_password_again": NEW_PASSWORD}, "The current password is wrong."),
    ({"current_password": PASSWORD, "new_password": "short", "new_password_again": "short"},
     "at least 12 characters"),
    ({"current_password": PASSWORD, "new_password": NEW_PASSWORD,
      "new_password_again": NEW_PASSWORD + "x"}, "The two new passwords differ."),
])
def test_password_change_is_refused_in_plain_words(app, signed_in, user, form, message):
    other = SignedIn(app.test_client(), user)
    before = user.password_hash
    resp = signed_in.post("/account/password", data=form)
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == before
    assert other.get("/").status_code == 200


def test_password_reset_elsewhere_ends_sessions_without_calling_session_code(app, signed_in,
                                                                             user):
    # What an admin's reset on the Team page does: only the hash changes.
    db.session.get(User, user.id).password_hash = hash_password("reset by an admin 123")
    db.session.commit()
    assert _signed_out(signed_in.client)


def test_inactive_user_is_signed_out_and_cannot_sign_in(app, signed_in, user, monkeypatch):
    monkeypatch.setattr(User, "is_active", property(lambda self: False))
    assert _signed_out(signed_in.client)
    client = app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": token})
    assert resp.status_code == 403
    assert "switched off" in resp.get_data(as_text=True)
    assert _signed_out(client)


def test_sign_in_rotates_session_and_csrf_token(app, client, user):
    """Session fixation: a cookie handed to the victim before sign-in is worth nothing after."""
    page = client.get("/login").get_data(as_text=True)
    token_before = csrf_token_from(page)
    with client.session_transaction() as sess:
        sess[user_sessions.SESSION_KEY] = "planted-by-an-attacker"
    attacker = app.test_client()
    _copy_cookie(client, attacker)
    resp = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": token_before})
    assert resp.status_code == 302
    with client.session_transaction() as sess:
        assert sess[user_sessions.SESSION_KEY] != "planted-by-an-attacker"
    token_after = csrf_token_from(client.get("/").get_data(as_text=True))
    assert token_after != token_before
    assert _signed_out(attacker)
    # The old CSRF token no longer passes for the signed-in session.
    assert client.post("/logout", data={"csrf_token": token_before}).status_code == 400
