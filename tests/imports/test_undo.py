"""Undo of an import run (issue 13): one rule per test, through the engine, in process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.factories import make_contacts, make_cycle, make_field, make_list, make_user
from tests.imports.fakes import FakeProvider, rec
from webapp.extensions import db
from webapp.imports import undo as engine
from webapp.models import (
    ConsentEvent,
    Contact,
    ImportRun,
    ImportUndo,
    JournalEntry,
    PluginEvent,
    PluginSource,
)
from webapp.models.base import utcnow
from webapp.services import contacts as contact_service

SNAPSHOT = ("email", "name", "custom", "status", "unsubscribed_locally", "consent_state",
            "consent_source", "consent_at", "consent_run_id", "cycle_id", "cycle_day",
            "enrolled_at", "updated_at", "updated_run_id", "created_run_id")


def snapshot(list_id: int) -> dict[str, tuple]:
    db.session.expire_all()
    rows = db.session.scalars(select(Contact).where(Contact.list_id == list_id))
    return {c.email_norm: tuple(getattr(c, k) for k in SNAPSHOT) for c in rows}


def contact(email: str) -> Contact:
    db.session.expire_all()
    return db.session.scalar(select(Contact).where(Contact.email_norm == email))


def undo(run: ImportRun, user=None) -> ImportUndo:
    """Undo `run` in this process; fails the test when the undo is refused."""
    started, why = engine.start_undo(run, user.id if user else None, queue=False)
    assert started is not None, why
    assert engine.execute(started.id) == "completed"
    db.session.expire_all()
    return db.session.get(ImportUndo, started.id)


def old_contacts(target, *emails: str, **values) -> None:
    for email in emails:
        make_contacts(target, 1, prefix=email.split("@")[0] + "_tmp", **values)
        db.session.execute(update(Contact).where(Contact.email_norm.like(
            email.split("@")[0] + "_tmp%")).values(email=email, email_norm=email))
    db.session.commit()


@pytest.fixture
def tier():
    return make_field("tier")


@pytest.fixture
def mapping(tier):
    return {"email": "email", "Full name": "name", "Tier": "tier"}


def test_undo_puts_the_list_back_exactly(make_import, run_import, mapping):
    target = make_list("Back")
    old_contacts(target, "old@example.com", "same@example.com", custom={"tier": "Silver",
                                                                          "city": "Oslo"})
    before = snapshot(target.id)
    imp = make_import(contact_list=target, mapping=mapping)
    run = run_import(imp, FakeProvider([
        rec(1, "old@example.com", first="New", last="Name", Tier="Gold"),
        rec(2, "same@example.com", Tier="Silver"),  # unchanged
        rec(3, "new1@example.com", first="A", last="B", consent="subscribed"),
        rec(4, "new2@example.com", Tier="Bronze"),
    ]))
    assert (run.added, run.updated, run.unchanged) == (2, 1, 1)
    entries = db.session.scalars(select(JournalEntry).where(JournalEntry.run_id == run.id))
    kinds = sorted(e.kind for e in entries)
    assert kinds == ["added", "added", "changed"]
    changed = db.session.scalar(select(JournalEntry).where(JournalEntry.kind == "changed"))
    assert changed.values == {"name": ["Person 0", "New Name"],
                              "custom": {"tier": {"old": "Silver", "new": "Gold"}}}
    done = undo(run)
    assert snapshot(target.id) == before
    assert (done.removed, done.restored, done.kept, done.status) == (2, 1, 0, "completed")
    assert done.finished_at is not None and done.done == 3 == done.total


def test_added_then_edited_by_a_person_is_kept_and_listed(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"), rec(2, "bob@example.com")]))
    member = make_user("editor@example.com")
    ann = contact("ann@example.com")
    contact_service.unsubscribe(ann, member, "asked by phone")
    contact_service.resubscribe(contact("ann@example.com"), member, "Asked again by email")
    assert contact("ann@example.com").status == "subscribed"  # edited, not unsubscribed
    done = undo(run)
    assert contact("bob@example.com") is None
    kept = contact("ann@example.com")
    assert kept is not None and kept.status == "subscribed"
    assert (done.removed, done.kept, done.kept_by_reason) == (1, 1, {"edited": 1})
    listed = db.session.scalars(select(JournalEntry.kept_reason).where(
        JournalEntry.run_id == run.id, JournalEntry.contact_id == kept.id)).one()
    assert listed == "edited"


def test_added_with_plugin_activity_or_another_import_is_kept(make_import, run_import):
    target = make_list("Activity")
    imp = make_import(contact_list=target)
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"), rec(2, "bob@example.com"),
                                        rec(3, "cy@example.com")]))
    source = PluginSource(kind="website", name="Site", list_id=target.id)
    db.session.add(source)
    db.session.commit()
    db.session.add(PluginEvent(source_id=source.id, channel="api", topic="track",
                               dedup_key="e1", body="{}", contact_id=contact("ann@example.com").id,
                               email_norm="ann@example.com"))
    db.session.commit()
    done = undo(run)
    assert contact("ann@example.com") is not None and contact("bob@example.com") is None
    assert done.kept_by_reason == {"plugin_activity": 1} and done.removed == 2


def renamed_and_tiered(make_import, run_import, mapping, list_name: str) -> ImportRun:
    """A list holding old@example.com (tier Silver) and a run that renames it, tier Gold."""
    target = make_list(list_name)
    old_contacts(target, "old@example.com", custom={"tier": "Silver"})
    imp = make_import(contact_list=target, mapping=mapping)
    return run_import(imp, FakeProvider([rec(1, "old@example.com", first="Imported",
                                             last="Name", Tier="Gold")]))


def test_changed_then_edited_value_is_kept_the_others_restored(make_import, run_import,
                                                               mapping):
    run = renamed_and_tiered(make_import, run_import, mapping, "Edited")
    # A person edits the name afterwards (as the contact page records a person's change).
    db.session.execute(update(Contact).where(Contact.email_norm == "old@example.com")
                       .values(name="Typed By Hand", updated_run_id=None,
                               updated_at=utcnow()))
    db.session.commit()
    done = undo(run)
    edited = contact("old@example.com")
    assert edited.name == "Typed By Hand"  # edited since: kept
    assert edited.custom == {"tier": "Silver"}  # still the run's value: restored
    assert edited.updated_run_id is None  # the person's change stays the last one
    assert done.restored == 1


def test_changed_value_rewritten_by_another_run_is_kept(make_import, run_import, mapping):
    """Field by field: a value no longer the one the run wrote is kept."""
    run = renamed_and_tiered(make_import, run_import, mapping, "Rewritten")
    db.session.execute(update(Contact).where(Contact.email_norm == "old@example.com")
                       .values(custom={"tier": "Platinum"}))
    db.session.commit()
    undo(run)
    row = contact("old@example.com")
    assert row.custom == {"tier": "Platinum"} and row.name == "Person 0"


def test_an_opt_out_the_run_applied_is_not_undone(make_import, run_import):
    target = make_list("Opt-out")
    old_contacts(target, "out@example.com", consent_state="subscribed",
                 consent_source="shopify import #0")
    imp = make_import(contact_list=target)
    run = run_import(imp, FakeProvider([rec(1, "out@example.com", consent="opted_out")]))
    assert contact("out@example.com").status == "unsubscribed"
    summary = engine.preview(db.session.get(ImportRun, run.id))
    assert summary["opt_outs_kept"] == 1 and summary["would_keep"] == 1
    assert summary["kept_by_reason"] == {"opted_out": 1}
    done = undo(run)
    row = contact("out@example.com")
    assert (row.status, row.consent_state, row.consent_run_id) == ("unsubscribed",
                                                                    "opted_out", run.id)
    assert done.kept_by_reason == {"opted_out": 1} and done.extra["opt_outs_kept"] == 1


def test_a_contact_added_and_opted_out_in_the_same_run_is_kept_unsubscribed(
        make_import, run_import):
    imp = make_import()
    provider = FakeProvider([rec(1, "ann@example.com"), rec(2, "x@example.com"),
                             rec(3, "ann@example.com", consent="opted_out")], page_size=2)
    run = run_import(imp, provider)
    assert contact("ann@example.com").status == "unsubscribed"
    done = undo(run)
    assert contact("ann@example.com").status == "unsubscribed"
    assert contact("x@example.com") is None
    assert done.kept_by_reason == {"opted_out": 1}


def test_unsubscribed_since_is_not_resubscribed(make_import, run_import, mapping):
    target = make_list("Unsub")
    old_contacts(target, "old@example.com")
    imp = make_import(contact_list=target, mapping=mapping)
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", first="New", last="Name",
                                            consent="subscribed"),
                                        rec(2, "new@example.com")]))
    assert contact("old@example.com").consent_state == "subscribed"
    member = make_user("unsub@example.com")
    contact_service.unsubscribe(contact("old@example.com"), member)
    contact_service.unsubscribe(contact("new@example.com"), member)
    done = undo(run)
    old, new = contact("old@example.com"), contact("new@example.com")
    assert (old.status, old.consent_state, old.unsubscribed_locally) == (
        "unsubscribed", "opted_out", True)
    assert old.name == "Person 0"  # the name the run wrote is still restored
    assert new is not None and new.status == "unsubscribed"  # kept, so it stays out
    assert done.kept_by_reason == {"unsubscribed": 1} and done.restored == 1


def test_restored_consent_gets_a_ledger_entry(make_import, run_import):
    target = make_list("Ledger")
    old_contacts(target, "old@example.com")
    imp = make_import(contact_list=target)
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", consent="subscribed")]))
    member = make_user("undoer@example.com")
    done = undo(run, member)
    row = contact("old@example.com")
    assert row.consent_state == "unknown" and row.consent_run_id is None
    entries = db.session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == row.id)
                                 .order_by(ConsentEvent.id)).all()
    assert [(e.state, e.run_id) for e in entries] == [("subscribed", run.id),
                                                      ("unknown", run.id)]
    assert entries[-1].user_id == member.id and "Undo of import run" in entries[-1].note
    assert done.extra["consent_restored"] == 1 and done.requested_by_id == member.id


def test_an_older_run_is_refused_while_a_later_run_changed_the_same_contacts(
        make_import, run_import):
    target = make_list("Order")
    imp = make_import(contact_list=target)
    first = run_import(imp, FakeProvider([rec(1, "ann@example.com", first="Ann"),
                                          rec(2, "bob@example.com")]))
    second = run_import(imp, FakeProvider([rec(3, "ann@example.com", first="Annie")]))
    started, why = engine.start_undo(first, queue=False)
    assert started is None
    assert f"run #{second.id}" in why and "first" in why
    undo(second)
    assert contact("ann@example.com").name == "Ann"
    undo(db.session.get(ImportRun, first.id))
    assert snapshot(target.id) == {}


def test_a_later_run_on_other_contacts_does_not_block(make_import, run_import):
    target = make_list("Apart")
    imp = make_import(contact_list=target)
    first = run_import(imp, FakeProvider([rec(1, "ann@example.com")]))
    run_import(imp, FakeProvider([rec(2, "bob@example.com")]))
    undo(first)
    assert list(snapshot(target.id)) == ["bob@example.com"]


def test_cycle_enrolment_is_removed_only_while_still_at_the_enrolment_day(
        make_import, run_import):
    target = make_list("Cycle")
    cycle = make_cycle(target)
    imp = make_import(contact_list=target, cycle_id=cycle.id, cycle_start_day=2)
    run = run_import(imp, FakeProvider([rec(1, "stays@example.com"),
                                        rec(2, "moved@example.com"),
                                        rec(3, "gone@example.com")]))
    member = make_user("cycles@example.com")
    for email in ("stays@example.com", "moved@example.com"):  # both kept: edited since
        contact_service.unsubscribe(contact(email), member)
    db.session.execute(update(Contact).where(Contact.email_norm == "moved@example.com")
                       .values(cycle_day=5))  # the autoresponder moved it on
    db.session.commit()
    done = undo(run)
    stays, moved = contact("stays@example.com"), contact("moved@example.com")
    assert (stays.cycle_id, stays.cycle_day, stays.enrolled_at) == (None, None, None)
    assert (moved.cycle_id, moved.cycle_day) == (cycle.id, 5)
    assert contact("gone@example.com") is None
    assert done.extra["enrolments_removed"] == 2  # the removed contact's and stays'


def test_an_added_contact_moved_on_in_its_cycle_is_kept(make_import, run_import):
    target = make_list("Moved")
    cycle = make_cycle(target)
    imp = make_import(contact_list=target, cycle_id=cycle.id, cycle_start_day=0)
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com")]))
    db.session.execute(update(Contact).values(cycle_day=3))
    db.session.commit()
    done = undo(run)
    assert contact("ann@example.com").cycle_day == 3
    assert done.kept_by_reason == {"cycle_moved_on": 1}


def test_preview_counts_and_samples_match_the_undo(make_import, run_import, mapping):
    target = make_list("Preview")
    old_contacts(target, "old@example.com", custom={"tier": "Silver"})
    imp = make_import(contact_list=target, mapping=mapping)
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", Tier="Gold"),
                                        rec(2, "a@example.com"), rec(3, "b@example.com")]))
    contact_service.unsubscribe(contact("b@example.com"), make_user("p@example.com"))
    before = snapshot(target.id)
    summary = engine.preview(db.session.get(ImportRun, run.id))
    assert snapshot(target.id) == before  # a preview writes nothing
    assert (summary["would_remove"], summary["would_restore"], summary["would_keep"]) == (
        1, 1, 1)
    assert [s["email"] for s in summary["samples"]["remove"]] == ["a@example.com"]
    assert summary["samples"]["restore"][0]["fields"] == ["tier"]
    assert summary["samples"]["keep"][0]["reason"] == "unsubscribed"
    done = undo(db.session.get(ImportRun, run.id))
    assert (done.removed, done.restored, done.kept) == (1, 1, 1)


def test_undo_is_refused_for_previews_old_runs_and_twice(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com")]))
    db.session.execute(update(ImportRun).where(ImportRun.id == run.id)
                       .values(finished_at=utcnow() - timedelta(days=31)))
    db.session.commit()
    assert "30 days" in engine.refusal(db.session.get(ImportRun, run.id))
    db.session.execute(update(ImportRun).where(ImportRun.id == run.id)
                       .values(finished_at=utcnow()))
    db.session.commit()
    undo(db.session.get(ImportRun, run.id))
    assert engine.refusal(db.session.get(ImportRun, run.id)) == "This run was undone already."
    preview = run_import(imp, FakeProvider([rec(1, "bob@example.com")]), trigger="preview")
    assert "preview" in engine.refusal(preview).lower()


def test_a_run_made_without_the_journal_cannot_be_undone(app, make_import, run_import):
    app.config["IMPORT_JOURNAL"] = False
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com")]))
    assert run.added == 1
    assert "without the undo journal" in engine.refusal(run)


def test_the_journal_of_runs_past_the_undo_window_is_purged(make_import, run_import):
    imp = make_import()
    old = run_import(imp, FakeProvider([rec(1, "ann@example.com")]))
    recent = run_import(imp, FakeProvider([rec(2, "bob@example.com")]))
    db.session.execute(update(ImportRun).where(ImportRun.id == old.id)
                       .values(finished_at=utcnow() - timedelta(days=31)))
    db.session.commit()
    assert engine.purge() == 1
    left = db.session.scalars(select(JournalEntry.run_id)).all()
    assert left == [recent.id]
    assert engine.purge() == 0
    assert "30 days" in engine.refusal(db.session.get(ImportRun, old.id))


def test_a_contact_another_writer_adds_between_the_read_and_the_write_is_journaled(
        make_import, run_import, monkeypatch):
    """The run reads the page (the contact is not on the list), someone else adds it and
    commits, then the run writes: the write becomes an update of their contact, counted as
    updated, with the values it replaced in the journal, so the undo gives their contact
    back instead of deleting it. (On PostgreSQL the run first writes without reading the
    rows it planned as new, notices from what the upsert returns, and writes the page
    again from a savepoint.)"""
    from webapp.imports import upsert

    target = make_list("Raced")
    imp = make_import(contact_list=target)
    looked_up = upsert.existing_contacts

    def meanwhile(session, list_id, norms):
        found = looked_up(session, list_id, norms)
        norms = list(norms)
        if "raced@example.com" in norms and not found.get("raced@example.com"):
            with db.engine.connect() as other:  # another writer, committed at once
                now = utcnow()
                other.execute(Contact.__table__.insert().values(
                    list_id=list_id, email="raced@example.com", email_norm="raced@example.com",
                    name="Theirs", custom={}, origin="manual", status="subscribed",
                    unsubscribed_locally=False, consent_state="subscribed",
                    consent_source="typed in", consent_at=now, created_at=now,
                    updated_at=now, note=""))
                other.commit()
        return found

    monkeypatch.setattr(upsert, "existing_contacts", meanwhile)
    run = run_import(imp, FakeProvider([
        rec(1, "first@example.com", first="A", last="One"),
        rec(2, "raced@example.com", first="Ours", last="Too"),
        rec(3, "third@example.com", first="C", last="Three"),
    ]))
    assert (run.added, run.updated) == (2, 1)
    raced = contact("raced@example.com")
    assert raced.name == "Ours Too" and raced.created_run_id is None
    changed = db.session.scalar(select(JournalEntry).where(
        JournalEntry.run_id == run.id, JournalEntry.contact_id == raced.id))
    assert changed.kind == "changed" and changed.values["name"] == ["Theirs", "Ours Too"]
    done = undo(run)
    assert (done.removed, done.restored) == (2, 1)
    assert contact("raced@example.com").name == "Theirs"
    assert contact("first@example.com") is None
