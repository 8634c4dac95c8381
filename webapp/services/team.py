"""The team: add members, reset passwords, deactivate, change roles, set-password links.

Rules kept here, not in the views: at least one active admin remains, an admin cannot
deactivate themselves, a set-password link is single-use, expires, and is stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import User
from ..models.base import utcnow
from ..security import hash_password
from .errors import FormError
from .paging import Page, keyset

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
EMAIL_MAX = 254
LINK_LIFETIME = timedelta(hours=72)
HOW = ("password", "link")


@dataclass
class Credential:
    """What the admin is shown once after adding a member or resetting a password."""

    user: User
    password: str | None = None
    token: str | None = None
    expires_at: datetime | None = None


def users_page(after: int | None = None, before: int | None = None) -> Page:
    return keyset(select(User), User.id, after=after, before=before)


def state_of(user: User, now: datetime | None = None) -> str:
    """Plain words for the Team page: active, deactivated, or waiting for a link to be used."""
    if not user.active:
        return "deactivated"
    if user.password_token_hash:
        now = now or utcnow()
        live = user.password_token_expires_at and user.password_token_expires_at > now
        what = "invited" if user.last_login_at is None else "password reset"
        return f"{what} (link {'not used yet' if live else 'expired'})"
    return "active"


def clean_email(raw: str | None) -> str:
    email = (raw or "").strip().lower()
    if not email:
        raise FormError("email", "Enter the person's email address.")
    local, at, domain = email.partition("@")
    if (not at or not local or "." not in domain or len(email) > EMAIL_MAX
            or any(c.isspace() or ord(c) < 32 for c in email) or "@" in domain):
        raise FormError("email", "Enter an email address such as ann@example.com.")
    return email


def check_password(password: str, confirm: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise FormError("password", f"Use at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise FormError("password", f"Use at most {PASSWORD_MAX} characters.")
    if "\x00" in password:
        raise FormError("password", "The password contains a character that cannot be used.")
    if password != confirm:
        raise FormError("confirm", "The two passwords differ.")
    return password


def _how(raw: str | None) -> str:
    if raw not in HOW:
        raise FormError("how", "Choose a one-time password or a set-password link.")
    return raw


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(user: User, how: str) -> Credential:
    """A new credential for `user`: a one-time password, or a link (and a password nobody
    knows, so the old one stops working at once). Either clears an earlier link."""
    user.password_token_hash = None
    user.password_token_expires_at = None
    if how == "password":
        password = secrets.token_urlsafe(12)  # 16 characters
        user.password_hash = hash_password(password)
        return Credential(user, password=password)
    token = secrets.token_urlsafe(32)
    user.password_hash = hash_password(secrets.token_urlsafe(32))
    user.password_token_hash = _token_hash(token)
    user.password_token_expires_at = utcnow() + LINK_LIFETIME
    return Credential(user, token=token, expires_at=user.password_token_expires_at)


def add_member(form) -> Credential:
    email = clean_email(form.get("email"))
    how = _how(form.get("how"))
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise FormError("email", f"{email} is on the team already.")
    user = User(email=email, password_hash="", is_admin=form.get("role") == "admin")
    credential = _issue(user, how)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FormError("email", f"{email} is on the team already.") from None
    return credential


def reset_password(user: User, form) -> Credential:
    credential = _issue(user, _how(form.get("how")))
    db.session.commit()
    return credential


def _other_active_admins(user: User) -> int:
    """Active admins besides `user`. All their rows are locked (PostgreSQL) so that two admins
    demoting each other at once cannot leave the team without one."""
    ids = db.session.scalars(
        select(User.id).where(User.is_admin.is_(True), User.active.is_(True))
        .with_for_update()
    ).all()
    return len([i for i in ids if i != user.id])


def _keeps_an_admin(user: User, what: str) -> None:
    if user.is_admin and user.active and _other_active_admins(user) == 0:
        db.session.rollback()
        raise FormError("user", f"{user.email} is the last active administrator, so you "
                                f"cannot {what}. Make someone else an administrator first.")


def set_active(user: User, active: bool, acting: User) -> None:
    if not active:
        if user.id == acting.id:
            raise FormError("user", "You cannot deactivate yourself. "
                                    "Ask another administrator.")
        _keeps_an_admin(user, "deactivate them")
    user.active = active
    db.session.commit()


def set_admin(user: User, admin: bool) -> None:
    if not admin:
        _keeps_an_admin(user, "remove their administrator role")
    user.is_admin = admin
    db.session.commit()


def user_for_token(token: str) -> User | None:
    """The active user a set-password link belongs to, while it is unused and not expired."""
    if not token or len(token) > 200:
        return None
    user = db.session.scalar(select(User).where(User.password_token_hash == _token_hash(token)))
    if user is None or not user.active:
        return None
    if user.password_token_expires_at is None or user.password_token_expires_at <= utcnow():
        return None
    return user


def use_token(user: User, password: str, confirm: str) -> None:
    """Set the chosen password and spend the link."""
    user.password_hash = hash_password(check_password(password, confirm))
    user.password_token_hash = None
    user.password_token_expires_at = None
    db.session.commit()
