"""The pipeline against every available provider simulator, over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from simulators.dataset import generate
from tests.factories import make_field
from tests.imports import sims
from tests.providers.cases import load_case
from webapp.extensions import db
from webapp.imports import credentials
from webapp.models import Contact, Integration, RejectedRow

N = 450
PROVIDERS = sims.available()


@pytest.fixture(params=PROVIDERS)
def case(request):
    c = load_case(request.param)(generate(N, seed=11))
    c.start()
    yield c
    c.stop()


def stored(imp) -> dict[str, Contact]:
    db.session.expire_all()
    return {c.email_norm: c for c in db.session.scalars(
        select(Contact).where(Contact.list_id == imp.list_id))}


def make_case_import(make_import, case, **kw):
    make_field("loyalty_tier")
    mapping = {"email": "email", "Full name": "name", sims.loyalty_field(case): "loyalty_tier"}
    return make_import(provider=case.name, group=case.group, source=case.source,
                       mapping=mapping, secrets=dict(case.provider().credentials), **kw)


def test_full_then_incremental_import(case, make_import, run_import):
    imp = make_case_import(make_import, case)
    run = run_import(imp, sims.factory(case))
    assert run.status == "completed", run.error  # ~3 % bad emails: normal
    contacts = stored(imp)
    assert set(contacts) == sims.expected_emails(case)
    assert run.added == len(contacts) and run.fetched == N
    reasons = run.rejected_by_reason
    assert reasons["syntax_error"] >= 3 and reasons["already_in_queue"] == 1
    if case.name != "magento":  # Magento cannot say "opted out"
        assert reasons["opted_out_at_source"] >= 1
    assert sum(1 for c in contacts.values() if c.custom.get("loyalty_tier")) > N // 2
    assert any(c.name.startswith("<img src=x onerror=alert(1)> ") for c in contacts.values())

    db.session.refresh(imp)
    assert imp.high_water is not None and imp.cursor is None
    changed_at = imp.high_water + timedelta(days=2)
    case.touch([5, 77, 300], changed_at)
    second = run_import(imp, sims.factory(case))
    assert second.status in ("completed", "completed_with_errors"), second.error
    assert second.fetched < 10  # only what changed (plus the inclusive overlap)
    assert second.added == 0 and second.updated + second.unchanged >= 3 - second.rejected
    db.session.refresh(imp)
    assert imp.high_water == changed_at


def test_429_on_every_third_request_still_completes(case, make_import, run_import):
    imp = make_case_import(make_import, case)
    case.inject_errors(every=3, status=429)
    run = run_import(imp, sims.factory(case))
    assert run.status == "completed", run.error  # ~3 % bad emails: normal
    assert set(stored(imp)) == sims.expected_emails(case)


def test_expired_token_mid_run_is_refreshed_once(case, make_import, run_import):
    imp = make_case_import(make_import, case)
    secrets_before = credentials.load(db.session.get(Integration, imp.integration_id))
    before = case.token_requests()
    run = run_import(imp, sims.factory(case, after=1, hook=case.expire_access_token))
    if not case.supports_refresh:
        assert run.status == "failed" and run.error_kind == "auth"
        integration = db.session.get(Integration, imp.integration_id)
        assert integration.status == "needs_reconnect"
        return
    assert run.status == "completed", run.error  # ~3 % bad emails: normal
    assert case.token_requests() - before == 1
    assert set(stored(imp)) == sims.expected_emails(case)
    integration = db.session.get(Integration, imp.integration_id)
    saved = credentials.load(integration)
    assert saved["access_token"] != secrets_before["access_token"]  # refreshed, stored


def test_dead_refresh_token_needs_reconnect(case, make_import, run_import):
    imp = make_case_import(make_import, case)
    case.kill_refresh_token()
    run = run_import(imp, sims.factory(case))
    assert run.status == "failed" and run.error_kind == "auth"
    assert db.session.get(Integration, imp.integration_id).status == "needs_reconnect"
    assert db.session.scalar(select(func.count(RejectedRow.id))) == 0


def test_mapping_drift_against_the_simulator(case, make_import, run_import):
    make_field("gone")
    imp = make_import(provider=case.name, group=case.group, source=case.source,
                      mapping={"email": "email", "No_Such_Field_xyz": "gone"})
    run = run_import(imp, sims.factory(case))
    db.session.refresh(imp)
    assert run.status == "failed" and run.error_kind == "schema", run.error
    assert imp.state == "needs_attention" and "No_Such_Field_xyz" in imp.state_reason
    assert stored(imp) == {}


def test_concurrent_clients_refresh_once_and_share_rotated_tokens(case, make_import):
    """Two runs of one integration meet an expired token: the first refreshes (rotating a
    single-use refresh token), the second adopts the stored result instead of refreshing."""
    if not case.supports_refresh:
        return  # Magento integration tokens have no refresh (asserted in the contract suite)
    first = case.provider()
    imp = make_import(provider=case.name, group=case.group, source=case.source,
                      secrets=dict(first.credentials))
    iid = imp.integration_id

    def wired(client):
        return sims.wire(client, lambda creds: credentials.save_now(iid, creds),
                         lambda: credentials.refresh_lock(iid))

    first, second = wired(first), wired(case.provider())
    before = case.token_requests()
    case.expire_access_token()
    assert next(first.iter_pages(case.group, case.source)).records
    assert next(second.iter_pages(case.group, case.source)).records
    assert case.token_requests() - before == 1
    assert second.credentials["access_token"] == first.credentials["access_token"]
    stored_now = credentials.load(db.session.get(Integration, iid))
    assert stored_now["access_token"] == first.credentials["access_token"]
