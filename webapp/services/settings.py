"""Workspace settings form: validate every input, report each error next to its input.
Also the OAuth app credentials (client id, encrypted secret) per provider."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from flask import current_app, url_for
from sqlalchemy import delete, select

from .. import timezones
from ..customfields import CURRENCIES, currency_choices
from ..extensions import db
from ..models import OAuthApp, WorkspaceSettings
from ..providers import provider_classes
from ..security import decrypt, encrypt, mask


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every zone a form accepts (pages offer the canonical ones, see webapp/timezones.py)."""
    return timezones.valid()


def currencies() -> list[tuple[str, str]]:
    return currency_choices()


def validate(form) -> tuple[dict, dict[str, str]]:
    """Cleaned values and errors (input name -> message) from the settings form."""
    values: dict = {}
    errors: dict[str, str] = {}
    name = " ".join((form.get("name") or "").split())
    if not name or len(name) > 120:
        errors["name"] = "Give the workspace a name of at most 120 characters."
    values["name"] = name
    raw_limit = (form.get("subscriber_limit") or "").strip().replace(",", "")
    if raw_limit.isdigit() and int(raw_limit) <= 100_000_000:
        values["subscriber_limit"] = int(raw_limit)
    else:
        errors["subscriber_limit"] = "The limit is a whole number of contacts, 0 or more."
    raw_price = (form.get("extension_price") or "").strip()
    try:
        price = Decimal(raw_price)
        if not price.is_finite() or price < 0 or price >= Decimal("100000000"):
            raise InvalidOperation
        values["extension_price"] = price.quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        errors["extension_price"] = "The price is an amount such as 15 or 12.50, 0 or more."
    currency = (form.get("currency") or "").strip().upper()
    if currency not in CURRENCIES:
        errors["currency"] = "Pick an ISO 4217 currency code such as USD or EUR."
    values["currency"] = currency
    zone = (form.get("time_zone") or "").strip()
    if zone not in time_zones():
        errors["time_zone"] = "Pick a time zone from the list, e.g. Europe/Berlin."
    values["time_zone"] = zone
    return values, errors


def save(values: dict) -> WorkspaceSettings:
    row = WorkspaceSettings.get()
    for key, value in values.items():
        setattr(row, key, value)
    db.session.commit()
    return row


# ------------------------------------------------------------------ OAuth apps

# Providers that sign in with an OAuth app, and how pages name them (from the registry).
OAUTH_APP_LABELS = {cls.name: cls.label for cls in provider_classes()
                    if "oauth" in cls.connect_kinds}


def oauth_apps() -> list[dict]:
    """Per OAuth provider: where its app credentials come from, the client id and at most
    the last 4 characters of the secret, and the redirect URL to register."""
    rows = {r.provider: r for r in db.session.scalars(select(OAuthApp))}
    out = []
    for provider, label in OAUTH_APP_LABELS.items():
        key = provider.upper()
        row = rows.get(provider)
        env_id = str(current_app.config.get(f"{key}_CLIENT_ID") or "")
        env_secret = str(current_app.config.get(f"{key}_CLIENT_SECRET") or "")
        item = {
            "provider": provider, "label": label, "row": row is not None,
            "env_vars": (f"TRIBUTARY_{key}_CLIENT_ID", f"TRIBUTARY_{key}_CLIENT_SECRET"),
            "env_set": bool(env_id and env_secret),
            "redirect_uri": url_for("integrations.oauth_callback", provider=provider,
                                    _external=True),
        }
        if row is not None:
            try:
                secret = decrypt(row.client_secret_encrypted)
            except ValueError:
                secret = ""
            item.update(source="settings", client_id=row.client_id, secret_hint=mask(secret))
        elif item["env_set"]:
            item.update(source="environment", client_id=env_id, secret_hint=mask(env_secret))
        else:
            item.update(source="", client_id="", secret_hint="")
        out.append(item)
    return out


def save_oauth_app(provider: str, form) -> dict[str, str]:
    """Store (or update) the provider's app credentials; returns errors by input name.
    An empty secret keeps the saved one."""
    row = db.session.scalar(select(OAuthApp).filter_by(provider=provider))
    client_id = (form.get("client_id") or "").strip()
    secret = (form.get("client_secret") or "").strip()
    errors: dict[str, str] = {}
    if not client_id or len(client_id) > 255 or any(c.isspace() for c in client_id):
        errors["client_id"] = "Paste the app's client id (consumer key), without spaces."
    if not secret and row is None:
        errors["client_secret"] = "Paste the app's client secret."
    elif len(secret) > 1000:
        errors["client_secret"] = "That secret is too long to be a client secret."
    if errors:
        return errors
    if row is None:
        row = OAuthApp(provider=provider, client_id=client_id,
                       client_secret_encrypted=encrypt(secret))
        db.session.add(row)
    else:
        row.client_id = client_id
        if secret:
            row.client_secret_encrypted = encrypt(secret)
    db.session.commit()
    return {}


def delete_oauth_app(provider: str) -> bool:
    result = db.session.execute(delete(OAuthApp).filter_by(provider=provider))
    db.session.commit()
    return bool(result.rowcount)
