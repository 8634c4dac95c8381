"""Suppression that reaches people already on lists, and manual consent changes on the
contact page attributed to the team member."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.factories import make_contact, make_contacts, make_list, make_suppression, make_user
from webapp.extensions import db
from webapp.models import ConsentEvent, Contact, Suppression

pytestmark = pytest.mark.usefixtures("app")


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _contact(contact_id: int) -> Contact:
    db.session.expire_all()
    return db.session.get(Contact, contact_id)


def _ledger(contact_id: int) -> list[ConsentEvent]:
    return list(db.session.scalars(select(ConsentEvent).where(
        ConsentEvent.contact_id == contact_id).order_by(ConsentEvent.id)))


# ---------------------------------------------------------------------- suppression

def test_adding_entries_shows_how_many_contacts_match_and_waits(signed_in):
    news, shop = make_list("News"), make_list("Shop")
    make_contacts(news, 3, prefix="p")  # p0..p2@example.com
    make_contact(shop, "p1@example.com")
    make_contact(shop, "gone@example.com", status="unsubscribed")
    make_contact(shop, "x@blocked.org")
    make_contact(shop, "y@sub.blocked.org")  # another domain: not matched
    resp = signed_in.post("/suppression/", {"entries": "P1@example.com\n@blocked.org\n"
                                                       "gone@example.com\nnot valid"})
    page = _html(resp)
    assert resp.status_code == 200 and "Unsubscribe 3 contacts?" in page
    assert re.search(r'id="match-total">3<', page)
    assert "News: 1" in page and "Shop: 2" in page
    assert "not valid" in page  # the invalid line is named, left out
    assert db.session.scalar(select(Suppression.id)) is None  # nothing saved yet
    statuses = {c.email_norm: c.status for c in db.session.scalars(select(Contact))}
    assert statuses["p1@example.com"] == "subscribed"


def test_confirming_unsubscribes_the_matches_with_a_ledger_entry(signed_in, user):
    shop = make_list("Shop")
    p1 = make_contact(shop, "p1@example.com", consent_state="subscribed")
    x = make_contact(shop, "x@blocked.org")
    other = make_contact(shop, "y@sub.blocked.org")
    resp = signed_in.post("/suppression/", {"entries": "p1@example.com\nblocked.org",
                                            "note": "complaint", "confirm": "yes"})
    assert resp.status_code == 302
    for contact_id in (p1.id, x.id):
        row = _contact(contact_id)
        assert row.status == "unsubscribed" and row.unsubscribed_locally
        [entry] = _ledger(contact_id)
        assert (entry.state, entry.source, entry.user_id) == ("opted_out",
                                                              "suppression list", user.id)
    assert "Email on the suppression list" in _ledger(p1.id)[0].note
    assert "blocked.org" in _ledger(x.id)[0].note
    assert _contact(other.id).status == "subscribed" and _ledger(other.id) == []
    assert "2 subscribed contacts unsubscribed" in _html(signed_in.get("/suppression/"))


def test_entries_matching_no_subscribed_contact_are_added_at_once(signed_in):
    make_contact(make_list("Shop"), "gone@example.com", status="unsubscribed")
    resp = signed_in.post("/suppression/", {"entries": "gone@example.com"})
    assert resp.status_code == 302
    assert db.session.scalar(select(Suppression.value)) == "gone@example.com"


def test_the_contact_page_shows_a_suppressed_contact(signed_in):
    contact = make_contact(make_list("Shop"), "ann@blocked.org")
    make_suppression("blocked.org", kind="domain")
    page = _html(signed_in.get(f"/contacts/{contact.id}"))
    assert 'id="suppressed"' in page and "<code>blocked.org</code>" in page
    plain = make_contact(make_list("Other"), "bob@example.com")
    assert 'id="suppressed"' not in _html(signed_in.get(f"/contacts/{plain.id}"))


# --------------------------------------------------------- manual changes, attributed

def test_unsubscribe_asks_for_confirmation_first(signed_in):
    contact = make_contact(make_list("Shop"), "ann@example.com")
    page = _html(signed_in.get(f"/contacts/{contact.id}"))
    assert f'action="/contacts/{contact.id}/unsubscribe"' in page and 'method="get"' in page
    confirm = signed_in.get(f"/contacts/{contact.id}/unsubscribe")
    assert confirm.status_code == 200 and "Unsubscribe ann@example.com?" in _html(confirm)
    assert 'name="confirm" value="yes"' in _html(confirm)
    resp = signed_in.post(f"/contacts/{contact.id}/unsubscribe")  # not confirmed
    assert resp.status_code == 200 and "Unsubscribe ann@example.com?" in _html(resp)
    assert _contact(contact.id).status == "subscribed" and _ledger(contact.id) == []


def test_unsubscribe_is_credited_to_the_person_not_the_last_run(signed_in, user):
    contact = make_contact(make_list("Shop"), "ann@example.com", origin="import",
                           consent_state="subscribed", consent_run_id=7, updated_run_id=12,
                           created_run_id=7)
    resp = signed_in.post(f"/contacts/{contact.id}/unsubscribe",
                          {"confirm": "yes", "reason": "Asked by phone"})
    assert resp.status_code == 302
    row = _contact(contact.id)
    assert row.status == "unsubscribed" and row.unsubscribed_locally
    assert row.updated_run_id is None and row.consent_state == "opted_out"
    [entry] = _ledger(contact.id)
    assert (entry.state, entry.user_id, entry.run_id, entry.note) == (
        "opted_out", user.id, None, "Asked by phone")
    page = _html(signed_in.get(f"/contacts/{contact.id}"))
    assert f"by {user.email}; imports will not re-subscribe" in page
    assert "Last updated by run #12" not in page and f"last by {user.email}" in page
    assert "Asked by phone" in page


def test_resubscribe_needs_written_evidence(signed_in, user):
    contact = make_contact(make_list("Shop"), "ann@example.com", status="unsubscribed",
                           unsubscribed_locally=True, consent_state="opted_out")
    resp = signed_in.post(f"/contacts/{contact.id}/resubscribe", {"evidence": "ok"})
    assert resp.status_code == 422
    assert re.search(r'id="f-evidence"[^>]*aria-invalid="true"', _html(resp))
    assert _contact(contact.id).status == "unsubscribed"
    evidence = "Asked by email on 2 May, ticket 4411"
    resp = signed_in.post(f"/contacts/{contact.id}/resubscribe", {"evidence": evidence})
    assert resp.status_code == 303
    row = _contact(contact.id)
    assert row.status == "subscribed" and not row.unsubscribed_locally
    assert row.consent_state == "subscribed"
    [entry] = _ledger(contact.id)
    assert (entry.state, entry.user_id, entry.note) == ("subscribed", user.id, evidence)
    assert evidence in _html(signed_in.get(f"/contacts/{contact.id}"))


def test_a_suppressed_contact_cannot_be_resubscribed(signed_in):
    contact = make_contact(make_list("Shop"), "ann@example.com", status="unsubscribed",
                           unsubscribed_locally=True)
    make_suppression("ann@example.com")
    page = _html(signed_in.get(f"/contacts/{contact.id}"))
    assert 'id="resubscribe"' not in page
    resp = signed_in.post(f"/contacts/{contact.id}/resubscribe",
                          {"evidence": "Asked by email on 2 May"})
    assert resp.status_code == 422 and "suppression list" in _html(resp)
    assert _contact(contact.id).status == "unsubscribed"


def test_history_names_a_team_member_who_left(signed_in):
    contact = make_contact(make_list("Shop"), "ann@example.com")
    gone = make_user(email="gone@example.com")
    db.session.add(ConsentEvent(contact_id=contact.id, state="opted_out", source="team member",
                                user_id=gone.id, note="by hand"))
    db.session.commit()
    assert "gone@example.com" in _html(signed_in.get(f"/contacts/{contact.id}"))
