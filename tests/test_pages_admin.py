"""Custom fields, suppression, settings and status pages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.factories import make_contact, make_field, make_list, make_suppression
from webapp.extensions import db
from webapp.models import Contact, CustomField, Heartbeat, Suppression, WorkspaceSettings
from webapp.models.base import utcnow

HISTORY = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def _text(resp) -> str:
    return resp.get_data(as_text=True)


# Custom fields ----------------------------------------------------------------------------

def test_fields_page_create_and_list(signed_in):
    resp = signed_in.get("/fields/")
    assert resp.status_code == 200 and "HX-Request" in resp.headers["Vary"]
    resp = signed_in.post("/fields/", {"name": "loyalty_tier", "type": "text",
                                       "format": "single_select",
                                       "allowed_values": "Gold\nSilver\n\ngold\n"})
    assert resp.status_code == 302
    field = db.session.scalar(select(CustomField))
    assert field.allowed_values == ["Gold", "Silver"] and not field.hidden
    signed_in.post("/fields/", {"name": "score", "type": "number", "format": "text",
                                "hidden": "on"})
    assert db.session.scalar(select(CustomField).where(CustomField.name == "score")).hidden
    html = _text(signed_in.get("/fields/"))
    assert "loyalty_tier" in html and "Gold, Silver" in html


def test_field_errors_shown_next_to_their_input(signed_in):
    make_field("taken")
    cases = [
        ({"name": "Bad Name", "type": "text", "format": "text"}, "name", "lowercase"),
        ({"name": "taken", "type": "text", "format": "text"}, "name", "exists already"),
        ({"name": "ok", "type": "text", "format": "single_select", "allowed_values": "One"},
         "allowed_values", "at least 2"),
        ({"name": "ok", "type": "text", "format": "radio", "allowed_values": "a\nA"},
         "allowed_values", "at least 2"),
        ({"name": "ok", "type": "number", "format": "radio", "allowed_values": "1\nx"},
         "allowed_values", "not a valid number"),
        ({"name": "ok", "type": "text", "format": "text", "allowed_values": "a\nb"},
         "allowed_values", "Only checkbox"),
        ({"name": "ok", "type": "blob", "format": "text"}, "type", "Unknown type"),
        ({"name": "ok", "type": "text", "format": "weird"}, "format", "Unknown format"),
    ]
    for data, field, message in cases:
        resp = signed_in.post("/fields/", data)
        html = _text(resp)
        assert resp.status_code == 422, data
        assert f'id="f-{field}-error"' in html and message in html, (data, html[-2000:])
    assert db.session.scalar(select(func.count()).select_from(CustomField)) == 1


def test_field_edit_keeps_name(signed_in):
    field = make_field("colour", "text", "text")
    page = signed_in.get(f"/fields/{field.id}/edit")
    assert page.status_code == 200 and "colour" in _text(page)
    resp = signed_in.post(f"/fields/{field.id}/edit", {
        "name": "hacked", "type": "text", "format": "multi_select", "allowed_values": "Red\nBlue"})
    assert resp.status_code == 302
    db.session.expire_all()
    field = db.session.get(CustomField, field.id)
    assert (field.name, field.format, field.allowed_values) == (
        "colour", "multi_select", ["Red", "Blue"])
    bad = signed_in.post(f"/fields/{field.id}/edit", {"type": "text", "format": "checkbox",
                                                      "allowed_values": "Red"})
    assert bad.status_code == 422 and "at least 2" in _text(bad)
    db.session.expire_all()
    assert db.session.get(CustomField, field.id).format == "multi_select"


def test_field_delete_strips_values_from_contacts(signed_in):
    field = make_field("tier")
    make_field("keep")
    lst = make_list("L")
    a = make_contact(lst, "a@example.com", custom={"tier": "gold", "keep": 1})
    b = make_contact(lst, "b@example.com", custom={"keep": 2})
    c = make_contact(lst, "c@example.com", custom={"tier": None})
    confirm = signed_in.get(f"/fields/{field.id}/delete")
    assert confirm.status_code == 200 and "removed from every contact" in _text(confirm)
    assert signed_in.post(f"/fields/{field.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(CustomField, field.id) is None
    assert db.session.get(Contact, a.id).custom == {"keep": 1}
    assert db.session.get(Contact, b.id).custom == {"keep": 2}
    assert db.session.get(Contact, c.id).custom == {}


# Suppression ------------------------------------------------------------------------------

def test_suppression_add_reports_invalid_and_saves_valid(signed_in):
    make_suppression("old@example.com")
    entries = "\n".join([" Spam@Example.COM ", "@Bad-Domain.org", "other.net", "not valid",
                         "old@example.com", "x@", "", "spam@example.com"])
    resp = signed_in.post("/suppression/", {"entries": entries, "note": "complaints"})
    html = _text(resp)
    assert resp.status_code == 200
    assert "not valid" in html and "x@" in html and "3 added, 1 already on the list" in html
    rows = set(db.session.execute(select(Suppression.kind, Suppression.value)).tuples())
    assert rows == {("email", "old@example.com"), ("email", "spam@example.com"),
                    ("domain", "bad-domain.org"), ("domain", "other.net")}
    # the box keeps only the invalid lines
    assert "other.net</textarea>" not in html
    ok = signed_in.post("/suppression/", {"entries": "fine@example.org"})
    assert ok.status_code == 302
    all_bad = signed_in.post("/suppression/", {"entries": "nope"})
    assert all_bad.status_code == 422


def test_suppression_list_search_pages_and_remove(signed_in):
    for i in range(55):
        db.session.add(Suppression(kind="email", value=f"user{i}@example.com"))
    db.session.add(Suppression(kind="domain", value="blocked.example"))
    db.session.commit()
    page = signed_in.get("/suppression/")
    html = _text(page)
    assert "<html" in html and "blocked.example" in html  # newest first
    assert "after=" in html
    partial = signed_in.htmx_get("/suppression/?q=blocked")
    assert "<html" not in _text(partial) and "blocked.example" in _text(partial)
    assert "user1@" not in _text(partial)
    assert "<html" in _text(signed_in.get("/suppression/?q=blocked", headers=HISTORY))
    entry = db.session.scalar(select(Suppression).where(Suppression.value == "blocked.example"))
    resp = signed_in.post(f"/suppression/{entry.id}/delete", htmx=True)
    assert resp.status_code == 200 and _text(resp) == ""
    assert db.session.get(Suppression, entry.id) is None
    other = db.session.scalar(select(Suppression).limit(1))
    assert signed_in.post(f"/suppression/{other.id}/delete").status_code == 302
    assert signed_in.post("/suppression/99999/delete").status_code == 404


# Settings ---------------------------------------------------------------------------------

def test_settings_save_and_validate(signed_in):
    page = signed_in.get("/settings/")
    assert page.status_code == 200 and "Europe/Berlin" in _text(page)
    resp = signed_in.post("/settings/", {"name": "Acme", "subscriber_limit": "5000",
                                         "extension_price": "12.5", "currency": "eur",
                                         "time_zone": "Europe/Berlin"})
    assert resp.status_code == 302
    db.session.expire_all()
    row = WorkspaceSettings.get()
    assert (row.name, row.subscriber_limit, float(row.extension_price), row.currency,
            row.time_zone) == ("Acme", 5000, 12.5, "EUR", "Europe/Berlin")
    bad = signed_in.post("/settings/", {"name": "", "subscriber_limit": "-3",
                                        "extension_price": "abc", "currency": "XXX",
                                        "time_zone": "Mars/Olympus"})
    html = _text(bad)
    assert bad.status_code == 422
    for field in ("name", "subscriber_limit", "extension_price", "currency", "time_zone"):
        assert f'id="f-{field}-error"' in html, field
    db.session.expire_all()
    assert WorkspaceSettings.get().name == "Acme"


def test_settings_shows_usage_and_fee(signed_in):
    from tests.factories import make_contacts

    WorkspaceSettings.get().subscriber_limit = 100
    db.session.commit()
    make_contacts(make_list("L"), 1150)
    html = _text(signed_in.get("/settings/"))
    assert "1,150" in html and "Over the plan limit" in html and "30.00 USD" in html


# Status -----------------------------------------------------------------------------------

def test_status_page_all_good(signed_in):
    db.session.add(Heartbeat(name="scheduler", at=utcnow()))
    db.session.commit()
    resp = signed_in.get("/status/")
    html = _text(resp)
    assert resp.status_code == 200
    assert "Database reachable (sqlite)" in html or "Database reachable (postgresql)" in html
    assert "Redis reachable" in html and "Scheduler ticking" in html
    assert "No worker is running" in html
    from webapp.background import PERIODIC

    for job in PERIODIC:
        assert job.id in html and job.func in html
    partial = signed_in.htmx_get("/status/")
    assert "<html" not in _text(partial) and 'id="status-checks"' in _text(partial)
    assert "<html" in _text(signed_in.get("/status/", headers=HISTORY))


def test_status_shows_a_live_worker(signed_in, app):
    from rq import Worker

    from webapp.background import get_queue, redis_connection

    conn = redis_connection()
    worker = Worker([get_queue("imports", conn)], connection=conn, name="w-test")
    worker.register_birth()
    try:
        html = _text(signed_in.get("/status/"))
        assert "w-test" in html and "imports" in html and "1 worker alive" in html
    finally:
        worker.register_death()


def test_status_stale_scheduler_and_redis_down(signed_in, app):
    db.session.add(Heartbeat(name="scheduler", at=utcnow() - timedelta(minutes=4)))
    db.session.commit()
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    resp = signed_in.get("/status/")
    html = _text(resp)
    assert resp.status_code == 200
    assert "Redis unreachable" in html and "Scheduler stale" in html
    assert "Workers unknown" in html and "Something needs attention" in html


def test_status_scheduler_never_ticked(signed_in):
    assert "never ticked" in _text(signed_in.get("/status/"))
