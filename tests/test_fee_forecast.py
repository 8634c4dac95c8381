"""The fee forecast of the set-up page (issue 9 item 6): the source's own count, emails
already on the list subtracted, "at least" when only a lower bound is known, and headline
and detail from one computation; the plan bar's colour."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from simulators.dataset import generate
from tests.factories import make_contacts, make_list
from tests.test_import_setup_pages import _Sim
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.imports import forecast as fees
from webapp.imports.runs import create_run, execute
from webapp.models import ImportRun, RecurringImport, WorkspaceSettings
from webapp.providers.base import RecordCount
from webapp.services import import_forecast, import_source

pytestmark = pytest.mark.usefixtures("app")

BIG = 2695  # the source of the issue: "about 989 of 2,500", then it added 2,695


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture(autouse=True)
def whole_sample(monkeypatch):
    """These tests check what the forecast says of its sample (four pages), not the time
    limit a waiting page puts on reading it: on a busy machine the simulator's first page
    can take longer than that limit, and the sample would stop short."""
    monkeypatch.setattr(import_forecast, "SAMPLE_SECONDS", 60.0)


def _clean(people):
    """Every person with a good email and marketing consent: all of them would be added."""
    for p in people:
        p.email = f"customer{p.id}@example.com"
        p.consent = "subscribed"
    return people


@pytest.fixture(scope="module")
def big_sim():
    sim = _Sim("shopify", _clean(generate(BIG, seed=5)))
    yield sim
    sim.running.stop()


@pytest.fixture(scope="module")
def small_sim():
    sim = _Sim("shopify", generate(30, seed=5))
    yield sim
    sim.running.stop()



def _shop(sim):
    cfg = sim.config()
    return make_integration("shopify", cfg["settings"]["shop"], settings=cfg["settings"],
                            credentials=cfg["credentials"])


def _plan(limit: int, price: str = "15") -> None:
    settings = WorkspaceSettings.get()
    settings.subscriber_limit, settings.extension_price = limit, Decimal(price)
    db.session.commit()


def _box(signed_in, shop, *, source="all", list_id=None, criteria="add_update",
         consent_filter="everyone") -> str:
    url = (f"/integrations/{shop.id}/imports/forecast?group=customers&source={source}"
           f"&criteria={criteria}&consent_filter={consent_filter}")
    if list_id is not None:
        url += f"&list_id={list_id}"
    resp = signed_in.htmx_get(url)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _headline(html: str) -> str:
    return re.search(r'class="forecast-headline"[^>]*><strong>(.*?)\.</strong>', html, re.S)[1]


def _run(shop, contact_list) -> ImportRun:
    imp = RecurringImport(integration=shop, list_id=contact_list.id, group="customers",
                          source="all", criteria="add_update",
                          mapping={"email": "email", "Full name": "name"})
    db.session.add(imp)
    db.session.commit()
    run, ok = create_run(imp.id, "manual")
    assert ok
    run_id = run.id
    execute(run_id)
    db.session.expire_all()
    return db.session.get(ImportRun, run_id)


# ------------------------------------------------------------ the four cases of the issue


def test_a_large_source_is_forecast_from_its_own_count_and_the_run_agrees(signed_in, big_sim):
    """"no extra fee · about 989 of 2,500" for a source that then added 2,695."""
    _plan(2500)
    shop, target = _shop(big_sim), make_list("Customers")
    html = _box(signed_in, shop, list_id=target.id)
    headline = _headline(html)
    assert not headline.startswith("No extra fee"), headline
    assert headline.startswith("About 15.00 USD more this billing cycle"), headline
    assert f"Shopify counts {BIG:,} records. Of the first 1,000 read" in html
    result = import_forecast.estimate(shop, "customers", "all", "add_update", list_id=target.id)
    assert result.new.low == 1000 and result.new.high == BIG
    assert result.new.expected == BIG
    assert result.after.count == BIG and result.after.blocks == 1

    run = _run(shop, target)
    assert run.status == "completed" and run.source_total == BIG
    assert result.new.low <= run.added <= result.new.high
    assert run.added == result.new.expected
    assert result.extra_low <= fees.cycle_fee() <= result.extra_high
    assert fees.cycle_fee() == result.extra_fee == Decimal("15")


def test_a_source_that_cannot_count_says_at_least(signed_in, big_sim):
    """A tag source has no count at Shopify; its first pages give only a lower bound."""
    _plan(100)
    shop = _shop(big_sim)
    tag = next(s.id for s in import_source.sources(shop, "customers") if s.id.startswith("tag:"))
    html = _box(signed_in, shop, source=tag)
    result = import_forecast.estimate(shop, "customers", tag, "add_update")
    assert f"cannot count this source; its first pages hold {result.new.low:,} records" in html
    assert result.new.high is None and result.extra_high is None
    assert result.new.low == result.new.expected > 100
    assert _headline(html) == f"At least {result.extra_low:,.2f} USD more this billing cycle"
    assert "at least" in html


def test_edit_settings_does_not_count_contacts_already_on_the_list(signed_in, small_sim):
    """On Edit settings the target list already holds what the first run brought."""
    shop, target = _shop(small_sim), make_list("Customers")
    run = _run(shop, target)
    assert run.added == 24
    _plan(30)  # counting the 24 again as new would cost one block
    [imp] = db.session.scalars(select(RecurringImport)).all()
    page = signed_in.get(f"/imports/{imp.id}/settings").get_data(as_text=True)
    assert 'hx-include="#f-list_id, #f-group, #f-criteria, #f-consent_filter"' in page
    assert re.search(rf'<option value="{target.id}" selected>', page)
    html = _box(signed_in, shop, list_id=target.id)
    assert _headline(html) == "No extra fee this billing cycle"
    assert "24 already on the list" in html and "0 would be new" in html
    assert "This import adds 0 new contacts" in html
    elsewhere = _box(signed_in, shop, list_id=make_list("Other").id)
    assert _headline(elsewhere) == "15.00 USD more this billing cycle"
    assert "24 would be new" in elsewhere


def test_the_consent_filter_is_part_of_the_forecast(signed_in, small_sim):
    """"Only people subscribed at the source" leaves the others out of the fee, like the run."""
    shop = _shop(small_sim)
    everyone = import_forecast.estimate(shop, "customers", "all", "add_update")
    only = import_forecast.estimate(shop, "customers", "all", "add_update", only_subscribed=True)
    assert 0 < only.new.expected < everyone.new.expected
    html = _box(signed_in, shop, consent_filter="subscribed")
    assert "not subscribed at the source" in html
    assert f"{only.new.expected:,} would be new" in html
    assert f"{everyone.new.expected:,} would be new" in _box(signed_in, shop)


def test_no_extra_fee_above_a_fee_already_due_says_so_in_one_breath(app):
    """"No extra fee" above a detail saying 15.00 this cycle: both now say the same."""
    _plan(10)
    make_contacts(make_list("Existing"), 12)
    fees.record_overage()
    within = fees.forecast(100)  # 112: still one started block
    assert within.extra_fee == 0 and within.already_due == Decimal("15")
    assert within.headline == ("No extra fee this billing cycle: the 15.00 USD already due "
                               "covers this import")
    assert "15.00 USD already due this cycle" in within.detail
    assert "= 15.00 USD this cycle" in within.detail
    beyond = fees.forecast(1000)  # 1,012: 1,002 over, two started blocks
    assert beyond.headline == "15.00 USD more this billing cycle"
    assert "2 started blocks of 1,000 × 15.00 USD = 30.00 USD this cycle" in beyond.detail


@pytest.mark.parametrize("new", [0, 1, 988, 989, 990, 2000, 2501, 4499, 12345])
def test_headline_and_detail_are_one_computation(app, new):
    _plan(2500, "12.50")
    make_contacts(make_list("Existing"), 1500)
    f = fees.forecast(new)
    assert f.extra_fee == max(Decimal(0), f.after.fee - f.already_due)
    if f.extra_fee:
        assert f.headline == f"{f.extra_fee:,.2f} USD more this billing cycle"
    else:
        assert f.headline.startswith("No extra fee")
    if f.after.over:
        assert f"= {f.after.fee:,.2f} USD this cycle" in f.detail
    else:
        assert "within the plan" in f.detail


# ------------------------------------------------------------ the estimate's arithmetic


def _sample(total, emails, done=False):
    return import_forecast.SourceSample(total, tuple((e, "unknown") for e in emails), done)


def test_the_sample_share_is_applied_to_the_source_count(app):
    target = make_list("Customers")
    make_contacts(target, 50, prefix="known")  # half the sample is on the list already
    emails = [f"known{i}@example.com" for i in range(50)] + [f"new{i}@x.org" for i in range(50)]
    new = import_forecast.new_contacts(_sample(RecordCount(1000), emails), target.id, "Zoho CRM")
    assert (new.low, new.expected, new.high) == (50, 500, 950)
    assert "50 already on the list" in new.basis and "Zoho CRM counts 1,000" in new.basis
    whole = import_forecast.new_contacts(_sample(RecordCount(100), emails, done=True), target.id,
                                      "Zoho CRM")
    assert (whole.low, whole.expected, whole.high) == (50, 50, 50) and whole.exact


def test_without_a_count_only_a_lower_bound_is_known(app):
    _plan(10)
    new = import_forecast.new_contacts(_sample(None, [f"p{i}@x.org" for i in range(8)]), None,
                                    "Shopify")
    assert (new.low, new.expected, new.high) == (8, 8, None)
    f = fees.forecast(new)
    assert f.headline == ("No extra fee for the 8 new contacts counted so far; the source may "
                          "hold more, which could cost more")
    assert "at least 8 new contacts" in f.detail


def test_unusable_repeated_opted_out_and_suppressed_emails_are_not_new(app):
    from webapp.models import Suppression

    db.session.add(Suppression(kind="domain", value="blocked.org"))
    db.session.commit()
    sample = import_forecast.SourceSample(None, (
        ("a@x.org", "subscribed"), ("A@x.org".lower(), "unknown"), ("", "unknown"),
        ("bob@", "unknown"), ("c@x.org", "opted_out"), ("d@blocked.org", "unknown"),
        ("e@x.org", "subscribed"), ("f@x.org", "unknown")), True)
    new = import_forecast.new_contacts(sample, None, "Magento")
    assert new.exact and new.expected == 3
    assert "2 without a usable email, 1 repeated, 1 opted out at the source, 1 suppressed" \
        in new.basis
    # the consent filter "only people subscribed at the source" leaves out f@x.org
    subscribed = import_forecast.new_contacts(sample, None, "Magento", only_subscribed=True)
    assert subscribed.expected == 2 and "1 not subscribed at the source" in subscribed.basis


def test_a_count_that_fails_falls_back_to_the_sample(app):
    from tests.imports.fakes import FakeProvider, people
    from webapp.providers.base import SourceUnavailable

    class Broken(FakeProvider):
        def count_records(self, group, source, *, since=None):
            raise SourceUnavailable("no count today")

    sample = import_forecast._sample_source("customers", "all", 4, 5)(Broken(people(30), 10))
    assert sample.total is None and sample.done and len(sample.emails) == 30


def test_update_existing_only_adds_nothing(signed_in, small_sim):
    html = _box(signed_in, _shop(small_sim), criteria="update_only")
    assert _headline(html) == "No extra fee this billing cycle"
    assert "Update existing only adds no contacts." in html


# ------------------------------------------------------------ the plan bar


def test_the_plan_bar_is_amber_from_90_percent_and_red_past_the_limit(signed_in):
    _plan(100)
    target = make_list("Customers")
    start = 0
    for count, level in [(89, "ok"), (90, "warn"), (100, "warn"), (101, "over"),
                         (453, "over")]:
        make_contacts(target, count - start, start=start)
        start = count
        page = signed_in.get("/settings/").get_data(as_text=True)
        meter = re.search(r"<meter[^>]*>", page, re.S)[0]
        assert f'data-level="{level}"' in meter and f"plan-{level}" in meter, (count, meter)
        # the browser's own colouring agrees: optimum below low, amber up to high
        assert 'low="90"' in meter and 'high="100"' in meter and 'optimum="0"' in meter
        assert f'value="{count}"' in meter


def test_the_percentage_beside_the_bar_never_runs_ahead_of_its_colour(signed_in):
    _plan(1000)
    make_contacts(make_list("Customers"), 896)  # 89.6 %: still green, so "89 %"
    page = signed_in.get("/settings/").get_data(as_text=True)
    assert re.search(r"896</span>\s+of 1,000 subscribed contacts \(89 %\)", page)
    assert 'data-level="ok"' in page
