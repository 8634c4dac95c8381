"""Automations: exactly once per contact per round (a database rule), the three actions
with their consent rules, reruns, backfill, the reasons, the dry run and `touch`."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.commerce.segment_factories import make_order, make_product, make_shop, make_visit
from tests.factories import make_contact, make_cycle, make_field, make_list, make_suppression
from webapp.commerce import automations, segments
from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow
from webapp.models.commerce import Automation, AutomationEntry, Order, Segment

pytestmark = pytest.mark.usefixtures("app")

BOUGHT = {"op": "and", "items": [{"type": "purchased", "what": "anything", "days": 30}]}


def make_automation(definition: dict, action: dict, *, name: str = "Welcome buyers",
                    enabled: bool = True, rerun: int | None = None) -> Automation:
    segment = segments.save(f"Segment for {name}", definition)
    db.session.flush()
    row = Automation(name=name, segment_id=segment.id, action=action, enabled=enabled,
                     rerun_after_days=rerun, enabled_at=utcnow() if enabled else None)
    db.session.add(row)
    db.session.commit()
    return row


def entries(automation_id: int) -> list[tuple[int, int]]:
    return sorted(db.session.execute(
        select(AutomationEntry.contact_id, AutomationEntry.round)
        .where(AutomationEntry.automation_id == automation_id)).all())


@pytest.fixture
def shop_world():
    lst = make_list("Customers")
    shop = make_shop(lst)
    product = make_product(shop)
    people = [make_contact(lst, f"p{i}@example.com", created_at=utcnow() - timedelta(days=90))
              for i in range(4)]
    return {"list": lst, "shop": shop, "product": product, "people": people}


def test_each_matching_contact_enters_once_and_the_action_runs(shop_world):
    w = shop_world
    make_field("vip", "text")
    for person in w["people"][:3]:
        make_order(w["shop"], person.id, event_id=700 + person.id)
    auto = make_automation(BOUGHT, {"kind": "set_field", "field": "vip", "value": "yes"})
    assert automations.evaluate(auto.id).entered == 3
    assert automations.evaluate(auto.id).entered == 0  # again: nothing new
    assert automations.evaluate_all() == {auto.id: 0}
    assert entries(auto.id) == sorted((p.id, 0) for p in w["people"][:3])
    db.session.expire_all()
    assert [p.custom.get("vip") for p in w["people"]] == ["yes", "yes", "yes", None]
    entry = db.session.scalars(select(AutomationEntry)).first()
    assert entry.done_at is not None and entry.note == "vip set"
    assert entry.reason["matched"] == "purchased anything in the last 30 days"
    assert entry.reason["evidence"][0]["event_id"] == 700 + entry.contact_id


def test_insert_or_nothing_acts_only_on_rows_it_inserted(shop_world):
    """A second evaluator racing the first inserts nothing, so it acts on no one."""
    w = shop_world
    auto = make_automation(BOUGHT, {"kind": "set_field", "field": "x", "value": 1})
    person = w["people"][0].id
    row = {"automation_id": auto.id, "contact_id": person, "round": 0, "entered_at": utcnow(),
           "reason": {}}
    assert automations._insert_entries([row]) == [person]
    assert automations._insert_entries([row]) == []
    db.session.commit()
    assert entries(auto.id) == [(person, 0)]


def test_disabled_automations_and_backfilled_orders_fire_nothing(shop_world):
    w = shop_world
    make_order(w["shop"], w["people"][0].id, backfill=True)
    auto = make_automation(BOUGHT, {"kind": "set_field", "field": "x", "value": 1})
    assert automations.evaluate(auto.id).entered == 0
    make_order(w["shop"], w["people"][1].id)
    auto.enabled = False
    db.session.commit()
    assert automations.evaluate(auto.id).entered == 0
    assert entries(auto.id) == []
    # The segment itself (its page, its count) still counts the history.
    assert segments.count(segments.clean_definition(BOUGHT)) == 2


def test_run_again_after_n_days_opens_a_new_round(shop_world):
    w = shop_world
    person = w["people"][0]
    now = utcnow()
    make_order(w["shop"], person.id, placed_at=now - timedelta(days=1))
    auto = make_automation(BOUGHT, {"kind": "set_field", "field": "x", "value": 1}, rerun=7)
    assert automations.evaluate(auto.id, now=now).entered == 1
    assert automations.evaluate(auto.id, now=now + timedelta(days=6)).entered == 0
    make_order(w["shop"], person.id, placed_at=now + timedelta(days=8))
    assert automations.evaluate(auto.id, now=now + timedelta(days=8)).entered == 1
    assert entries(auto.id) == [(person.id, 0), (person.id, 1)]


def test_add_to_list_keeps_origin_and_never_resubscribes(shop_world):
    w = shop_world
    target = make_list("Buyers")
    ok, unsub, banned, there = w["people"]
    db.session.execute(Contact.__table__.update().where(Contact.id == ok.id)
                       .values(origin="plugin", consent_state="subscribed", name="Ok"))
    db.session.execute(Contact.__table__.update().where(Contact.id == unsub.id)
                       .values(status="unsubscribed"))
    make_suppression(banned.email)
    make_contact(target, there.email, status="unsubscribed")
    for person in w["people"]:
        make_order(w["shop"], person.id)
    auto = make_automation(BOUGHT, {"kind": "add_to_list", "list_id": target.id})
    assert automations.evaluate(auto.id).entered == 4
    on_target = {c.email_norm: c for c in db.session.scalars(
        select(Contact).where(Contact.list_id == target.id))}
    assert set(on_target) == {ok.email, there.email}
    assert on_target[ok.email].origin == "plugin"
    assert on_target[ok.email].consent_state == "subscribed"
    assert on_target[ok.email].name == "Ok"
    assert on_target[there.email].status == "unsubscribed"
    notes = dict(db.session.execute(select(AutomationEntry.contact_id, AutomationEntry.note))
                 .all())
    assert notes == {ok.id: "added to the list", unsub.id: "unsubscribed: not added",
                     banned.id: "on the suppression list: not added",
                     there.id: "already on the list"}


def test_enrol_on_a_cycle_at_a_day(shop_world):
    w = shop_world
    cycle = make_cycle(w["list"], "Thanks", days=10)
    first, second = w["people"][:2]
    db.session.execute(Contact.__table__.update().where(Contact.id == second.id)
                       .values(status="unsubscribed"))
    make_order(w["shop"], first.id)
    make_order(w["shop"], second.id)
    auto = make_automation(BOUGHT, {"kind": "enrol", "cycle_id": cycle.id, "cycle_day": 3})
    automations.evaluate(auto.id)
    db.session.expire_all()
    assert (first.cycle_id, first.cycle_day) == (cycle.id, 3)
    assert first.enrolled_at is not None
    assert second.cycle_id is None


def test_the_same_stream_replayed_ten_times_shuffled_gives_one_entry_each(shop_world):
    """Orders arrive in any order and again and again (the ingest's de-duplication keeps
    one row per order); the touched contacts are evaluated after each arrival."""
    w = shop_world
    auto = make_automation(BOUGHT, {"kind": "set_field", "field": "x", "value": 1})
    stream = [(p.id, f"order-{p.id}-{n}") for p in w["people"][:3] for n in range(3)]
    rng = random.Random(12)
    for _replay in range(10):
        rng.shuffle(stream)
        for contact_id, external in stream:
            if db.session.scalar(select(Order.id).where(Order.external_id == external)) is None:
                db.session.add(Order(shop_id=w["shop"].id, external_id=external,
                                     contact_id=contact_id, status="paid", total=10,
                                     revenue=10, placed_at=utcnow()))
                db.session.commit()
            automations.evaluate_contacts([contact_id])
    assert entries(auto.id) == sorted((p.id, 0) for p in w["people"][:3])
    dupes = db.session.execute(
        select(AutomationEntry.contact_id).group_by(AutomationEntry.contact_id)
        .having(func.count() > 1)).all()
    assert dupes == []


def test_dry_run_shows_who_would_have_entered_and_writes_nothing(shop_world):
    w = shop_world
    now = utcnow()
    make_order(w["shop"], w["people"][0].id, placed_at=now - timedelta(days=3))
    make_order(w["shop"], w["people"][1].id, placed_at=now - timedelta(days=20))
    make_visit(w["shop"], w["people"][2].id, "https://demo.example.com/sale",
               now - timedelta(days=1))
    definition = segments.clean_definition({"op": "and", "items": [
        {"type": "purchased", "what": "anything", "days": 5}]})
    result = automations.dry_run(definition, 7, now=now)
    assert result.total == 1
    assert [row[1] for row in result.rows] == [w["people"][0].email]
    assert now - timedelta(days=3) <= result.rows[0][3] <= now - timedelta(days=2)
    wider = automations.dry_run(definition, 30, now=now)
    assert wider.total == 2
    assert db.session.scalar(select(func.count()).select_from(AutomationEntry)) == 0


def test_deleting_the_segment_takes_its_automations_along(shop_world):
    w = shop_world
    make_order(w["shop"], w["people"][0].id)
    auto_id = make_automation(BOUGHT, {"kind": "set_field", "field": "x", "value": 1}).id
    db.session.execute(Segment.__table__.delete())
    db.session.commit()
    assert automations.evaluate(auto_id).entered == 0
    assert db.session.get(Automation, auto_id) is None


def test_touch_queues_one_drain_job_and_the_drain_enters_the_contacts(shop_world, app):
    from webapp.background import get_queue, redis_connection

    w = shop_world
    auto = make_automation(BOUGHT, {"kind": "set_field", "field": "x", "value": 1})
    people = w["people"][:2]
    for person in people:
        make_order(w["shop"], person.id)
    automations.touch([people[0].id, None])
    automations.touch([people[1].id])
    redis = redis_connection()
    jobs = get_queue("default", redis).jobs
    assert [job.func_name for job in jobs] == [automations.TOUCH_JOB]
    assert list(jobs[0].args) == []  # no contact ids or anything else in the job
    assert automations.drain_touched(redis) == 2
    assert entries(auto.id) == sorted((p.id, 0) for p in people)
    assert redis.scard(automations.TOUCHED_KEY) == 0
    automations.touch([people[0].id])  # the flag was cleared: a new drain job is queued
    assert len(get_queue("default", redis).jobs) == 2


def test_touch_survives_redis_being_down(shop_world, app):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    automations.touch([w.id for w in shop_world["people"]])  # logs, does not raise
