"""Magento connecting: the connect form (store address, store view, token or OAuth 1.0a
keys) and OAuth 1.0a signing by Authlib's client with an HMAC-SHA256 method registered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

from ..base import ConfigurationError, FormInputError, ProviderError
from ..forms import clean
from ..http import HostPolicy, parse_target

STORE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SIGNATURE_METHOD = "HMAC-SHA256"


def host_policy(allow_loopback: bool = False) -> HostPolicy:
    """Any https store whose host resolves only to public addresses (SSRF guard)."""
    return HostPolicy(public_https=True, allow_loopback=allow_loopback)


def store_base_url(value: Any) -> str:
    """The store address rebuilt from its strictly parsed parts (http.parse_target)."""
    url = str(value or "").strip().rstrip("/")
    if "?" in url or "#" in url:
        raise ConfigurationError("The store address must not contain '?' or '#'.")
    try:
        target = parse_target(url)
    except ConfigurationError as exc:
        raise ConfigurationError(
            "The store address must be a full URL like https://shop.example.com.",
            detail=exc.reason) from None
    url = target.url
    if url.endswith("/rest"):
        url = url[: -len("/rest")]
    return url


# ----------------------------------------------------------------------- OAuth 1.0a


def _rfc3986(value: str) -> str:
    return quote(value, safe="-._~")


def encode_query(params: list[tuple[str, str]]) -> str:
    """Percent-encode a query the way Magento's signature check decodes it (rawurldecode):
    spaces as %20, never '+', or signed timestamps would not match."""
    return "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in params)


@cache
def _signer_class():
    """Authlib's OAuth 1.0a client auth, timestamped by our clock (Magento refuses skewed
    timestamps, so tests move the clock), with HMAC-SHA256 registered. Built on first use:
    only Magento needs Authlib's OAuth 1 (about 2 MB in every work horse otherwise)."""
    from authlib.oauth1 import ClientAuth
    from authlib.oauth1.rfc5849.signature import generate_signature_base_string
    from authlib.oauth1.rfc5849.util import escape

    def sign_hmac_sha256(client: ClientAuth, request) -> str:
        """RFC 5849's HMAC signature over the base string, with SHA-256 (Magento's check)."""
        base = generate_signature_base_string(request)
        key = f"{escape(client.client_secret or '')}&{escape(client.token_secret or '')}"
        return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256)
                                .digest()).decode()

    class Signer(ClientAuth):
        SIGNATURE_METHODS = dict(ClientAuth.SIGNATURE_METHODS)

        def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.clock = clock

        def get_oauth_params(self, nonce, timestamp):
            """Authlib's parameters with the timestamp from `clock`."""
            return super().get_oauth_params(nonce, str(int(self.clock())))

    Signer.register_signature_method(SIGNATURE_METHOD, sign_hmac_sha256)
    return Signer


def oauth1_header(
    method: str,
    url: str,
    credentials: Mapping[str, Any],
    *,
    token: str | None = None,
    token_secret: str = "",
    clock: Callable[[], float] = time.time,
) -> str:
    """The `Authorization: OAuth …` value signing `method url` with HMAC-SHA256; the
    query's parameters are part of the signature."""
    signer = _signer_class()(credentials["consumer_key"], credentials["consumer_secret"],
                             token=token, token_secret=token_secret,
                             signature_method=SIGNATURE_METHOD, clock=clock)
    _, headers, _ = signer.sign(method, url, {}, b"")
    return headers["Authorization"]


# ------------------------------------------------------------------- connect hooks


def settings_from_form(form: Mapping[str, str], allow_loopback: bool
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Store address (https, allowed host), optional store view, and the integration's
    access token (plus consumer key/secret and token secret for OAuth 1.0a)."""
    base = clean(form, "base_url", 500).rstrip("/")
    if not base or "://" not in base:
        raise FormInputError("base_url", "Enter the store's address, like "
                                         "https://shop.example.com.")
    try:
        target = parse_target(base)
    except ProviderError as exc:
        raise FormInputError("base_url", "Enter the store's address, like "
                                         f"https://shop.example.com. {exc.reason}") from None
    if target.scheme != "https" and not allow_loopback:
        raise FormInputError("base_url", "The store's address must start with https://.")
    if "?" in target.tail:
        raise FormInputError("base_url", "The store's address must not contain '?' or '#'.")
    try:
        host_policy(allow_loopback).check(target.url)
    except ProviderError as exc:
        raise FormInputError("base_url", exc.reason) from None
    store = clean(form, "store_code", 64)
    if store and not STORE_CODE_RE.match(store):
        raise FormInputError("store_code", "A store view code is lower-case letters, digits "
                                           "and _, like default.")
    mode = form.get("auth_mode") or "bearer"
    if mode not in ("bearer", "oauth1"):
        raise FormInputError("auth_mode", "Choose how Tributary signs in to the store.")
    settings: dict[str, Any] = {"base_url": target.url, "auth_mode": mode}
    if store:
        settings["store_code"] = store
    token = clean(form, "access_token", 500)
    if not token:
        raise FormInputError("access_token", "Paste the integration's Access Token.")
    credentials = {"access_token": token}
    if mode == "oauth1":
        for name, label in (("consumer_key", "Consumer Key"),
                            ("consumer_secret", "Consumer Secret"),
                            ("access_token_secret", "Access Token Secret")):
            value = clean(form, name, 500)
            if not value:
                raise FormInputError(name, f"Paste the integration's {label}.")
            credentials[name] = value
    return settings, credentials


def display_name(settings: Mapping[str, Any]) -> str:
    """"Store name (host)", else the host with its store view."""
    name = settings.get("account_name") or ""
    host = urlsplit(settings.get("base_url", "")).netloc
    store = settings.get("store_code")
    if name:
        return f"{name} ({host})"
    return f"{host} (store view {store})" if store else host
