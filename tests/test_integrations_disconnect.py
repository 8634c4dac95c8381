"""Disconnect: a confirmation first; then every import stops, queued runs are canceled, the
credentials are erased, and contacts and run history stay."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import make_contacts
from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import Contact, ImportRun, Integration, RecurringImport, WorkspaceNotice


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _setup():
    row = make_integration("shopify", "acme.myshopify.com",
                           credentials={"access_token": "shpat_disconnectme1234"})
    active = make_import(row, "Buyers", state="active")
    attention = make_import(row, "VIP", state="needs_attention")
    make_contacts(active.list, 5)
    done = ImportRun(import_id=active.id, trigger_kind="scheduled", status="completed",
                     added=5)
    queued = ImportRun(import_id=attention.id, trigger_kind="manual", status="queued")
    db.session.add_all([done, queued])
    db.session.add(WorkspaceNotice(key=f"reconnect:{row.id}", message="Reconnect",
                                   integration_id=row.id))
    db.session.commit()
    return row, done.id, queued.id


def test_confirm_page_lists_the_imports_that_will_stop(signed_in):
    row, _, _ = _setup()
    resp = signed_in.get(f"/integrations/shopify/{row.id}/disconnect")
    assert resp.status_code == 200
    html = _html(resp)
    assert "Disconnect Shopify acme.myshopify.com?" in html
    assert "<li>Buyers</li>" in html and "<li>VIP</li>" in html
    assert f'action="/integrations/shopify/{row.id}/disconnect"' in html
    assert "Contacts already imported and the run history stay." in html
    assert "shpat_disconnectme1234" not in html


def test_confirm_partial_for_htmx(signed_in):
    row, _, _ = _setup()
    page = _html(signed_in.get("/integrations/shopify"))
    url = f"/integrations/shopify/{row.id}/disconnect"
    assert f'href="{url}" hx-get="{url}"' in page
    resp = signed_in.htmx_get(url)
    assert resp.status_code == 200
    html = _html(resp)
    assert "<html" not in html
    assert "Disconnect acme.myshopify.com?" in html
    assert "2 imports will stop." in html
    assert 'name="csrf_token"' in html


def test_disconnect_stops_imports_erases_credentials_keeps_history(signed_in):
    row, done_id, queued_id = _setup()
    resp = signed_in.post(f"/integrations/shopify/{row.id}/disconnect")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/integrations/shopify")
    db.session.expire_all()
    row = db.session.get(Integration, row.id)
    assert row.status == "disconnected"
    assert row.credentials_encrypted is None
    states = set(db.session.scalars(select(RecurringImport.state)))
    assert states == {"stopped"}
    assert set(db.session.scalars(select(RecurringImport.next_run_at))) == {None}
    assert db.session.get(ImportRun, done_id).status == "completed"  # history stays
    assert db.session.get(ImportRun, queued_id).status == "canceled"
    assert db.session.scalar(select(func.count(Contact.id))) == 5  # contacts stay
    assert db.session.scalar(select(WorkspaceNotice.dismissed_at)) is not None
    page = _html(signed_in.get("/integrations/shopify"))
    assert "disconnected: its credentials were erased and 2 imports stopped." in page
    assert "Disconnected accounts" in page and "Connect again" in page
    index = _html(signed_in.get("/integrations/"))
    assert "Not connected" in index.split('id="tile-shopify"')[1].split("</li>")[0]


def test_disconnect_with_htmx_redirects(signed_in):
    row, _, _ = _setup()
    resp = signed_in.post(f"/integrations/shopify/{row.id}/disconnect", htmx=True)
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == "/integrations/shopify"
    db.session.expire_all()
    assert db.session.get(Integration, row.id).status == "disconnected"


def test_disconnect_twice_is_harmless_and_get_does_not_disconnect(signed_in):
    row, _, _ = _setup()
    signed_in.get(f"/integrations/shopify/{row.id}/disconnect")
    db.session.expire_all()
    assert db.session.get(Integration, row.id).status == "connected"
    signed_in.post(f"/integrations/shopify/{row.id}/disconnect")
    resp = signed_in.post(f"/integrations/shopify/{row.id}/disconnect")
    assert resp.status_code == 303
    assert "was already disconnected" in _html(signed_in.get("/integrations/shopify"))


def test_disconnect_needs_the_csrf_token(signed_in):
    row, _, _ = _setup()
    resp = signed_in.client.post(f"/integrations/shopify/{row.id}/disconnect")
    assert resp.status_code == 400
    db.session.expire_all()
    assert db.session.get(Integration, row.id).status == "connected"


def test_connecting_a_disconnected_account_again_reuses_its_row(signed_in, app):
    """Run history stays attached: the same shop comes back on its old row, imports stopped."""
    from simulators.shopify import SHOP
    from tests.test_integrations_support import Sim

    sim = Sim("shopify")
    try:
        app.config["ALLOW_LOOPBACK_PROVIDERS"] = True
        row = make_integration("shopify", SHOP, status="disconnected", settings={"shop": SHOP})
        db.session.execute(
            Integration.__table__.update().values(credentials_encrypted=None))
        make_import(row, "Buyers", state="stopped")
        resp = signed_in.post("/integrations/shopify/connect", {
            "shop": SHOP, "access_token": sim.app.initial_tokens["access_token"],
            "api_base": sim.url})
        assert resp.status_code == 303, _html(resp)
        db.session.expire_all()
        assert [r.id for r in db.session.scalars(select(Integration))] == [row.id]
        assert db.session.get(Integration, row.id).status == "connected"
        assert db.session.scalar(select(RecurringImport.state)) == "stopped"
    finally:
        sim.stop()
