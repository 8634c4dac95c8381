"""What the provider classes share: the constructor's common part and the credential
hand-back around token refreshes (see the Provider protocol in base.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ClassVar

from .http import HostPolicy, HttpClient

CredentialsCallback = Callable[[dict[str, Any]], None]
RefreshLock = Callable[[], AbstractContextManager]


class ProviderBase(ABC):
    """Base of the four provider classes.

    `refresh_lock()` is the caller's lock around a token refresh (a Redis lock in the
    engine). Entering it may return the credentials stored right now: when another run
    refreshed while this one waited, they carry a different access token, and this client
    adopts them instead of spending a (possibly single-use) refresh token a second time.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""

    def __init__(
        self,
        settings: dict[str, Any],
        credentials: dict[str, Any],
        *,
        http: HttpClient | None = None,
        on_credentials: CredentialsCallback | None = None,
        allow_loopback: bool = False,
        refresh_lock: RefreshLock | None = None,
    ):
        self.settings = dict(settings)
        self.credentials = dict(credentials)
        self.allow_loopback = allow_loopback
        self.http = http or HttpClient(self.host_policy(allow_loopback))
        self.on_credentials = on_credentials
        self.refresh_lock = refresh_lock

    @staticmethod
    @abstractmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """The hosts this provider may call (PROVIDERS.md "Shared rules")."""

    @contextmanager
    def refreshing(self) -> Iterator[bool]:
        """Hold the refresh lock; yields True when newer stored credentials were adopted
        (skip the refresh), False when this client must refresh itself."""
        with self.refresh_lock() if self.refresh_lock else nullcontext() as latest:
            token = self.credentials.get("access_token")
            newer = (
                isinstance(latest, dict)
                and bool(latest.get("access_token"))
                and latest.get("access_token") != token
            )
            if newer:
                self.credentials = dict(latest)
            yield newer

    def hand_back(self, credentials: dict[str, Any]) -> None:
        """Keep refreshed credentials and give them to the caller to store (encrypted)."""
        self.credentials = dict(credentials)
        if self.on_credentials:
            self.on_credentials(dict(credentials))
