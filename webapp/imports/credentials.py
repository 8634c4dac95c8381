"""Integration credentials at rest: the whole credentials dict as one Fernet token.

Refreshed or rotated tokens handed back by a provider are saved at once in their own short
transaction (a separate connection), so a later failure of the run cannot lose them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from ..extensions import db
from ..models import Integration
from ..models.base import utcnow
from ..security import decrypt, encrypt, rotate

REFRESH_LOCK_SECONDS = 60


def client_for(integration: Integration, *, http=None, page_size: int | None = None,
               on_credentials: Callable[[dict[str, Any]], None] | None = None,
               lock: Callable | None = None):
    """The integration's provider client (the one builder): stored settings and
    credentials, refreshed credentials saved at once, the refresh lock held around token
    refreshes. ValueError when the credentials cannot be decrypted."""
    from ..providers import get_provider_class

    cls = get_provider_class(integration.provider)
    settings = dict(integration.settings or {})
    if page_size:
        settings["page_size"] = page_size
    integration_id = integration.id
    return cls(
        settings, load(integration), http=http,
        on_credentials=on_credentials or (lambda creds: save_now(integration_id, creds)),
        refresh_lock=lock or (lambda: refresh_lock(integration_id)),
        allow_loopback=bool(current_app.config.get("ALLOW_LOOPBACK_PROVIDERS")),
    )


def store(integration: Integration, credentials: dict[str, Any]) -> None:
    """Set the encrypted credentials on the row (the caller commits)."""
    integration.credentials_encrypted = encrypt(json.dumps(credentials, sort_keys=True))
    integration.credentials_updated_at = utcnow()


def load(integration: Integration) -> dict[str, Any]:
    if not integration.credentials_encrypted:
        return {}
    return json.loads(decrypt(integration.credentials_encrypted))


def save_now(integration_id: int, credentials: dict[str, Any]) -> None:
    """Persist refreshed credentials immediately, in a transaction of their own."""
    token = encrypt(json.dumps(credentials, sort_keys=True))
    with db.engine.begin() as conn:
        conn.execute(
            update(Integration.__table__)
            .where(Integration.__table__.c.id == integration_id)
            .values(credentials_encrypted=token, credentials_updated_at=utcnow())
        )


@contextmanager
def refresh_lock(integration_id: int, redis=None) -> Iterator[dict[str, Any]]:
    """Hold a Redis lock so concurrent runs of one integration never refresh its tokens at
    once; yields the credentials stored now, so a run that waited adopts what the other
    run saved instead of spending a single-use refresh token again."""
    if redis is None:
        from ..background import redis_connection

        redis = redis_connection()
    lock = redis.lock(f"tributary:refresh-lock:{integration_id}",
                      timeout=REFRESH_LOCK_SECONDS, blocking_timeout=REFRESH_LOCK_SECONDS)
    with lock:
        yield stored(integration_id)


def stored(integration_id: int) -> dict[str, Any]:
    """The integration's credentials as committed now (own connection, no session state)."""
    with db.engine.connect() as conn:
        token = conn.execute(
            select(Integration.credentials_encrypted).where(Integration.id == integration_id)
        ).scalar_one_or_none()
    return json.loads(decrypt(token)) if token else {}


def rotate_all() -> int:
    """Re-encrypt every stored secret under the first configured key; returns the count.

    Every column named `*_encrypted` in any table is a Fernet token (integration
    credentials, OAuth app secrets…), so tables added later are rotated too."""
    changed = 0
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if c.name.endswith("_encrypted")]
        if not columns:
            continue
        key = list(table.primary_key.columns)
        for column in columns:
            rows = db.session.execute(
                select(*key, column).where(column.is_not(None), column != "")).all()
            for row in rows:
                ident = {k.name: row[i] for i, k in enumerate(key)}
                condition = [k == ident[k.name] for k in key]
                db.session.execute(update(table).where(*condition)
                                   .values({column.name: rotate(row[-1])}))
                changed += 1
    db.session.commit()
    current_app.logger.info("re-encrypted %d stored secrets", changed)
    return changed
