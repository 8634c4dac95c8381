"""Workspace settings form: validate every input, report each error next to its input.
Also the OAuth app credentials (client id, encrypted secret) per provider."""

from __future__ import annotations

from functools import lru_cache

from flask import current_app, url_for
from sqlalchemy import delete, select

from .. import timezones
from ..customfields import currency_choices
from ..extensions import db
from ..forms import OAuthAppForm, WorkspaceSettingsForm
from ..models import OAuthApp, WorkspaceSettings
from ..providers import provider_classes
from ..security import decrypt, encrypt, mask


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every zone a form accepts (pages offer the canonical ones, see webapp/timezones.py)."""
    return timezones.valid()


def currencies() -> list[tuple[str, str]]:
    return currency_choices()


def validate(formdata) -> tuple[dict, dict[str, str]]:
    """Cleaned values and errors (input name -> message) from the settings form."""
    form = WorkspaceSettingsForm(formdata=formdata)
    form.validate()
    return form.values(), form.first_errors()


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
    checked = OAuthAppForm(formdata=form)
    checked.validate()
    client_id, secret = checked.client_id.data, checked.client_secret.data
    errors = checked.first_errors()
    if not secret and row is None:
        errors["client_secret"] = "Paste the app's client secret."
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
