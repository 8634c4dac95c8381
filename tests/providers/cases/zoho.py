"""Zoho CRM case for the contract suite: the simulator on loopback, Contacts / all."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import make_server

from simulators import zoho as sim
from simulators.dataset import Person
from simulators.server import Running
from tests.providers.cases import SimulatorCase
from webapp.providers.http import HttpClient
from webapp.providers.zoho import Zoho, host_policy


class Case(SimulatorCase):
    name = "zoho"
    group = "Contacts"
    source = "all"
    custom_field_names = frozenset({"Loyalty_Tier", "Birthday", "Lifetime_Value", "Website"})
    page_size = 200
    # Realistic 19-digit Zoho ids; the contract maps dataset ids through source_id().
    contact_id_base = sim.CONTACT_ID_BASE

    def __init__(self, people: list[Person], **options: Any):
        super().__init__(people)
        options.setdefault("contact_id_base", self.contact_id_base)
        self.id_base = options["contact_id_base"]
        self.app = sim.create_app(people, **options)
        self.running: Running | None = None
        self.saved_credentials: dict[str, Any] = {}
        self.sleeps: list[float] = []

    @property
    def state(self) -> sim.ZohoState:
        return self.app.state

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    def start(self) -> None:
        self.running = serve_fast(self.app)
        self.credentials = sim.demo_config(self.app, self.url)["credentials"]

    def stop(self) -> None:
        if self.running:
            self.running.stop()

    def settings(self) -> dict[str, Any]:
        return {"data_centre": "us", "accounts_server": self.url, "api_domain": self.url}

    def http(self, **kw: Any) -> HttpClient:
        return HttpClient(host_policy(allow_loopback=True), sleep=self.sleeps.append, **kw)

    def provider(self, **overrides: Any) -> Zoho:
        def save(creds: dict[str, Any]) -> None:
            self.saved_credentials = creds

        kw: dict[str, Any] = {"http": self.http(), "on_credentials": save,
                              "allow_loopback": True}
        settings = {**self.settings(), **overrides.pop("settings", {})}
        credentials = overrides.pop("credentials", None) or dict(self.credentials)
        kw.update(overrides)
        return Zoho(settings, credentials, **kw)

    def expire_access_token(self) -> None:
        self.state.expire_access_tokens()

    def kill_refresh_token(self) -> None:
        self.state.revoke_refresh_tokens()

    def token_requests(self) -> int:
        return self.state.refresh_requests

    def expected_consent(self, person: Person) -> str:
        return "opted_out" if person.consent == "opted_out" else "unknown"

    def source_id(self, person_id: int) -> str:
        return sim.contact_id(person_id, self.id_base)



def serve_fast(app) -> Running:
    """Like simulators.server.serve, but polling for shutdown every 20 ms (not 500 ms), so
    stopping a simulator costs the test suite next to nothing."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True, name="zoho-simulator")
    thread.start()
    return Running(f"http://127.0.0.1:{server.server_port}", server.server_port, server, thread)
