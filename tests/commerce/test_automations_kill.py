"""kill -9 a worker in the middle of an automation batch: every newly matching contact still
gets the action exactly once (entries and actions commit together, per batch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.commerce.segment_factories import make_order, make_shop
from tests.conftest import ROOT, process_env
from tests.factories import make_contacts, make_field, make_list
from webapp.commerce import automations, segments
from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow
from webapp.models.commerce import Automation, AutomationEntry

pytestmark = pytest.mark.usefixtures("app")

PEOPLE = 200
BATCH = 20

# The worker: evaluates in batches of 20, pausing inside each batch's transaction (after
# the entries and the action are written, before the commit) so the kill lands mid-batch.
WORKER = textwrap.dedent("""
    import sys, time
    from webapp import create_app
    from webapp.commerce import automations

    real_finish = automations._finish

    def slow_finish(*args, **kwargs):
        real_finish(*args, **kwargs)
        print("batch", flush=True)
        time.sleep(0.3)

    automations._finish = slow_finish
    with create_app().app_context():
        automations.evaluate(int(sys.argv[1]), batch=int(sys.argv[2]))
""")


def _entered() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(AutomationEntry)) or 0


def test_kill_9_mid_batch_then_resume_acts_once_on_everyone(app_config):
    lst = make_list("Buyers")
    shop = make_shop(lst)
    make_field("thanked", "text")
    make_contacts(lst, PEOPLE, created_at=utcnow() - timedelta(days=5))
    ids = db.session.scalars(select(Contact.id).order_by(Contact.id)).all()
    for contact_id in ids:
        make_order(shop, contact_id)
    segment = segments.save("Buyers", {"op": "and", "items": [
        {"type": "purchased", "what": "anything", "days": 30}]})
    db.session.flush()
    auto = Automation(name="Thank buyers", segment_id=segment.id, enabled=True,
                      action={"kind": "set_field", "field": "thanked", "value": "yes"})
    db.session.add(auto)
    db.session.commit()

    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(auto.id), str(BATCH)],
                              cwd=ROOT, env=process_env(app_config), stdout=subprocess.PIPE,
                              text=True)
    try:
        batches = 0
        while batches < 3:  # the third batch is written but not committed
            line = worker.stdout.readline()
            assert line, "the worker ended before it was killed"
            batches += line.startswith("batch")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL
    time.sleep(0.2)
    committed = _entered()
    assert committed == 2 * BATCH  # two batches committed, the third rolled back whole
    thanked = db.session.scalar(select(func.count()).select_from(Contact)
                                .where(Contact.custom["thanked"].as_string() == "yes"))
    assert thanked == committed  # no action without its entry, no entry without its action

    automations.evaluate(auto.id, batch=BATCH)  # another worker picks the rest up
    db.session.expire_all()
    rows = db.session.execute(select(AutomationEntry.contact_id, func.count())
                              .group_by(AutomationEntry.contact_id)).all()
    assert sorted(r[0] for r in rows) == ids
    assert {r[1] for r in rows} == {1}
    assert db.session.scalar(select(func.count()).select_from(AutomationEntry)
                             .where(AutomationEntry.done_at.is_(None))) == 0
    values = db.session.scalars(select(Contact.custom)).all()
    assert [v.get("thanked") for v in values] == ["yes"] * PEOPLE
