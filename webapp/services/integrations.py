"""Connecting provider accounts: token forms, OAuth flows, the connection test, reconnect and
disconnect. Views stay thin; this module owns the rules.

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
from urllib.parse import urlsplit

from flask import current_app, session, url_for
from sqlalchemy import select, update

from ..extensions import db
from ..imports import credentials as creds_store
from ..models import Integration, OAuthApp
from ..models.base import utcnow
from ..providers import get_provider_class
from ..providers import magento as magento_mod
from ..providers import salesforce as salesforce_mod
from ..providers import shopify as shopify_mod
from ..providers import zoho as zoho_mod
from ..providers.base import ProviderError
from ..providers.http import HttpClient, parse_target, valid_hostname
from ..security import decrypt, encrypt, mask
from .errors import FormError

OAUTH_TTL_SECONDS = 600
INTERACTIVE_TIMEOUT = (5.0, 20.0)  # connect, read: a person waits for the connection test
OAUTH_PROVIDERS = ("shopify", "zoho", "salesforce")
SESSION_PREFIX = "oauth_pending:"
# Form inputs that may be shown back after an error; secrets never are.
SAFE_FORM_KEYS = frozenset({
    "shop", "api_base", "base_url", "store_code", "auth_mode", "data_centre",
    "accounts_server", "environment", "my_domain", "login_host",
})


@dataclass(frozen=True)
class ProviderInfo:
    slug: str
    label: str
    account_word: str  # "shop", "org", "store"
    groups: tuple[tuple[str, str], ...]  # (group, what its sources are), in words
    consent: str
    fields: str


PROVIDERS: dict[str, ProviderInfo] = {
    "shopify": ProviderInfo(
        "shopify", "Shopify", "shop",
        (("Customers", "all customers, or only those carrying one tag"),),
        "Email marketing consent comes along: customers who unsubscribed at Shopify are "
        "never added, and contacts who unsubscribed there are unsubscribed here too.",
        "Name, email, phone, country, tags, order count and total spent, and your customer "
        "metafields as custom fields.",
    ),
    "zoho": ProviderInfo(
        "zoho", "Zoho CRM", "organisation",
        (("Contacts", "all contacts, or one of your custom views"),
         ("Leads", "all leads that are not converted yet, or one of your custom views")),
        "Records marked Email Opt Out are never added, and such contacts are unsubscribed "
        "here too.",
        "Name, email, phone, mailing country, lead source and your custom fields.",
    ),
    "magento": ProviderInfo(
        "magento", "Magento 2", "store",
        (("Customers", "all customers, one customer group, or one website"),),
        "The newsletter subscription state is recorded where the store reports it "
        "(Magento 2.4).",
        "Name, email, date of birth, gender, default address (phone, country, city) and your "
        "custom customer attributes.",
    ),
    "salesforce": ProviderInfo(
        "salesforce", "Salesforce", "org",
        (("Contacts", "all contacts, or those from one Lead Source"),
         ("Leads", "all unconverted leads, or those from one Lead Source")),
        "Records with Email Opt Out are never added, and such contacts are unsubscribed here "
        "too.",
        "Name, email, phone, country, lead source and your custom fields (__c).",
    ),
}

ZOHO_DATA_CENTRES = (
    ("us", "United States (zoho.com)"), ("eu", "Europe (zoho.eu)"), ("in", "India (zoho.in)"),
    ("au", "Australia (zoho.com.au)"), ("jp", "Japan (zoho.jp)"), ("cn", "China (zoho.com.cn)"),
    ("ca", "Canada (zohocloud.ca)"), ("sa", "Saudi Arabia (zoho.sa)"),
)
SALESFORCE_LOGINS = {"production": "login.salesforce.com", "sandbox": "test.salesforce.com"}


class ConnectError(Exception):
    """The connection could not be made or failed its test; `message` is plain words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------------ lookups


def provider_info(slug: str) -> ProviderInfo | None:
    return PROVIDERS.get(slug)


def allow_loopback() -> bool:
    return bool(current_app.config.get("ALLOW_LOOPBACK_PROVIDERS"))


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str
    source: str  # "settings" or "environment"


def app_credentials(provider: str) -> AppCredentials | None:
    """The OAuth app's client id and secret: the settings page's row, else the environment."""
    if provider not in OAUTH_PROVIDERS:
        return None
    row = db.session.scalar(select(OAuthApp).where(OAuthApp.provider == provider))
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
    hosts = {
        "shopify": ["https://*.myshopify.com"],
        "zoho": sorted(f"https://{acc}" for acc, _ in zoho_mod.DATA_CENTRES.values()),
        "salesforce": [f"https://{h}" for h in salesforce_mod.LOGIN_HOSTS]
        + ["https://*.my.salesforce.com"],
    }.get(provider, [])
    if hosts and allow_loopback():
        hosts.append("http://127.0.0.1:*")
    return hosts


def integrations_of(provider: str) -> list[Integration]:
    return list(db.session.scalars(
        select(Integration).where(Integration.provider == provider).order_by(Integration.id)
    ))


def get_integration(provider: str, integration_id: int) -> Integration | None:
    row = db.session.get(Integration, integration_id)
    return row if row is not None and row.provider == provider else None


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
    out = []
    for slug, info in PROVIDERS.items():
        mine = [r for r in rows if r.provider == slug]
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
    from ..models import ContactList, RecurringImport

    rows = db.session.execute(
        select(ContactList.name, RecurringImport.state)
        .join(ContactList, ContactList.id == RecurringImport.list_id)
        .where(RecurringImport.integration_id == integration.id)
        .order_by(ContactList.name, RecurringImport.id)
    ).all()
    return [FedList(name, state) for name, state in rows]


# ------------------------------------------------------------------ validation


def _clean(form, name: str, limit: int = 4000) -> str:
    return (form.get(name) or "").strip()[:limit]


def _api_base(form, name: str = "api_base") -> str | None:
    """The advanced "API base URL" override (tests and the demo only): a loopback
    address, checked by the same strict grammar as every outbound address."""
    if not allow_loopback():
        return None
    raw = _clean(form, name, 500).rstrip("/")
    if not raw:
        return None
    try:
        target = parse_target(raw)
    except ProviderError:
        target = None
    if target is None or target.host != "127.0.0.1":
        raise FormError(name, "Enter a full address such as http://127.0.0.1:8001, or leave "
                              "it empty.")
    return target.url


def _shop(form) -> str:
    raw = _clean(form, "shop", 255)
    if not raw:
        raise FormError("shop", "Enter the shop's address, like acme.myshopify.com.")
    try:
        return shopify_mod.normalize_shop(raw)
    except (ProviderError, ValueError) as exc:  # ValueError: an address urlsplit cannot read
        raise FormError("shop", "That is not a Shopify shop address: use the "
                                "name.myshopify.com form, like acme.myshopify.com.") from exc


def _shopify_api_base(form, shop: str) -> str | None:
    base = _api_base(form)
    if base and urlsplit(base).path in ("", "/"):
        base = f"{base}/{shop}"  # the simulator serves each shop under a path prefix
    return base


def interactive_http(provider: str) -> HttpClient:
    """A client for connect-time calls: short timeouts and retry budget (a person waits)."""
    policy = get_provider_class(provider).host_policy(allow_loopback())
    return HttpClient(policy, timeout=INTERACTIVE_TIMEOUT, retry_budget=6.0, max_attempts=3)


# -------------------------------------------------------------------- identity


def identity(provider: str, settings: dict) -> str:
    """Which account of the provider these settings point at (one row per account)."""
    if provider == "shopify":
        return settings.get("shop", "")
    if provider == "magento":
        base = settings.get("base_url", "").rstrip("/").lower()
        return f"{base}|{settings.get('store_code', '')}"
    if provider == "salesforce":
        return settings.get("org_id") or settings.get("instance_url", "")
    if provider == "zoho":
        return settings.get("data_centre", "us")
    return ""


def display_name(provider: str, settings: dict) -> str:
    """The account as people know it: the name the provider gave at connect time
    (`settings["account_name"]`) beside the address, else the address alone."""
    name = settings.get("account_name") or ""
    if provider == "shopify":
        shop = settings.get("shop", "")
        return f"{name} ({shop})" if name else shop
    if provider == "magento":
        host = urlsplit(settings.get("base_url", "")).netloc
        store = settings.get("store_code")
        if name:
            return f"{name} ({host})"
        return f"{host} (store view {store})" if store else host
    if provider == "salesforce":
        host = urlsplit(settings.get("instance_url", "")).netloc
        sandbox = "test.salesforce.com" in settings.get("login_host", "")
        return f"{name or host} (sandbox)" if sandbox else name or host
    if provider == "zoho":
        if name:
            return name
        dc = settings.get("data_centre", "us")
        place, _, domain = dict(ZOHO_DATA_CENTRES).get(dc, dc).partition(" (")
        return f"{place} data centre ({domain}" if domain else f"{place} data centre"
    return provider


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
    from ..models import WorkspaceNotice

    db.session.execute(
        update(WorkspaceNotice)
        .where(WorkspaceNotice.integration_id == integration_id,
               WorkspaceNotice.dismissed_at.is_(None))
        .values(dismissed_at=utcnow(), key=None)
    )


# -------------------------------------------------------------- token connects


def connect_with_form(provider: str, form, reconnect: Integration | None
                      ) -> tuple[Integration, bool]:
    """Shopify (shop + Admin API token) and Magento (base URL + token or OAuth 1.0a):
    validate, test, save. FormError for bad input, ConnectError for a failed test."""
    if provider == "shopify":
        shop = _shop(form)
        token = _clean(form, "access_token", 500)
        if not token:
            raise FormError("access_token", "Paste the Admin API access token of the shop's "
                                            "custom app.")
        settings: dict[str, Any] = {"shop": shop,
                                    "api_version": shopify_mod.DEFAULT_API_VERSION}
        base = _shopify_api_base(form, shop)
        if base:
            settings["api_base"] = base
        credentials = {"access_token": token}
    elif provider == "magento":
        settings, credentials = _magento_form(form)
    else:
        raise ConnectError("This provider connects by signing in, not with a form.")
    for name, value in credentials.items():  # they travel in HTTP headers: ASCII only
        if not (value.isascii() and value.isprintable()):
            raise FormError(name, "That does not look like a token or key: paste it again "
                                  "(letters, digits and punctuation only).")
    credentials = _test(provider, settings, credentials)
    return _save(provider, settings, credentials, reconnect)


def _magento_form(form) -> tuple[dict, dict]:
    base = _clean(form, "base_url", 500).rstrip("/")
    if not base or "://" not in base:
        raise FormError("base_url", "Enter the store's address, like https://shop.example.com.")
    try:
        target = parse_target(base)
    except ProviderError as exc:
        raise FormError("base_url", "Enter the store's address, like "
                                    f"https://shop.example.com. {exc.reason}") from None
    if target.scheme != "https" and not allow_loopback():
        raise FormError("base_url", "The store's address must start with https://.")
    if "?" in target.tail:
        raise FormError("base_url", "The store's address must not contain '?' or '#'.")
    try:
        magento_mod.Magento.host_policy(allow_loopback()).check(target.url)
    except ProviderError as exc:
        raise FormError("base_url", exc.reason) from None
    base = target.url
    store = _clean(form, "store_code", 64)
    if store and not magento_mod.STORE_CODE_RE.match(store):
        raise FormError("store_code", "A store view code is lower-case letters, digits and _, "
                                      "like default.")
    mode = form.get("auth_mode") or "bearer"
    if mode not in ("bearer", "oauth1"):
        raise FormError("auth_mode", "Choose how Tributary signs in to the store.")
    settings: dict[str, Any] = {"base_url": base, "auth_mode": mode}
    if store:
        settings["store_code"] = store
    token = _clean(form, "access_token", 500)
    if not token:
        raise FormError("access_token", "Paste the integration's Access Token.")
    credentials = {"access_token": token}
    if mode == "oauth1":
        for name, label in (("consumer_key", "Consumer Key"),
                            ("consumer_secret", "Consumer Secret"),
                            ("access_token_secret", "Access Token Secret")):
            value = _clean(form, name, 500)
            if not value:
                raise FormError(name, f"Paste the integration's {label}.")
            credentials[name] = value
    return settings, credentials


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
        label = PROVIDERS[provider].label
        raise ConnectError(f"Tributary has no {label} app credentials yet: add the client id "
                           "and secret on the Settings page first.")
    return app


def start_oauth(provider: str, form, reconnect: Integration | None) -> str:
    """Validate the form, remember the pending sign-in, return the provider's sign-in URL."""
    app = _need_app(provider)
    pending: dict[str, Any] = {"integration_id": reconnect.id if reconnect else None}
    callback = redirect_uri(provider)
    try:
        if provider == "shopify":
            shop = _shop(form)
            base = _shopify_api_base(form, shop)
            state = shopify_mod.new_state()
            url = shopify_mod.authorize_url(shop, app.client_id, callback, state,
                                            api_base=base, allow_loopback=allow_loopback())
            pending.update(shop=shop, api_base=base)
        elif provider == "zoho":
            dc = form.get("data_centre") or ""
            if dc not in dict(ZOHO_DATA_CENTRES):
                raise FormError("data_centre", "Choose the data centre your Zoho account "
                                               "lives in.")
            accounts = _api_base(form, "accounts_server")
            state = zoho_mod.new_state()
            url = zoho_mod.authorize_url(dc, app.client_id, callback, state,
                                         accounts_server=accounts,
                                         allow_loopback=allow_loopback())
            pending.update(data_centre=dc)
        elif provider == "salesforce":
            login = _salesforce_login(form)
            state = salesforce_mod.new_state()
            verifier, challenge = salesforce_mod.make_pkce()
            url = salesforce_mod.authorize_url(login, app.client_id, callback, state,
                                               challenge, allow_loopback=allow_loopback())
            pending.update(login_host=login, verifier=verifier)
        else:
            raise ConnectError("This provider does not connect by signing in.")
    except ProviderError as exc:
        raise ConnectError(exc.reason) from exc
    pending["state"] = state
    _put_pending(provider, pending)
    return url


def _salesforce_login(form) -> str:
    override = _api_base(form, "login_host")
    if override:
        return override
    env = form.get("environment") or "production"
    if env == "my_domain":
        domain = _clean(form, "my_domain", 255).lower()
        domain = domain.removeprefix("https://").rstrip("/")
        if not (valid_hostname(domain) and salesforce_mod.MY_DOMAIN_RE.fullmatch(domain)):
            raise FormError("my_domain", "Enter your My Domain login address, like "
                                         "acme.my.salesforce.com.")
        return domain
    if env not in SALESFORCE_LOGINS:
        raise FormError("environment", "Choose production or sandbox.")
    return SALESFORCE_LOGINS[env]


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
    loop = allow_loopback()
    callback = redirect_uri(provider)
    try:
        if provider == "shopify":
            shop = shopify_mod.verify_callback(params, app.client_secret,
                                               expected_state=pending["state"])
            if shop != pending.get("shop"):
                raise ConnectError("Shopify answered for another shop than the one you "
                                   "entered; start connecting again.")
            credentials = shopify_mod.exchange_code(
                shop, params.get("code", ""), app.client_id, app.client_secret,
                expiring=True, http=interactive_http(provider), api_base=pending.get("api_base"),
                allow_loopback=loop)
            settings = {"shop": shop, "api_version": shopify_mod.DEFAULT_API_VERSION}
            if pending.get("api_base"):
                settings["api_base"] = pending["api_base"]
        elif provider == "zoho":
            verified = zoho_mod.verify_callback(params, pending["state"], allow_loopback=loop)
            result = zoho_mod.exchange_code(verified, client_id=app.client_id,
                                            client_secret=app.client_secret,
                                            redirect_uri=callback, http=interactive_http(provider),
                                            allow_loopback=loop)
            settings, credentials = result["settings"], result["credentials"]
        elif provider == "salesforce":
            code = salesforce_mod.verify_callback(params, pending["state"])
            result = salesforce_mod.exchange_code(
                pending["login_host"], app.client_id, app.client_secret, code, callback,
                pending["verifier"], http=interactive_http(provider), allow_loopback=loop)
            settings, credentials = result["settings"], result["credentials"]
        else:
            raise ConnectError("This provider does not connect by signing in.")
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
    from ..models import ImportRun, RecurringImport

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
