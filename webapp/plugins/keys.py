"""Source keys: server (`sk_`, tracking API Basic auth), public (`pk_`, browser snippet) and
signing (`whsec_`, Standard Webhooks / WooCommerce secret). Shown once when made; stored as a
SHA-256 digest (server), digest plus Fernet token (public: not secret, the page shows its
install tag again) or Fernet token (signing: needed to verify). Rotation keeps two valid:
the old key works 24 hours more unless a team member revokes it sooner."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models.base import utcnow
from ..models.plugins import PluginFormToken, PluginKey, PluginSource
from ..prepared import prepared
from ..security import decrypt, encrypt

PREFIXES = {"server": "sk_", "public": "pk_", "signing": "whsec_"}
GRACE = timedelta(hours=24)
FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
FORM_TOKEN_KEPT = timedelta(days=7)  # a re-post later than this is refused as malformed


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def _generate(kind: str) -> str:
    if kind == "signing":
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return PREFIXES[kind] + secrets.token_urlsafe(32 if kind == "server" else 18)


@dataclass(frozen=True)
class NewKey:
    """A key just made: `secret` is shown to the team once and never again (public keys
    excepted, whose install tag the page can show again)."""

    kind: str
    secret: str
    row_id: int


def create(source: PluginSource, kind: str) -> NewKey:
    """Make a key of `kind` for the source (the caller commits)."""
    secret = _generate(kind)
    row = PluginKey(source_id=source.id, kind=kind, prefix=secret[:12])
    if kind in ("server", "public"):
        row.digest = digest(secret)
    if kind in ("public", "signing"):
        row.secret_encrypted = encrypt(secret)
    db.session.add(row)
    db.session.flush()
    return NewKey(kind, secret, row.id)


def valid(source_id: int, kind: str, now: datetime | None = None) -> list[PluginKey]:
    """The source's keys of `kind` that work now, newest first."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(PluginKey).where(
            PluginKey.source_id == source_id, PluginKey.kind == kind,
            PluginKey.revoked_at.is_(None),
            or_(PluginKey.expires_at.is_(None), PluginKey.expires_at > now),
        ).order_by(PluginKey.id.desc())))


def rotate(source: PluginSource, kind: str) -> NewKey:
    """A new key; the current ones stay valid for GRACE (older rotations end now), so at
    most two keys of a kind work at a time."""
    now = utcnow()
    current = valid(source.id, kind, now)
    for n, row in enumerate(current):
        if n == 0:
            row.expires_at = min(row.expires_at or now + GRACE, now + GRACE)
        else:
            row.revoked_at = now
    source.updated_at = now  # receivers re-read the secrets of a changed source
    return create(source, kind)


def revoke(source: PluginSource, key_id: int) -> bool:
    """Revoke one key of the source now (the old key after a rotation). The last valid key
    of a kind is kept: rotate first."""
    row = db.session.get(PluginKey, key_id)
    if row is None or row.source_id != source.id or row.revoked_at is not None:
        return False
    if len(valid(source.id, row.kind)) < 2:
        return False
    row.revoked_at = utcnow()
    source.updated_at = row.revoked_at
    return True


@dataclass(frozen=True)
class Found:
    """A valid key presented by a caller, with what the receiver needs of its source."""

    key_id: int
    kind: str
    source_id: int
    source_kind: str
    source_status: str
    allowed_origins: list
    require_signature: bool


_LOOKUP = (
    select(PluginKey.id, PluginKey.kind, PluginKey.source_id, PluginKey.digest,
           PluginSource.kind.label("source_kind"), PluginSource.status,
           PluginSource.allowed_origins, PluginSource.require_signature)
    .join(PluginSource, PluginSource.id == PluginKey.source_id)
    .where(PluginKey.digest == bindparam("wanted"), PluginKey.revoked_at.is_(None),
           PluginKey.kind != "signing",
           or_(PluginKey.expires_at.is_(None), PluginKey.expires_at > bindparam("now")))
)


def lookup(presented: str) -> Found | None:
    """The valid server or public key matching `presented`, found by its digest (one
    query, joined to its source); the stored digest is compared constant-time."""
    if not presented or len(presented) > 200 or not presented.startswith(("sk_", "pk_")):
        return None
    wanted = digest(presented)
    connection = db.session.connection()
    row = prepared("plugin key lookup", lambda: _LOOKUP, connection).run(
        connection, {"wanted": wanted, "now": utcnow()}).first()
    if row is None or not hmac.compare_digest(row.digest, wanted):
        return None
    origins = row.allowed_origins  # as the driver gives it: JSON text on SQLite
    if isinstance(origins, str):
        origins = json.loads(origins)
    return Found(row.id, row.kind, row.source_id, row.source_kind, row.status,
                 list(origins or []), bool(row.require_signature))


def signing_secrets(source_id: int) -> list[str]:
    """The plaintext signing secrets valid now (two while rotating)."""
    return [decrypt(row.secret_encrypted) for row in valid(source_id, "signing")
            if row.secret_encrypted]


def public_key(source_id: int) -> str | None:
    """The newest valid public key, for the install tag (public keys are not secret)."""
    rows = valid(source_id, "public")
    return decrypt(rows[0].secret_encrypted) if rows and rows[0].secret_encrypted else None


def touch(key_id: int) -> None:
    """Record the key's use at most once a minute (the caller's transaction commits)."""
    now = utcnow()
    db.session.execute(
        update(PluginKey).where(
            PluginKey.id == key_id,
            or_(PluginKey.last_used_at.is_(None),
                PluginKey.last_used_at < now - timedelta(minutes=1)))
        .values(last_used_at=now).execution_options(synchronize_session=False))


# ------------------------------------------------- one-time tokens of key-showing forms


def new_form_token() -> str:
    """A token for a form that shows a key once (set-up, rotate): used up by its first post."""
    return secrets.token_urlsafe(32)


def form_token_ok(token) -> bool:
    return isinstance(token, str) and bool(FORM_TOKEN.match(token))


def use_form_token(token: str, source_id: int | None = None) -> bool:
    """Record the token as used, in the caller's transaction (so a failed action leaves it
    unused); False when a post before used it. Atomic: of two posts at once, one wins."""
    now = utcnow()
    db.session.execute(delete(PluginFormToken).where(
        PluginFormToken.used_at < now - FORM_TOKEN_KEPT))
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    result = db.session.execute(
        dialect.insert(PluginFormToken).values(digest=digest(token), source_id=source_id,
                                               used_at=now)
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(PluginFormToken.digest))
    return result.first() is not None


def form_token_source(token: str) -> int | None:
    """The source a used token made or re-keyed (where a re-post is sent), or None."""
    if not form_token_ok(token):
        return None
    return db.session.scalar(select(PluginFormToken.source_id).where(
        PluginFormToken.digest == digest(token)))
