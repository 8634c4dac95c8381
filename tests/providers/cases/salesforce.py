"""Contract-suite case for Salesforce: the simulated org walked as Contacts, 200 a batch."""

from __future__ import annotations

from typing import Any

from simulators import salesforce as sim
from simulators.dataset import Person
from simulators.server import Running, serve
from tests.providers.cases import SimulatorCase
from webapp.providers.http import HttpClient
from webapp.providers.salesforce import Salesforce, host_policy


class Case(SimulatorCase):
    name = "salesforce"
    group = "Contact"
    source = "all"
    custom_field_names = frozenset(
        {"Loyalty_Tier__c", "Birthday__c", "Lifetime_Value__c", "Website__c"}
    )
    page_size = 200

    def __init__(self, people: list[Person], **options: Any):
        super().__init__(people)
        self.options = options
        self.saved_credentials: dict[str, Any] = {}
        self.app: sim.SalesforceApp | None = None
        self.running: Running | None = None

    @property
    def state(self) -> sim.State:
        assert self.app is not None
        return self.app.state

    def start(self) -> None:
        self.app = sim.create_app(self.people, **self.options)
        self.running = serve(self.app)

    def stop(self) -> None:
        if self.running:
            self.running.stop()

    def config(self) -> dict[str, dict[str, Any]]:
        assert self.running is not None
        return sim.demo_config(self.app, self.running.url)

    def provider(self, **overrides: Any) -> Salesforce:
        config = self.config()
        settings = {**config["settings"], "batch_size": self.page_size,
                    **overrides.pop("settings", {})}
        credentials = {**config["credentials"], **overrides.pop("credentials", {})}
        http = HttpClient(host_policy(allow_loopback=True), sleep=lambda _s: None,
                          timeout=(5.0, 10.0))
        return Salesforce(settings, credentials, http=http, allow_loopback=True,
                          on_credentials=self.saved_credentials.update, **overrides)

    def expire_access_token(self) -> None:
        self.state.expire_access_token()

    def kill_refresh_token(self) -> None:
        self.state.kill_refresh_token()

    def token_requests(self) -> int:
        return self.state.refresh_requests

    def expected_consent(self, person: Person) -> str:
        return "opted_out" if person.consent == "opted_out" else "unknown"

    def source_id(self, person_id: int) -> str:
        """The Contact Id the simulator gives dataset person `person_id`."""
        return sim.contact_id(person_id)

