"""A search walks the covering index (list, id, normalised email, name) instead of the rows,
and finds exactly what it found before: email prefixes, names containing the term in any case,
domains, escaped wildcards, keyset pages both ways, searches within filters."""

from __future__ import annotations

from sqlalchemy import select, text, update

from tests.factories import make_contacts, make_list
from webapp.extensions import db
from webapp.models import Contact
from webapp.services import contacts_list as listing
from webapp.services.contacts import search_condition

INDEX = "ix_contacts_list_search"


def _seed():
    lst = make_list("Searched")
    make_contacts(lst, 130)  # person0@example.com … "Person 0" …
    make_contacts(lst, 3, prefix="ann.o", name="Ann O'Brien")
    make_contacts(lst, 2, prefix="pct", name="100% sure_thing")
    make_contacts(make_list("Elsewhere"), 40)  # the same emails and names on another list
    db.session.execute(update(Contact).where(Contact.list_id == lst.id, Contact.id % 7 == 0)
                       .values(status="unsubscribed"))
    db.session.commit()
    return lst


def _expected(list_id: int, q: str, status: str = "") -> list[int]:
    """What the search means, computed in Python over every contact of the list."""
    term = q.lower()
    out = []
    for c in db.session.scalars(select(Contact).where(Contact.list_id == list_id)
                                .order_by(Contact.id)):
        if status and c.status != status:
            continue
        if term.startswith("@"):
            hit = term in c.email_norm
        elif "@" in term:
            hit = c.email_norm.startswith(term)
        else:
            hit = c.email_norm.startswith(term) or term in c.name.lower()
        if hit:
            out.append(c.id)
    return out


def _walk(list_id: int, q: str, filters=None, size: int = 7) -> list[int]:
    """Every id the search pages show, forwards page by page (then checks one page back)."""
    filters = filters or listing.ContactFilters()
    seen, after = [], None
    while True:
        page = listing.page(list_id, filters, q, after=after, size=size)
        assert all(isinstance(row, Contact) for row in page.rows)  # whole rows, not ids
        seen += [row.id for row in page.rows]
        if not page.has_next:
            break
        after = page.last_id
    if len(seen) > size:
        back = listing.page(list_id, filters, q, before=seen[size], size=size)
        assert [row.id for row in back.rows] == seen[:size] and back.has_next
    return seen


def test_search_results_are_unchanged(app):
    lst = _seed()
    for q in ("person1", "PERSON 12", "son 1", "son 129", "person12@", "@example.com",
              "ann.o", "o'brien", "100%", "sure_t", "e_t", "zzzz", "person129@example.com"):
        assert _walk(lst.id, q) == _expected(lst.id, q), q
    unsubscribed = listing.ContactFilters(status="unsubscribed")
    assert _walk(lst.id, "son 1", unsubscribed) == _expected(lst.id, "son 1", "unsubscribed")
    assert _walk(lst.id, "zzzz") == []


def _search_sql(list_id: int, q: str) -> str:
    stmt = (select(Contact.id).where(Contact.list_id == list_id, search_condition(q))
            .order_by(Contact.id).limit(51))
    return str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))


def test_a_search_walks_the_covering_index_only(app):
    """SQLite reads the index alone; on PostgreSQL (whose planner scans the table for these
    searches) the index is partial and empty, so the import's writes never pay for it."""
    lst = _seed()
    conn = db.session.connection()
    if conn.dialect.name == "sqlite":
        for q in ("son 129", "zzzz", "person12"):
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {_search_sql(lst.id, q)}"))
            assert f"COVERING INDEX {INDEX}" in plan, plan
    else:
        definition = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                                  {"n": INDEX}).scalar_one()
        assert definition.endswith("WHERE false"), definition
        size = conn.execute(text("SELECT pg_relation_size(:n)"), {"n": INDEX}).scalar_one()
        assert size <= 8192, size  # the B-tree's meta page alone: no entries for 175 contacts
