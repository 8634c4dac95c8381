"""Processing stored plugin events: resolve, stitch, create only for the allowed kinds,
consent with evidence, activity for existing contacts, the unsubscribed and suppressed stay
so, bad events fail alone, and processing twice has no second effect."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_cycle, make_list, make_suppression
from tests.plugins import factories as f
from webapp.extensions import db
from webapp.models import (
    ConsentEvent,
    Contact,
    OverageEntry,
    PluginEvent,
    VisitorIdentity,
    WorkspaceSettings,
)
from webapp.plugins.process import process_batch, process_pending

pytestmark = pytest.mark.usefixtures("app")


def _event(event_id: int) -> PluginEvent:
    db.session.expire_all()
    return db.session.get(PluginEvent, event_id)


def _contact(lst, email: str) -> Contact | None:
    db.session.expire_all()
    return db.session.scalar(select(Contact).where(Contact.list_id == lst.id,
                                                   Contact.email_norm == email))


def _ledger(contact: Contact) -> list[ConsentEvent]:
    return list(db.session.scalars(select(ConsentEvent).where(
        ConsentEvent.contact_id == contact.id).order_by(ConsentEvent.id)))


def test_a_shopify_sign_up_adds_a_subscribed_contact_with_evidence_and_enrolment():
    lst = make_list()
    cycle = make_cycle(lst)
    source = f.make_source(lst, kind="shopify", cycle_id=cycle.id, cycle_day=3)
    event = f.store_shopify(source, "customers/create",
                            f.shopify_customer("Bob@Biller.com", consent="subscribed"))
    assert process_pending() == 1
    bob = _contact(lst, "bob@biller.com")
    assert bob.email == "Bob@Biller.com" and bob.name == "Bob Biller"
    assert (bob.origin, bob.status, bob.consent_state) == ("plugin", "subscribed", "subscribed")
    assert bob.consent_source == f"plugin:{source.id}:{event.id}"
    assert (bob.cycle_id, bob.cycle_day) == (cycle.id, 3) and bob.enrolled_at is not None
    [entry] = _ledger(bob)
    assert (entry.state, entry.source) == ("subscribed", f"plugin:{source.id}:{event.id}")
    event = _event(event.id)
    assert event.status == "processed" and event.contact_id == bob.id
    assert event.verdict["outcome"] == "created" and event.processed_at is not None


def test_a_form_without_consent_adds_unsubscribed_unless_the_source_allows():
    lst = make_list()
    strict = f.make_source(lst)
    f.store_segment(strict, f.track("Form Submitted", "anon-1", email="ann@example.com",
                                    consent=False), channel="browser")
    process_pending()
    ann = _contact(lst, "ann@example.com")
    assert (ann.origin, ann.status, ann.consent_state) == ("form", "unsubscribed", "unknown")
    assert not ann.unsubscribed_locally
    other = make_list("Other")
    lenient = f.make_source(other, allow_unconsented_subscribe=True)
    f.store_segment(lenient, f.track("Form Submitted", email="ann@example.com"))
    process_pending()
    assert _contact(other, "ann@example.com").status == "subscribed"
    # Consent given later (the same person ticks the box) subscribes the first one.
    f.store_segment(strict, f.identify("ann@example.com", marketing_consent=True))
    process_pending()
    ann = _contact(lst, "ann@example.com")
    assert (ann.status, ann.consent_state) == ("subscribed", "subscribed")
    assert [e.state for e in _ledger(ann)] == ["unknown", "subscribed"]


def test_only_the_allowed_kinds_add_contacts_and_activity_needs_a_contact():
    lst = make_list()
    source = f.make_source(lst)  # signed_up and form_submitted add
    viewed = f.store_segment(source, f.track("Product Viewed", email="new@example.com",
                                             product_id="p1"))
    known = make_contact(lst, "known@example.com")
    order = f.store_segment(source, f.track("Order Completed", email="known@example.com",
                                            order_id="o1", total=30))
    custom = f.store_segment(source, f.track("Wishlist Shared", email="known@example.com"))
    stranger = f.store_segment(source, f.track("Order Completed", email="else@example.com",
                                               order_id="o2", total=12))
    process_pending()
    assert _contact(lst, "new@example.com") is None
    assert _event(viewed.id).status == "ignored"
    assert "a product viewed event does not add contacts" in _event(viewed.id).verdict["why"]
    assert "an order completed event does not" in _event(stranger.id).verdict["why"]
    for event in (order, custom):
        stored = _event(event.id)
        assert stored.status == "processed" and stored.contact_id == known.id
        assert stored.verdict["outcome"] == "activity"
    assert _event(custom.id).kind == "custom" and _event(custom.id).name == "Wishlist Shared"


def test_an_anonymous_visitor_is_stitched_when_they_identify():
    lst = make_list()
    source = f.make_source(lst, add_events=["signed_up", "form_submitted", "identify"])
    visit = f.store_segment(source, f.page("anon-7", "/shoes"), channel="browser")
    cart = f.store_segment(source, f.track("Product Added", "anon-7", product_id="p9"),
                           channel="browser")
    process_pending()
    assert _event(visit.id).contact_id is None
    assert _event(visit.id).verdict["outcome"] == "anonymous"
    who = f.store_segment(source, f.identify("Cy@Example.com", "anon-7"), channel="browser")
    after = f.store_segment(source, f.page("anon-7", "/checkout"), channel="browser")
    process_pending()
    cy = _contact(lst, "cy@example.com")
    assert cy is not None and cy.origin == "plugin"
    assert _event(who.id).verdict["stitched"] == "anon-7"
    for event in (visit, cart, who, after):
        assert _event(event.id).contact_id == cy.id
    [identity] = db.session.scalars(select(VisitorIdentity)).all()
    assert (identity.anonymous_id, identity.contact_id) == ("anon-7", cy.id)


def test_unsubscribed_contacts_stay_so_and_suppressed_emails_are_never_added():
    lst = make_list()
    source = f.make_source(lst, kind="shopify", add_events=["signed_up", "consent_updated"])
    gone = make_contact(lst, "gone@example.com", status="unsubscribed",
                        unsubscribed_locally=True, consent_state="opted_out")
    event = f.store_shopify(source, "customers_email_marketing_consent/update",
                            f.shopify_consent(1, "gone@example.com", "subscribed"))
    make_suppression("spam@example.com")
    make_suppression("blocked.example", kind="domain")
    spam = f.store_shopify(source, "customers/create", f.shopify_customer("spam@example.com"))
    blocked = f.store_shopify(source, "customers/create",
                              f.shopify_customer("x@blocked.example"))
    out = f.store_shopify(source, "customers/create",
                          f.shopify_customer("out@example.com", consent="unsubscribed"))
    process_pending()
    gone = _contact(lst, "gone@example.com")
    assert (gone.status, gone.consent_state) == ("unsubscribed", "opted_out")
    assert "never re-subscribed" in " ".join(_event(event.id).verdict["changes"])
    assert _event(event.id).contact_id == gone.id  # found by the consent update's email_address
    for e, words in ((spam, "suppression list"), (blocked, "suppression list"),
                     (out, "opted out")):
        assert _event(e.id).status == "ignored" and words in _event(e.id).verdict["why"]
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1


def test_an_opt_out_or_withdrawal_unsubscribes_but_the_browser_key_cannot_lower_consent():
    lst = make_list()
    shop = f.make_source(lst, kind="shopify")
    f.store_shopify(shop, "customers/create", f.shopify_customer("dee@example.com"))
    site = f.make_source(lst)
    f.store_segment(site, f.identify("dee@example.com", marketing_consent=False),
                    channel="browser")
    process_pending()
    assert _contact(lst, "dee@example.com").status == "subscribed"
    f.store_shopify(shop, "customers_email_marketing_consent/update",
                    f.shopify_consent(1, "dee@example.com", "not_subscribed"))
    process_pending()
    dee = _contact(lst, "dee@example.com")
    assert (dee.status, dee.consent_state) == ("unsubscribed", "opted_out")


def test_bad_events_fail_alone_in_plain_words_and_replay_has_no_double_effect():
    lst = make_list()
    source = f.make_source(lst)
    bad_email = f.store_segment(source, f.track("Signed Up", email="not-an-email"))
    broken = f.store(source, channel="api", topic="track", kind="signed_up", body="[1, 2")
    good = f.store_segment(source, f.track("Signed Up", email="eve@example.com",
                                           consent=True))
    result = process_batch()
    assert result.events == 3
    assert _event(bad_email.id).status == "failed"
    assert "email address is not valid" in _event(bad_email.id).error
    assert "not a JSON object" in _event(broken.id).error
    assert _event(good.id).status == "processed"
    eve = _contact(lst, "eve@example.com")
    # Processing again finds nothing pending; a replayed (re-pended) processed event would
    # be judged against the stored contact and adds nothing twice.
    assert process_pending() == 0
    from webapp.plugins.log import replay

    assert replay([good.id, broken.id]) == 1  # only failed events are replayed
    assert _event(good.id).status == "processed" and _event(broken.id).status == "pending"
    process_pending()
    assert _event(broken.id).status == "failed" and _event(broken.id).attempts == 2
    assert len(_ledger(eve)) == 1
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1


def test_events_of_one_contact_apply_in_order_within_and_across_batches():
    lst = make_list()
    source = f.make_source(lst, kind="shopify", add_events=["signed_up"])
    f.store_shopify(source, "customers/create",
                    f.shopify_customer("fay@example.com", consent="subscribed"))
    f.store_shopify(source, "customers_email_marketing_consent/update",
                    f.shopify_consent(1, "fay@example.com", "unsubscribed"))
    f.store_shopify(source, "customers_email_marketing_consent/update",
                    f.shopify_consent(1, "fay@example.com", "subscribed"))
    while process_batch(size=1).events:
        pass
    fay = _contact(lst, "fay@example.com")
    # Subscribed, then opted out; the later "subscribed" never re-subscribes an opt-out.
    assert (fay.status, fay.consent_state) == ("unsubscribed", "opted_out")
    assert [e.state for e in _ledger(fay)] == ["subscribed", "opted_out"]


def test_added_contacts_count_toward_the_plan_limit_and_the_fee():
    settings = WorkspaceSettings.get()
    settings.subscriber_limit, settings.extension_price = 2, 10
    db.session.commit()
    lst = make_list()
    source = f.make_source(lst, kind="woocommerce", allow_unconsented_subscribe=True)
    for n in range(4):
        f.store_woo(source, "customer.created", f.woo_customer(f"w{n}@example.com"))
    process_pending()
    entry = db.session.scalar(select(OverageEntry))
    assert entry is not None and (entry.peak_count, entry.over, entry.blocks) == (4, 2, 1)
    assert json.loads(json.dumps(float(entry.fee))) == 10.0
