"""Shared pieces of the integrations tests (no tests here): simulators on free ports, factories."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulators import magento as magento_sim
from simulators import salesforce as salesforce_sim
from simulators import shopify as shopify_sim
from simulators import zoho as zoho_sim
from simulators.dataset import generate
from simulators.server import serve
from webapp.extensions import db
from webapp.imports import credentials as creds_store
from webapp.models import Integration
from webapp.models.base import utcnow

SIMULATORS = {
    "shopify": shopify_sim,
    "zoho": zoho_sim,
    "magento": magento_sim,
    "salesforce": salesforce_sim,
}


class Sim:
    """A running simulator: `url`, the WSGI `app` (its `.state` is the control panel)."""

    def __init__(self, name: str, **options):
        self.name = name
        self.module = SIMULATORS[name]
        self.app = self.module.create_app(generate(20, seed=5), **options)
        self.running = serve(self.app)
        self.url = self.running.url

    def stop(self) -> None:
        self.running.stop()

    def config(self) -> dict:
        return self.module.demo_config(self.app, self.url)


def sim_fixture(name: str):
    """A module-scoped fixture running the `name` simulator (`shopify = sim_fixture(...)`)."""

    @pytest.fixture(scope="module", name=name)
    def running():
        sim = Sim(name)
        yield sim
        sim.stop()

    return running


def make_integration(provider: str = "shopify", name: str = "acme.myshopify.com", *,
                     status: str = "connected", reason: str = "",
                     settings: dict | None = None, credentials: dict | None = None
                     ) -> Integration:
    row = Integration(provider=provider, name=name, status=status, status_reason=reason,
                      settings=settings if settings is not None else {"shop": name},
                      status_changed_at=utcnow())
    creds_store.store(row, credentials or {"access_token": "shpat_factorysecret9999"})
    db.session.add(row)
    db.session.commit()
    return row


def make_import(integration: Integration, list_name: str = "Newsletter", state: str = "active"):
    from tests.factories import make_list
    from webapp.models import RecurringImport

    lst = make_list(list_name)
    row = RecurringImport(integration_id=integration.id, list_id=lst.id, group="customers",
                          source="all", state=state)
    db.session.add(row)
    db.session.commit()
    return row


def follow_to_callback(location: str) -> str:
    """Ask the simulator's authorize endpoint (as the browser would) and return the path and
    query of the redirect back to Tributary."""
    resp = requests.get(location, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    back = urlsplit(resp.headers["Location"])
    return f"{back.path}?{back.query}"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
