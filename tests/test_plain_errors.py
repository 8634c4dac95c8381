"""Plain words on every error path of the set-up, mapping, preview and run pages: a store that
is gone, refuses, answers 500 with traceback-looking text, sends something that is not JSON
or breaks the connection off never puts exception text on a page (issue 9 item 10)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import make_list
from tests.imports.fakes import FakeProvider as Source
from tests.imports.fakes import people
from tests.security.servers import Answer, FakeProvider, Listener, dead_port
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.imports import credentials
from webapp.imports.runs import create_run, execute
from webapp.models import ImportRun, RecurringImport
from webapp.providers.http import HostPolicy, HttpClient
from webapp.providers.magento import Magento
from webapp.services import import_form

pytestmark = pytest.mark.usefixtures("app")

LEAKS = ("Traceback", "Exception", "Errno", "HTTPConnectionPool", "Max retries", "urllib3",
         "requests.", "NewConnectionError", "object at 0x", "Error(")
TRACEBACK_BODY = ('Traceback (most recent call last):\n  File "x.py"\nException: boom '
                  "[Errno 111] HTTPConnectionPool(host='db', port=5432): Max retries")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture
def fake():
    server = FakeProvider()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _quick_interactive(monkeypatch):
    """Connect-time calls without waits between retries (the words are what is tested)."""
    def quick(provider: str) -> HttpClient:
        return HttpClient(HostPolicy(public_https=True, allow_loopback=True),
                          sleep=lambda s: None, timeout=(1.0, 0.5), retry_budget=1.0,
                          max_attempts=2)

    monkeypatch.setattr("webapp.services.integrations.interactive_http", quick)
    monkeypatch.setattr("webapp.services.import_source.interactive_http", quick)



def _store(base_url: str) -> RecurringImport:
    integration = make_integration("magento", "Acme store", settings={"base_url": base_url},
                                   credentials={"access_token": "magento-token"})
    imp = RecurringImport(integration_id=integration.id, list_id=make_list("Buyers").id,
                          group="customers", source="all", state="stopped",
                          state_reason=import_form.NOT_FINISHED,
                          mapping={"email": "email"})
    db.session.add(imp)
    db.session.commit()
    return imp


def _pages(signed_in, imp: RecurringImport) -> dict[str, object]:
    """Every page and partial of set-up, mapping and preview that asks the source."""
    iid = imp.integration_id
    query = f"group=customers&source=all&list_id={imp.list_id}"
    return {
        "set-up": signed_in.get(f"/integrations/{iid}/imports/new"),
        "set-up (htmx sources)": signed_in.htmx_get(
            f"/integrations/{iid}/sources?group=customers"),
        "forecast": signed_in.htmx_get(f"/integrations/{iid}/imports/forecast?{query}"),
        "consent counts": signed_in.htmx_get(
            f"/integrations/{iid}/imports/consent-counts?{query}"),
        "edit settings": signed_in.get(f"/imports/{imp.id}/settings"),
        "mapping": signed_in.get(f"/imports/{imp.id}/mapping"),
        "samples": signed_in.htmx_get(f"/imports/{imp.id}/mapping/samples"),
        "preview": signed_in.post(f"/imports/{imp.id}/mapping/preview", htmx=True),
    }


def _quick_magento(integration, **kw):
    """The engine's Magento client, without waits between retries."""
    http = HttpClient(HostPolicy(public_https=True, allow_loopback=True),
                      sleep=lambda s: None, timeout=(1.0, 0.5), retry_budget=1.0)
    return Magento(integration.settings, credentials.load(integration), http=http,
                   allow_loopback=True, **kw)


def _run_page(signed_in, imp: RecurringImport, factory=_quick_magento):
    run, created = create_run(imp.id, "manual")
    assert created
    execute(run.id, provider_factory=factory)
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    assert run.status == "failed", run.status
    return run, signed_in.get(f"/imports/runs/{run.id}")


def _assert_plain(name: str, resp) -> str:
    html = resp.get_data(as_text=True)
    assert resp.status_code < 500, (name, resp.status_code, html[:500])
    for word in LEAKS:
        assert word not in html, (name, word, html[:1500])
    return html


@pytest.mark.parametrize("case", ["dead address", "connection broken off", "HTTP 500",
                                  "not JSON", "answer lost"])
def test_every_page_that_asks_a_failing_store_speaks_plain_words(signed_in, fake, case):
    hangup = Listener("hangup")
    try:
        base = {"dead address": f"http://127.0.0.1:{dead_port()}",
                "connection broken off": f"http://127.0.0.1:{hangup.port}"}.get(case, fake.url)
        fake.answer = {"HTTP 500": Answer(500, TRACEBACK_BODY),
                       "not JSON": Answer(200, "<html>" + TRACEBACK_BODY + "</html>"),
                       "answer lost": Answer(lose="close")}.get(case, Answer())
        imp = _store(base)
        seen = {name: _assert_plain(name, resp) for name, resp in _pages(signed_in, imp).items()}
        # the pages say something went wrong, in words, rather than showing nothing
        assert any("Magento" in html or "store" in html for html in seen.values())
        run, resp = _run_page(signed_in, imp)
        html = _assert_plain("run page", resp)
        assert run.error and run.error in html
        for word in LEAKS:
            assert word not in run.error
    finally:
        hangup.stop()


def test_an_unexpected_error_in_a_run_is_told_in_words(signed_in, fake, monkeypatch):
    """A bug (here a KeyError inside the pipeline) stops the run with plain words; the
    exception itself goes to the worker's log only."""
    imp = _store(fake.url)

    def broken(*args, **kwargs):
        raise KeyError("custom")

    monkeypatch.setattr("webapp.imports.runs.plan_page", broken)
    run, resp = _run_page(signed_in, imp, lambda integration, **kw: Source(people(3)))
    html = _assert_plain("run page", resp)
    assert run.error_kind == "internal", run.error
    assert "KeyError" not in html and "KeyError" not in run.error
    assert "An unexpected error stopped the import" in html
    assert db.session.scalar(select(ImportRun.error_kind).where(ImportRun.id == run.id)) == \
        "internal"
