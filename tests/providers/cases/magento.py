"""Contract case for Magento 2: the simulator in 2.4 mode, OAuth 1.0a signed requests."""

from __future__ import annotations

from typing import Any

from simulators.dataset import Person
from simulators.magento import create_app, demo_config
from simulators.server import serve
from tests.providers.cases import SimulatorCase
from webapp.providers.http import HostPolicy, HttpClient
from webapp.providers.magento import Magento


class Case(SimulatorCase):
    name = "magento"
    group = "customers"
    source = "all"
    custom_field_names = frozenset({"loyalty_tier", "lifetime_value", "website", "interests"})
    page_size = 100
    supports_refresh = False  # integration tokens: a 401 means reconnect

    def __init__(self, people: list[Person], **options: Any):
        super().__init__(people)
        self.options = options
        self.saved_credentials: dict[str, Any] = {}
        self.app = None
        self.running = None

    def start(self) -> None:
        self.app = create_app(self.people, **self.options)
        self.running = serve(self.app)

    def stop(self) -> None:
        self.running.stop()

    @property
    def state(self):
        return self.app.state

    def config(self) -> dict[str, Any]:
        return demo_config(self.app, self.running.url)

    def provider(self, **overrides: Any) -> Magento:
        config = self.config()
        settings = {**config["settings"], "page_size": self.page_size}
        credentials = dict(config["credentials"])
        credentials.update(overrides.pop("credentials", {}))
        settings.update(overrides)
        http = HttpClient(HostPolicy(public_https=True, allow_loopback=True), sleep=lambda s: None)
        return Magento(settings, credentials, http=http, allow_loopback=True,
                       on_credentials=self.saved_credentials.update)

    def expire_access_token(self) -> None:
        self.state.expire_access_token()

    def kill_refresh_token(self) -> None:
        self.state.revoke_refresh_token()

    def token_requests(self) -> int:
        return self.state.token_requests

    def expected_consent(self, person: Person) -> str:
        # is_subscribed true -> subscribed; false (opted out or never asked) -> not_subscribed
        return "subscribed" if person.consent == "subscribed" else "not_subscribed"
