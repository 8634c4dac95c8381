"""Password hashing, sign-in rate limiting and encryption of stored secrets."""

from __future__ import annotations

from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import delete, func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import LoginFailure, User
from .models.base import utcnow


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def verify_password(user: User | None, password: str) -> bool:
    if user is None:
        # Same work as a real check, so timing does not reveal which emails exist.
        generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
        return False
    return check_password_hash(user.password_hash, password)


def too_many_failures(email: str, address: str) -> bool:
    """True when this email or this address failed too often within the window."""
    window = utcnow() - timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    count = db.session.scalar(
        select(func.count(LoginFailure.id)).where(
            LoginFailure.at >= window,
            or_(LoginFailure.email == email, LoginFailure.address == address),
        )
    )
    return (count or 0) >= current_app.config["LOGIN_MAX_FAILURES"]


def record_failure(email: str, address: str) -> None:
    db.session.add(LoginFailure(email=email, address=address))
    old = utcnow() - timedelta(days=1)
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < old))
    db.session.commit()


def clear_failures(email: str) -> None:
    db.session.execute(delete(LoginFailure).where(LoginFailure.email == email))


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
