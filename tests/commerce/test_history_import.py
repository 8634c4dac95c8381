"""Order history import of a Shopify source over real HTTP against the simulator: Link
pages, 429s waited out, the simulator's refusals, resume after a failure, idempotence (a
second run, a later live webhook), no automation entries, one live run per source."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.commerce.helpers import apply, store
from tests.factories import make_contact, make_list
from tests.test_integrations_support import Sim, make_integration, sim_fixture
from webapp.commerce import automations, backfill, history, segments
from webapp.extensions import db
from webapp.imports.credentials import client_for
from webapp.models import AutomationEntry, Integration, Order, OrderHistoryRun, PluginSource
from webapp.models.base import utcnow
from webapp.models.commerce import Automation
from webapp.providers.http import HostPolicy, HttpClient
from webapp.providers.shopify import HOST_PATTERNS

pytestmark = pytest.mark.usefixtures("app")

shopify = sim_fixture("shopify")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


class FakeClock:
    """The simulator's clock; the client's retry sleep advances it (no real waiting)."""

    def __init__(self):
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def shop_source(sim, *, page_size: int = 40, with_contacts: bool = True) -> PluginSource:
    """A Shopify source whose connected integration points at `sim`; its list holds the
    simulator's customers (valid emails) as contacts."""
    config = sim.config()
    integration = make_integration(
        "shopify", sim.app.state.shop, settings={**config["settings"], "page_size": page_size},
        credentials=config["credentials"])
    lst = make_list(f"Shop list {integration.id}")
    if with_contacts:
        for person in sim.app.state.people:
            if person.kind == "normal" and person.email:
                make_contact(lst, email=person.email)
    source = PluginSource(kind="shopify", name="Demo shop", list_id=lst.id,
                          integration_id=integration.id)
    db.session.add(source)
    db.session.commit()
    return source


def run_history(source, **kwargs) -> OrderHistoryRun:
    run, reason = history.start(source)
    assert run is not None, reason
    history.execute(run.id, **kwargs)
    db.session.expire_all()
    return db.session.get(OrderHistoryRun, run.id)


def order_ids() -> list[str]:
    return list(db.session.scalars(select(Order.external_id).order_by(Order.external_id)))


def expected_ids(sim) -> list[str]:
    return sorted(str(o["id"]) for o in sim.app.state.orders)


def test_history_walks_every_link_page_and_writes_every_order_as_backfill(shopify):
    source = shop_source(shopify)
    before = shopify.app.state.counters["rest"]
    run = run_history(source)
    total = len(shopify.app.state.orders)
    assert total == 300
    assert run.status == "done" and run.error == ""
    assert run.pages == 8 and run.orders_imported == total  # 300 orders, 40 a page
    assert shopify.app.state.counters["rest"] - before == 8
    assert order_ids() == expected_ids(shopify)  # open, closed and cancelled alike
    assert db.session.scalar(select(func.count()).where(Order.backfill.is_(False))) == 0
    matched = db.session.scalar(select(func.count()).where(Order.contact_id.is_not(None)))
    emails = {p.email.lower() for p in shopify.app.state.people
              if p.kind == "normal" and p.email}
    known = [o for o in shopify.app.state.orders if (o["email"] or "").lower() in emails]
    assert matched == len(known) > 150  # customers of the list found by email; guests stay
    # guests
    assert run.cursor == {"last_id": max(o["id"] for o in shopify.app.state.orders)}
    assert shopify.app.state.ignored_params == []


def test_a_second_run_and_a_later_live_webhook_add_no_duplicate(shopify):
    source = shop_source(shopify, page_size=250)
    first = run_history(source)
    revenue = db.session.scalar(select(func.sum(Order.revenue)))
    second = run_history(source)
    assert first.status == second.status == "done" and second.pages == 2
    assert db.session.scalar(select(func.count(Order.id))) == 300
    assert db.session.scalar(select(func.sum(Order.revenue))) == revenue
    # The live orders/paid webhook of an imported order updates it, no second row.
    sim_order = next(o for o in shopify.app.state.orders if o["financial_status"] == "paid"
                     and o["cancelled_at"] is None and o["email"])
    from simulators.shopify_orders import render

    body = render(sim_order, shopify.app.state.render_time)
    body["updated_at"] = (utcnow() + timedelta(minutes=1)).isoformat()
    apply([store(source, "order_paid", body, at=utcnow(), channel="shopify")])
    db.session.expire_all()
    rows = list(db.session.scalars(select(Order).where(Order.external_id == str(sim_order["id"]))))
    assert len(rows) == 1 and rows[0].backfill is True
    assert db.session.scalar(select(func.count(Order.id))) == 300


def test_refunds_and_cancellations_of_the_history_adjust_revenue(shopify):
    source = shop_source(shopify, page_size=250)
    run_history(source)
    by_id = {o.external_id: o for o in db.session.scalars(select(Order))}
    for sim_order in shopify.app.state.orders:
        row = by_id[str(sim_order["id"])]
        if sim_order["financial_status"] == "refunded":
            assert row.revenue == Decimal("0.00")
        elif sim_order["financial_status"] == "paid" and sim_order["cancelled_at"] is None:
            assert row.revenue == Decimal(sim_order["total_price"])


def test_the_simulator_refuses_what_shopify_refuses(shopify):
    config = shopify.config()
    url = f"{config['settings']['api_base']}/admin/api/{config['settings']['api_version']}"
    headers = {"X-Shopify-Access-Token": config["credentials"]["access_token"]}
    big = requests.get(f"{url}/orders.json?limit=251&status=any", headers=headers, timeout=5)
    assert big.status_code == 400
    assert big.json() == {"errors": {"limit": "limit must be between 1 and 250"}}
    first = requests.get(f"{url}/orders.json?limit=5&status=any", headers=headers, timeout=5)
    assert first.status_code == 200 and len(first.json()["orders"]) == 5
    next_url = first.links["next"]["url"]
    mixed = requests.get(f"{next_url}&status=any", headers=headers, timeout=5)
    assert mixed.status_code == 400 and "page_info" in mixed.json()["errors"]["status"]
    # Without status=any Shopify lists open orders only (its default), so the walk asks.
    open_only = requests.get(f"{url}/orders.json?limit=250", headers=headers, timeout=5)
    every = requests.get(f"{url}/orders.json?limit=250&status=any", headers=headers, timeout=5)
    assert len(open_only.json()["orders"]) < len(every.json()["orders"]) == 250
    bad = requests.get(f"{url}/orders.json", headers={"X-Shopify-Access-Token": "x"}, timeout=5)
    assert bad.status_code == 401
    fields = requests.get(f"{url}/orders.json?limit=2&fields=id,email", headers=headers,
                          timeout=5)
    assert all(set(o) <= {"id", "email"} for o in fields.json()["orders"])


def test_a_full_bucket_is_waited_out():
    clock = FakeClock()
    sim = Sim("shopify", bucket=True, clock=clock)
    try:
        source = shop_source(sim)
        sim.app.state.fill_bucket(40)

        def factory(integration):
            http = HttpClient(HostPolicy(HOST_PATTERNS, allow_loopback=True),
                              sleep=clock.sleep, timeout=(5.0, 20.0))
            return client_for(integration, http=http)

        run = run_history(source, client_factory=factory)
        assert run.status == "done" and run.orders_imported == 300
        assert sim.app.state.counters["throttled"] == 1 and 2.0 in clock.slept
        assert len(order_ids()) == 300
    finally:
        sim.stop()


def test_a_failure_mid_walk_is_said_in_plain_words_and_the_next_start_resumes(
        shopify, monkeypatch):
    source = shop_source(shopify)
    state = shopify.app.state
    writes = []
    real = backfill.import_shopify_orders

    def flaky(source_id, orders):
        writes.append(len(orders))
        if len(writes) == 3:  # Shopify starts refusing during the walk
            state.inject_errors(every=1, status=429)
        return real(source_id, orders)

    monkeypatch.setattr(backfill, "import_shopify_orders", flaky)

    def factory(integration):
        http = HttpClient(HostPolicy(HOST_PATTERNS, allow_loopback=True),
                          sleep=lambda s: None, timeout=(5.0, 20.0), retry_budget=5.0)
        return client_for(integration, http=http)

    try:
        failed = run_history(source, client_factory=factory)
    finally:
        state.inject_errors(0, 0)
    assert failed.status == "failed" and failed.pages == 3 and failed.orders_imported == 120
    assert failed.error == ("The provider kept answering 'too many requests' beyond the "
                            "retry budget.")
    assert len(order_ids()) == 120
    before = state.counters["rest"]
    resumed = run_history(source, client_factory=factory)
    assert resumed.id != failed.id and resumed.status == "done"
    assert state.counters["rest"] - before == 5  # pages 4 to 8 only: resumed by since_id
    assert resumed.pages == 8 and resumed.orders_imported == 300
    assert order_ids() == expected_ids(shopify)


def test_history_starts_no_automation(shopify):
    source = shop_source(shopify, page_size=250)
    definition = {"op": "and", "items": [{"type": "purchased", "what": "anything",
                                          "days": 3650}]}
    segment = segments.save("Buyers", definition)
    db.session.flush()
    auto = Automation(name="Welcome buyers", segment_id=segment.id, enabled=True,
                      action={"kind": "add_to_list", "list_id": make_list("Buyers").id},
                      enabled_at=utcnow())
    db.session.add(auto)
    db.session.commit()
    run_history(source)
    contact_ids = list(db.session.scalars(select(Order.contact_id).where(
        Order.contact_id.is_not(None)).distinct()))
    assert segments.count(definition) >= len(contact_ids) > 0  # the history is there ...
    assert automations.evaluate_all() == {auto.id: 0}  # ... and starts nothing
    assert automations.evaluate_contacts(contact_ids) == 0
    assert db.session.scalar(select(func.count(AutomationEntry.id))) == 0


def test_one_live_run_per_source(shopify):
    source = shop_source(shopify)
    run, _ = history.start(source)
    assert run is not None and run.status == "queued"
    again, reason = history.start(source)
    assert again is None and reason == ("An order history import of this store is already "
                                        "running.")
    db.session.add(OrderHistoryRun(source_id=source.id, status="running"))
    with pytest.raises(IntegrityError):  # the database itself refuses a second live run
        db.session.commit()
    db.session.rollback()
    assert history.execute(run.id) == "done"
    assert history.execute(run.id) is None  # a duplicate job finds it taken
    assert history.start(source)[0] is not None  # a finished run frees the source


def test_a_run_whose_worker_died_is_taken_over_from_its_cursor(shopify):
    source = shop_source(shopify)
    dead = OrderHistoryRun(source_id=source.id, status="running", cursor={"last_id": 5_000_200},
                           pages=5, orders_imported=200,
                           updated_at=utcnow() - timedelta(hours=1))
    db.session.add(dead)
    db.session.commit()
    run = run_history(source)
    db.session.refresh(dead)
    assert dead.status == "failed" and dead.error == history.LOST
    assert run.status == "done" and run.orders_imported == 300 and run.pages == 8
    assert order_ids() == sorted(str(o["id"]) for o in shopify.app.state.orders
                                 if o["id"] > 5_000_200)


def test_sources_that_cannot_import_history_are_refused_in_plain_words(shopify):
    source = shop_source(shopify)
    integration = db.session.get(Integration, source.integration_id)
    integration.status = "needs_reconnect"
    db.session.commit()
    assert history.start(source) == (None, "Connect the Shopify store on the Integrations "
                                           "page first.")
    website = PluginSource(kind="website", name="Site", list_id=source.list_id)
    db.session.add(website)
    db.session.commit()
    assert history.start(website)[0] is None
    assert db.session.scalar(select(func.count(OrderHistoryRun.id))) == 0


def test_a_shop_that_did_not_grant_read_orders_is_said_in_plain_words():
    sim = Sim("shopify", scopes=("read_customers",))
    try:
        source = shop_source(sim, with_contacts=False)
        run = run_history(source)
        assert run.status == "failed" and run.pages == 0
        assert run.error == ("The Shopify app lacks the read_orders permission (missing "
                             "scope): reconnect the shop and approve access to orders.")
        assert order_ids() == []
    finally:
        sim.stop()
