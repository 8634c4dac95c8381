"""Engine fixtures: an integration + list + recurring import, and a way to run it."""

from __future__ import annotations

import pytest

from tests.factories import make_list
from webapp.extensions import db
from webapp.imports import credentials
from webapp.imports.runs import create_run, execute
from webapp.models import ImportRun, Integration, RecurringImport

MAPPING = {"email": "email", "Full name": "name"}


@pytest.fixture
def make_import(app):
    def make(*, provider: str = "shopify", settings: dict | None = None,
             secrets: dict | None = None, mapping: dict | None = None, contact_list=None,
             **kw) -> RecurringImport:
        integration = Integration(provider=provider, name=provider, settings=settings or {})
        credentials.store(integration, secrets or {"access_token": "tok"})
        db.session.add(integration)
        target = contact_list or make_list(f"List {provider} {len(kw)}-{id(kw)}")
        imp = RecurringImport(integration=integration, list_id=target.id,
                              group=kw.pop("group", "customers"),
                              source=kw.pop("source", "all"),
                              criteria=kw.pop("criteria", "add_update"),
                              mapping=MAPPING if mapping is None else mapping, **kw)
        db.session.add(imp)
        db.session.commit()
        return imp

    return make


@pytest.fixture
def run_import(app):
    """Create a run of `imp` and execute it in this process with `provider`."""

    def run(imp: RecurringImport, provider, trigger: str = "manual") -> ImportRun:
        created, ok = create_run(imp.id, trigger)
        assert ok, "a live run exists already"
        run_id = created.id
        execute(run_id, provider_factory=provider)
        db.session.expire_all()
        return db.session.get(ImportRun, run_id)

    return run
