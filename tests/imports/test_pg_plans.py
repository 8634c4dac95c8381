"""The per-page lookups keep the unique (list_id, email_norm) index as their plan on a young,
never-analysed table, however often they run (issue 14 item 1).

On PostgreSQL psycopg prepares a statement after five uses and PostgreSQL then switches it to
a generic plan; the test runs the engine's lookups 25 times on fresh tables of 40,000 rows and
EXPLAINs each prepared statement as the generic plan. On SQLite it checks the query plan."""

from __future__ import annotations

import re

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from tests.factories import make_contacts, make_list
from webapp.extensions import db
from webapp.imports import upsert
from webapp.models import Contact, ContactList
from webapp.models.base import utcnow

CALLS = 25
PAGE = 2000
ROWS = 30_000  # in the list looked up; 10,000 more in another list
SCHEMA = "plans_young"
UNIQUE_INDEX = "uq_contacts_list_id"


def _page(call: int) -> list[str]:
    """A page's emails: half on the list, half new (different ones on every call)."""
    base = call * PAGE // 2
    return ([f"person{base + i}@example.com" for i in range(PAGE // 2)]
            + [f"new{call}-{i}@example.com" for i in range(PAGE // 2)])


def _lookups(session: Session, list_id: int) -> None:
    for call in range(CALLS):
        norms = _page(call)
        found = upsert.existing_contacts(session, list_id, norms)
        assert len(found) == PAGE // 2
        assert upsert.created_by_run(session, list_id, 7, norms) == 0
        upsert.record_consent(session, list_id, 7, norms, utcnow())


def _young_tables(conn) -> int:
    """Fresh copies of the tables in their own schema (never analysed, autovacuum off)."""
    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    conn.exec_driver_sql(f"SET search_path TO {SCHEMA}")
    db.metadata.create_all(conn)
    conn.exec_driver_sql("ALTER TABLE contacts SET (autovacuum_enabled = false)")
    list_ids = [conn.execute(insert(ContactList).values(name=name, created_at=utcnow())
                             .returning(ContactList.id)).scalar_one()
                for name in ("Young", "Other")]
    for list_id, count, prefix in ((list_ids[0], ROWS, "person"),
                                   (list_ids[1], 10_000, "other")):
        conn.execute(text(
            "INSERT INTO contacts (list_id, email, email_norm, name, custom, origin, status, "
            "unsubscribed_locally, consent_state, consent_source, created_at, updated_at, note) "
            f"SELECT :list_id, '{prefix}' || g || '@example.com', "
            f"'{prefix}' || g || '@example.com', 'Person ' || g, '{{}}', 'manual', "
            "'subscribed', false, 'unknown', '', now(), now(), '' "
            "FROM generate_series(0, :n - 1) AS g"), {"list_id": list_id, "n": count})
    return list_ids[0]


def _literal(type_name: str, list_id: int) -> str:
    if type_name.endswith("[]"):
        return "'{someone@example.com}'"
    if type_name.startswith("timestamp"):
        return "now()"
    return str(list_id)


def test_postgresql_generic_plans_use_the_unique_index(app):
    if db.engine.dialect.name != "postgresql":
        return _sqlite_plan_uses_the_unique_index()
    conn = db.engine.connect()
    try:
        list_id = _young_tables(conn)
        conn.commit()
        session = Session(bind=conn)
        _lookups(session, list_id)
        session.commit()

        assert conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass").scalar() < 0, \
            "the table was analysed: the test needs a young one"
        prepared = conn.exec_driver_sql(
            "SELECT name, statement, parameter_types::text[], generic_plans, custom_plans "
            "FROM pg_prepared_statements WHERE statement LIKE '%%FROM contacts%%'").all()
        assert len(prepared) == 3, [p.statement[:80] for p in prepared]
        # psycopg prepared each after 5 uses; PostgreSQL may pick the generic plan from then on.
        assert all(p.generic_plans + p.custom_plans >= CALLS - 5 for p in prepared), prepared
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        for name, statement, types, _generic, _custom in prepared:
            args = ", ".join(_literal(t, list_id) for t in types)
            plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}({args})").scalars())
            assert re.search(rf"Index (Only )?Scan using {UNIQUE_INDEX} on contacts", plan), (
                f"{statement[:120]}…\n{plan[:800]}")
            assert "ix_contacts_list_id_id" not in plan, plan
    finally:
        conn.rollback()
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.commit()
        conn.invalidate()  # its prepared statements and settings leave with it
        conn.close()


def _sqlite_plan_uses_the_unique_index() -> None:
    """SQLite has no generic plans: its lookup must still search the unique index."""
    target = make_list("Young")
    make_contacts(target, ROWS)
    other = make_list("Other")
    make_contacts(other, 10_000, prefix="other")
    _lookups(db.session, target.id)
    db.session.commit()
    stmt = upsert._EXISTING["sqlite"].params(list_id=target.id,
                                              norms=upsert.padded(_page(0)))
    sql = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    plan = db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
    detail = " ".join(row[-1] for row in plan)
    assert "(list_id=? AND email_norm=?)" in detail, detail
    assert db.session.query(Contact).filter_by(list_id=target.id).count() == ROWS


def test_a_fast_growing_young_table_gets_statistics(app):
    """PostgreSQL: after 10,000 rows written into a never-analysed contacts table, the run
    ANALYZEs it (custom plans need statistics too); again only once the table doubled."""
    target = make_list("Growing")
    make_contacts(target, 12_000)
    db.session.commit()
    if db.engine.dialect.name != "postgresql":
        assert upsert.keep_statistics(db.session, 12_000) is False  # SQLite: nothing to do
        return
    reltuples = "SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass"
    db.session.execute(text("ALTER TABLE contacts SET (autovacuum_enabled = false)"))
    db.session.commit()
    try:
        assert db.session.execute(text(reltuples)).scalar() < 0  # truncated: never counted
        assert upsert.keep_statistics(db.session, 9_999) is False
        assert upsert.keep_statistics(db.session, 12_000) is True
        assert db.session.execute(text(reltuples)).scalar() == 12_000
        assert upsert.keep_statistics(db.session, 11_999) is False  # not doubled since then
        assert upsert.keep_statistics(db.session, 12_000) is True
    finally:
        db.session.rollback()
        db.session.execute(text("ALTER TABLE contacts RESET (autovacuum_enabled)"))
        db.session.commit()
