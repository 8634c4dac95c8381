"""The import rules (cap, consent, suppression, validation), one rule per test, through the
engine with an in-process provider."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_contacts, make_cycle, make_field, make_list
from tests.imports.fakes import FakeProvider, people, rec
from webapp.extensions import db
from webapp.imports.rules import check_email
from webapp.models import ConsentEvent, Contact, RejectedRow, Suppression


def contacts_of(imp) -> dict[str, Contact]:
    db.session.expire_all()
    rows = db.session.scalars(select(Contact).where(Contact.list_id == imp.list_id))
    return {c.email_norm: c for c in rows}


def rejects_of(run) -> list[tuple[str, str]]:
    return [(r.email, r.reason) for r in db.session.scalars(
        select(RejectedRow).where(RejectedRow.run_id == run.id).order_by(RejectedRow.id))]


def existing(imp, email="old@example.com", **values):
    values.setdefault("name", "Old Name")
    make_contacts(imp.list, 1, prefix="__", **values)
    db.session.execute(Contact.__table__.update().where(Contact.email_norm == "__0@example.com")
                       .values(email=email, email_norm=email))
    db.session.commit()


# ------------------------------------------------------------------------- criteria

@pytest.mark.parametrize("criteria,is_existing,outcome", [
    ("add_update", False, "added"), ("add_update", True, "updated"),
    ("add_only", False, "added"), ("add_only", True, "mismatched_criteria"),
    ("update_only", False, "mismatched_criteria"), ("update_only", True, "updated"),
])
def test_criteria_against_new_and_existing(make_import, run_import, criteria, is_existing,
                                           outcome):
    imp = make_import(criteria=criteria)
    if is_existing:
        existing(imp)
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", first="New", last="Name")]))
    if outcome == "mismatched_criteria":
        assert run.rejected_by_reason == {"mismatched_criteria": 1}
        assert rejects_of(run) == [("old@example.com", "mismatched_criteria")]
        stored = contacts_of(imp).get("old@example.com")
        assert stored is None or stored.name == "Old Name"
    else:
        assert getattr(run, outcome) == 1 and run.status == "completed"
        assert contacts_of(imp)["old@example.com"].name == "New Name"


# --------------------------------------------------------------------------- consent

def test_opted_out_at_source_is_never_added(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "out@example.com", consent="opted_out")]))
    assert rejects_of(run) == [("out@example.com", "opted_out_at_source")]
    assert contacts_of(imp) == {}


def test_existing_contact_opted_out_at_source_becomes_unsubscribed(make_import, run_import):
    imp = make_import(criteria="add_only")  # an opt-out applies whatever the criteria
    existing(imp, consent_state="subscribed")
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", consent="opted_out")]))
    contact = contacts_of(imp)["old@example.com"]
    assert run.updated == 1
    assert contact.status == "unsubscribed" and contact.unsubscribed_at is not None
    assert contact.consent_state == "opted_out" and contact.consent_run_id == run.id
    ledger = db.session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact.id))
    assert [(e.state, e.run_id) for e in ledger] == [("opted_out", run.id)]


def test_new_contact_gets_consent_record_and_ledger_row(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "yes@example.com", consent="subscribed"),
                                        rec(2, "maybe@example.com")]))
    found = contacts_of(imp)
    yes, maybe = found["yes@example.com"], found["maybe@example.com"]
    assert (yes.consent_state, maybe.consent_state) == ("subscribed", "unknown")
    assert yes.consent_source.startswith("shopify import") and yes.consent_at is not None
    assert yes.created_run_id == yes.updated_run_id == yes.consent_run_id == run.id
    assert yes.origin == "import" and yes.status == "subscribed"
    assert db.session.scalar(select(func.count(ConsentEvent.id))) == 2


@pytest.mark.parametrize("locally", [True, False])
def test_unsubscribed_contact_is_never_resubscribed(make_import, run_import, locally):
    imp = make_import()
    existing(imp, status="unsubscribed", unsubscribed_locally=locally)
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", consent="subscribed",
                                            first="Changed")]))
    assert rejects_of(run) == [("old@example.com", "policy_failure")]
    contact = contacts_of(imp)["old@example.com"]
    assert contact.status == "unsubscribed" and contact.name == "Old Name"


# ------------------------------------------------------------------ suppression, rejects

def test_suppressed_email_and_domain_are_blacklisted(make_import, run_import):
    imp = make_import()
    db.session.add_all([Suppression(kind="email", value="spam@example.com"),
                        Suppression(kind="domain", value="blocked.org")])
    db.session.commit()
    run = run_import(imp, FakeProvider([rec(1, " Spam@Example.com"), rec(2, "a@blocked.org"),
                                        rec(3, "fine@example.com")]))
    assert sorted(r for _, r in rejects_of(run)) == ["blacklisted", "blacklisted"]
    assert list(contacts_of(imp)) == ["fine@example.com"]


@pytest.mark.parametrize("email,reason", [
    ("bob@", "syntax_error"),
    ("no-at-sign.example.com", "syntax_error"),
    ("a b@example.com", "syntax_error"),
    ("x" * 120 + "@example.com", "syntax_error"),  # > 128 characters
    ("ann@localhost", "invalid_domain"),
    ("ann@example.invalid", "invalid_domain"),
    ("ann@-bad-.com", "invalid_domain"),
])
def test_invalid_emails_are_rejected_with_their_reason(make_import, run_import, email, reason):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, email)]))
    assert rejects_of(run) == [(email, reason)]
    assert run.status == "completed_with_errors"
    assert contacts_of(imp) == {}


# --------------------------------------------------------------- the run status rule

@pytest.mark.parametrize("bad,status", [(1, "completed"), (5, "completed"),
                                        (6, "completed_with_errors")])
def test_a_few_bad_emails_do_not_make_a_warning(make_import, run_import, bad, status):
    """Above 5 % of the records read with a bad email the run warns; below, it is normal."""
    imp = make_import()
    records = people(100 - bad) + [rec(1000 + i, f"bad{i}@") for i in range(bad)]
    run = run_import(imp, FakeProvider(records))
    assert run.rejected_by_reason["syntax_error"] == bad
    assert run.status == status


@pytest.mark.parametrize("unfit,status", [(2, "completed"), (10, "completed_with_errors")])
def test_many_unfit_field_values_make_a_warning(make_import, run_import, unfit, status):
    make_field("age", type="number", format="text")
    imp = make_import(mapping={"email": "email", "src_age": "age"})
    records = [rec(i, f"p{i}@example.com", src_age="old" if i < unfit else "42")
               for i in range(100)]
    run = run_import(imp, FakeProvider(records))
    assert run.warnings == unfit and run.rejected == 0
    assert run.status == status


def test_suppressed_and_duplicate_rejects_never_warn(make_import, run_import):
    imp = make_import()
    db.session.add(Suppression(kind="domain", value="blocked.org"))
    db.session.commit()
    run = run_import(imp, FakeProvider(people(10, domain="blocked.org") + people(3)
                                       + people(3)))
    assert run.rejected_by_reason == {"blacklisted": 10, "already_in_queue": 3}
    assert run.status == "completed"


def test_email_rules():
    assert check_email("ann@example.com") is None
    assert check_email("zoë@müller.de") is None
    domain = "a" * 60 + "." + "b" * 59 + ".com"
    assert len("ann@" + domain) == 128
    assert check_email("ann@" + domain) is None
    assert check_email("anna@" + domain) == ("syntax_error", "longer than 128 characters")


def test_duplicates_in_one_run_count_once(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "Ann@Example.com"), rec(2, "x@example.com"),
                                        rec(3, "  ann@example.COM "), rec(4, "ann@example.com")],
                                       page_size=2))
    assert run.added == 2
    assert run.rejected_by_reason == {"already_in_queue": 2}
    assert contacts_of(imp)["ann@example.com"].email == "Ann@Example.com"


def test_missing_email_is_skipped_not_rejected(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, None), rec(2, "  ")]))
    assert (run.skipped, run.rejected, run.status) == (2, 0, "completed")


def test_skipped_rows_are_kept_with_source_id_and_name(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(7, None, first="Nora", last="Nomail"),
                                        rec(8, "bob@", first="Bea", last="Bad")]))
    rows = [(r.source_id, r.email, r.name, r.reason) for r in db.session.scalars(
        select(RejectedRow).where(RejectedRow.run_id == run.id).order_by(RejectedRow.id))]
    assert rows == [("7", "", "Nora Nomail", "no_email"),
                    ("8", "bob@", "Bea Bad", "syntax_error")]
    assert (run.skipped, run.rejected) == (1, 1)
    assert run.rejected_by_reason == {"syntax_error": 1}


# ---------------------------------------------------------------------- custom values

CASES = [
    # type, format, allowed, raw, stored (None = dropped with a warning)
    ("text", "text", [], "Gold", "Gold"),
    ("number", "text", [], "1,234.5", 1234.5),
    ("number", "text", [], "lots", None),
    ("date", "text", [], "1990-02-03", "1990-02-03"),
    ("date", "text", [], "1990-02-30", None),
    ("datetime", "text", [], "2025-05-01T12:34:56+02:00", "2025-05-01T10:34:56+00:00"),
    ("country", "text", [], "Germany", "DE"),
    ("country", "text", [], "Atlantis", None),
    ("currency", "text", [], "eur", "EUR"),
    ("currency", "text", [], "XYZ", None),
    ("phone", "text", [], "+1 415 555 2671", "+14155552671"),
    ("phone", "text", [], "12", None),
    ("gender", "text", [], "f", "Female"),
    ("gender", "text", [], "robot", None),
    ("ip", "text", [], "10.0.0.1", "10.0.0.1"),
    ("ip", "text", [], "999.1.1.1", None),
    ("url", "text", [], "https://example.com/x", "https://example.com/x"),
    ("url", "text", [], "javascript:alert(1)", None),
    ("text", "single_select", ["Gold", "Silver"], "gold", "Gold"),
    ("text", "single_select", ["Gold", "Silver"], "Bronze", None),
    ("text", "multi_select", ["vip", "retail", "wholesale"], "VIP, retail", ["vip", "retail"]),
    ("text", "multi_select", ["vip", "retail"], ["vip", "nope"], None),
]


@pytest.mark.parametrize("type_,format_,allowed,raw,stored", CASES)
def test_custom_values_are_coerced_or_dropped_with_a_warning(make_import, run_import, type_,
                                                             format_, allowed, raw, stored):
    make_field("attr", type=type_, format=format_, allowed_values=allowed)
    imp = make_import(mapping={"email": "email", "src_attr": "attr"})
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com", src_attr=raw)]))
    contact = contacts_of(imp)["ann@example.com"]  # the contact is imported either way
    if stored is None:
        assert "attr" not in contact.custom and run.warnings == 1
    else:
        assert contact.custom["attr"] == stored and run.warnings == 0


def test_custom_field_mapped_by_id(make_import, run_import):
    field = make_field("tier")
    imp = make_import(mapping={"email": "email", "Tier": field.id})
    run_import(imp, FakeProvider([rec(1, "ann@example.com", Tier="Gold")]))
    assert contacts_of(imp)["ann@example.com"].custom == {"tier": "Gold"}


def test_text_is_clipped_at_255_with_a_warning(make_import, run_import):
    make_field("note_text")
    imp = make_import(mapping={"email": "email", "note": "note_text", "Full name": "name"})
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com", first="A" * 300,
                                            note="n" * 300)]))
    contact = contacts_of(imp)["ann@example.com"]
    assert len(contact.custom["note_text"]) == 255 and len(contact.name) == 255
    assert run.warnings == 2


def test_empty_source_values_never_erase(make_import, run_import):
    make_field("tier")
    make_field("city")
    imp = make_import(mapping={"email": "email", "Full name": "name", "tier": "tier",
                               "city": "city"})
    existing(imp, name="Kept Name", custom={"tier": "Gold", "city": "Oslo", "other": 1})
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", first="", last=None,
                                            tier="", city=None)]))
    contact = contacts_of(imp)["old@example.com"]
    assert run.unchanged == 1 and run.updated == 0
    assert contact.name == "Kept Name"
    assert contact.custom == {"tier": "Gold", "city": "Oslo", "other": 1}


def test_custom_values_merge_key_by_key(make_import, run_import):
    make_field("tier")
    make_field("city")
    imp = make_import(mapping={"email": "email", "tier": "tier", "city": "city"})
    existing(imp, custom={"tier": "Gold", "other": "x"})
    run = run_import(imp, FakeProvider([rec(1, "old@example.com", city="Oslo")]))
    assert run.updated == 1
    assert contacts_of(imp)["old@example.com"].custom == {"tier": "Gold", "other": "x",
                                                          "city": "Oslo"}


def test_full_name_virtual_source(make_import, run_import):
    imp = make_import(mapping={"email": "email", "Full name": "name"})
    run_import(imp, FakeProvider([rec(1, "a@example.com", first=" Ada ", last="Lovelace"),
                                  rec(2, "b@example.com", first="Solo")]))
    found = contacts_of(imp)
    assert found["a@example.com"].name == "Ada Lovelace"
    assert found["b@example.com"].name == "Solo"


# ------------------------------------------------------------------------- enrolment

def test_only_new_contacts_are_enrolled_on_the_cycle(make_import, run_import):
    target = make_list("Cycled")
    cycle = make_cycle(target)
    imp = make_import(contact_list=target, cycle_id=cycle.id, cycle_start_day=3)
    existing(imp)
    run_import(imp, FakeProvider([rec(1, "old@example.com", first="New"),
                                  rec(2, "new@example.com")]))
    found = contacts_of(imp)
    new, old = found["new@example.com"], found["old@example.com"]
    assert (new.cycle_id, new.cycle_day) == (cycle.id, 3) and new.enrolled_at is not None
    assert (old.cycle_id, old.cycle_day, old.enrolled_at) == (None, None, None)
    assert old.created_run_id is None and old.updated_run_id is not None


def test_unchanged_contact_is_not_rewritten(make_import, run_import):
    imp = make_import()
    first = run_import(imp, FakeProvider(people(3)))
    imp.high_water = None  # walk everything again, not just what changed since
    db.session.commit()
    second = run_import(imp, FakeProvider(people(3)))
    assert (first.added, second.unchanged, second.updated) == (3, 3, 0)
    assert {c.updated_run_id for c in contacts_of(imp).values()} == {first.id}


# ------------------------------------------- duplicates: an opt-out in any record wins

def ledger_of(contact) -> list[str]:
    return [e.state for e in db.session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact.id)
        .order_by(ConsentEvent.id))]


def test_a_later_opt_out_in_the_same_page_means_never_added(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "Ann@Example.com", consent="subscribed"),
                                        rec(2, "x@example.com"),
                                        rec(3, " ann@example.com ", consent="opted_out")],
                                       page_size=3))
    assert list(contacts_of(imp)) == ["x@example.com"]
    assert rejects_of(run) == [("Ann@Example.com", "already_in_queue"),
                               ("ann@example.com", "opted_out_at_source")]


def test_a_later_opt_out_pages_apart_unsubscribes(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com", consent="subscribed"),
                                        rec(2, "x@example.com"), rec(3, "y@example.com"),
                                        rec(4, "ANN@example.com ", consent="opted_out")],
                                       page_size=1))
    ann = contacts_of(imp)["ann@example.com"]
    assert (run.added, run.updated, run.rejected) == (3, 1, 0)
    assert ann.status == "unsubscribed" and ann.consent_state == "opted_out"
    assert ledger_of(ann) == ["subscribed", "opted_out"]


def test_an_earlier_opt_out_is_not_undone_by_later_records(make_import, run_import):
    imp = make_import()
    existing(imp, email="ann@example.com", consent_state="subscribed")
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com", consent="opted_out"),
                                        rec(2, "Ann@example.com", consent="subscribed"),
                                        rec(3, "ann@example.com", consent="opted_out"),
                                        rec(4, "ann@example.com", first="Later")],
                                       page_size=2))
    ann = contacts_of(imp)["ann@example.com"]
    assert ann.status == "unsubscribed" and ann.name == "Old Name"
    assert run.updated == 1 and run.rejected_by_reason == {"already_in_queue": 3}
    assert ledger_of(ann) == ["opted_out"]


def test_an_opt_out_duplicate_unsubscribes_whatever_the_criteria(make_import, run_import):
    imp = make_import(criteria="add_only")
    existing(imp, email="ann@example.com", consent_state="subscribed")
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"),
                                        rec(2, "ann@example.com", consent="opted_out")],
                                       page_size=1))
    assert contacts_of(imp)["ann@example.com"].status == "unsubscribed"
    assert rejects_of(run) == [("ann@example.com", "mismatched_criteria")]


def test_a_resumed_run_remembers_which_opt_outs_it_applied(make_import, run_import):
    """The flag bit is persisted with the page's hashes, so a run resumed by another
    worker lets an unapplied opt-out through and refuses an applied one."""
    from webapp.imports import upsert
    from webapp.imports.rules import email_hash
    from webapp.imports.seen import SETTLED

    imp = make_import()
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com"),
                                        rec(2, "bob@example.com", consent="opted_out")],
                                       page_size=1))
    upsert.insert_seen(db.session, run.id, 1, [email_hash("ann@example.com")])
    upsert.insert_seen(db.session, run.id, 2, [email_hash("bob@example.com") | SETTLED])
    db.session.commit()
    seen = upsert.load_seen(db.session, run.id)
    assert seen.flag(email_hash("ann@example.com")) == 0
    assert seen.flag(email_hash("bob@example.com")) == SETTLED


# ------------------------------------------------------------------- withdrawn consent

def test_subscribed_then_not_subscribed_at_the_source_is_withdrawn(make_import, run_import):
    imp = make_import(provider="magento")
    first = run_import(imp, FakeProvider([rec(1, "ann@example.com", consent="subscribed")]))
    ann = contacts_of(imp)["ann@example.com"]
    assert ann.status == "subscribed" and ann.consent_state == "subscribed"
    second = run_import(imp, FakeProvider([rec(5, "ann@example.com", consent="not_subscribed")]))
    ann = contacts_of(imp)["ann@example.com"]
    assert (first.added, second.updated) == (1, 1)
    assert ann.status == "unsubscribed" and ann.consent_state == "opted_out"
    assert ann.consent_run_id == second.id and ledger_of(ann) == ["subscribed", "opted_out"]


def test_withdrawal_found_in_the_ledger_when_another_source_wrote_last(make_import,
                                                                       run_import):
    imp = make_import()
    existing(imp, email="ann@example.com", consent_state="subscribed",
             consent_source="website form")
    ann = contacts_of(imp)["ann@example.com"]
    db.session.add(ConsentEvent(contact_id=ann.id, state="subscribed",
                                source=f"shopify import #{imp.id}"))
    db.session.commit()
    run_import(imp, FakeProvider([rec(1, "ann@example.com", consent="not_subscribed")]))
    assert contacts_of(imp)["ann@example.com"].status == "unsubscribed"


def test_not_subscribed_without_an_earlier_subscription_is_no_withdrawal(make_import,
                                                                         run_import):
    imp = make_import()
    existing(imp, email="ann@example.com", consent_state="subscribed",
             consent_source="website form")
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com", consent="not_subscribed"),
                                        rec(2, "new@example.com", consent="not_subscribed")]))
    found = contacts_of(imp)
    assert run.added == 1
    assert found["ann@example.com"].status == "subscribed"
    assert found["ann@example.com"].consent_state == "subscribed"
    assert (found["new@example.com"].status, found["new@example.com"].consent_state) == (
        "subscribed", "unknown")


# ---------------------------------------------------------------------- consent filter

def test_subscribed_only_filter_keeps_the_others_as_rejects(make_import, run_import):
    imp = make_import(consent_filter="subscribed")
    existing(imp, email="old@example.com")
    run = run_import(imp, FakeProvider([rec(1, "yes@example.com", consent="subscribed"),
                                        rec(2, "maybe@example.com"),
                                        rec(3, "no@example.com", consent="not_subscribed"),
                                        rec(4, "old@example.com", first="Changed"),
                                        rec(5, "out@example.com", consent="opted_out")]))
    found = contacts_of(imp)
    assert sorted(found) == ["old@example.com", "yes@example.com"]
    assert found["old@example.com"].name == "Old Name"  # left out: not updated either
    assert run.rejected_by_reason == {"no_marketing_consent": 3, "opted_out_at_source": 1}
    assert ("no@example.com", "no_marketing_consent") in rejects_of(run)


def test_everyone_filter_takes_all_who_have_not_opted_out(make_import, run_import):
    imp = make_import(consent_filter="everyone")
    run = run_import(imp, FakeProvider([rec(1, "yes@example.com", consent="subscribed"),
                                        rec(2, "maybe@example.com"),
                                        rec(3, "no@example.com", consent="not_subscribed"),
                                        rec(4, "out@example.com", consent="opted_out")]))
    assert run.added == 3 and run.rejected_by_reason == {"opted_out_at_source": 1}


def test_crm_consent_field_decides_who_is_subscribed(make_import, run_import):
    imp = make_import(provider="zoho", group="leads", consent_filter="subscribed",
                      consent_field="Newsletter")
    provider = FakeProvider([rec(1, "a@example.com", Newsletter=True),
                             rec(2, "b@example.com", Newsletter="false"),
                             rec(3, "c@example.com", Newsletter="yes"),
                             rec(4, "d@example.com"),
                             rec(5, "e@example.com", Newsletter=True, consent="opted_out")])
    run = run_import(imp, provider)
    assert sorted(contacts_of(imp)) == ["a@example.com", "c@example.com"]
    assert contacts_of(imp)["a@example.com"].consent_state == "subscribed"
    assert run.rejected_by_reason == {"no_marketing_consent": 2, "opted_out_at_source": 1}
    assert "Newsletter" in provider.calls[0]["fields"]


def test_crm_consent_field_true_then_false_is_withdrawn(make_import, run_import):
    imp = make_import(provider="salesforce", group="leads", consent_field="Newsletter__c")
    run_import(imp, FakeProvider([rec(1, "a@example.com", Newsletter__c=True)]))
    run_import(imp, FakeProvider([rec(5, "a@example.com", Newsletter__c=False)]))
    assert contacts_of(imp)["a@example.com"].status == "unsubscribed"


def test_preview_counts_what_each_consent_filter_would_import(make_import):
    from webapp.imports.preview import preview_now

    imp = make_import(consent_filter="subscribed")
    summary = preview_now(imp.id, provider_factory=FakeProvider([
        rec(1, "yes@example.com", consent="subscribed"), rec(2, "maybe@example.com"),
        rec(3, "no@example.com", consent="not_subscribed"),
        rec(4, "out@example.com", consent="opted_out"), rec(5, "bad@")]))
    assert summary["consent_choices"] == {"everyone": 3, "subscribed": 1}
    assert summary["would_add"] == 1
    assert summary["rejected_by_reason"]["no_marketing_consent"] == 2


# ------------------------------------------------------- after a manual unsubscribe

def test_imports_still_never_resubscribe_after_a_manual_unsubscribe(signed_in, make_import,
                                                                    run_import):
    imp = make_import()
    contact = make_contact(imp.list, "ann@example.com")
    signed_in.post(f"/contacts/{contact.id}/unsubscribe", {"confirm": "yes"})
    run = run_import(imp, FakeProvider([rec(1, "ann@example.com", consent="subscribed")]))
    assert run.rejected_by_reason == {"policy_failure": 1}
    assert contacts_of(imp)["ann@example.com"].status == "unsubscribed"
