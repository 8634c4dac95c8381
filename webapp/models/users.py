"""Team members, their signed-in sessions and the sign-in throttle counters."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Roles and the Team page: a deactivated user cannot sign in; a set-password
    # link is single-use and expiring, and only its SHA-256 is stored.
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    password_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        """Flask-Login refuses to sign in, and the loader drops, users who are not active."""
        return bool(self.active)


class UserSession(db.Model):
    """One signed-in browser: the cookie carries a random id, stored here only as a hash.

    `auth_hash` fingerprints the password hash at sign-in, so a password change made
    anywhere (an admin's reset included) ends the session."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class LoginThrottle(db.Model):
    """Sign-in attempts reserved per address or per account within a fixed window.

    A password is checked only after one conditional UPDATE reserved a slot, so parallel
    attempts cannot overshoot the limit; a successful sign-in gives its slot back."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("scope", "key"), Index("ix_login_throttles_window_start",
                                                                "window_start"))

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # "address" or "account"
    key: Mapped[str] = mapped_column(String(254))
    count: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
