"""Server-side sessions: the cookie carries a random id, the database says whether it is valid.

Signing out deletes the record, so a saved cookie stops working. Each record also holds a
fingerprint of the user's password hash: any password change (an admin's reset included)
ends the sessions made before it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import current_app, g, request, session
from flask_login import login_user, logout_user
from sqlalchemy import delete, or_, select, update

from .extensions import db
from .models import User, UserSession
from .models.base import utcnow

SESSION_KEY = "sid"
TOUCH_EVERY = timedelta(seconds=60)  # last_seen is written at most once a minute


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def auth_hash(user: User) -> str:
    """Keyed fingerprint of the password hash; it changes whenever the password does."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = b"tributary-session-auth:" + user.password_hash.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _limits(now: datetime) -> tuple[datetime, datetime]:
    """Oldest acceptable last_seen and created times at `now`."""
    cfg = current_app.config
    return (now - timedelta(seconds=cfg["SESSION_IDLE_SECONDS"]),
            now - timedelta(seconds=cfg["SESSION_MAX_AGE_SECONDS"]))


def _expired(record: UserSession, now: datetime) -> bool:
    idle_after, created_after = _limits(now)
    return record.last_seen_at < idle_after or record.created_at < created_after


def start(user: User) -> None:
    """Sign `user` in on a new session: the old cookie contents and CSRF token are dropped."""
    session.clear()
    g.pop("csrf_token", None)  # Flask-WTF caches the request's token here
    token = secrets.token_urlsafe(32)
    now = utcnow()
    idle_after, created_after = _limits(now)
    db.session.execute(delete(UserSession).where(
        UserSession.user_id == user.id,
        or_(UserSession.last_seen_at < idle_after, UserSession.created_at < created_after),
    ))
    db.session.add(UserSession(
        token_hash=_digest(token), user_id=user.id, auth_hash=auth_hash(user),
        created_at=now, last_seen_at=now, ip=(request.remote_addr or "")[:64],
        user_agent=(request.user_agent.string or "")[:255],
    ))
    user.last_login_at = now
    db.session.commit()
    session.permanent = True
    session[SESSION_KEY] = token
    login_user(user)


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the user while their session record is valid, else None."""
    token = session.get(SESSION_KEY)
    if not token:
        return None
    row = db.session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _digest(token))
    ).first()
    if row is None or str(row.User.id) != str(user_id):
        session.clear()
        return None
    record, user = row.UserSession, row.User
    now = utcnow()
    if (_expired(record, now) or not user.is_active
            or not hmac.compare_digest(record.auth_hash, auth_hash(user))):
        db.session.delete(record)
        db.session.commit()
        session.clear()
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        db.session.execute(
            update(UserSession).where(UserSession.id == record.id).values(last_seen_at=now)
        )
        db.session.commit()
    g.user_session_id = record.id
    return user


def current_session_id() -> int | None:
    """The id of this request's session record (after the user was loaded)."""
    return g.get("user_session_id")


def end() -> None:
    """Sign out this browser: its record is deleted, so a copy of the cookie is worthless."""
    token = session.get(SESSION_KEY)
    if token:
        db.session.execute(delete(UserSession).where(UserSession.token_hash == _digest(token)))
        db.session.commit()
    logout_user()
    session.clear()


def end_all(user: User) -> None:
    """Sign the user out everywhere, this browser included."""
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.session.commit()
    logout_user()
    session.clear()


def end_others(user: User) -> None:
    """End every other session of `user` and re-stamp this one with the new password."""
    keep = current_session_id()
    if keep is None:
        raise RuntimeError("end_others needs a signed-in request")
    db.session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.id != keep)
    )
    db.session.execute(
        update(UserSession).where(UserSession.id == keep).values(auth_hash=auth_hash(user))
    )
    db.session.commit()


def active_for(user: User) -> list[UserSession]:
    """The user's live sessions, most recently seen first (for the account page)."""
    idle_after, created_after = _limits(utcnow())
    return list(db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.last_seen_at >= idle_after,
               UserSession.created_at >= created_after)
        .order_by(UserSession.last_seen_at.desc())
    ))
