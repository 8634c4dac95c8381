"""What the source offers the set-up and mapping pages, asked through the provider with
connect-time timeouts: groups, sources, fields, a few sample records, consent counts.

Answers are cached for two minutes per integration and credentials (in `app.extensions`, so
each app has its own and a new one starts empty), so the live mapping clicks don't call the
provider each time. Errors become `SourceTrouble` in plain words.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from flask import current_app

from ..imports import credentials, runs
from ..imports.rules import record_consent, source_value
from ..models import Integration, RecurringImport
from ..providers import label_of
from ..providers.base import AuthError, Field, ProviderError
from . import mapping as rules
from .integrations import interactive_http

CACHE_SECONDS = 120
CACHE_KEY = "tributary.provider_answers"  # app.extensions[CACHE_KEY]: {key: (until, answer)}
SAMPLE_SIZE = 5
CONSENT_SAMPLE = 100
# Sources whose records say whether a person subscribed to marketing; for the CRMs the team
# picks a boolean source field that does. Stores default to "only subscribed".
STORES = ("shopify", "magento")


class SourceTrouble(Exception):
    """The provider could not answer; `message` is plain words, `reconnect` says the
    integration needs reconnecting."""

    def __init__(self, message: str, reconnect: bool = False):
        super().__init__(message)
        self.message = message
        self.reconnect = reconnect


def label(integration: Integration) -> str:
    return label_of(integration.provider)


def _answers() -> dict[tuple, tuple[float, Any]]:
    """This app's cache of provider answers."""
    return current_app.extensions.setdefault(CACHE_KEY, {})


def clear_cache() -> None:
    """Forget every cached provider answer (the next page asks the provider again)."""
    _answers().clear()


def _client(integration: Integration, page_size: int | None = None):
    """A provider client with connect-time timeouts (a person is waiting)."""
    if integration.status != "connected":
        raise SourceTrouble(f"The {label(integration)} connection needs reconnecting "
                            f"({integration.status_reason or 'it is not connected'}).",
                            reconnect=True)
    try:
        return credentials.client_for(integration, page_size=page_size,
                                      http=interactive_http(integration.provider))
    except ValueError as exc:  # credentials unreadable with the configured keys
        raise SourceTrouble("The saved credentials cannot be read with the configured keys; "
                            "reconnect the integration.", reconnect=True) from exc


def _ask(integration: Integration, what: str, call, *, cache: bool = True,
         page_size: int | None = None):
    """Call the provider (cached), translating its errors into plain words."""
    key = (integration.id, (integration.credentials_encrypted or "")[-24:], what)
    answers = _answers()
    hit = answers.get(key)
    if cache and hit and hit[0] > time.monotonic():
        return hit[1]
    try:
        value = call(_client(integration, page_size))
    except AuthError as exc:
        runs.mark_needs_reconnect(integration.id, exc.reason)
        raise SourceTrouble(f"{label(integration)} refused our credentials ({exc.reason}). "
                            "Reconnect the integration, then come back here.",
                            reconnect=True) from exc
    except ProviderError as exc:
        raise SourceTrouble(f"{label(integration)} could not answer: {exc.reason}") from exc
    if cache:
        if len(answers) > 500:
            answers.clear()
        answers[key] = (time.monotonic() + CACHE_SECONDS, value)
    return value


def groups(integration: Integration) -> list:
    return _ask(integration, "groups", lambda p: list(p.groups()))


def sources(integration: Integration, group: str) -> list:
    if group not in {g.id for g in groups(integration)}:
        raise SourceTrouble("Choose a group first.")
    return _ask(integration, f"sources:{group}", lambda p: list(p.sources(group)))


def source_fields(integration: Integration, group: str) -> list[Field]:
    return _ask(integration, f"fields:{group}", lambda p: list(p.discover_fields(group)))


def columns(imp: RecurringImport) -> list[rules.Column]:
    return rules.columns(source_fields(imp.integration, imp.group))


def samples(imp: RecurringImport, cols: list[rules.Column]) -> list[list[str]]:
    """The first few records of the first page, one text cell per column."""
    names = [c.name for c in cols if c.name != rules.FULL_NAME]

    def first_page(provider):
        with closing(provider.iter_pages(imp.group, imp.source, fields=names)) as pages:
            page = next(pages, None)
        return [] if page is None else page.records[:SAMPLE_SIZE]

    records = _ask(imp.integration, f"samples:{imp.group}:{imp.source}", first_page,
                   page_size=SAMPLE_SIZE)
    return [[rules.sample_text(source_value(r, c.name)) for c in cols] for r in records]


def consent_fields(integration: Integration, group: str) -> list[Field]:
    """A CRM group's boolean source fields, the choices for "subscribed to marketing"."""
    if integration.provider in STORES or not group:
        return []
    return [f for f in source_fields(integration, group) if f.type == "boolean"]


@dataclass
class ConsentCounts:
    sampled: int  # records with an email in the sample
    everyone: int  # of them, not opted out
    subscribed: int  # of them, subscribed to marketing at the source


def consent_counts(integration: Integration, group: str, source: str,
                   consent_field: str = "") -> ConsentCounts:
    """How many of the source's first records (one page, ≤ CONSENT_SAMPLE) each consent
    filter would take: a sample, so the page says so."""
    field_name = "" if integration.provider in STORES else consent_field

    def count(provider):
        fields = [field_name] if field_name else []
        with closing(provider.iter_pages(group, source, fields=fields)) as pages:
            page = next(pages, None)
        states = [record_consent(r, field_name) for r in (page.records if page else [])
                  [:CONSENT_SAMPLE] if r.email and str(r.email).strip()]
        return ConsentCounts(len(states), sum(1 for s in states if s != "opted_out"),
                             sum(1 for s in states if s == "subscribed"))

    return _ask(integration, f"consent:{group}:{source}:{field_name}", count,
                page_size=CONSENT_SAMPLE)
