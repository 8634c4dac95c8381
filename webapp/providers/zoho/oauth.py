"""Zoho connecting: data centres and their hosts, the OAuth 2 sign-in (authorization
code, offline refresh token) and Zoho's token errors, which mostly arrive as HTTP 200."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..auth import authorize_url as oauth2_authorize_url
from ..auth import new_state, token_request, with_expiry
from ..base import (
    AppCredentials,
    AuthError,
    ConfigurationError,
    FormInputError,
    ProviderError,
    RateLimited,
    SourceUnavailable,
)
from ..forms import loopback_base
from ..http import HostPolicy, HttpClient, parse_target

# data centre -> (accounts host, API host)
DATA_CENTRES: dict[str, tuple[str, str]] = {
    "us": ("accounts.zoho.com", "www.zohoapis.com"),
    "eu": ("accounts.zoho.eu", "www.zohoapis.eu"),
    "in": ("accounts.zoho.in", "www.zohoapis.in"),
    "au": ("accounts.zoho.com.au", "www.zohoapis.com.au"),
    "jp": ("accounts.zoho.jp", "www.zohoapis.jp"),
    "cn": ("accounts.zoho.com.cn", "www.zohoapis.com.cn"),
    "ca": ("accounts.zohocloud.ca", "www.zohoapis.ca"),
    "sa": ("accounts.zoho.sa", "www.zohoapis.sa"),
}
ACCOUNTS_HOSTS = {acc: dc for dc, (acc, _) in DATA_CENTRES.items()}
API_HOSTS = {api for _, api in DATA_CENTRES.values()}
SCOPES = (
    "ZohoCRM.modules.contacts.READ",
    "ZohoCRM.modules.leads.READ",
    "ZohoCRM.settings.fields.READ",
    "ZohoCRM.settings.modules.READ",
    "ZohoCRM.settings.custom_views.READ",  # custom views are our "sources"
    "ZohoCRM.org.READ",  # the organisation's name, to name the connection
)
# data centre -> how the connect form names it
DATA_CENTRE_LABELS = (
    ("us", "United States (zoho.com)"), ("eu", "Europe (zoho.eu)"), ("in", "India (zoho.in)"),
    ("au", "Australia (zoho.com.au)"), ("jp", "Japan (zoho.jp)"), ("cn", "China (zoho.com.cn)"),
    ("ca", "Canada (zohocloud.ca)"), ("sa", "Saudi Arabia (zoho.sa)"),
)


def host_policy(allow_loopback: bool = False) -> HostPolicy:
    """The Zoho allow-list: the known accounts and API hosts of every data centre."""
    return HostPolicy(sorted(ACCOUNTS_HOSTS) + sorted(API_HOSTS), allow_loopback=allow_loopback)


def base_url(value: str, known: set[str] | dict[str, str], what: str, *,
              allow_loopback: bool) -> str:
    """Normalise an accounts/API base URL, refusing hosts outside the Zoho data centres
    (parsed by the strict grammar of http.parse_target)."""
    value = str(value or "").strip().rstrip("/")
    raw = value if "://" in value else "https://" + value
    refusal = ConfigurationError(
        f"That is not a Zoho {what} of a known data centre (wrong data centre?). Pick your "
        "Zoho data centre and connect again."
    )
    try:
        target = parse_target(raw)
    except ConfigurationError:
        raise refusal from None
    if target.tail:
        raise refusal
    if allow_loopback and target.host == "127.0.0.1":
        return target.base
    if target.scheme != "https" or target.host not in known or target.port != 443:
        raise refusal
    return target.base



def authorize_url(data_centre: str, client_id: str, redirect_uri: str, state: str, *,
                  accounts_server: str | None = None, allow_loopback: bool = False) -> str:
    """Where to send the user to grant read access (offline: we get a refresh token)."""
    if accounts_server:
        base = base_url(accounts_server, ACCOUNTS_HOSTS, "accounts server",
                        allow_loopback=allow_loopback)
    else:
        if data_centre not in DATA_CENTRES:
            raise ConfigurationError(f"Unknown Zoho data centre {data_centre!r}.")
        base = "https://" + DATA_CENTRES[data_centre][0]
    return oauth2_authorize_url(f"{base}/oauth/v2/auth", client_id=client_id,
                                redirect_uri=redirect_uri, scope=",".join(SCOPES), state=state,
                                access_type="offline", prompt="consent")


@dataclass(frozen=True, slots=True)
class Callback:
    """A verified OAuth callback: the code and the accounts server that must redeem it."""

    code: str
    accounts_server: str
    data_centre: str


def verify_callback(params: dict[str, str], expected_state: str, *,
                    allow_loopback: bool = False) -> Callback:
    """Check the callback's state, error and `accounts-server` (a known Zoho host)."""
    if params.get("error"):
        raise AuthError("Zoho did not grant access (the request was declined or cancelled).")
    if not expected_state or not hmac.compare_digest(
        str(params.get("state", "")), str(expected_state)
    ):
        raise AuthError("The answer from Zoho did not match this connection attempt: "
                        "start connecting again.")
    code = params.get("code")
    if not code:
        raise AuthError("Zoho sent no authorisation code: start connecting again.")
    server = params.get("accounts-server")
    location = (params.get("location") or "").lower()
    if not server:
        if location not in DATA_CENTRES:
            raise ConfigurationError("Zoho did not say which data centre holds the account.")
        server = "https://" + DATA_CENTRES[location][0]
    base = base_url(server, ACCOUNTS_HOSTS, "accounts server", allow_loopback=allow_loopback)
    host = urlsplit(base).hostname or ""
    dc = ACCOUNTS_HOSTS.get(host, location or "us")
    if location and host in ACCOUNTS_HOSTS and location != dc:
        raise ConfigurationError(
            f"Zoho's answer names two data centres ({location} and {dc}): connect again."
        )
    return Callback(code=code, accounts_server=base, data_centre=dc)


def _token_error(body: dict[str, Any], during: str) -> ProviderError:
    """Plain words for Zoho's token-endpoint errors (which mostly arrive as HTTP 200)."""
    error = str(body.get("error") or "")
    if error == "Access Denied" or "too many requests" in str(
        body.get("error_description", "")
    ).lower():
        return RateLimited("Zoho refused: too many token refreshes in a short time. "
                           "The run will try again in a minute.", retry_after=60.0)
    if error in ("invalid_client", "invalid_client_secret"):
        return AuthError("Zoho rejected the app's client id or secret: check the Zoho OAuth "
                         "settings, then reconnect.", detail=error)
    if error == "invalid_code":
        if during == "refresh":
            return AuthError("Zoho no longer accepts the saved authorisation (revoked, expired "
                             "or from another data centre): reconnect Zoho.", detail=error)
        return AuthError("Zoho did not accept the authorisation code (expired or already "
                         "used): connect again.", detail=error)
    if error == "invalid_redirect_uri":
        return ConfigurationError("Zoho rejected the redirect address: it must match the one "
                                  "registered for the app.", detail=error)
    return SourceUnavailable("Zoho's token service gave an unexpected answer.",
                             detail=error or "no access_token")



def token_call(http: HttpClient, accounts: str, grant_type: str, during: str,
               **params: str) -> dict[str, Any]:
    """POST to the token endpoint; Zoho reports most errors inside an HTTP 200 answer."""
    resp = token_request(http, f"{accounts}/oauth/v2/token", grant_type, **params)
    body = resp.json() if resp.body else None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"Zoho's token service answered HTTP {resp.status}.")
    if resp.status == 200 and body.get("access_token"):
        return body
    raise _token_error(body, during)


def exchange_code(callback: Callback, *, client_id: str, client_secret: str,
                  redirect_uri: str, http: HttpClient | None = None,
                  allow_loopback: bool = False, now: datetime | None = None
                  ) -> dict[str, dict[str, Any]]:
    """Redeem the code at the callback's accounts server: {"settings", "credentials"}."""
    http = http or HttpClient(host_policy(allow_loopback))
    body = token_call(http, callback.accounts_server, "authorization_code", "code",
                      client_id=client_id, client_secret=client_secret,
                      redirect_uri=redirect_uri, code=callback.code)
    if not body.get("refresh_token"):
        raise AuthError("Zoho granted no offline access (no refresh token): connect again.")
    api_domain = base_url(body.get("api_domain") or "https://" + DATA_CENTRES.get(
        callback.data_centre, DATA_CENTRES["us"])[1], API_HOSTS, "API domain",
        allow_loopback=allow_loopback)
    credentials = {"client_id": client_id, "client_secret": client_secret,
                   "refresh_token": body["refresh_token"], "access_token": body["access_token"]}
    return {
        "settings": {"data_centre": callback.data_centre,
                     "accounts_server": callback.accounts_server, "api_domain": api_domain},
        "credentials": with_expiry(credentials, body.get("expires_in") or 3600,
                                   now or datetime.now(UTC)),
    }


def refresh(http: HttpClient, accounts: str, creds: dict[str, Any], now: datetime
            ) -> dict[str, Any]:
    """A new access token for the (non-rotating) refresh token."""
    if not creds.get("refresh_token"):
        raise AuthError("No Zoho refresh token is saved: reconnect Zoho.")
    body = token_call(http, accounts, "refresh_token", "refresh",
                      refresh_token=creds["refresh_token"],
                      client_id=creds.get("client_id", ""),
                      client_secret=creds.get("client_secret", ""))
    return with_expiry(dict(creds, access_token=body["access_token"]),
                       body.get("expires_in") or 3600, now)


# ------------------------------------------------------------------- connect hooks


def settings_from_form(form: Mapping[str, str], allow_loopback: bool) -> dict[str, Any]:
    """The chosen data centre (+ a loopback accounts server for tests and the demo)."""
    dc = form.get("data_centre") or ""
    if dc not in dict(DATA_CENTRE_LABELS):
        raise FormInputError("data_centre", "Choose the data centre your Zoho account lives in.")
    settings: dict[str, Any] = {"data_centre": dc}
    accounts = loopback_base(form, "accounts_server", allow_loopback)
    if accounts:
        settings["accounts_server"] = accounts
    return settings


def display_name(settings: Mapping[str, Any]) -> str:
    """The organisation's name, else "United States data centre (zoho.com)"."""
    if settings.get("account_name"):
        return settings["account_name"]
    dc = settings.get("data_centre", "us")
    place, _, domain = dict(DATA_CENTRE_LABELS).get(dc, dc).partition(" (")
    return f"{place} data centre ({domain}" if domain else f"{place} data centre"


def authorize(settings: dict[str, Any], app: AppCredentials, redirect_uri: str,
              allow_loopback: bool) -> tuple[str, dict[str, Any]]:
    """The consent URL at the data centre's accounts server, and the pending state."""
    state = new_state()
    url = authorize_url(settings["data_centre"], app.client_id, redirect_uri, state,
                        accounts_server=settings.get("accounts_server"),
                        allow_loopback=allow_loopback)
    return url, {"data_centre": settings["data_centre"], "state": state}


def complete(params: Mapping[str, str], pending: dict[str, Any], app: AppCredentials,
             redirect_uri: str, http: HttpClient, allow_loopback: bool
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify the callback and redeem its code at the accounts server it names."""
    verified = verify_callback(dict(params), pending["state"], allow_loopback=allow_loopback)
    result = exchange_code(verified, client_id=app.client_id, client_secret=app.client_secret,
                           redirect_uri=redirect_uri, http=http, allow_loopback=allow_loopback)
    return result["settings"], result["credentials"]
