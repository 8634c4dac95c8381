"""Two integrations feeding one list at the same time, each run by its own real worker
process (issue 14 item 4): exact rows, no consent lost, counts that add up."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from simulators.dataset import generate
from tests.factories import make_list
from tests.imports import sims, workers
from tests.imports.test_workers import run_row, wait_for
from tests.providers.cases import load_case
from webapp.extensions import db
from webapp.imports import credentials
from webapp.imports.rules import check_email, normalise_email
from webapp.imports.runs import start_run
from webapp.models import ConsentEvent, Contact, Integration, RecurringImport

pytestmark = pytest.mark.redis
N = 6_000
PROVIDERS = ("shopify", "zoho")  # Shopify reports "subscribed"; Zoho only opted_out/unknown


def _import_into(list_id: int, name: str, config: dict, case) -> RecurringImport:
    integration = Integration(provider=name, name=name, settings=config["settings"])
    credentials.store(integration, config["credentials"])
    imp = RecurringImport(integration=integration, list_id=list_id, group=case.group,
                          source=case.source, mapping={"email": "email", "Full name": "name"})
    db.session.add_all([integration, imp])
    db.session.commit()
    return imp


def _consent_by_email(case) -> dict[str, str]:
    """The consent each valid person has at this source, by normalised email (first wins,
    as the engine rejects a repeated email within a run)."""
    out: dict[str, str] = {}
    for person in case.people:
        if person.email and check_email(normalise_email(person.email)) is None:
            out.setdefault(normalise_email(person.email), case.expected_consent(person))
    return out


def test_two_imports_into_one_list_at_once(app, app_config, database_url, redis_url):
    people = generate(N, seed=11)  # every person is known to both sources
    cases = {name: load_case(name)(people) for name in PROVIDERS}
    target = make_list("Shared")
    env = workers.worker_env(database_url, redis_url, app_config)
    started, procs = [], []
    try:
        imports = {}
        for name in PROVIDERS:
            running, _sim, config = workers.start_simulator(name, people, delay=0.01)
            started.append(running)
            imports[name] = _import_into(target.id, name, config, cases[name])
        procs = [workers.start_worker(env) for _ in PROVIDERS]
        time.sleep(1.0)  # both workers listening, so the two runs start together
        run_ids = {name: start_run(imp.id).id for name, imp in imports.items()}
        finals = {name: wait_for(
            lambda r=run_id: (row := run_row(r)).status not in ("queued", "running") and row,
            120, f"the {name} run did not finish") for name, run_id in run_ids.items()}
        for name, run in finals.items():
            assert run.status in ("completed", "completed_with_errors"), (name, run.error)
        # They really overlapped: each started before the other finished.
        a, b = finals.values()
        assert a.started_at < b.finished_at and b.started_at < a.finished_at

        contacts = db.session.execute(
            select(Contact.id, Contact.email_norm, Contact.consent_state)
            .where(Contact.list_id == target.id)).all()
        emails = [c.email_norm for c in contacts]
        assert len(emails) == len(set(emails))
        expected = set().union(*(sims.expected_emails(c) for c in cases.values()))
        assert set(emails) == expected

        # Counts add up: every row was added by exactly one run; nothing counted twice.
        assert sum(r.added for r in finals.values()) == len(emails)
        for run in finals.values():
            assert run.fetched == (run.added + run.updated + run.unchanged + run.skipped
                                   + run.rejected)

        # The ledger matches what was written: a contact's consent is its latest entry.
        latest = dict(db.session.execute(
            select(ConsentEvent.contact_id, ConsentEvent.state)
            .where(ConsentEvent.id.in_(select(func.max(ConsentEvent.id))
                                       .group_by(ConsentEvent.contact_id)))).all())
        mismatched = [c.email_norm for c in contacts if latest.get(c.id) != c.consent_state]
        assert mismatched == []

        # No consent lost: subscribed at Shopify and not opted out at Zoho stays subscribed.
        shop, zoho = (_consent_by_email(cases[name]) for name in PROVIDERS)
        by_email = {c.email_norm: c.consent_state for c in contacts}
        wanted = {e for e, state in shop.items() if state == "subscribed"
                  and zoho.get(e) == "unknown"}
        assert len(wanted) > 1000
        lost = sorted(e for e in wanted if by_email.get(e) != "subscribed")
        assert lost == [], f"{len(lost)} contacts lost their consent"
    finally:
        for proc in procs:
            workers.stop_worker(proc)
        for running in started:
            running.stop()
