"""A batch's set-based writes find their rows through indexes on young, never-analysed
tables, so a batch costs the same however many events came before it; and on PostgreSQL a
batch plans its statements with their values (no generic plan after psycopg's five uses)."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import make_list
from tests.plugins import factories as f
from webapp.commerce import carts
from webapp.extensions import db
from webapp.plugins import process

PEOPLE = 600  # 2,400 events processed
WAITING = 100_000  # more events stored (PostgreSQL): the events table is many batches long


def _processed_source():
    if db.session.get_bind().dialect.name == "postgresql":  # young: never analysed
        db.session.execute(text("ALTER TABLE plugin_events SET (autovacuum_enabled = false)"))
        db.session.commit()
    source = f.make_source(make_list("Plans"))
    f.insert_rows(f.bulk_rows(source.id, range(PEOPLE), domain="plans.example"))
    while process.process_batch().events:
        pass
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(
            "INSERT INTO plugin_events (source_id, channel, topic, kind, name, dedup_key, body, "
            "email_norm, anonymous_id, occurred_at, received_at, status, attempts, verdict, "
            "error) SELECT source_id, channel, topic, kind, name, 'more-' || g, body, "
            "email_norm, anonymous_id, occurred_at, received_at, 'processed', 1, verdict, error "
            "FROM plugin_events, generate_series(1, :n) AS g WHERE id = 1"), {"n": WAITING})
        db.session.commit()
    return source


def _plan(sql: str, params) -> str:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql("EXPLAIN " + sql, params)
    else:
        rows = connection.execute(text("EXPLAIN QUERY PLAN " + sql), params)
    return "\n".join(" ".join(str(c) for c in row) for row in rows)


def test_a_batch_finds_events_and_page_visits_through_indexes(app):
    source = _processed_source()
    ids = [row[0] for row in db.session.execute(text(
        "SELECT id FROM plugin_events ORDER BY id LIMIT :n OFFSET 1000"), {"n": process.BATCH})]
    n = len(ids)
    anons = [f"anon-plans.example-{i}" for i in range(200)]
    if db.session.get_bind().dialect.name == "postgresql":
        verdicts = _plan(process._PG_SET_EVENTS, {
            "at": None, "ids": ids, "statuses": ["processed"] * n, "contacts": [None] * n,
            "verdicts": [None] * n, "errors": [""] * n})
        assert "Seq Scan on plugin_events" not in verdicts, verdicts
        visits = _plan(carts._PG_VISITS, {"sids": [source.id] * 200, "anons": anons,
                                          "cids": [1] * 200})
        assert "Seq Scan on page_visits" not in visits, visits
        assert "Seq Scan on plugin_events" not in visits, visits
    else:
        visits = _plan(carts._VISITS, {"sid": source.id, "anon": anons[0], "cid": 1})
        assert "SCAN page_visits" not in visits and "SCAN plugin_events" not in visits, visits
        # by the visit's event, not by "contact_id IS NULL" (every guest visit there is)
        assert "page_visits USING INDEX ix_page_visits_event_id" in visits, visits
    db.session.rollback()


def test_a_batch_plans_with_its_values_on_postgresql(app):
    """PostgreSQL: custom plans for the batch's transaction only. SQLite: the claim holds
    the write lock (its one writer), released with the transaction."""
    source = f.make_source(make_list("Plans mode"))
    f.insert_rows(f.bulk_rows(source.id, range(2), domain="mode.example"))
    session = db.session
    assert process._claim(session, 10)
    if session.get_bind().dialect.name == "postgresql":
        setting = text("SELECT current_setting('plan_cache_mode')")
        assert session.execute(setting).scalar() == "force_custom_plan"
        session.rollback()
        assert session.execute(setting).scalar() == "auto"
    else:
        assert session.connection().connection.dbapi_connection.in_transaction
    session.rollback()
