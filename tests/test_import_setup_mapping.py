"""The Assign custom fields page: the grid, automatic recognition, live assignment (only
that column and the status bar), type-fit warnings, inline custom fields, the Ignore
checkbox, Preview and Import, and imported values shown escaped."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from simulators.dataset import XSS_NAME, generate
from tests.factories import make_field, make_list
from tests.test_import_setup_pages import _Sim
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.imports.rules import FULL_NAME
from webapp.models import CustomField, ImportRun, RecurringImport
from webapp.services import import_form, import_source
from webapp.services.mapping import Column

pytestmark = pytest.mark.usefixtures("app")
XSS_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture(scope="module")
def shopify_sim():
    people = generate(30, seed=5)
    people[1].first_name = XSS_NAME  # among the sample records
    sim = _Sim("shopify", people)
    yield sim
    sim.running.stop()



@pytest.fixture
def imp(shopify_sim):
    cfg = shopify_sim.config()
    integration = make_integration("shopify", cfg["settings"]["shop"],
                                   settings=cfg["settings"], credentials=cfg["credentials"])
    row = RecurringImport(integration_id=integration.id, list_id=make_list("Customers").id,
                          group="customers", source="all", state="stopped",
                          state_reason=import_form.NOT_FINISHED, mapping={})
    db.session.add(row)
    db.session.commit()
    return row


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _key(name: str) -> str:
    return Column(name, name, "text").key


def _mapping(imp) -> dict:
    db.session.expire_all()
    return dict(db.session.get(RecurringImport, imp.id).mapping)


def test_first_open_recognises_email_name_and_same_named_fields(signed_in, imp):
    tier = make_field("loyalty_tier", "text", "single_select", ["Bronze", "Silver", "Gold",
                                                                "Platinum"])
    resp = signed_in.get(f"/imports/{imp.id}/mapping")
    assert resp.status_code == 200
    page = _html(resp)
    mapping = _mapping(imp)
    assert mapping["email"] == "email" and mapping[FULL_NAME] == "name"
    assert mapping["custom.loyalty_tier"] == tier.id
    assert mapping["first_name"] == "?" and mapping["tags"] == "?"
    # 30 source fields: one row per field by default; the grid on request
    assert 'class="mapping-list"' in page and "grid-scroll" not in page
    assert f'<td id="col-{_key("email")}"' in page
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?view=grid"))
    assert 'class="grid-scroll" tabindex="0" role="region" aria-label=' in page
    assert f'id="col-{_key("email")}"' in page
    assert re.search(r'<option value="email" selected>Email</option>', page)
    assert 'hx-trigger="load"' in page and "/mapping/samples" in page
    assert "Email: Email" in page and "marked “?”" in page
    # a second open keeps what was saved (no re-recognition)
    signed_in.post(f"/imports/{imp.id}/mapping/assign", {"source": FULL_NAME, "target": "?"},
                   htmx=True)
    signed_in.get(f"/imports/{imp.id}/mapping")
    assert _mapping(imp)[FULL_NAME] == "?"


def test_samples_partial_shows_the_first_records_escaped(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    resp = signed_in.htmx_get(f"/imports/{imp.id}/mapping/samples")
    page = _html(resp)
    assert page.lstrip().startswith('<tbody id="samples">')
    assert page.count("<tr>") == import_source.SAMPLE_SIZE
    assert XSS_ESCAPED in page and XSS_NAME not in page
    assert "logan.taylor.1@example.org" in page
    # the no-JS variant renders them in the page itself
    page = _html(signed_in.get(f"/imports/{imp.id}/mapping?samples=1"))
    assert XSS_ESCAPED in page and XSS_NAME not in page
    assert signed_in.get(f"/imports/{imp.id}/mapping/samples").status_code == 302


def test_live_assignment_renders_only_that_column_and_the_status_bar(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    field = make_field("city", "text")
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "default_address.city", "target": str(field.id)},
                          htmx=True)
    assert resp.status_code == 200
    page = _html(resp)
    assert page.lstrip().startswith(f'<th scope="col" id="col-{_key("default_address.city")}"')
    assert page.count("<th ") == 1
    # the status bar rides out of band inside <template> (a form after a table cell
    # would otherwise be parsed into an empty form)
    assert re.search(r'<template>\s*<section id="mapping-status"[^>]*hx-swap-oob="true"', page)
    assert "<html" not in page and "grid-scroll" not in page
    assert _mapping(imp)["default_address.city"] == field.id


def test_moving_email_to_another_column_clears_the_old_one_out_of_band(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "note", "target": "email"}, htmx=True)
    page = _html(resp)
    assert f'id="col-{_key("email")}" class="map-col unassigned" hx-swap-oob="true"' in page
    mapping = _mapping(imp)
    assert mapping["note"] == "email" and mapping["email"] == "?"


def test_type_fit_warning_when_the_source_type_does_not_suit(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    birthday = make_field("birthday", "date")
    notes = make_field("notes", "text")
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "note", "target": str(birthday.id)}, htmx=True))
    assert 'class="type-fit"' in page and "takes dates" in page
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "custom.birthday", "target": str(birthday.id)},
                                htmx=True))
    assert 'class="type-fit"' not in page
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "state", "target": str(notes.id)}, htmx=True))
    assert 'class="type-fit"' not in page  # a source picklist into a text field is fine


def test_bad_targets_and_unknown_columns(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "note", "target": "4242"}, htmx=True))
    assert "Choose a target from the list." in page
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "no_such_field", "target": "email"}, htmx=True)
    assert resp.status_code == 404
    assert signed_in.post("/imports/9999/mapping/assign", {"source": "note", "target": "?"},
                          htmx=True).status_code == 404
    other = make_integration("shopify", "other.myshopify.com")
    assert signed_in.get(f"/imports/{imp.id}/mapping?integration_id={other.id}"
                         ).status_code == 404
    # without htmx the assignment still works and returns to the grid
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign", {"source": "note",
                                                                 "target": "?"})
    assert resp.status_code == 303 and f"#col-{_key('note')}" in resp.headers["Location"]


def test_inline_custom_field_is_prefilled_validated_and_assigned(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/assign",
                                {"source": "custom.loyalty_tier", "target": "__new__"},
                                htmx=True))
    assert 'name="name" value="loyalty_tier"' in page
    assert '<option value="single_select" selected>' in page and "Bronze\nSilver" in page
    resp = signed_in.post(f"/imports/{imp.id}/mapping/fields",
                          {"source": "custom.loyalty_tier", "name": "Loyalty Tier!",
                           "type": "text", "format": "text"}, htmx=True)
    page = _html(resp)
    assert resp.status_code == 200 and "lowercase letters, digits or underscores" in page
    assert 'aria-invalid="true"' in page
    assert db.session.scalar(select(CustomField)) is None
    resp = signed_in.post(f"/imports/{imp.id}/mapping/fields",
                          {"source": "custom.loyalty_tier", "name": "loyalty_tier",
                           "type": "text", "format": "single_select",
                           "allowed_values": "Bronze\nSilver\nGold\nPlatinum"}, htmx=True)
    page = _html(resp)
    created = db.session.scalar(select(CustomField))
    assert created.name == "loyalty_tier" and created.format == "single_select"
    assert _mapping(imp)["custom.loyalty_tier"] == created.id
    assert f'<option value="{created.id}" selected>loyalty_tier (text)</option>' in page
    assert "Custom field loyalty_tier created." in page
    # no-JS: the inline form on the page itself; a bad name answers 422 there
    resp = signed_in.post(f"/imports/{imp.id}/mapping/assign",
                          {"source": "note", "target": "__new__"})
    assert resp.status_code == 303 and "new=" in resp.headers["Location"]
    assert 'name="name" value="note"' in _html(signed_in.get(resp.headers["Location"]))
    resp = signed_in.post(f"/imports/{imp.id}/mapping/fields",
                          {"source": "note", "name": "loyalty_tier", "type": "text"})
    assert resp.status_code == 422 and "exists already" in _html(resp)


def test_ignore_checkbox_is_saved(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/ignore",
                                {"ignore_unmapped": "on"}, htmx=True))
    assert page.lstrip().startswith('<section id="mapping-status"')
    assert re.search(r'id="f-ignore"[^>]*checked', page)
    assert db.session.get(RecurringImport, imp.id).ignore_unmapped is True
    signed_in.post(f"/imports/{imp.id}/mapping/ignore", {}, htmx=True)
    db.session.expire_all()
    assert db.session.get(RecurringImport, imp.id).ignore_unmapped is False


def test_import_refuses_without_email_and_with_question_marks(signed_in, imp):
    signed_in.get(f"/imports/{imp.id}/mapping")
    signed_in.post(f"/imports/{imp.id}/mapping/assign", {"source": "email", "target": "?"},
                   htmx=True)
    resp = signed_in.post(f"/imports/{imp.id}/mapping/import", {"ignore_sent": "1",
                                                                 "ignore_unmapped": "on"},
                          htmx=True)
    page = _html(resp)
    assert resp.status_code == 200 and 'id="mapping-errors"' in page
    assert "Assign a column to Email" in page
    signed_in.post(f"/imports/{imp.id}/mapping/assign", {"source": "email",
                                                           "target": "email"}, htmx=True)
    resp = signed_in.post(f"/imports/{imp.id}/mapping/import", {"ignore_sent": "1"})
    assert resp.status_code == 422
    assert "marked “?”: assign them, or tick" in _html(resp)
    assert db.session.scalar(select(ImportRun)) is None
    assert db.session.get(RecurringImport, imp.id).state == "stopped"


def test_import_enables_the_schedule_and_starts_the_first_run(signed_in, imp, user):
    signed_in.get(f"/imports/{imp.id}/mapping")
    resp = signed_in.post(f"/imports/{imp.id}/mapping/import",
                          {"ignore_sent": "1", "ignore_unmapped": "on"}, htmx=True)
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == f"/integrations/shopify#import-row-{imp.id}"
    db.session.expire_all()
    row = db.session.get(RecurringImport, imp.id)
    assert row.state == "active" and row.next_run_at is not None and row.ignore_unmapped
    [run] = db.session.scalars(select(ImportRun)).all()
    assert (run.trigger_kind, run.status, run.requested_by_id) == ("manual", "queued", user.id)
    # pressing Import again does not start a second live run
    resp = signed_in.post(f"/imports/{imp.id}/mapping/import",
                          {"ignore_sent": "1", "ignore_unmapped": "on"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/integrations/shopify#import-row-{imp.id}")
    assert len(db.session.scalars(select(ImportRun)).all()) == 1


def test_preview_runs_the_dry_run_inline(signed_in, imp):
    make_field("loyalty_tier", "text")
    signed_in.get(f"/imports/{imp.id}/mapping")
    resp = signed_in.post(f"/imports/{imp.id}/mapping/preview", {}, htmx=True)
    page = _html(resp)
    assert page.lstrip().startswith('<section id="preview"')
    assert "Would add" in page and "Would reject" in page
    assert XSS_ESCAPED in page and XSS_NAME not in page
    run = db.session.scalar(select(ImportRun))
    assert run.trigger_kind == "preview" and run.preview["would_add"] > 0
    from webapp.models import Contact

    assert db.session.scalar(select(Contact)) is None  # a dry run writes nothing
    signed_in.post(f"/imports/{imp.id}/mapping/assign", {"source": "email", "target": "?"},
                   htmx=True)
    page = _html(signed_in.post(f"/imports/{imp.id}/mapping/preview", {}, htmx=True))
    assert "Assign a column to Email first" in page
    assert db.session.get(RecurringImport, imp.id).state == "stopped"


def test_mapping_page_with_provider_trouble_is_plain_words(signed_in, imp):
    imp.integration.status = "needs_reconnect"
    imp.integration.status_reason = "token revoked"
    db.session.commit()
    resp = signed_in.get(f"/imports/{imp.id}/mapping")
    assert resp.status_code == 200
    page = _html(resp)
    assert "needs reconnecting (token revoked)" in page and "Reconnect" in page
