"""The provider protocol: what every source system client offers the import engine.

A provider knows HTTP and its API. It never touches the database, Flask globals or the
mapping: settings and credentials come in, plain data goes out, and refreshed or rotated
credentials are handed back through `on_credentials` for the caller to persist encrypted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

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


# ---------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base of typed provider errors; `reason` is plain words for the pages."""

    kind: ClassVar[str] = "error"

    def __init__(self, reason: str, *, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class AuthError(ProviderError):
    """Credentials rejected and not refreshable: the integration needs reconnecting."""

    kind = "auth"


class RateLimited(ProviderError):
    """Rate limited beyond the retry budget (or a daily quota hit)."""

    kind = "rate_limited"

    def __init__(self, reason: str, *, retry_after: float | None = None, detail: str = ""):
        super().__init__(reason, detail=detail)
        self.retry_after = retry_after


class SourceUnavailable(ProviderError):
    """The provider could not be reached or kept failing (5xx, timeouts, bad answers)."""

    kind = "unavailable"


class OutcomeUnknown(SourceUnavailable):
    """A request that must not be repeated (a token refresh, a write) may have been processed
    at the provider: the run stops here rather than send anything else that depends on it."""


class ConfigurationError(ProviderError):
    """Settings are wrong: unknown shop, wrong data centre, host not allowed, missing scope."""

    kind = "configuration"


class SchemaError(ProviderError):
    """A requested field no longer exists at the source."""

    kind = "schema"

    def __init__(self, reason: str, *, missing: tuple[str, ...] = (), detail: str = ""):
        super().__init__(reason, detail=detail)
        self.missing = missing


# -------------------------------------------------------------------------- protocol

CredentialsCallback = Callable[[dict[str, Any]], None]


class Provider(Protocol):
    """What every provider module's class implements (they derive from common.ProviderBase).

    Constructed as `Cls(settings, credentials, *, http=None, on_credentials=None,
    allow_loopback=False, refresh_lock=None)`: `settings` are the non-secret connection
    settings (base URL, shop, data centre…), `credentials` the secrets (tokens, client
    secrets). `http` is an `HttpClient` (one with the provider's host allow-list is built
    when omitted); `allow_loopback` admits http://127.0.0.1:<port> bases (tests, demo).
    Refreshed or rotated credentials go to `on_credentials`; `refresh_lock()` is held around
    a refresh and may return the credentials stored meanwhile (adopted when newer).
    """

    name: ClassVar[str]  # registry key: "shopify", "zoho", "magento", "salesforce"
    label: ClassVar[str]

    credentials: dict[str, Any]  # current credentials (after any refresh)

    def test_connection(self) -> None:
        """Return quietly if the connection works, else raise a ProviderError."""

    def groups(self) -> list[Group]: ...

    def sources(self, group: str) -> list[Source]: ...

    def discover_fields(self, group: str) -> list[Field]: ...

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

    def count_records(
        self, group: str, source: str, *, since: datetime | None = None
    ) -> RecordCount | None:
        """The source's own count of the records `iter_pages(group, source, since=since)`
        walks, from one cheap request; None when the API cannot count that selection."""
