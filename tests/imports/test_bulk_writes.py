"""The engine's bulk inserts (imports/upsert.py insert_rows): on PostgreSQL one INSERT …
SELECT FROM unnest(arrays), where a column holding one value in every row goes as a scalar
and a left-out column takes its Python-side default; on SQLite one executemany. Either way
the stored rows are exactly the rows given."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.factories import make_contacts, make_list
from tests.test_integrations_support import make_integration
from webapp.extensions import db
from webapp.imports import upsert
from webapp.models import ConsentEvent, Contact, ImportRun, RecurringImport, RejectedRow
from webapp.models.base import utcnow


def _ledger(contact_ids: list[int]) -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        select(ConsentEvent.contact_id, ConsentEvent.state, ConsentEvent.source,
               ConsentEvent.at, ConsentEvent.run_id, ConsentEvent.note)
        .where(ConsentEvent.contact_id.in_(contact_ids)).order_by(ConsentEvent.id))]


def test_rows_with_shared_varying_and_defaulted_columns_are_stored_as_given(app):
    listed = make_list("Bulk")
    make_contacts(listed, 4)
    ids = list(db.session.scalars(select(Contact.id).where(Contact.list_id == listed.id)
                                  .order_by(Contact.id)))
    now = utcnow().replace(microsecond=0)
    varying = [{"contact_id": ids[i], "state": ("subscribed", "unknown")[i % 2],
                "source": f"run {i}", "at": now - timedelta(days=i), "run_id": None if i else 7,
                "recorded_at": now} for i in range(4)]
    shared = [{"contact_id": i, "state": "opted_out", "source": "same", "at": now,
               "run_id": 9, "recorded_at": now} for i in ids]
    single = [{"contact_id": ids[0], "state": "subscribed", "source": "one", "at": now,
               "run_id": 3, "recorded_at": now}]
    for batch in (varying, shared, single, varying):  # the first statement text again last
        upsert.insert_rows(db.session, ConsentEvent, batch)
    db.session.commit()
    expected = [(r["contact_id"], r["state"], r["source"], r["at"], r["run_id"], "")
                for r in varying + shared + single + varying]
    assert _ledger(ids) == expected  # "note" left out: its default, not NULL


def test_rejects_keep_every_character(app):
    listed = make_list("Rejects")
    integration = make_integration("shopify", "bulk.myshopify.com")
    imp = RecurringImport(integration_id=integration.id, list_id=listed.id, group="customers",
                          source="all")
    db.session.add(imp)
    db.session.flush()
    run = ImportRun(import_id=imp.id, trigger_kind="manual", status="running")
    db.session.add(run)
    db.session.flush()
    odd = ["", "ünïcödé ✓", "quote ' and \" and \\", "comma, {brace}", "NULL", "\t tab"]
    rows = [{"run_id": run.id, "source_id": f"s{i}", "email": f"bad{i}", "name": value,
             "reason": "no_email", "detail": "d" * (i + 1)} for i, value in enumerate(odd)]
    upsert.insert_rows(db.session, RejectedRow, rows)
    db.session.commit()
    stored = db.session.execute(select(RejectedRow.source_id, RejectedRow.name,
                                       RejectedRow.detail)
                                .where(RejectedRow.run_id == run.id).order_by(RejectedRow.id))
    assert [tuple(r) for r in stored] == [(r["source_id"], r["name"], r["detail"])
                                         for r in rows]
