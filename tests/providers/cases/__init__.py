"""Per-provider test cases for the shared contract suite.

Each module here (shopify.py, zoho.py, magento.py, salesforce.py) defines `Case`, a subclass
of `SimulatorCase`, which starts that provider's simulator over a list of dataset people
and builds a provider client against it.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from simulators.dataset import Person

CASE_NAMES = ("shopify", "zoho", "magento", "salesforce")


class SimulatorCase(ABC):
    """Interface the contract suite drives; one subclass per provider."""

    name: str = ""
    group: str = ""  # the group the contract walks (e.g. "customers", "Contacts", "Contact")
    source: str = ""  # the "all records" source id of that group
    custom_field_names: frozenset[str] = frozenset()  # custom fields discover_fields must list
    page_size: int = 0  # records per page the client asks for (to reason about page counts)
    # False for Magento: integration tokens cannot be refreshed, a 401 means reconnect.
    supports_refresh: bool = True
    state: Any  # the running simulator's control panel (app.state)

    def __init__(self, people: list[Person]):
        self.people = people

    @abstractmethod
    def start(self) -> None:
        """Start the simulator (free loopback port)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the simulator."""

    @abstractmethod
    def provider(self, **overrides: Any):
        """A provider client for the running simulator: loopback allowed, retries' sleep a
        no-op (or tiny), refreshed credentials captured in `self.saved_credentials`."""

    def inject_errors(self, every: int, status: int) -> None:
        """From now on every `every`-th API request answers `status` (429 with Retry-After,
        or a 5xx); every=0 turns injection off. Every simulator's `state` offers this."""
        self.state.inject_errors(every, status)

    @abstractmethod
    def expire_access_token(self) -> None:
        """Invalidate the current access token so the next API call gets the provider's 401."""

    @abstractmethod
    def kill_refresh_token(self) -> None:
        """Revoke the refresh token (and the access token): refresh answers invalid_grant."""

    def touch(self, ids: list[int], at: datetime) -> None:
        """Mark the people with these dataset ids as modified at `at`."""
        self.state.touch(ids, at)

    @abstractmethod
    def token_requests(self) -> int:
        """How many refresh requests the simulator's token endpoint has answered."""

    @abstractmethod
    def expected_consent(self, person: Person) -> str:
        """The normalised consent the client must report for this person, by the table in
        PROVIDERS.md (e.g. Magento cannot express opted_out: its 'not subscribed' is unknown)."""

    def source_id(self, person_id: int) -> str:
        """The provider's id for dataset person `person_id` (Zoho and Salesforce ids differ)."""
        return str(person_id)

    def expected_ids(self) -> set[str]:
        """Source ids of every person the walk of (group, source) must yield."""
        return {self.source_id(p.id) for p in self.people}


def load_case(name: str) -> type[SimulatorCase]:
    return importlib.import_module(f"tests.providers.cases.{name}").Case
