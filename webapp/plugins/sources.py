"""Plugin sources: creating and editing them from the set-up form, their
keys, enabling and disabling (a Shopify source subscribes its webhook topics through the
Admin API and removes them again), and what a disconnect or app/uninstalled does."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import url_for
from sqlalchemy import bindparam, select

from ..extensions import db
from ..hardening import parse_id
from ..imports import credentials as creds_store
from ..models import ContactList, Cycle, Integration
from ..models.base import utcnow
from ..models.plugins import PluginSource
from ..providers import get_provider_class
from ..providers.base import ProviderError
from ..security import decrypt, encrypt
from ..services.errors import FormError
from . import keys

log = logging.getLogger(__name__)

KINDS = {
    "shopify": "Shopify store",
    "woocommerce": "WooCommerce store",
    "website": "Website or custom plugin",
}
# Event kinds a team may let add contacts; the first two are the default.
ADD_EVENT_CHOICES = (
    ("signed_up", "Registrations (an account is created)"),
    ("form_submitted", "Form sign-ups"),
    ("identify", "Identify calls (a visitor gives an email)"),
    ("checkout_started", "Checkouts started"),
    ("order_completed", "Orders"),
    ("customer_updated", "Customer updates"),
)
DEFAULT_ADD_EVENTS = ["signed_up", "form_submitted"]
KEY_KINDS_OF = {"website": ("server", "public", "signing"), "woocommerce": ("signing",),
                "shopify": ()}
WOO_TOPICS = ("customer.created", "customer.updated", "order.created", "order.updated")
MAX_ORIGINS = 20
OUT_OF_DATE = "This form was out of date: nothing was changed. Send it again from this page."


@dataclass
class Created:
    """A source just made or re-keyed, with the keys to show once."""

    source: PluginSource
    new_keys: list[keys.NewKey] = field(default_factory=list)


# ------------------------------------------------------------------------ lookups


def all_sources() -> list[PluginSource]:
    return list(db.session.scalars(select(PluginSource).order_by(PluginSource.id)))


def get(source_id: int | None) -> PluginSource | None:
    return db.session.get(PluginSource, source_id) if source_id else None


_RECEIVING = select(
    PluginSource.id, PluginSource.kind, PluginSource.status, PluginSource.integration_id,
    PluginSource.secret_encrypted, PluginSource.updated_at,
).where(PluginSource.id == bindparam("source_id"))


def for_receiving(source_id: int):
    """What a receiver needs of a source (one cached Core query, no ORM object), or None."""
    return db.session.execute(_RECEIVING, {"source_id": source_id}).first()


def shopify_integrations() -> list[Integration]:
    return list(db.session.scalars(
        select(Integration).filter_by(provider="shopify", status="connected")
        .order_by(Integration.id)))


def delivery_url(source: PluginSource) -> str:
    endpoint = "receivers.shopify" if source.kind == "shopify" else "receivers.woocommerce"
    return url_for(endpoint, source_id=source.id, _external=True)


def tracking_host() -> str:
    return url_for("receivers.batch", _external=True).removesuffix("/v1/batch")


# ---------------------------------------------------------------------- the form


def _origin(value: str) -> str | None:
    """`https://shop.example` (scheme, host, optional port; nothing else) or None."""
    value = value.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if not all(c.isalnum() or c in ".-[]:" for c in host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _values(kind: str, form, source: PluginSource | None) -> dict:
    """Validated values of the set-up form; raises FormError naming the first bad input."""
    name = " ".join(str(form.get("name", "")).split())[:200]
    if not name:
        raise FormError("name", "Give the source a name, such as the shop's.")
    if len(name) > 120:
        raise FormError("name", "Keep the name to 120 characters.")
    list_id = parse_id(form.get("list_id"))
    target = db.session.get(ContactList, list_id) if list_id else None
    if target is None:
        raise FormError("list_id", "Choose the list the contacts go to.")
    cycle_id, day = None, None
    if str(form.get("cycle_id", "")).strip():
        cycle = db.session.get(Cycle, parse_id(form.get("cycle_id")) or 0)
        if cycle is None or cycle.list_id != target.id:
            raise FormError("cycle_id", "Choose a cycle of the chosen list, or none.")
        raw_day = str(form.get("cycle_day", "0")).strip() or "0"
        day = int(raw_day) if raw_day.isdecimal() and len(raw_day) < 6 else -1
        if not 0 <= day <= cycle.length_days:
            raise FormError("cycle_day", f"Enter a day from 0 to {cycle.length_days} "
                                         f"(the cycle is {cycle.length_days} days long).")
        cycle_id = cycle.id
    allowed = {k for k, _ in ADD_EVENT_CHOICES}
    add_events = [k for k in form.getlist("add_events") if k in allowed]
    origins: list[str] = []
    for line in str(form.get("allowed_origins", "")).replace(",", "\n").splitlines():
        if not line.strip():
            continue
        origin = _origin(line[:300])
        if origin is None:
            raise FormError("allowed_origins", "Enter each site as https://shop.example "
                            "(scheme and host, optionally a port; no path), one a line.")
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise FormError("allowed_origins", f"List at most {MAX_ORIGINS} sites.")
    values = {
        "name": name, "list_id": target.id, "cycle_id": cycle_id, "cycle_day": day,
        "add_events": add_events,
        "allow_unconsented_subscribe": form.get("allow_unconsented_subscribe") == "on",
        "allowed_origins": origins if kind == "website" else [],
        "require_signature": kind == "website" and form.get("require_signature") == "on",
    }
    if kind == "shopify":
        integration = None
        if source is not None and source.integration_id:
            integration = db.session.get(Integration, source.integration_id)
        else:
            integration = db.session.get(Integration, parse_id(form.get("integration_id")) or 0)
            if integration is None or integration.provider != "shopify" \
                    or integration.status != "connected":
                raise FormError("integration_id", "Choose a connected Shopify store.")
        values["integration_id"] = integration.id if integration else None
        secret = str(form.get("api_secret", "")).strip()
        if secret:
            if len(secret) > 200 or not secret.isprintable():
                raise FormError("api_secret", "That does not look like an API secret key.")
            values["secret_encrypted"] = encrypt(secret)
        elif not (source and source.secret_encrypted) and integration is not None \
                and not shopify_secrets(integration, None):
            raise FormError("api_secret", "This store was connected with an access token: "
                            "paste the custom app's API secret key (Shopify signs webhooks "
                            "with it).")
    return values


class ShownAlready(Exception):
    """The form's one-time token was used by an earlier post (a reload re-posting it): the
    keys were shown once already and nothing is changed. `source_id`: what it made."""

    def __init__(self, source_id: int | None):
        super().__init__("shown already")
        self.source_id = source_id


def _use_token(once: str | None, source_id: int) -> None:
    if once is not None and not keys.use_form_token(once, source_id):
        db.session.rollback()
        raise ShownAlready(keys.form_token_source(once))


def create(kind: str, form, once: str | None = None) -> Created:
    """A new, enabled source with its keys (shown once); a Shopify source subscribes.
    `once`: the form's one-time token (ShownAlready when a post before used it)."""
    if kind not in KINDS:
        raise FormError("kind", "Choose a kind of source.")
    if once is not None and (made_by := keys.form_token_source(once)) is not None:
        raise ShownAlready(made_by)  # before validating: a re-post may no longer be valid
    values = _values(kind, form, None)
    if once is not None and not keys.form_token_ok(once):
        raise FormError("once", OUT_OF_DATE)
    source = PluginSource(kind=kind, status="disabled", subscriptions=[], **values)
    db.session.add(source)
    db.session.flush()
    _use_token(once, source.id)
    made = [keys.create(source, k) for k in KEY_KINDS_OF[kind]]
    db.session.commit()
    enable(source)
    return Created(source, made)


def update(source: PluginSource, form) -> PluginSource:
    for name, value in _values(source.kind, form, source).items():
        setattr(source, name, value)
    db.session.commit()
    return source


def rotate_key(source: PluginSource, kind: str, once: str | None = None
               ) -> keys.NewKey | None:
    """A new key of `kind` (None: no such kind here). `once`: the form's one-time token;
    a re-post of it raises ShownAlready and rotates nothing (the two valid keys stay)."""
    if kind not in KEY_KINDS_OF[source.kind]:
        return None
    source_id = source.id
    _use_token(once, source_id)
    made = keys.rotate(source, kind)
    db.session.commit()
    return made


def revoke_key(source: PluginSource, key_id: int) -> bool:
    done = keys.revoke(source, key_id)
    db.session.commit()
    return done


# ------------------------------------------------------------------- Shopify side


def shopify_secrets(integration: Integration | None, source=None) -> list[str]:
    """The secrets Shopify may sign this source's webhooks with: the custom app's API
    secret key given on the set-up page, else the OAuth app's client secret (settings,
    environment, or the one saved with the integration's credentials)."""
    found: list[str] = []
    if source is not None and source.secret_encrypted:
        try:
            found.append(decrypt(source.secret_encrypted))
        except ValueError:
            pass
    from ..services.integrations import app_credentials

    app = app_credentials("shopify")
    if app is not None:
        found.append(app.client_secret)
    if integration is not None and integration.credentials_encrypted:
        try:
            saved = creds_store.load(integration).get("client_secret")
        except ValueError:
            saved = None
        if saved:
            found.append(saved)
    return list(dict.fromkeys(s for s in found if s))


def _shopify_client(integration: Integration):
    from ..services.integrations import allow_loopback, interactive_http

    integration_id = integration.id
    return get_provider_class("shopify")(
        dict(integration.settings or {}), creds_store.load(integration),
        http=interactive_http("shopify"), allow_loopback=allow_loopback(),
        on_credentials=lambda c: creds_store.save_now(integration_id, c))


def enable(source: PluginSource) -> bool:
    """Enable the source. Shopify: subscribe the topics first; a refusal leaves it disabled
    with the reason in plain words. Returns whether it is enabled now."""
    if source.kind == "shopify":
        from ..providers.shopify import webhooks as shopify_webhooks

        integration = db.session.get(Integration, source.integration_id or 0)
        if integration is None or integration.status != "connected":
            return _disabled(source, "The Shopify store is not connected; reconnect it, then "
                                     "enable the source.")
        try:
            subs = shopify_webhooks.subscribe(_shopify_client(integration),
                                              delivery_url(source))
        except ProviderError as exc:
            log.warning("Shopify webhook subscription failed for source %s", source.id)
            return _disabled(source, f"Shopify refused the webhook subscription: {exc.reason}")
        source.subscriptions = subs
    source.status, source.status_reason = "enabled", ""
    db.session.commit()
    return True


def _disabled(source: PluginSource, reason: str) -> bool:
    source.status, source.status_reason = "disabled", reason[:500]
    db.session.commit()
    return False


def disable(source: PluginSource, reason: str = "Disabled by a team member.",
            *, call_shopify: bool = True) -> None:
    """Disable the source; a Shopify source removes exactly the subscriptions it made."""
    if source.kind == "shopify" and source.subscriptions and call_shopify:
        from ..providers.shopify import webhooks as shopify_webhooks

        integration = db.session.get(Integration, source.integration_id or 0)
        if integration is not None and integration.credentials_encrypted:
            try:
                shopify_webhooks.unsubscribe(_shopify_client(integration),
                                             list(source.subscriptions))
            except ProviderError:
                log.warning("removing Shopify webhooks failed for source %s", source.id)
                reason += " Shopify could not be asked to stop sending; events it still " \
                          "sends are refused."
    source.subscriptions = []
    _disabled(source, reason)


def integration_disconnecting(integration_id: int) -> int:
    """Before an integration's credentials are erased: disable its plugin sources (and
    remove their webhooks while the token still works). Returns how many were disabled."""
    rows = list(db.session.scalars(select(PluginSource).where(
        PluginSource.integration_id == integration_id, PluginSource.status == "enabled")))
    for source in rows:
        disable(source, "The Shopify store was disconnected.")
    return len(rows)


def app_uninstalled(source_id: int) -> None:
    """Shopify's app/uninstalled: Shopify drops the webhooks and the token itself, so the
    source is disabled without calling it."""
    source = get(source_id)
    if source is not None and source.status == "enabled":
        disable(source, "The Tributary app was uninstalled from the Shopify store.",
                call_shopify=False)
    source_integration = db.session.get(Integration, source.integration_id or 0) \
        if source is not None else None
    if source_integration is not None and source_integration.status == "connected":
        source_integration.status = "needs_reconnect"
        source_integration.status_reason = "The app was uninstalled from the store."
        source_integration.status_changed_at = utcnow()
        db.session.commit()


_SECRETS: dict[int, tuple[object, float, list[str]]] = {}
SECRETS_TTL = 10.0


def webhook_secrets(source) -> list[str]:
    """The secrets a delivery to this source may be signed with (empty: refuse all). Kept
    per process while the source row is unchanged (a rotation or a new API secret changes
    it) and for at most SECRETS_TTL seconds (the OAuth app's secret lives elsewhere)."""
    now = time.monotonic()
    cached = _SECRETS.get(source.id)
    if cached and cached[0] == source.updated_at and now - cached[1] < SECRETS_TTL:
        return cached[2]
    if source.kind == "shopify":
        found = shopify_secrets(db.session.get(Integration, source.integration_id or 0), source)
    elif source.kind == "woocommerce":
        found = keys.signing_secrets(source.id)
    else:
        found = []
    _SECRETS[source.id] = (source.updated_at, now, found)
    return found


def allowed_origin(origin: str | None) -> bool:
    """Is `origin` allowed by any enabled website source (for CORS preflights, which carry
    no key)?"""
    if not origin or len(origin) > 300:
        return False
    for row in db.session.scalars(select(PluginSource.allowed_origins).where(
            PluginSource.kind == "website", PluginSource.status == "enabled")):
        if origin in (row or []):
            return True
    return False
