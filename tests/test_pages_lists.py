"""Dashboard, lists, cycles and contacts pages: full page and htmx partials, bad input."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import make_contact, make_contacts, make_cycle, make_list
from webapp.extensions import db
from webapp.models import Contact, ContactList, Cycle, WorkspaceSettings
from webapp.services.usage import extension_blocks

HISTORY = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_dashboard_shows_lists_usage_and_fee_banner(signed_in):
    a, b = make_list("Alpha"), make_list("Beta")
    make_contacts(a, 2000, prefix="a")
    make_contacts(b, 1700, prefix="a")  # same emails on a second list count again
    make_contacts(b, 50, prefix="u", status="unsubscribed")  # not counted
    resp = signed_in.get("/")
    html = _text(resp)
    assert resp.status_code == 200
    assert "HX-Request" in resp.headers["Vary"]
    assert "Alpha" in html and "Beta" in html and "2,000" in html and "1,750" in html
    assert "3,700" in html and "2,500" in html
    assert "Over the plan limit" in html
    assert "30.00 USD" in html  # 2 started blocks × 15


def test_dashboard_without_overage_has_no_banner(signed_in):
    make_contacts(make_list("Small"), 10)
    html = _text(signed_in.get("/"))
    assert "Over the plan limit" not in html
    assert "0.00 USD" in html


def test_extension_blocks_are_started_thousands():
    assert extension_blocks(3700, 2500) == 2
    assert extension_blocks(2500, 2500) == 0
    assert extension_blocks(2501, 2500) == 1
    assert extension_blocks(3500, 2500) == 1
    assert extension_blocks(10, 0) == 1


def test_create_list_and_errors_next_to_field(signed_in):
    resp = signed_in.post("/lists/", {"name": "  Newsletter  "})
    assert resp.status_code == 302
    assert db.session.scalar(select(ContactList.name)) == "Newsletter"
    assert "Newsletter" in _text(signed_in.get(resp.headers["Location"]))

    for bad, message in [("newsletter", "exists already"), ("", "Give the list a name"),
                         ("x" * 121, "at most 120")]:
        resp = signed_in.post("/lists/", {"name": bad})
        html = _text(resp)
        assert resp.status_code == 422, bad
        assert message in html
        assert 'aria-invalid="true"' in html and 'id="f-name-error"' in html
    assert db.session.scalar(select(func.count()).select_from(ContactList)) == 1


def test_list_page_links_contacts_and_cycles(signed_in):
    lst = make_list("Customers")
    make_cycle(lst, "Welcome", 7)
    html = _text(signed_in.get(f"/lists/{lst.id}"))
    assert f"/lists/{lst.id}/contacts" in html and f"/lists/{lst.id}/cycles" in html
    assert "Welcome" in html


def test_unknown_ids_are_404(signed_in):
    for url in ("/lists/999", "/lists/999/contacts", "/lists/999/cycles/", "/lists/999/edit",
                "/lists/999/delete", "/contacts/999", "/fields/999/edit"):
        assert signed_in.get(url).status_code == 404, url
    assert signed_in.post("/lists/999/delete").status_code == 404


def test_inline_rename_partial_and_full_page(signed_in):
    lst = make_list("Old")
    make_list("Taken")
    # htmx: the edit form replaces the row, saving returns the row
    resp = signed_in.htmx_get(f"/lists/{lst.id}/edit")
    html = _text(resp)
    assert resp.status_code == 200 and "<html" not in html and "HX-Request" in resp.headers["Vary"]
    assert html.lstrip().startswith("{#") or html.lstrip().startswith("<tr")
    assert f'id="list-{lst.id}"' in html
    resp = signed_in.post(f"/lists/{lst.id}/edit", {"name": "taken"}, htmx=True)
    assert resp.status_code == 200 and "exists already" in _text(resp)
    resp = signed_in.post(f"/lists/{lst.id}/edit", {"name": "New"}, htmx=True)
    assert resp.status_code == 200
    assert "<tr" in _text(resp) and "New" in _text(resp) and "<html" not in _text(resp)
    assert db.session.get(ContactList, lst.id).name == "New"
    cancel = signed_in.htmx_get(f"/lists/{lst.id}/row")
    assert "<tr" in _text(cancel) and "<html" not in _text(cancel)
    # full page: edit form page, POST-redirect-GET
    full = signed_in.get(f"/lists/{lst.id}/edit")
    assert "<html" in _text(full)
    assert "<html" in _text(signed_in.get(f"/lists/{lst.id}/edit", headers=HISTORY))
    resp = signed_in.post(f"/lists/{lst.id}/edit", {"name": "Renamed"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/lists/{lst.id}")
    resp = signed_in.post(f"/lists/{lst.id}/edit", {"name": ""})
    assert resp.status_code == 422 and "<html" in _text(resp)


def test_delete_list_confirms_then_removes_contacts(signed_in):
    lst = make_list("Doomed")
    make_cycle(lst)
    make_contacts(lst, 30)
    keep = make_list("Keep")
    make_contacts(keep, 5)
    confirm = signed_in.get(f"/lists/{lst.id}/delete")
    assert confirm.status_code == 200 and "30" in _text(confirm) and "cannot be undone" in _text(
        confirm)
    assert db.session.get(ContactList, lst.id) is not None  # GET changes nothing
    resp = signed_in.post(f"/lists/{lst.id}/delete")
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(ContactList, lst.id) is None
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 5
    assert db.session.scalar(select(func.count()).select_from(Cycle)) == 0
    # htmx: empty body, the row removes itself
    resp = signed_in.post(f"/lists/{keep.id}/delete", htmx=True)
    assert resp.status_code == 200 and _text(resp) == ""


def test_csrf_is_required_on_page_posts(signed_in, app):
    lst = make_list("Safe")
    contact = make_contact(lst)
    for url, data in [("/lists/", {"name": "X"}), (f"/lists/{lst.id}/delete", {}),
                      (f"/contacts/{contact.id}/unsubscribe", {}),
                      ("/fields/", {"name": "x"}), ("/suppression/", {"entries": "a@b.co"}),
                      ("/settings/", {"name": "W"}), (f"/lists/{lst.id}/cycles/", {"name": "c"})]:
        resp = signed_in.client.post(url, data=data)
        assert resp.status_code == 400, url
        assert "CSRF" in _text(resp)
        resp = signed_in.client.post(url, data=data, headers={"HX-Request": "true"})
        assert resp.status_code == 400, url
    assert db.session.get(ContactList, lst.id) is not None
    assert db.session.get(Contact, contact.id).status == "subscribed"


def test_get_never_changes_state(signed_in):
    lst = make_list("Stay")
    contact = make_contact(lst)
    for url in (f"/lists/{lst.id}/delete", f"/contacts/{contact.id}/unsubscribe"):
        assert signed_in.get(url).status_code in (200, 405)
    db.session.expire_all()
    assert db.session.get(ContactList, lst.id) is not None
    assert db.session.get(Contact, contact.id).status == "subscribed"


# Contacts ---------------------------------------------------------------------------------

def test_contacts_keyset_pages(signed_in):
    lst = make_list("Big")
    make_contacts(lst, 120)
    ids = list(db.session.scalars(select(Contact.id).where(Contact.list_id == lst.id)
                                  .order_by(Contact.id)))
    resp = signed_in.get(f"/lists/{lst.id}/contacts")
    html = _text(resp)
    assert resp.status_code == 200 and "<html" in html and "120 contacts" in html
    assert html.count("/contacts/") >= 50 and "person49@example.com" in html
    assert "person50@example.com" not in html
    assert f"after={ids[49]}" in html and "before=" not in html
    page2 = _text(signed_in.get(f"/lists/{lst.id}/contacts?after={ids[49]}"))
    assert "person50@example.com" in page2 and "person99@example.com" in page2
    assert f"before={ids[50]}" in page2 and f"after={ids[99]}" in page2
    page3 = _text(signed_in.get(f"/lists/{lst.id}/contacts?after={ids[99]}"))
    assert "person119@example.com" in page3 and "after=" not in page3.split("pager")[-1]
    back = _text(signed_in.get(f"/lists/{lst.id}/contacts?before={ids[50]}"))
    assert "person0@example.com" in back and "person49@example.com" in back
    assert "person50@example.com" not in back
    # nonsense cursors are ignored, never an error
    assert signed_in.get(f"/lists/{lst.id}/contacts?after=abc&before=-1").status_code == 200


def test_contacts_search_partial_and_history_restore(signed_in):
    lst = make_list("Search")
    make_contacts(lst, 60)
    make_contact(lst, "Grace.Hopper@Navy.example", name="Grace Hopper")
    make_contact(lst, "ada@math.example", name="Ada 100% Lovelace")
    url = f"/lists/{lst.id}/contacts?q=grace"
    partial = signed_in.htmx_get(url)
    html = _text(partial)
    assert partial.status_code == 200 and "HX-Request" in partial.headers["Vary"]
    assert "<html" not in html and 'id="contact-rows"' in html
    assert "Grace.Hopper@Navy.example" in html and "person1@example.com" not in html
    full = signed_in.get(url)
    assert "<html" in _text(full) and "Grace.Hopper@Navy.example" in _text(full)
    restore = signed_in.get(url, headers=HISTORY)
    assert "<html" in _text(restore)
    # name substring, case-insensitive; email prefix; domain; literal % ; no match
    assert "Grace.Hopper" in _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=HOPP"))
    assert "Grace.Hopper" in _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=grace.h"))
    hit = _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=grace.hopper%40na"))
    assert "Grace.Hopper" in hit
    domain = _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=%40navy.example"))
    assert "Grace.Hopper" in domain and "person" not in domain
    percent = _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=100%25"))
    assert "ada@math.example" in percent and "Grace" not in percent
    none = _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=zzzz"))
    assert "No contact matches" in none
    # the pager keeps the search term
    many = _text(signed_in.htmx_get(f"/lists/{lst.id}/contacts?q=person"))
    assert "q=person&amp;after=" in many or "after=" in many and "q=person" in many


def test_search_box_is_live_htmx(signed_in):
    lst = make_list("Live")
    html = _text(signed_in.get(f"/lists/{lst.id}/contacts"))
    assert 'hx-trigger="input changed delay:250ms, search"' in html
    assert 'hx-target="#contact-rows"' in html and 'hx-push-url="true"' in html
    assert 'for="contact-search"' in html


def test_contact_detail_and_manual_unsubscribe(signed_in):
    from tests.factories import make_field
    from webapp.models.base import utcnow

    lst = make_list("Detail")
    cycle = make_cycle(lst, "Onboarding", 10)
    make_field("tier", "text")
    make_field("secret_score", "number").hidden = True
    db.session.commit()
    contact = make_contact(
        lst, "Bob@Example.com", name="Bob <b>Bold</b>", custom={"tier": "gold", "old": 3},
        origin="import", consent_state="subscribed", consent_source="shopify",
        consent_at=utcnow(), consent_run_id=7, cycle_id=cycle.id, cycle_day=2,
        enrolled_at=utcnow(), created_run_id=7, updated_run_id=12,
    )
    resp = signed_in.get(f"/contacts/{contact.id}")
    html = _text(resp)
    assert resp.status_code == 200
    assert "Bob &lt;b&gt;Bold&lt;/b&gt;" in html  # autoescaped
    assert "Created by run #7" in html and "Last updated by run #12" in html
    assert "gold" in html and "secret_score" in html and "hidden" in html
    assert "Onboarding" in html and "shopify" in html and "#7" in html
    resp = signed_in.post(f"/contacts/{contact.id}/unsubscribe", {"confirm": "yes"})
    assert resp.status_code == 302
    db.session.expire_all()
    row = db.session.get(Contact, contact.id)
    assert row.status == "unsubscribed" and row.unsubscribed_locally
    assert row.unsubscribed_at is not None
    html = _text(signed_in.get(resp.headers["Location"]))
    assert "imports will not re-subscribe" in html
    assert signed_in.post(f"/contacts/{contact.id}/unsubscribe",
                          {"confirm": "yes"}).status_code == 302


# Cycles -----------------------------------------------------------------------------------

def test_cycles_create_edit_delete(signed_in):
    lst = make_list("Cycled")
    other = make_list("Other")
    page = signed_in.get(f"/lists/{lst.id}/cycles/")
    assert page.status_code == 200 and "New cycle" in _text(page)
    assert signed_in.post(f"/lists/{lst.id}/cycles/",
                          {"name": "Welcome", "length_days": "14"}).status_code == 302
    cycle = db.session.scalar(select(Cycle))
    assert (cycle.name, cycle.length_days) == ("Welcome", 14)
    for data, message in [({"name": "welcome", "length_days": "3"}, "already"),
                          ({"name": "X", "length_days": "0"}, "1 to 3650"),
                          ({"name": "X", "length_days": "abc"}, "1 to 3650"),
                          ({"name": "", "length_days": "3"}, "Give the cycle a name")]:
        resp = signed_in.post(f"/lists/{lst.id}/cycles/", data)
        assert resp.status_code == 422 and message in _text(resp), data
    # a cycle belongs to its list
    assert signed_in.get(f"/lists/{other.id}/cycles/{cycle.id}/edit").status_code == 404
    assert signed_in.get(f"/lists/{lst.id}/cycles/{cycle.id}/edit").status_code == 200
    resp = signed_in.post(f"/lists/{lst.id}/cycles/{cycle.id}/edit",
                          {"name": "Welcome series", "length_days": "21"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Cycle, cycle.id).length_days == 21
    contact = make_contact(lst, cycle_id=cycle.id, cycle_day=1)
    confirm = _text(signed_in.get(f"/lists/{lst.id}/cycles/{cycle.id}/delete"))
    assert "1 contacts are enrolled" in confirm
    assert signed_in.post(f"/lists/{lst.id}/cycles/{cycle.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(Cycle, cycle.id) is None
    kept = db.session.get(Contact, contact.id)
    assert kept is not None and kept.cycle_id is None and kept.cycle_day is None


def test_settings_row_defaults(app):
    assert WorkspaceSettings.get().subscriber_limit == 2500
