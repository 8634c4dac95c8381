"""Password hashing, sign-in throttling and encryption of stored secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import case, delete, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import LoginThrottle, User
from .models.base import UTCDateTime, utcnow

MIN_PASSWORD_LENGTH = 12
ADDRESS, ACCOUNT = "address", "account"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def verify_password(user: User | None, password: str) -> bool:
    if user is None:
        # Same work as a real check, so timing does not reveal which emails exist.
        generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
        return False
    return check_password_hash(user.password_hash, password)


def password_problem(password: str, repeated: str) -> str | None:
    """Plain words saying why a new password is refused, or None when it is fine."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The new password needs at least {MIN_PASSWORD_LENGTH} characters."
    if password != repeated:
        return "The two new passwords differ."
    return None


@dataclass(frozen=True)
class Attempt:
    """A reserved sign-in attempt: which throttle slots to give back if it succeeds."""

    email: str
    address: str
    holds_account_slot: bool


def reserve_attempt(email: str, address: str) -> Attempt | None:
    """Reserve the right to check one password, or None when this attempt is throttled.

    Each slot is taken by one conditional UPDATE, so parallel attempts cannot overshoot.
    An address that has not failed lately passes even an account that others hammer."""
    cfg = current_app.config
    now = utcnow()
    email, address = email[:254], address[:254]
    used = _reserve(ADDRESS, address, cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_WINDOW_SECONDS"], now)
    if used is None:
        return None
    account = _reserve(ACCOUNT, email, cfg["LOGIN_ACCOUNT_MAX_FAILURES"],
                       cfg["LOGIN_ACCOUNT_WINDOW_SECONDS"], now)
    if account is None and used > 1:
        _release(ADDRESS, address)
        return None
    return Attempt(email, address, holds_account_slot=account is not None)


def attempt_succeeded(attempt: Attempt) -> None:
    """A right password: give the reserved slots back, so only failures count."""
    _release(ADDRESS, attempt.address)
    if attempt.holds_account_slot:
        _release(ACCOUNT, attempt.email)


def attempt_failed(_attempt: Attempt) -> None:
    """A wrong password keeps its slots; counters idle for a day are dropped."""
    old = utcnow() - timedelta(days=1)
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.window_start < old))
    db.session.commit()


def _reserve(scope: str, key: str, limit: int, window: int, now: datetime) -> int | None:
    """Count one attempt in the (scope, key) window; the new count, None at the limit."""
    table = LoginThrottle.__table__
    insert = (postgresql if db.engine.dialect.name == "postgresql" else sqlite).insert
    db.session.execute(
        insert(table)
        .values(scope=scope, key=key, count=0, window_start=now)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
    )
    stale = table.c.window_start < now - timedelta(seconds=window)
    used = db.session.execute(
        update(table)
        .where(table.c.scope == scope, table.c.key == key, or_(stale, table.c.count < limit))
        .values(
            count=case((stale, 1), else_=table.c.count + 1),
            window_start=case((stale, literal(now, UTCDateTime())), else_=table.c.window_start),
        )
        .returning(table.c.count)
    ).scalar()
    db.session.commit()
    return used


def _release(scope: str, key: str) -> None:
    table = LoginThrottle.__table__
    db.session.execute(
        update(table)
        .where(table.c.scope == scope, table.c.key == key, table.c.count > 0)
        .values(count=table.c.count - 1)
    )
    db.session.commit()


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in str(current_app.config["ENCRYPTION_KEY"]).split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt(plaintext: str) -> str:
    """Encrypt a secret with the first configured key (Fernet)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key; raises ValueError when no key fits."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    """Re-encrypt under the first (newest) key."""
    return _fernet().rotate(token.encode()).decode()


def mask(secret: str | None) -> str:
    """At most the last 4 characters of a secret, for display."""
    if not secret:
        return ""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"
