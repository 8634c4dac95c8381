"""A list's contacts page: filters (status, consent, origin, import, run, cycle), the count
that follows them, keyset paging under filters and the streamed, formula-safe CSV export."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select

from tests.factories import make_contact, make_contacts, make_cycle, make_field, make_list
from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import Contact, ImportRun

HISTORY = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _emails(html: str) -> list[str]:
    return re.findall(r'<td><a href="/contacts/\d+">([^<]+)</a></td>', html)


def _csv(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_text(resp))))


def _seed():
    """A list with an import (two runs), a cycle and a mix of statuses and consent."""
    shop = make_integration("shopify", "acme.myshopify.com")
    imp = make_import(shop, "Mixed")
    lst = imp.list
    run1, run2 = ImportRun(import_id=imp.id, status="completed"), \
        ImportRun(import_id=imp.id, status="completed")
    db.session.add_all([run1, run2])
    db.session.commit()
    cycle = make_cycle(lst, "Welcome")
    make_contacts(lst, 3, prefix="man")  # manual, subscribed, unknown consent
    make_contacts(lst, 4, prefix="imp", origin="import", consent_state="subscribed",
                  created_run_id=run1.id, cycle_id=cycle.id, cycle_day=2)
    make_contacts(lst, 2, prefix="out", origin="import", consent_state="opted_out",
                  status="unsubscribed", created_run_id=run2.id)
    make_contacts(make_list("Other"), 5, prefix="elsewhere", status="unsubscribed")
    return lst, imp, (run1, run2), cycle


def test_filters_narrow_rows_and_the_count_follows(signed_in):
    lst, imp, (run1, run2), cycle = _seed()
    base = f"/lists/{lst.id}/contacts"
    page = _text(signed_in.get(base))
    assert "9 contacts" in page
    for name in ("status", "consent", "origin", "import", "cycle"):
        assert f'id="filter-{name}"' in page, name
    assert "Shopify · acme.myshopify.com (customers)" in page and ">Welcome</option>" in page

    cases = {
        "status=unsubscribed": {"out0", "out1"},
        "consent=subscribed": {f"imp{i}" for i in range(4)},
        "consent=unknown": {"man0", "man1", "man2"},
        "origin=manual": {"man0", "man1", "man2"},
        f"import={imp.id}": {f"imp{i}" for i in range(4)} | {"out0", "out1"},
        f"run={run2.id}": {"out0", "out1"},
        f"cycle={cycle.id}": {f"imp{i}" for i in range(4)},
        "cycle=none": {"man0", "man1", "man2", "out0", "out1"},
        "origin=import&status=subscribed": {f"imp{i}" for i in range(4)},
    }
    for query, expected in cases.items():
        html = _text(signed_in.get(f"{base}?{query}"))
        got = {e.split("@")[0] for e in _emails(html)}
        assert got == expected, query
        assert f"<strong>{len(expected)}</strong> of 9 contacts match the filters" in html, query

    # Nonsense values are ignored: everything shows, never an error.
    html = _text(signed_in.get(f"{base}?status=maybe&cycle=x&import=abc&origin=moon"))
    assert len(_emails(html)) == 9 and "9 contacts" in html


def test_a_filter_change_swaps_rows_and_the_count_out_of_band(signed_in):
    lst, imp, runs, cycle = _seed()
    base = f"/lists/{lst.id}/contacts"
    page = _text(signed_in.get(base))
    assert 'hx-include="#contact-filters"' in page and 'id="filter-status"' in page
    part = _text(signed_in.htmx_get(f"{base}?status=unsubscribed"))
    assert "<html" not in part and 'id="contact-rows"' in part
    assert 'id="contact-summary" class="contact-summary" hx-swap-oob="true"' in part
    assert "<strong>2</strong> of 9 contacts match the filters" in part
    assert f'href="/lists/{lst.id}/contacts.csv?status=unsubscribed"' in part
    # A history restore gets the whole page, with the filter still chosen.
    restore = _text(signed_in.get(f"{base}?status=unsubscribed", headers=HISTORY))
    assert "<html" in restore and '<option value="unsubscribed" selected>' in restore


def test_keyset_paging_keeps_the_filters(signed_in):
    lst = make_list("Big")
    make_contacts(lst, 70, prefix="sub")
    make_contacts(lst, 70, prefix="uns", start=100, status="unsubscribed")
    make_contacts(lst, 30, prefix="sub", start=200)
    base = f"/lists/{lst.id}/contacts"
    first = _text(signed_in.get(f"{base}?status=subscribed"))
    rows = _emails(first)
    assert len(rows) == 50 and all(e.startswith("sub") for e in rows)
    nxt = re.search(r'href="([^"]*after=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    assert "status=subscribed" in nxt
    paged = signed_in.htmx_get(nxt)
    second = _text(paged)
    rows2 = _emails(second)
    assert len(rows2) == 50 and all(e.startswith("sub") for e in rows2)
    assert not set(rows) & set(rows2)
    assert "hx-swap-oob" not in second  # paging does not recount
    prev = re.search(r'href="([^"]*before=\d+[^"]*)"', second).group(1).replace("&amp;", "&")
    assert "status=subscribed" in prev
    assert _emails(_text(signed_in.htmx_get(prev))) == rows


def test_search_and_filters_combine(signed_in):
    lst = make_list("Both")
    make_contact(lst, "ann@example.com", name="Ann Sub")
    make_contact(lst, "anna@example.com", name="Anna Gone", status="unsubscribed")
    html = _text(signed_in.get(f"/lists/{lst.id}/contacts?q=ann&status=unsubscribed"))
    assert _emails(html) == ["anna@example.com"]
    assert "Search results for “ann” within the filters" in html


def test_export_streams_filtered_contacts_with_custom_fields_formula_safe(signed_in):
    lst, imp, (run1, run2), cycle = _seed()
    make_field("tier")
    make_field("interests", format="multi_select", allowed_values=["a", "b", "c"])
    make_contact(lst, "=cmd@example.com", name="+SUM(A1)", status="unsubscribed",
                 custom={"tier": "@gold", "interests": ["a", "c"], "undefined_key": "x"})
    resp = signed_in.get(f"/lists/{lst.id}/contacts.csv?status=unsubscribed")
    assert resp.status_code == 200 and resp.mimetype == "text/csv" and resp.is_streamed
    assert re.fullmatch(r'attachment; filename="contacts-mixed-filtered-\d{4}-\d\d-\d\d\.csv"',
                        resp.headers["Content-Disposition"])
    rows = _csv(resp)
    header = rows[0]
    assert header[:3] == ["email", "name", "status"]
    assert header[-2:] == ["interests", "tier"] and "undefined_key" not in header
    by_email = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert set(by_email) == {"out0@example.com", "out1@example.com", "'=cmd@example.com"}
    odd = by_email["'=cmd@example.com"]
    assert odd["name"] == "'+SUM(A1)" and odd["tier"] == "'@gold"
    assert odd["interests"] == "a; c" and odd["origin"] == "manual"
    out = by_email["out0@example.com"]
    assert out["consent"] == "opted_out" and out["status"] == "unsubscribed"
    assert out["added_by_import"] == "Shopify · acme.myshopify.com (customers)"
    cycled = {r[0]: dict(zip(header, r, strict=True)) for r in _csv(
        signed_in.get(f"/lists/{lst.id}/contacts.csv?cycle={cycle.id}"))[1:]}
    assert set(cycled) == {f"imp{i}@example.com" for i in range(4)}
    assert cycled["imp0@example.com"]["cycle"] == "Welcome"
    assert cycled["imp0@example.com"]["cycle_day"] == "2"


def test_export_of_a_whole_large_list_is_complete_and_in_order(signed_in):
    lst = make_list("Large")
    make_contacts(lst, 4500)
    resp = signed_in.get(f"/lists/{lst.id}/contacts.csv")
    assert resp.is_streamed
    assert re.fullmatch(r'attachment; filename="contacts-large-\d{4}-\d\d-\d\d\.csv"',
                        resp.headers["Content-Disposition"])
    rows = _csv(resp)
    ids = list(db.session.scalars(select(Contact.email).where(Contact.list_id == lst.id)
                                  .order_by(Contact.id)))
    assert [r[0] for r in rows[1:]] == ids and len(ids) == 4500


def test_export_needs_sign_in_and_a_real_list(client, signed_in):
    assert signed_in.get("/lists/999/contacts.csv").status_code == 404
