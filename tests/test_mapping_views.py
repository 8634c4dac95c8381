"""The mapping page at 30+ fields: the field filter (name search, unassigned only), the
one-row-per-field view (the default above 12 fields) beside the grid, both saving live with
only the changed cell swapped, the warning and one-step Undo when Email or Name moves, and a
custom field created inline offered in every shown select at once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.factories import make_field
from tests.test_import_setup_mapping import _html, _key, _mapping
from tests.test_import_setup_mapping import app_config as app_config  # noqa: F401
from tests.test_import_setup_mapping import imp as imp  # noqa: F401
from tests.test_import_setup_mapping import shopify_sim as shopify_sim  # noqa: F401
from webapp.imports.rules import FULL_NAME
from webapp.models import CustomField
from webapp.services import import_source
from webapp.services import mapping as rules

pytestmark = pytest.mark.usefixtures("app")
FULL_NAME_LABEL = "Full name (first + last name)"



def _rows(page: str) -> list[str]:
    """The source names of the rows shown in the one-row-per-field view."""
    return re.findall(r'<tr id="row-[0-9a-f]+">\s*<th scope="row" class="src">.*?<code>(.*?)'
                      r'</code>', page, re.S)


def _grid_cols(page: str) -> list[str]:
    return re.findall(r'<th scope="col" id="col-[0-9a-f]+"[^>]*>\s*<span class="src-label">'
                      r'.*?<code>(.*?)</code>', page, re.S)


def test_one_row_per_field_is_the_default_above_12_fields(signed_in, imp, monkeypatch):
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping"))
    assert len(import_source.columns(imp)) == 30
    assert 'class="mapping-list"' in page and "grid-scroll" not in page
    assert len(_rows(page)) == 30 and _rows(page)[:2] == [FULL_NAME, "email"]
    assert 'id="f-view-list" name="view" value="list" checked' in page
    # each row: the source field, its sample cell (loaded once for all rows), its select
    assert f'<td class="sample" id="samples-{_key("email")}">' in page
    assert f'<td id="col-{_key("email")}" class="map-col">' in page
    assert re.search(r'id="samples-status"[^>]*hx-get="[^"]*/mapping/samples\?view=list"', page)
    # the switch: the grid of columns on request, kept in the links and forms
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?view=grid"))
    assert 'class="grid-scroll"' in page and 'class="mapping-list"' not in page
    assert len(_grid_cols(page)) == 30
    assert 'id="f-view-grid" name="view" value="grid" checked' in page
    assert 'name="view" value="grid">' in page  # the cells' forms say which view they are
    # at 12 columns or fewer the grid stays the default; at 13 the rows take over
    fields = import_source.source_fields(imp.integration, imp.group)
    for count, view in ((rules.VERTICAL_ABOVE, "grid"), (rules.VERTICAL_ABOVE + 1, "list")):
        monkeypatch.setattr(import_source, "columns",
                            lambda _imp, n=count: rules.columns(fields)[:n])
        page = _html(signed_in.get(f"/imports/{imp.id}/mapping"))
        assert f'id="f-view-{view}" name="view" value="{view}" checked' in page, count


def test_list_view_samples_fill_each_row_out_of_band(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    page = _html(signed_in.htmx_get(f"/imports/{imp.id}/mapping/samples?view=list"))
    assert page.lstrip().startswith('<p id="samples-status" class="muted">Sample values from '
                                    'the first 5 records.</p>')
    cells = re.findall(r'<td class="sample" id="samples-([0-9a-f]+)" hx-swap-oob="true">', page)
    assert len(cells) == 30 and _key("email") in cells
    email_cell = page.split(f'id="samples-{_key("email")}"')[1].split("</td>")[0]
    assert "logan.taylor.1@example.org" in email_cell
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    # filtered: only the shown rows' cells come back
    page = _html(signed_in.htmx_get(f"/imports/{imp.id}/mapping/samples?view=list&q=phone"))
    assert len(re.findall(r'hx-swap-oob="true"', page)) == 2  # Phone, Address phone
    # the no-JS page renders them in each row
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?samples=1"))
    assert "logan.taylor.1@example.org</li>" in page and 'id="samples-status"' not in page


def test_field_filter_by_name_and_unassigned_only(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?q=line"))
    assert _rows(page) == ["default_address.address1", "default_address.address2"]
    assert "Showing 2 of 30 fields." in page and 'id="f-q" name="q" value="line"' in page
    # every word, in the label or the source name, any case
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?q=ADDRESS+phone"))
    assert _rows(page) == ["default_address.phone"]
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?q=zip"))  # label: Postal code
    assert _rows(page) == ["default_address.zip"]
    # unassigned only: Email and Full name (recognised) are not shown
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?unassigned=1"))
    assert len(_rows(page)) == 28 and "email" not in _rows(page)
    assert FULL_NAME not in _rows(page)
    assert 'id="f-unassigned" name="unassigned" value="1" checked' in page
    # htmx: only the view part comes back, for the filter in either view
    resp = signed_in.htmx_get(f"/imports/{imp.id}/mapping?q=city&view=grid&unassigned=1")
    page = _html(resp)
    assert page.lstrip().startswith('<div id="mapping-view"') and "<html" not in page
    assert 'id="mapping-filter"' not in page and 'id="mapping-status"' not in page
    assert _grid_cols(page) == ["default_address.city"] and "Showing 1 of 30" in page
    assert "HX-Request" in resp.headers["Vary"]
    # the grid's samples follow the filter, column for column
    assert "/mapping/samples?view=grid&amp;q=city&amp;unassigned=1" in page
    page = _html(signed_in.htmx_get(
        f"/imports/{imp.id}/mapping/samples?view=grid&q=city&unassigned=1"))
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    assert len(rows) == 5 and all(r.count('<td class="sample">') == 1 for r in rows)
    page = _html(signed_in.htmx_get(f"/imports/{imp.id}/mapping?q=nothing+like+this"))
    assert 'id="no-match"' in page and "No field matches “nothing like this”" in page


def test_list_view_saves_live_and_swaps_only_the_target_cell(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    city = make_field("city", "text")
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "default_address.city", "target": str(city.id),
                           "view": "list"}, htmx=True)
    page = _html(resp)
    assert page.lstrip().startswith(f'<td id="col-{_key("default_address.city")}" '
                                    'class="map-col">')
    assert page.count("<td ") == 1 and "<th " not in page and "<tr" not in page
    assert re.search(r'<template>\s*<section id="mapping-status"[^>]*hx-swap-oob="true"', page)
    assert f'<option value="{city.id}" selected>city (text)</option>' in page
    assert _mapping(imp)["default_address.city"] == city.id
    # no-JS: back to the page in the same view and filter
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "note", "target": "?", "view": "list", "q": "note"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"?view=list&q=note#col-{_key('note')}")


def test_moving_name_warns_where_it_was_and_undo_puts_it_back(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "first_name", "target": "name", "view": "list"},
                          htmx=True)
    page = _html(resp)
    warning = f"Name was on {FULL_NAME_LABEL}; that column is now unassigned."
    assert warning in page
    assert re.search(r'<form method="post" action="/imports/\d+/mapping/undo"[^>]*'
                     r'id="mapping-notice" role="status">', page)
    # the column it moved from is swapped too (out of band), now "?"
    assert (f'<td id="col-{_key(FULL_NAME)}" class="map-col unassigned" hx-swap-oob="true">'
            in page)
    assert _mapping(imp)[FULL_NAME] == "?" and _mapping(imp)["first_name"] == "name"
    # the warning stays on the page (a reload, the no-JS way) while the move stands
    assert warning in _html(signed_in.get(f"/imports/{imp.id}/mapping"))

    resp = signed_in.post(f"/imports/{imp.id}/mapping/undo", {"view": "list"}, htmx=True)
    page = _html(resp)
    mapping = _mapping(imp)
    assert mapping[FULL_NAME] == "name" and mapping["first_name"] == "?"
    assert f"Undone: Name is back on {FULL_NAME_LABEL}." in page and warning not in page
    assert (f'<td id="col-{_key(FULL_NAME)}" class="map-col" hx-swap-oob="true">' in page)
    assert (f'<td id="col-{_key("first_name")}" class="map-col unassigned" '
            'hx-swap-oob="true">' in page)
    # one step only: a second Undo has nothing to undo and changes nothing
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/undo", {"view": "list"},
                                htmx=True))
    assert "Nothing to undo" in page and _mapping(imp) == mapping


def test_moving_email_undo_restores_the_previous_target_and_expires(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    tier = make_field("tier", "text")
    signed_in.post(f"/imports/{imp.id}/mapping/assign",
                   {"source": "note", "target": str(tier.id)}, htmx=True)
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "note", "target": "email"}, htmx=True))
    assert "Email was on Email; that column is now unassigned." in page
    # no-JS Undo: the note column gets its custom field back, Email its column
    resp = signed_in.post(f"/imports/{imp.id}/mapping/undo", {"view": "grid"})
    assert resp.status_code == 303 and "view=grid" in resp.headers["Location"]
    mapping = _mapping(imp)
    assert mapping["email"] == "email" and mapping["note"] == tier.id
    assert "Undone: Email is back on Email." in _html(signed_in.get(resp.headers["Location"]))
    # a later change ends the chance to undo: the warning goes, Undo refuses
    signed_in.post(f"/imports/{imp.id}/mapping/assign", {"source": "note", "target": "email"},
                   htmx=True)
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "tags", "target": "?"}, htmx=True))
    assert "now unassigned" not in page
    signed_in.post(f"/imports/{imp.id}/mapping/undo", {}, htmx=True)
    assert _mapping(imp)["note"] == "email" and _mapping(imp)["email"] == "?"


def test_inline_field_appears_in_every_shown_select_at_once(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    form = {"source": "custom.loyalty_tier", "name": "loyalty_tier", "type": "text",
            "format": "text", "view": "list"}
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/fields", form, htmx=True))
    created = db_field("loyalty_tier")
    option = f'<option value="{created.id}">loyalty_tier (text)</option>'
    # the first custom field: a "Custom fields" group goes in before "New custom field…"
    others = [c for c in import_source.columns(imp) if c.name != "custom.loyalty_tier"]
    for col in others:
        assert (f'<div hx-swap-oob="beforebegin:#new-{col.key}"><optgroup label="Custom fields"'
                f' id="fields-{col.key}">{option}</optgroup></div>') in page
    assert f'<option value="{created.id}" selected>loyalty_tier (text)</option>' in page
    # the next one joins each group; with a filter, only the shown selects get it
    form = {"source": "note", "name": "notes", "type": "text", "format": "text",
            "view": "grid", "q": "phone"}
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/fields", form, htmx=True))
    notes = db_field("notes")
    added = re.findall(r'<div hx-swap-oob="beforeend:#fields-([0-9a-f]+)"><option value="'
                       + str(notes.id) + '">notes \\(text\\)</option></div>', page)
    assert sorted(added) == sorted([_key("phone"), _key("default_address.phone")])
    assert page.lstrip().startswith(f'<th scope="col" id="col-{_key("note")}"')
    # a reload offers both everywhere, in name order
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping"))
    assert page.count(f'<option value="{notes.id}"') == 30
    assert page.count(f'<option value="{created.id}"') == 30


def db_field(name: str) -> CustomField:
    from webapp.extensions import db

    return db.session.scalar(select(CustomField).where(CustomField.name == name))
