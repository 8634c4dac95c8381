"""Shopify contract case: the Shopify simulator on a free loopback port."""

from __future__ import annotations

from typing import Any

from simulators import shopify as sim
from simulators.server import serve
from tests.providers.cases import SimulatorCase
from webapp.providers.http import HostPolicy, HttpClient
from webapp.providers.shopify import HOST_PATTERNS, Shopify


class Case(SimulatorCase):
    name = "shopify"
    group = "customers"
    source = "all"
    custom_field_names = frozenset(
        {"custom.loyalty_tier", "custom.birthday", "custom.lifetime_value", "custom.website"}
    )
    page_size = 100

    def __init__(self, people, **sim_options: Any):
        super().__init__(people)
        self.sim_options = sim_options
        self.saved_credentials: dict = {}
        self.sleeps: list[float] = []

    def start(self) -> None:
        self.app = sim.create_app(self.people, **self.sim_options)
        self.running = serve(self.app)
        self.config = sim.demo_config(self.app, self.running.url)
        self.state = self.app.state

    def stop(self) -> None:
        self.running.stop()

    def http(self, sleep=None) -> HttpClient:
        return HttpClient(HostPolicy(HOST_PATTERNS, allow_loopback=True),
                          sleep=sleep or self.sleeps.append, timeout=(5.0, 20.0))

    def provider(self, **overrides: Any) -> Shopify:
        """A client on the simulator; overrides are settings, or `credentials`/`http`."""
        credentials = overrides.pop("credentials", None) or (
            self.saved_credentials or self.config["credentials"])
        http = overrides.pop("http", None) or self.http()
        settings = {**self.config["settings"], "page_size": self.page_size, **overrides}
        return Shopify(settings, dict(credentials), http=http, allow_loopback=True,
                       on_credentials=self._save)

    def _save(self, credentials: dict) -> None:
        self.saved_credentials = dict(credentials)

    def expire_access_token(self) -> None:
        self.state.expire_access_token()

    def kill_refresh_token(self) -> None:
        self.state.kill_refresh_token()

    def token_requests(self) -> int:
        return self.state.counters["refresh"]

    def expected_consent(self, person) -> str:
        """PROVIDERS.md: unsubscribed/redacted/invalid opt out, subscribed consents, the
        explicit not_subscribed is not_subscribed, the rest (pending = not yet, no consent
        object) is unknown."""
        state = sim.consent_state(person)
        if state in {"unsubscribed", "redacted", "invalid"}:
            return "opted_out"
        if state == "not_subscribed":
            return "not_subscribed"
        return "subscribed" if state == "subscribed" else "unknown"
