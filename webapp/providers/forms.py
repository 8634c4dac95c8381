"""Reading connect forms: trimmed inputs and the loopback base-URL override (tests, demo)."""

from __future__ import annotations

from collections.abc import Mapping

from .base import FormInputError, ProviderError
from .http import parse_target


def clean(form: Mapping[str, str], name: str, limit: int = 4000) -> str:
    """The input `name`, trimmed and cut to `limit` characters ("" when absent)."""
    return (form.get(name) or "").strip()[:limit]


def loopback_base(form: Mapping[str, str], name: str, allow_loopback: bool) -> str | None:
    """The advanced "API base URL" override (tests and the demo only): a loopback
    address, checked by the same strict grammar as every outbound address."""
    if not allow_loopback:
        return None
    raw = clean(form, name, 500).rstrip("/")
    if not raw:
        return None
    try:
        target = parse_target(raw)
    except ProviderError:
        target = None
    if target is None or target.host != "127.0.0.1":
        raise FormInputError(name, "Enter a full address such as http://127.0.0.1:8001, or "
                                   "leave it empty.")
    return target.url


def ascii_secrets(credentials: Mapping[str, str]) -> None:
    """Secrets travel in HTTP headers: printable ASCII only, else FormInputError."""
    for name, value in credentials.items():
        if not (value.isascii() and value.isprintable()):
            raise FormInputError(name, "That does not look like a token or key: paste it "
                                       "again (letters, digits and punctuation only).")
