"""Workspace API keys for the JSON API (the sending system fetches recommendations): a
random secret shown once, stored as its SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from ..extensions import db
from ..models import WorkspaceApiKey
from ..models.base import utcnow

PREFIX = "tk_"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(name: str) -> tuple[WorkspaceApiKey, str]:
    """A new key (committed); the plain key is returned once and never stored."""
    raw = PREFIX + secrets.token_urlsafe(32)
    row = WorkspaceApiKey(name=name[:120], prefix=raw[:10], digest=_digest(raw))
    db.session.add(row)
    db.session.commit()
    return row, raw


def active() -> list[WorkspaceApiKey]:
    return list(db.session.scalars(select(WorkspaceApiKey).where(
        WorkspaceApiKey.revoked_at.is_(None)).order_by(WorkspaceApiKey.id)))


def revoke(key_id: int) -> bool:
    row = db.session.get(WorkspaceApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    db.session.commit()
    return True


def verify(raw: str | None) -> WorkspaceApiKey | None:
    """The live key `raw` names (looked up by digest: a 256-bit secret's hash), or None."""
    if not raw or not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    row = db.session.scalar(select(WorkspaceApiKey).where(
        WorkspaceApiKey.digest == _digest(raw), WorkspaceApiKey.revoked_at.is_(None)))
    if row is not None:
        row.last_used_at = utcnow()
        db.session.commit()
    return row
