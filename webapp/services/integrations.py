"""Connecting provider accounts: token forms, OAuth flows, the connection test, reconnect and
disconnect. Views stay thin; this module owns the rules and is the same for every provider:
what a provider's form holds and how its sign-in goes are its own connect hooks
(`providers.base.Provider`).

Decisions:
- Several accounts per provider are allowed (two Shopify shops, a Salesforce production org
  and a sandbox…). An account is recognised by its identity (shop domain, Magento store URL,
  Salesforce org id, Zoho data centre); connecting a known account again updates its row
  (disconnected rows too, so their run history stays attached) instead of adding another.
- Pending OAuth sign-ins (state, PKCE verifier, where to go back to) live in the Flask
  session encrypted with `security.encrypt` (Fernet): the signed session cookie alone is
  readable by the browser, Fernet makes it opaque. One pending sign-in per provider, single
  use, refused after 10 minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, session, url_for
from sqlalchemy import select, update

from ..extensions import db
from ..imports import credentials as creds_store
from ..models import (
    ContactList,
    ImportRun,
    Integration,
    OAuthApp,
    RecurringImport,
    WorkspaceNotice,
)
from ..models.base import utcnow
from ..providers import find_provider, get_provider_class, provider_classes
from ..providers.base import AppCredentials, FormInputError, Provider, ProviderError
from ..providers.forms import ascii_secrets
from ..providers.http import HttpClient
from ..security import decrypt, encrypt, mask
from .errors import FormError

OAUTH_TTL_SECONDS = 600
INTERACTIVE_TIMEOUT = (5.0, 20.0)  # connect, read: a person waits for the connection test
SESSION_PREFIX = "oauth_pending:"


@dataclass(frozen=True)
class ProviderInfo:
    """What the integrations pages say about a provider, read off its class."""

    slug: str
    label: str
    account_word: str  # "shop", "org", "store"
    groups: tuple[tuple[str, str], ...]  # (group, what its sources are), in words
    consent: str
    fields: str
    connect_kinds: frozenset[str]
    form_keys: frozenset[str]

    @classmethod
    def of(cls, provider: type[Provider]) -> ProviderInfo:
        return cls(provider.name, provider.label, provider.account_word, provider.group_words,
                   provider.consent_words, provider.field_words,
                   frozenset(provider.connect_kinds), frozenset(provider.form_keys))


class ConnectError(Exception):
    """The connection could not be made or failed its test; `message` is plain words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------------ lookups


def provider_info(slug: str) -> ProviderInfo | None:
    cls = find_provider(slug)
    return ProviderInfo.of(cls) if cls else None


def provider_class(slug: str) -> type[Provider]:
    """The provider class (its connect template is integrations/connect/_<name>.html)."""
    return get_provider_class(slug)


def providers() -> list[ProviderInfo]:
    """Every registered provider's page facts, in registry order."""
    return [ProviderInfo.of(cls) for cls in provider_classes()]


def allow_loopback() -> bool:
    return bool(current_app.config.get("ALLOW_LOOPBACK_PROVIDERS"))


def signs_in(provider: str) -> bool:
    """Whether the provider connects through an OAuth sign-in (and so has an app)."""
    cls = find_provider(provider)
    return cls is not None and "oauth" in cls.connect_kinds


def app_credentials(provider: str) -> AppCredentials | None:
    """The OAuth app's client id and secret: the settings page's row, else the environment."""
    if not signs_in(provider):
        return None
    row = db.session.scalar(select(OAuthApp).filter_by(provider=provider))
    if row is not None:
        try:
            secret = decrypt(row.client_secret_encrypted)
        except ValueError:
            secret = ""
        if row.client_id and secret:
            return AppCredentials(row.client_id, secret, "settings")
    key = provider.upper()
    client_id = str(current_app.config.get(f"{key}_CLIENT_ID") or "").strip()
    secret = str(current_app.config.get(f"{key}_CLIENT_SECRET") or "").strip()
    if client_id and secret:
        return AppCredentials(client_id, secret, "environment")
    return None


def redirect_uri(provider: str) -> str:
    return url_for("integrations.oauth_callback", provider=provider, _external=True)


def sign_in_origins(provider: str) -> list[str]:
    """Origins the provider's sign-in (OAuth authorize) pages live on, for CSP form-action."""
    cls = find_provider(provider)
    hosts = cls.sign_in_origins() if cls else []
    if hosts and allow_loopback():
        hosts.append("http://127.0.0.1:*")
    return hosts


def integrations_of(provider: str) -> list[Integration]:
    return list(db.session.scalars(
        select(Integration).filter_by(provider=provider).order_by(Integration.id)
    ))


def get_integration(provider: str, integration_id: int) -> Integration | None:
    row = db.session.get(Integration, integration_id)
    return None if row is None or row.provider != provider else row


@dataclass
class Tile:
    info: ProviderInfo
    connected: list[Integration]
    needs_reconnect: list[Integration]

    @property
    def state(self) -> str:
        if self.needs_reconnect:
            return "needs_reconnect"
        return "connected" if self.connected else "not_connected"

    @property
    def accounts(self) -> list[Integration]:
        return self.needs_reconnect + self.connected


def tiles() -> list[Tile]:
    rows = list(db.session.scalars(
        select(Integration).where(Integration.status != "disconnected").order_by(Integration.id)
    ))
    by_provider: dict[str, list[Integration]] = {}
    for r in rows:
        by_provider.setdefault(r.provider, []).append(r)
    out = []
    for info in providers():
        mine = by_provider.get(info.slug, [])
        out.append(Tile(info, [r for r in mine if r.status == "connected"],
                        [r for r in mine if r.status == "needs_reconnect"]))
    return out


def credentials_hint(integration: Integration) -> str:
    """What the page may say about the saved secret: at most its last 4 characters."""
    if not integration.credentials_encrypted:
        return "none (erased)"
    try:
        saved = creds_store.load(integration)
    except ValueError:
        return "saved, but unreadable with the configured keys"
    token = saved.get("access_token") or saved.get("refresh_token") or ""
    return f"saved ({mask(token)})" if token else "saved"


@dataclass
class FedList:
    name: str
    state: str


def lists_fed(integration: Integration) -> list[FedList]:
    """The recurring imports this integration feeds (list name, state)."""
    rows = db.session.execute(
        select(ContactList.name, RecurringImport.state)
        .join(ContactList, ContactList.id == RecurringImport.list_id)
        .where(RecurringImport.integration_id == integration.id)
        .order_by(ContactList.name, RecurringImport.id)
    ).all()
    return [FedList(name, state) for name, state in rows]


# ------------------------------------------------------------------ clients


def interactive_http(provider: str) -> HttpClient:
    """A client for connect-time calls: short timeouts and retry budget (a person waits)."""
    policy = get_provider_class(provider).host_policy(allow_loopback())
    return HttpClient(policy, timeout=INTERACTIVE_TIMEOUT, retry_budget=6.0, max_attempts=3)


# -------------------------------------------------------------------- identity


def identity(provider: str, settings: dict) -> str:
    """Which account of the provider these settings point at (one row per account)."""
    return get_provider_class(provider).identity(settings)


def display_name(provider: str, settings: dict) -> str:
    """The account as people know it (the provider-given name beside the address)."""
    return get_provider_class(provider).display_name(settings)


def _clean_name(value: Any) -> str:
    """A provider-given name fit to show: printable, single-spaced, at most 120 chars."""
    if not isinstance(value, str):
        return ""
    text = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return text[:120].strip()


# ---------------------------------------------------------------- test and save


def _test(provider: str, settings: dict, credentials: dict) -> dict:
    """Build the client, run its connection test and ask the account's name (into
    `settings["account_name"]`; a refused name lookup is no failure). Returns the (maybe
    refreshed) credentials. Raises ConnectError with the provider's plain-words reason."""
    cls = get_provider_class(provider)
    handed_back: list[dict] = []
    try:
        client = cls(settings, credentials, http=interactive_http(provider),
                     on_credentials=handed_back.append, allow_loopback=allow_loopback())
        client.test_connection()
    except ProviderError as exc:
        raise ConnectError(f"The connection test failed: {exc.reason}") from exc
    try:
        name = _clean_name(client.account_name())
    except ProviderError:
        name = ""
    settings.pop("account_name", None)
    if name:
        settings["account_name"] = name
    return dict(client.credentials)


def _save(provider: str, settings: dict, credentials: dict,
          reconnect: Integration | None) -> tuple[Integration, bool]:
    """Store a tested connection. Returns (row, existed)."""
    key = identity(provider, settings)
    row = reconnect
    if row is not None and identity(provider, row.settings or {}) not in ("", key):
        raise ConnectError(
            f"You signed in to {display_name(provider, settings)}, but this connection is "
            f"for {row.name}. To add that account as another connection, use Connect "
            "instead of Reconnect.")
    if row is None:
        row = next((r for r in integrations_of(provider)
                    if identity(provider, r.settings or {}) == key), None)
    existed = row is not None
    if row is None:
        row = Integration(provider=provider)
        db.session.add(row)
    now = utcnow()
    row.settings = dict(settings)
    row.name = display_name(provider, settings)[:255]
    creds_store.store(row, credentials)
    if row.status != "connected":
        row.status_changed_at = now
    row.status = "connected"
    row.status_reason = ""
    row.last_checked_at = now
    db.session.flush()
    _dismiss_reconnect_notice(row.id)
    db.session.commit()
    return row, existed


def _dismiss_reconnect_notice(integration_id: int) -> None:
    db.session.execute(
        update(WorkspaceNotice)
        .where(WorkspaceNotice.integration_id == integration_id,
               WorkspaceNotice.dismissed_at.is_(None))
        .values(dismissed_at=utcnow(), key=None)
    )


# -------------------------------------------------------------- connecting


def _settings_from_form(provider: str, form, kind: str) -> tuple[dict, dict]:
    """The provider's reading of its connect form; its input errors become FormErrors."""
    cls = get_provider_class(provider)
    if kind not in cls.connect_kinds:
        how = "signing in" if kind == "form" else "a form"
        raise ConnectError(f"This provider connects by {how}.")
    try:
        settings, credentials = cls.settings_from_form(form, kind=kind,
                                                       allow_loopback=allow_loopback())
        ascii_secrets(credentials)
    except FormInputError as exc:
        raise FormError(exc.field, exc.reason) from None
    except ProviderError as exc:
        raise ConnectError(exc.reason) from exc
    return settings, credentials


def connect_with_form(provider: str, form, reconnect: Integration | None
                      ) -> tuple[Integration, bool]:
    """Connect with pasted credentials (a Shopify token, a Magento integration):
    validate, test, save. FormError for bad input, ConnectError for a failed test."""
    settings, credentials = _settings_from_form(provider, form, "form")
    credentials = _test(provider, settings, credentials)
    return _save(provider, settings, credentials, reconnect)


# ------------------------------------------------------------------------ OAuth


def _put_pending(provider: str, pending: dict) -> None:
    pending["issued"] = int(time.time())
    session[SESSION_PREFIX + provider] = encrypt(json.dumps(pending))


def _pop_pending(provider: str) -> dict | None:
    token = session.pop(SESSION_PREFIX + provider, None)
    if not token:
        return None
    try:
        pending = json.loads(decrypt(token))
    except (ValueError, TypeError):
        return None
    if time.time() - int(pending.get("issued", 0)) > OAUTH_TTL_SECONDS:
        return None
    return pending


def _need_app(provider: str) -> AppCredentials:
    app = app_credentials(provider)
    if app is None:
        label = get_provider_class(provider).label
        raise ConnectError(f"Tributary has no {label} app credentials yet: add the client id "
                           "and secret on the Settings page first.")
    return app


def start_oauth(provider: str, form, reconnect: Integration | None) -> str:
    """Validate the form, remember the pending sign-in, return the provider's sign-in URL."""
    app = _need_app(provider)
    settings, _ = _settings_from_form(provider, form, "oauth")
    try:
        url, pending = get_provider_class(provider).authorize(
            settings, app, redirect_uri(provider), allow_loopback=allow_loopback())
    except ProviderError as exc:
        raise ConnectError(exc.reason) from exc
    pending["integration_id"] = reconnect.id if reconnect else None
    _put_pending(provider, pending)
    return url


def finish_oauth(provider: str, args) -> tuple[Integration, bool]:
    """Check the callback against the pending sign-in, trade the code for tokens, test,
    save. ConnectError (refused) for anything that does not fit."""
    params = {k: v for k, v in args.items()}
    pending = _pop_pending(provider)
    if pending is None:
        raise ConnectError("This sign-in answer does not belong to a connection started "
                           "here in the last 10 minutes, so it was refused. Start connecting "
                           "again.")
    app = _need_app(provider)
    reconnect = None
    if pending.get("integration_id"):
        reconnect = get_integration(provider, int(pending["integration_id"]))
    try:
        settings, credentials = get_provider_class(provider).complete(
            params, pending, app, redirect_uri(provider), http=interactive_http(provider),
            allow_loopback=allow_loopback())
    except ProviderError as exc:
        raise ConnectError(f"The sign-in was refused: {exc.reason}") from exc
    credentials = _test(provider, settings, credentials)
    return _save(provider, settings, credentials, reconnect)


# -------------------------------------------------------------------- disconnect


def disconnect(integration: Integration) -> int:
    """Stop every import of the integration, cancel its queued runs, erase its credentials.
    Contacts and run history stay. Returns how many imports were stopped."""
    stopped = 0
    queued: list[int] = []
    ids = list(db.session.scalars(
        select(RecurringImport.id).where(RecurringImport.integration_id == integration.id)
    ))
    if ids:
        stopped = db.session.execute(
            update(RecurringImport)
            .where(RecurringImport.id.in_(ids), RecurringImport.state != "stopped")
            .values(state="stopped", state_reason="The integration was disconnected.",
                    next_run_at=None)
        ).rowcount
        queued = list(db.session.scalars(
            select(ImportRun.id).where(ImportRun.import_id.in_(ids),
                                       ImportRun.status == "queued")))
    now = utcnow()
    integration.credentials_encrypted = None
    integration.credentials_updated_at = now
    integration.status = "disconnected"
    integration.status_reason = "Disconnected by a team member."
    integration.status_changed_at = now
    _dismiss_reconnect_notice(integration.id)
    db.session.commit()
    if queued:
        from ..imports.runs import cancel_run

        for run_id in queued:
            cancel_run(run_id)
    return stopped
