"""The provider base: what every source system offers the app, connecting and reading.

A provider knows HTTP and its API. It never touches the database, Flask globals or the
mapping: settings and credentials come in, plain data goes out, and refreshed or rotated
credentials are handed back through `on_credentials` for the caller to persist encrypted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from .errors import (
    AuthError,
    ConfigurationError,
    FormInputError,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    SchemaError,
    SourceUnavailable,
)
from .http import HostPolicy, HttpClient

__all__ = [
    "AppCredentials", "AuthError", "ConfigurationError", "Field", "FormConnected",
    "FormInputError", "Group", "OutcomeUnknown", "Page", "Provider", "ProviderError",
    "RateLimited", "Record", "RecordCount", "SchemaError", "Source", "SourceUnavailable",
    "iso", "parse_time",
]

# not_subscribed: the source says the person has not agreed to marketing (Magento
# is_subscribed false, Shopify not_subscribed); unknown: the source says nothing.
ConsentState = Literal["subscribed", "opted_out", "not_subscribed", "unknown"]

# Field types a provider reports, normalised (the mapping page warns on poor fits).
FIELD_TYPES = (
    "text", "textarea", "email", "number", "boolean", "date", "datetime", "phone",
    "country", "currency", "url", "choice", "multi_choice", "other",
)


@dataclass(frozen=True, slots=True)
class Group:
    """Kind of record the provider has (contacts, leads, customers)."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Source:
    """Which records of a group to import (all, a tag, a view, a customer group…)."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Field:
    """A source field: its name in the provider, label, normalised type, allowed values."""

    name: str
    label: str
    type: str = "text"
    custom: bool = False
    allowed_values: tuple[str, ...] = ()


@dataclass(slots=True)
class Record:
    """One person, normalised. `fields` holds every other field by its source name."""

    source_id: str
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    country: str | None = None
    consent: ConsentState = "unknown"
    consent_at: datetime | None = None  # the source's timestamp of the consent state
    updated_at: datetime | None = None  # aware
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Page:
    """A page of records and the cursor that resumes right after it.

    `cursor` is JSON-serialisable and opaque to the caller; passing it back to
    `iter_pages(..., cursor=...)` continues with the next page. `high_water` is the
    largest updated_at seen so far in this walk (the next incremental `since`).
    """

    records: list[Record]
    cursor: dict[str, Any] | None
    high_water: datetime | None
    done: bool = False


@dataclass(frozen=True, slots=True)
class RecordCount:
    """How many records a source holds by the source's own count (with or without an
    email). `exact` is False when the source only vouches for a lower bound."""

    total: int
    exact: bool = True


# ------------------------------------------------------------------------ timestamps


def parse_time(value: Any) -> datetime | None:
    """A provider timestamp (ISO 8601 with Z or +0000, or 'YYYY-MM-DD HH:MM:SS' meaning
    UTC) as an aware datetime keeping the source's offset; None when empty or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def iso(value: datetime) -> str:
    """An aware (or naive-as-UTC) datetime as ISO text in UTC, whole seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------- the base class

CredentialsCallback = Callable[[dict[str, Any]], None]
RefreshLock = Callable[[], AbstractContextManager]
ConnectKind = Literal["form", "oauth"]


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """The OAuth app Tributary signs in with (client id and secret) at one provider."""

    client_id: str
    client_secret: str
    source: str = ""  # "settings" or "environment"


class Provider(ABC):
    """One source system: its metadata, how an account is connected, and the read side.

    Constructed as `Cls(settings, credentials, *, http=None, on_credentials=None,
    allow_loopback=False, refresh_lock=None)`: `settings` are the non-secret connection
    settings, `credentials` the secrets. `http` is an `HttpClient` (one with the provider's
    host allow-list is built when omitted); `allow_loopback` admits http://127.0.0.1:<port>
    bases (tests, demo). Refreshed or rotated credentials go to `on_credentials`;
    `refresh_lock()` is held around a refresh and may return the credentials stored
    meanwhile (adopted when their access token differs, so a single-use refresh token is
    never spent twice).
    """

    name: ClassVar[str] = ""  # registry key, also the connect template's name
    label: ClassVar[str] = ""  # the one spelling shown everywhere
    account_word: ClassVar[str] = ""  # what one connected account is: "shop", "org"…
    # How an account connects: "form" (credentials pasted), "oauth" (a sign-in), or both.
    connect_kinds: ClassVar[frozenset[ConnectKind]] = frozenset()
    # In words for the provider's page: (group, what its sources are), consent, fields.
    group_words: ClassVar[tuple[tuple[str, str], ...]] = ()
    consent_words: ClassVar[str] = ""
    field_words: ClassVar[str] = ""
    # Connect-form inputs that may be shown back after an error (never secrets).
    form_keys: ClassVar[frozenset[str]] = frozenset()

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

    # ------------------------------------------------------------------ hosts

    @staticmethod
    @abstractmethod
    def host_policy(allow_loopback: bool = False) -> HostPolicy:
        """The hosts this provider may call: its own domains only, or any public https
        host for self-hosted stores; loopback only when `allow_loopback`."""

    @classmethod
    @abstractmethod
    def sign_in_origins(cls) -> list[str]:
        """Origins of the provider's sign-in pages (for the page's CSP form-action); empty
        for providers connected with a form."""

    # ------------------------------------------------------------------ connecting

    @classmethod
    @abstractmethod
    def settings_from_form(cls, form: Mapping[str, str], *, kind: ConnectKind = "form",
                           allow_loopback: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate a connect form of `kind`: (settings, credentials) to test and save, or
        for a sign-in the settings `authorize` needs and no credentials. Raises
        FormInputError naming the input at fault."""

    @classmethod
    @abstractmethod
    def identity(cls, settings: Mapping[str, Any]) -> str:
        """Which account these settings point at (shop, store, org…): one row per account,
        so connecting a known account again updates its row."""

    @classmethod
    @abstractmethod
    def display_name(cls, settings: Mapping[str, Any]) -> str:
        """The account as people know it: the provider-given `account_name` beside the
        address, else the address alone."""

    @classmethod
    @abstractmethod
    def authorize(cls, settings: dict[str, Any], app: AppCredentials, redirect_uri: str, *,
                  allow_loopback: bool = False) -> tuple[str, dict[str, Any]]:
        """Start a sign-in: (the provider's authorize URL, what to keep until the callback,
        including `state`). Form providers raise ConfigurationError."""

    @classmethod
    @abstractmethod
    def complete(cls, params: Mapping[str, str], pending: dict[str, Any],
                 app: AppCredentials, redirect_uri: str, *, http: HttpClient,
                 allow_loopback: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Finish a sign-in: verify the callback against `pending`, trade the code for
        tokens; returns (settings, credentials). Form providers raise ConfigurationError."""

    # ------------------------------------------------------------------ reading

    @abstractmethod
    def test_connection(self) -> None:
        """Return quietly if the connection works, else raise a ProviderError."""

    @abstractmethod
    def account_name(self) -> str | None:
        """The account's own name at the provider (shop or org name); None when it has
        none or the grant may not read it."""

    @abstractmethod
    def groups(self) -> list[Group]:
        """The kinds of records this provider offers (contacts, leads, customers)."""

    @abstractmethod
    def sources(self, group: str) -> list[Source]:
        """Which records of `group` may be imported: all, a tag, a view, a customer group."""

    @abstractmethod
    def discover_fields(self, group: str) -> list[Field]:
        """The fields records of `group` carry, standard and custom, with their types."""

    @abstractmethod
    def iter_pages(
        self,
        group: str,
        source: str,
        *,
        since: datetime | None = None,
        cursor: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> Iterator[Page]:
        """Stream pages of records changed at or after `since` (all when None), resuming
        after `cursor` when given. `fields` names extra source fields to fetch; a name the
        source no longer has raises SchemaError."""

    @abstractmethod
    def count_records(
        self, group: str, source: str, *, since: datetime | None = None
    ) -> RecordCount | None:
        """The source's own count of the records `iter_pages(group, source, since=since)`
        walks, from one cheap request; None when the API cannot count that selection."""

    # ------------------------------------------------------------------ credentials

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


class FormConnected(Provider):
    """A provider connected by pasting credentials into a form (no sign-in flow)."""

    connect_kinds: ClassVar[frozenset[ConnectKind]] = frozenset({"form"})

    @classmethod
    def sign_in_origins(cls) -> list[str]:
        """No sign-in pages: the form posts to Tributary itself."""
        return []

    @classmethod
    def authorize(cls, settings, app, redirect_uri, *, allow_loopback=False):
        """Refused: this provider connects with a form, not by signing in."""
        raise ConfigurationError(f"{cls.label} connects with a form, not by signing in.")

    @classmethod
    def complete(cls, params, pending, app, redirect_uri, *, http, allow_loopback=False):
        """Refused: this provider connects with a form, not by signing in."""
        raise ConfigurationError(f"{cls.label} connects with a form, not by signing in.")
