"""Typed provider errors: what went wrong in plain words (`reason`) and a kind the engine
acts on (reconnect, retry later, fix the settings)."""

from __future__ import annotations

from typing import ClassVar


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


class FormInputError(ConfigurationError):
    """A connect-form input breaks a rule; `field` names the input (shown beside it)."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
