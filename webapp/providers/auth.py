"""One authorized-request path for providers with OAuth 2 access tokens, and the Authlib
helpers the sign-in flows share.

`TokenAuth.authorized(send)` refreshes first when the access token is missing or about to
expire (`expires_at`), refreshes once more after an auth failure, always under the
caller's refresh lock, and hands the new credentials back to be stored. Each provider only
says how it renews (`renew`) and what an auth failure means for it (`check_auth_failure`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .base import iso, parse_time
from .http import HttpClient, Response

EXPIRY_SKEW = 60.0  # refresh at most this many seconds before the access token expires
EXPIRY_SKEW_SHARE = 0.1  # …and at most this share of its lifetime (short-lived tokens)
DEFAULT_LIFETIME = 3600.0
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json"}


def expires_at(credentials: Mapping[str, Any]) -> datetime | None:
    """When the access token expires: `expires_at` (ISO text), or the epoch seconds of
    `access_token_expires_at` that connections saved before kept."""
    for key in ("expires_at", "access_token_expires_at"):
        value = credentials.get(key)
        if value is None or value == "" or isinstance(value, bool):
            continue
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            try:
                return datetime.fromtimestamp(float(value), UTC)
            except (OverflowError, OSError, ValueError):
                return None
        return parse_time(value)
    return None


def with_expiry(credentials: dict[str, Any], expires_in: Any, now: datetime) -> dict[str, Any]:
    """`credentials` with `expires_at` (and the lifetime) from a token answer's
    `expires_in`; the older epoch key is dropped. No `expires_in`: no expiry kept."""
    out = dict(credentials)
    out.pop("access_token_expires_at", None)
    try:
        lifetime = int(expires_in) if expires_in not in (None, "") else None
    except (TypeError, ValueError):
        lifetime = None
    if lifetime is None:
        out.pop("expires_at", None)
        return out
    out["expires_at"] = iso(now + timedelta(seconds=lifetime))
    out["access_token_lifetime"] = lifetime
    return out


def new_state() -> str:
    """An unguessable OAuth `state` (nonce) to keep until the callback."""
    from authlib.common.security import generate_token

    return generate_token(32)


def new_verifier() -> str:
    """A fresh PKCE code verifier (kept server-side; Authlib sends its S256 challenge)."""
    from authlib.common.security import generate_token

    return generate_token(64)


def authorize_url(endpoint: str, *, client_id: str, redirect_uri: str, scope: str,
                  state: str, code_verifier: str | None = None, **extra: str) -> str:
    """The authorization-code request URL built by Authlib's OAuth 2 client (with a PKCE
    S256 challenge when `code_verifier` is given); spaces as %20, which every provider
    reads (a literal '+' would have been encoded as %2B)."""
    from authlib.oauth2.client import OAuth2Client  # connect time only (~4 MB per process)

    client = OAuth2Client(None, client_id=client_id, redirect_uri=redirect_uri, scope=scope,
                          code_challenge_method="S256" if code_verifier else None)
    url, _ = client.create_authorization_url(endpoint, state=state,
                                             code_verifier=code_verifier, **extra)
    return url.replace("+", "%20")


def token_request(http: HttpClient, url: str, grant_type: str, **params: str) -> Response:
    """POST an OAuth 2 token request (form body prepared by Authlib) through our client."""
    from authlib.oauth2.rfc6749.parameters import prepare_token_request

    body = prepare_token_request(grant_type, **params)
    return http.request("POST", url, data=body, headers=dict(FORM_HEADERS))


class TokenAuth:
    """Mixin for Provider classes whose requests carry an OAuth 2 access token."""

    credentials: dict[str, Any]
    refreshing: Callable
    hand_back: Callable[[dict[str, Any]], None]

    def now(self) -> datetime:
        """The current time (tests replace it to age tokens)."""
        return datetime.now(UTC)

    def can_refresh(self) -> bool:
        """Whether a refresh may be tried (the provider raises its own words when the
        saved credentials cannot renew)."""
        return True

    def renew(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Trade the refresh token in `credentials` for new ones (the token endpoint call)."""
        raise NotImplementedError

    def check_auth_failure(self, resp: Response) -> None:
        """Raise when an auth failure is not one a refresh can mend (a missing scope)."""

    def _expiry_margin(self) -> float:
        """Seconds before expiry to refresh: min(60 s, 10 % of the token's lifetime), so a
        token that lives a minute is not refreshed before every request."""
        try:
            lifetime = float(self.credentials.get("access_token_lifetime") or DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        return min(EXPIRY_SKEW, max(0.0, lifetime) * EXPIRY_SKEW_SHARE)

    def token_stale(self) -> bool:
        """No access token, or one that expires within the margin."""
        if not self.credentials.get("access_token"):
            return True
        at = expires_at(self.credentials)
        return at is not None and self.now() >= at - timedelta(seconds=self._expiry_margin())

    def refresh(self) -> None:
        """Renew under the refresh lock, unless another run stored newer credentials while
        this one waited (then those are adopted); the new ones are handed back."""
        with self.refreshing() as adopted:
            if adopted:
                return
            self.hand_back(self.renew(dict(self.credentials)))

    def authorized(self, send: Callable[[str], Response]) -> Response:
        """`send(access_token)` with a proactive refresh and at most one refresh after a
        401; the last answer is returned for the provider to read (a 401 included)."""
        refreshed = False
        if self.token_stale() and self.can_refresh():
            self.refresh()
            refreshed = True
        while True:
            resp = send(str(self.credentials.get("access_token") or ""))
            if resp.status != 401:
                return resp
            self.check_auth_failure(resp)
            if refreshed or not self.can_refresh():
                return resp
            self.refresh()
            refreshed = True
