"""Wiring the provider contract cases (real simulators over HTTP) into engine tests."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tests.providers.cases import CASE_NAMES
from webapp.imports.rules import check_email, normalise_email


def available() -> list[str]:
    """Every provider with a contract case (each has a simulator)."""
    return list(CASE_NAMES)


def wire(provider, on_credentials, refresh_lock):
    """Point a case-built client's credential callback and refresh lock at the engine's."""
    provider.on_credentials = on_credentials
    provider.refresh_lock = refresh_lock
    return provider


class Hooked:
    """Delegates to a provider and calls `hook()` after the `after`-th page is yielded."""

    def __init__(self, inner, after: int, hook: Callable[[], None]):
        self.inner, self.after, self.hook = inner, after, hook

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def iter_pages(self, *args, **kwargs):
        for index, page in enumerate(self.inner.iter_pages(*args, **kwargs), start=1):
            yield page
            if index == self.after:
                self.hook()


def factory(case, *, after: int | None = None, hook: Callable[[], None] | None = None):
    """A provider_factory for runs.execute that builds the case's client."""

    def build(integration, *, on_credentials, refresh_lock):
        provider = wire(case.provider(), on_credentials, refresh_lock)
        return Hooked(provider, after, hook) if hook else provider

    return build


def loyalty_field(case) -> str:
    return next(n for n in case.custom_field_names if "loyalty" in n.lower())


def expected_emails(case) -> set[str]:
    """Normalised emails the import must hold: valid, and opted out at the source in none
    of their records (an opt-out in any duplicate wins)."""
    wanted, opted_out = set(), set()
    for person in case.people:
        if not person.email:
            continue
        norm = normalise_email(person.email)
        if check_email(norm) is not None:
            continue
        if case.expected_consent(person) == "opted_out":
            opted_out.add(norm)
        else:
            wanted.add(norm)
    return wanted - opted_out


def demo_config(case) -> dict:
    module = importlib.import_module(f"simulators.{case.name}")
    return module.demo_config(case.app, case.running.url)
