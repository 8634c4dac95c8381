"""Salesforce connecting: login and instance hosts, the OAuth 2 web-server flow with PKCE
(Authlib builds the authorize URL and token bodies), the signed token answer, refresh."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..auth import authorize_url as oauth2_authorize_url
from ..auth import new_state, new_verifier, token_request
from ..base import (
    AppCredentials,
    AuthError,
    ConfigurationError,
    FormInputError,
    SourceUnavailable,
)
from ..forms import clean, loopback_base
from ..http import HostPolicy, HttpClient, parse_target, valid_hostname

log = logging.getLogger(__name__)

API_VERSION = "v62.0"
SCOPE = "api refresh_token"
LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
HOST_PATTERNS = ("*.salesforce.com", "*.force.com")
# A My Domain login host: name.my.salesforce.com or name--box.sandbox.my.salesforce.com.
MY_DOMAIN_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.sandbox)?\.my\.salesforce\.com")
ENVIRONMENTS = {"production": "login.salesforce.com", "sandbox": "test.salesforce.com"}


def host_policy(allow_loopback: bool = False) -> HostPolicy:
    """The outbound allow-list: Salesforce's own domains (plus loopback for tests)."""
    return HostPolicy(HOST_PATTERNS, allow_loopback=allow_loopback)


def _base(value: str, what: str, allow_loopback: bool) -> tuple[str, str]:
    """Scheme, host (and a loopback port) only, by the strict grammar of http.parse_target."""
    text = (value or "").strip().rstrip("/")
    if not text:
        raise ConfigurationError(f"The Salesforce {what} is missing.")
    if "://" not in text:
        text = "https://" + text
    try:
        target = parse_target(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"The Salesforce {what} must be a plain https host name.",
                                 detail=exc.reason) from None
    loopback = allow_loopback and target.host == "127.0.0.1"
    if target.tail not in ("", "/") or (not loopback and (
            target.scheme != "https" or target.port != 443)):
        raise ConfigurationError(f"The Salesforce {what} must be a plain https host name.")
    return target.base, target.host


def login_base(login_host: str, *, allow_loopback: bool = False) -> str:
    """https://login.salesforce.com (production), test.salesforce.com (sandbox) or a
    My Domain host; anything else is refused before any request is made."""
    base, host = _base(login_host, "login host", allow_loopback)
    loopback = allow_loopback and host == "127.0.0.1"
    if loopback or host in LOGIN_HOSTS or MY_DOMAIN_RE.fullmatch(host):
        return base
    raise ConfigurationError(
        f"{host} is not a Salesforce login host: use login.salesforce.com, "
        "test.salesforce.com (sandbox) or your My Domain (name.my.salesforce.com)."
    )


def instance_base(instance_url: str, *, allow_loopback: bool = False) -> str:
    """The org's API host as the token endpoint reported it, checked against the allow-list."""
    base, _ = _base(instance_url, "instance URL", allow_loopback)
    host_policy(allow_loopback).check(base)
    return base



def make_pkce() -> tuple[str, str]:
    """A fresh PKCE pair: (code_verifier to keep server-side, S256 code_challenge to send)."""
    verifier = new_verifier()
    from authlib.oauth2.rfc7636 import create_s256_code_challenge  # connect time only

    return verifier, create_s256_code_challenge(verifier)


def authorize_url(
    login_host: str, client_id: str, redirect_uri: str, state: str, code_challenge: str,
    *, allow_loopback: bool = False,
) -> str:
    """Where to send the user to log in (production or sandbox login host)."""
    base = login_base(login_host, allow_loopback=allow_loopback)
    return oauth2_authorize_url(f"{base}/services/oauth2/authorize", client_id=client_id,
                                redirect_uri=redirect_uri, scope=SCOPE, state=state,
                                code_challenge=code_challenge, code_challenge_method="S256")


def verify_callback(params: Mapping[str, str], expected_state: str) -> str:
    """Check the callback's `state` and errors; return the authorization code."""
    state = params.get("state") or ""
    if not expected_state or not hmac.compare_digest(state, expected_state):
        raise AuthError("The Salesforce sign-in answer does not belong to this session; "
                        "please start connecting again.")
    error = params.get("error")
    if error:
        if error == "access_denied":
            raise AuthError("Access was declined on the Salesforce sign-in page.")
        code = error if re.fullmatch(r"[a-z_]{1,40}", error) else "unexpected answer"
        raise AuthError(f"Salesforce did not grant access ({code}).",
                        detail=params.get("error_description", ""))
    code = params.get("code")
    if not code:
        raise AuthError("The Salesforce sign-in answer carried no authorization code.")
    return code


def exchange_code(
    login_host: str, client_id: str, client_secret: str, code: str, redirect_uri: str,
    code_verifier: str, *, http: HttpClient | None = None, allow_loopback: bool = False,
) -> dict[str, dict[str, Any]]:
    """Trade the callback's code (plus the PKCE verifier) for tokens; returns
    {"settings": {...}, "credentials": {...}} ready to store on the integration."""
    login = login_base(login_host, allow_loopback=allow_loopback)
    http = http or HttpClient(host_policy(allow_loopback))
    payload = _token_call(http, login, "authorization_code", code=code, client_id=client_id,
                          client_secret=client_secret, redirect_uri=redirect_uri,
                          code_verifier=code_verifier)
    _check_signature(payload, client_secret)
    if not payload.get("refresh_token"):
        raise ConfigurationError("Salesforce gave no refresh token: the connected app must "
                                 "allow the 'refresh_token' scope.")
    ident = urlsplit(str(payload.get("id", ""))).path.strip("/").split("/")
    settings = {
        "login_host": login,
        "instance_url": instance_base(payload.get("instance_url", ""),
                                      allow_loopback=allow_loopback),
        "api_version": API_VERSION,
        "org_id": ident[-2] if len(ident) >= 3 else "",
        "user_id": ident[-1] if len(ident) >= 3 else "",
    }
    credentials = {
        "client_id": client_id, "client_secret": client_secret,
        "access_token": payload["access_token"], "refresh_token": payload["refresh_token"],
    }
    return {"settings": settings, "credentials": credentials}


def _check_signature(payload: dict, client_secret: str) -> None:
    """Salesforce signs id + issued_at with the client secret: proof the answer is genuine."""
    sig, ident, issued = payload.get("signature"), payload.get("id"), payload.get("issued_at")
    if not (sig and ident and issued):
        return
    mac = hmac.new(client_secret.encode(), f"{ident}{issued}".encode(), hashlib.sha256)
    if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), str(sig)):
        raise AuthError("Salesforce's sign-in answer failed its signature check.")


def _token_call(http: HttpClient, login: str, grant_type: str, **params: str) -> dict[str, Any]:
    """POST to the token endpoint; map OAuth errors to typed errors (never echo secrets)."""
    resp = token_request(http, f"{login}/services/oauth2/token", grant_type, **params)
    body = resp.json() if resp.body else None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"Salesforce's sign-in service answered HTTP {resp.status} "
                                "without a usable body.")
    if resp.status == 200 and body.get("access_token"):
        return body
    error, desc = str(body.get("error", "")), str(body.get("error_description", ""))
    if error == "invalid_grant":
        if desc == "invalid code verifier":
            raise AuthError("Salesforce refused the sign-in: the PKCE code verifier did not "
                            "match. Please connect again.", detail=desc)
        raise AuthError("Salesforce no longer accepts this connection's authorisation "
                        "(expired or revoked). Reconnect the integration.", detail=desc)
    if error in {"invalid_client_id", "invalid_client"}:
        raise ConfigurationError("Salesforce did not accept the connected app's client id or "
                                 "secret.", detail=desc)
    if error == "redirect_uri_mismatch":
        raise ConfigurationError("The callback address is not registered on the Salesforce "
                                 "connected app.", detail=desc)
    raise AuthError(f"Salesforce refused the sign-in ({error or resp.status}).", detail=desc)




def refresh(http: HttpClient, login: str, creds: dict[str, Any]) -> tuple[dict, str | None]:
    """Renew the session; returns (new credentials, the instance URL when it moved)."""
    refresh_token = creds.get("refresh_token")
    if not refresh_token:
        raise AuthError("The Salesforce session ended and this connection has no refresh "
                        "token. Reconnect the integration.")
    payload = _token_call(http, login, "refresh_token", refresh_token=refresh_token,
                          client_id=creds.get("client_id", ""),
                          client_secret=creds.get("client_secret", ""))
    new = dict(creds, access_token=payload["access_token"])
    if payload.get("refresh_token"):
        new["refresh_token"] = payload["refresh_token"]
    log.info("Salesforce session renewed%s",
             " (refresh token rotated)" if payload.get("refresh_token") else "")
    return new, payload.get("instance_url")


# ------------------------------------------------------------------- connect hooks


def login_from_form(form: Mapping[str, str], allow_loopback: bool) -> str:
    """Production, sandbox, a My Domain login host, or a loopback override (tests)."""
    override = loopback_base(form, "login_host", allow_loopback)
    if override:
        return override
    env = form.get("environment") or "production"
    if env == "my_domain":
        domain = clean(form, "my_domain", 255).lower()
        domain = domain.removeprefix("https://").rstrip("/")
        if not (valid_hostname(domain) and MY_DOMAIN_RE.fullmatch(domain)):
            raise FormInputError("my_domain", "Enter your My Domain login address, like "
                                              "acme.my.salesforce.com.")
        return domain
    if env not in ENVIRONMENTS:
        raise FormInputError("environment", "Choose production or sandbox.")
    return ENVIRONMENTS[env]


def display_name(settings: Mapping[str, Any]) -> str:
    """The org's name (else its host), marked "(sandbox)" for sandboxes."""
    name = settings.get("account_name") or ""
    host = urlsplit(settings.get("instance_url", "")).netloc
    sandbox = "test.salesforce.com" in settings.get("login_host", "")
    return f"{name or host} (sandbox)" if sandbox else name or host


def authorize(settings: dict[str, Any], app: AppCredentials, redirect_uri: str,
              allow_loopback: bool) -> tuple[str, dict[str, Any]]:
    """The login URL with a PKCE challenge; the verifier stays in the pending sign-in."""
    state = new_state()
    verifier, challenge = make_pkce()
    url = authorize_url(settings["login_host"], app.client_id, redirect_uri, state, challenge,
                        allow_loopback=allow_loopback)
    return url, {"login_host": settings["login_host"], "verifier": verifier, "state": state}


def complete(params: Mapping[str, str], pending: dict[str, Any], app: AppCredentials,
             redirect_uri: str, http: HttpClient, allow_loopback: bool
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify the callback's state, trade the code and verifier for tokens."""
    code = verify_callback(params, pending["state"])
    result = exchange_code(pending["login_host"], app.client_id, app.client_secret, code,
                           redirect_uri, pending["verifier"], http=http,
                           allow_loopback=allow_loopback)
    return result["settings"], result["credentials"]
