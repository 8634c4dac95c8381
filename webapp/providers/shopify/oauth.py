"""Shopify connecting: shop addresses, the connect form, OAuth with HMAC-checked callbacks
(Shopify's own scheme) and expiring, rotating tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..auth import new_state, token_request, with_expiry
from ..base import (
    AppCredentials,
    AuthError,
    ConfigurationError,
    FormInputError,
    ProviderError,
    SourceUnavailable,
)
from ..forms import clean, loopback_base
from ..http import HostPolicy, HttpClient, Response, parse_target, valid_hostname

DEFAULT_API_VERSION = "2025-10"
DEFAULT_SCOPES = ("read_customers", "read_orders")
HOST_PATTERNS = ("*.myshopify.com",)
SHOP_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com")


class CallbackError(AuthError):
    """An OAuth callback that fails verification (bad HMAC, bad shop, wrong state)."""




def normalize_shop(shop: str) -> str:
    """`name`, `name.myshopify.com` or its https URL -> `name.myshopify.com` (else error)."""
    value = (shop or "").strip().lower()
    if "://" in value:
        try:
            target = parse_target(value)
        except ConfigurationError:
            value = ""
        else:
            value = target.host if target.tail in ("", "/") and target.port == 443 else ""
    value = value.rstrip("/")
    if value and "." not in value:
        value += ".myshopify.com"
    if not SHOP_RE.fullmatch(value) or not valid_hostname(value):
        raise ConfigurationError(
            f"{shop!r} is not a Shopify shop address; use the name.myshopify.com form."
        )
    return value



def host_policy(allow_loopback: bool = False) -> HostPolicy:
    """The Shopify allow-list: *.myshopify.com (plus loopback for tests and the demo)."""
    return HostPolicy(HOST_PATTERNS, allow_loopback=allow_loopback)


def base_url(shop: str, api_base: str | None, allow_loopback: bool) -> str:
    """https://<shop>, or the loopback `api_base` of a simulator (tests and the demo)."""
    if api_base:
        if not allow_loopback:
            raise ConfigurationError("The api_base setting is only for tests and the demo.")
        target = parse_target(api_base.rstrip("/"))
        if target.host != "127.0.0.1":
            raise ConfigurationError("The api_base setting must be a loopback address.")
        return target.url
    return f"https://{shop}"



def token_error(resp: Response) -> ProviderError:
    """Plain words for a failed answer of the token endpoint (no secrets in it)."""
    try:
        body = resp.json() or {}
    except SourceUnavailable:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if error == "invalid_grant":
        return AuthError("Shopify no longer accepts the saved authorisation; reconnect the shop.",
                         detail="invalid_grant")
    if error == "invalid_client":
        return AuthError("Shopify rejected the app's client id or secret.", detail=error)
    if error == "invalid_request":
        return AuthError("Shopify rejected the authorisation code (used or expired); "
                         "connect again.", detail=str(body.get("error_description", ""))[:200])
    if resp.status == 404:
        return ConfigurationError("Shopify has no such shop (unknown shop).")
    return SourceUnavailable(f"Shopify's token endpoint failed (HTTP {resp.status}).",
                             detail=resp.text[:200])



def credentials_from_token(body: dict, base: dict, now: datetime) -> dict:
    """Credentials from a token answer: the new pair, its expiry, scope."""
    creds = dict(base)
    creds["access_token"] = body["access_token"]
    if body.get("refresh_token"):
        creds["refresh_token"] = body["refresh_token"]
    creds = with_expiry(creds, body.get("expires_in"), now)
    if body.get("refresh_token_expires_in"):
        creds["refresh_token_expires_at"] = (
            now + timedelta(seconds=int(body["refresh_token_expires_in"]))
        ).astimezone(UTC).isoformat(timespec="seconds")
    if body.get("scope"):
        creds["scope"] = body["scope"]
    return creds


def refresh(http: HttpClient, base: str, creds: dict, now: datetime) -> dict:
    """Trade the (rotating) refresh token for a new pair."""
    resp = token_request(http, f"{base}/admin/oauth/access_token", "refresh_token",
                         refresh_token=creds["refresh_token"], client_id=creds["client_id"],
                         client_secret=creds["client_secret"])
    answer = resp.json() if resp.status == 200 else None
    if not isinstance(answer, dict) or not answer.get("access_token"):
        raise token_error(resp)
    return credentials_from_token(answer, creds, now)


# ----------------------------------------------------------------------------- OAuth


def authorize_url(
    shop: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    *,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    api_base: str | None = None,
    allow_loopback: bool = False,
) -> str:
    """Where to send the merchant to approve the app (offline access token). Shopify's
    own shape: no response_type, comma-separated scopes."""
    base = base_url(normalize_shop(shop), api_base, allow_loopback)
    query = urlencode({"client_id": client_id, "scope": ",".join(scopes),
                       "redirect_uri": redirect_uri, "state": state})
    return f"{base}/admin/oauth/authorize?{query}"


def callback_hmac(params: Mapping[str, str], client_secret: str) -> str:
    """Shopify's hex HMAC-SHA256 of the callback query: all but `hmac`/`signature`, sorted
    by key, joined `k=v` with `&`."""
    message = "&".join(
        f"{k}={v}" for k, v in sorted(params.items()) if k not in {"hmac", "signature"}
    )
    return hmac.new(client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_callback(
    params: Mapping[str, str],
    client_secret: str,
    *,
    expected_state: str | None = None,
    max_age: timedelta | None = timedelta(hours=1),
    now: datetime | None = None,
) -> str:
    """Check an OAuth callback query (HMAC, shop domain, state, age); returns the shop."""
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in dict(params).items()}
    given = params.get("hmac") or ""
    if not given or not hmac.compare_digest(
        callback_hmac(params, client_secret).encode(), given.lower().encode()
    ):
        raise CallbackError("The Shopify callback signature does not match; it was not "
                            "sent by Shopify or was altered.")
    shop = params.get("shop") or ""
    if not SHOP_RE.fullmatch(shop) or not valid_hostname(shop):
        raise CallbackError("The Shopify callback names a shop that is not a myshopify.com "
                            "address.")
    if expected_state is not None and not hmac.compare_digest(
        params.get("state", "").encode(), expected_state.encode()
    ):
        raise CallbackError("The Shopify callback does not belong to this sign-in (state "
                            "mismatch); start connecting again.")
    if max_age is not None and params.get("timestamp"):
        try:
            sent = datetime.fromtimestamp(int(params["timestamp"]), UTC)
        except (ValueError, OverflowError) as exc:
            raise CallbackError("The Shopify callback carries a bad timestamp.") from exc
        if abs((now or datetime.now(UTC)) - sent) > max_age:
            raise CallbackError("The Shopify callback is too old; start connecting again.")
    return shop


def exchange_code(
    shop: str,
    code: str,
    client_id: str,
    client_secret: str,
    *,
    expiring: bool = True,
    http: HttpClient | None = None,
    api_base: str | None = None,
    allow_loopback: bool = False,
) -> dict:
    """Trade the callback's code for credentials (with `expiring`, a 1-hour access token
    and a rotating refresh token)."""
    shop = normalize_shop(shop)
    http = http or HttpClient(host_policy(allow_loopback))
    data = {"client_id": client_id, "client_secret": client_secret, "code": code}
    if expiring:
        data["expiring"] = "1"
    resp = http.request(
        "POST", f"{base_url(shop, api_base, allow_loopback)}/admin/oauth/access_token",
        data=data, headers={"Accept": "application/json"},
    )
    body = resp.json() if resp.status == 200 else None
    if not isinstance(body, dict) or not body.get("access_token"):
        raise token_error(resp)
    return credentials_from_token(
        body, {"client_id": client_id, "client_secret": client_secret}, datetime.now(UTC))



# ------------------------------------------------------------------- connect hooks


def form_shop(form: Mapping[str, str]) -> str:
    """The shop of a connect form, normalised (FormInputError when it is not one)."""
    raw = clean(form, "shop", 255)
    if not raw:
        raise FormInputError("shop", "Enter the shop's address, like acme.myshopify.com.")
    try:
        return normalize_shop(raw)
    except (ProviderError, ValueError) as exc:  # ValueError: an address urlsplit cannot read
        raise FormInputError("shop", "That is not a Shopify shop address: use the "
                                     "name.myshopify.com form, like acme.myshopify.com.") from exc


def settings_from_form(form: Mapping[str, str], kind: str, allow_loopback: bool
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Shop (+ loopback API base); for the token form also the Admin API access token."""
    shop = form_shop(form)
    settings: dict[str, Any] = {"shop": shop, "api_version": DEFAULT_API_VERSION}
    base = loopback_base(form, "api_base", allow_loopback)
    if base and urlsplit(base).path in ("", "/"):
        base = f"{base}/{shop}"  # the simulator serves each shop under a path prefix
    if base:
        settings["api_base"] = base
    if kind == "oauth":
        return settings, {}
    token = clean(form, "access_token", 500)
    if not token:
        raise FormInputError("access_token", "Paste the Admin API access token of the shop's "
                                             "custom app.")
    return settings, {"access_token": token}


def display_name(settings: Mapping[str, Any]) -> str:
    """"Shop name (acme.myshopify.com)", or the shop domain alone."""
    name, shop = settings.get("account_name") or "", settings.get("shop", "")
    return f"{name} ({shop})" if name else shop


def authorize(settings: dict[str, Any], app: AppCredentials, redirect_uri: str,
              allow_loopback: bool) -> tuple[str, dict[str, Any]]:
    """The approval URL and what the callback is checked against (shop, state)."""
    state = new_state()
    url = authorize_url(settings["shop"], app.client_id, redirect_uri, state,
                        api_base=settings.get("api_base"), allow_loopback=allow_loopback)
    return url, {"shop": settings["shop"], "api_base": settings.get("api_base"),
                 "state": state}


def complete(params: Mapping[str, str], pending: dict[str, Any], app: AppCredentials,
             http: HttpClient, allow_loopback: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify the HMAC-signed callback for the pending shop, trade the code for tokens."""
    shop = verify_callback(params, app.client_secret, expected_state=pending["state"])
    if shop != pending.get("shop"):
        raise AuthError("Shopify answered for another shop than the one you entered; start "
                        "connecting again.")
    credentials = exchange_code(shop, params.get("code", ""), app.client_id, app.client_secret,
                                expiring=True, http=http, api_base=pending.get("api_base"),
                                allow_loopback=allow_loopback)
    settings = {"shop": shop, "api_version": DEFAULT_API_VERSION}
    if pending.get("api_base"):
        settings["api_base"] = pending["api_base"]
    return settings, credentials
