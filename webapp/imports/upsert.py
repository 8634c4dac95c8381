"""Set-based contact writes: one INSERT … ON CONFLICT (list_id, email_norm) DO UPDATE per
batch, on SQLite and PostgreSQL alike. Never one ORM object per row.

The update keeps what must not change: a stored name is not erased by an empty one, custom
values are merged key by key (SQLite json_patch, PostgreSQL ||), an unsubscribed contact
stays unsubscribed, and enrolment and the creating run stay as they were. The write itself
decides consent against what is stored at that moment (another run may have written since
this one read): a known consent is never replaced by "unknown", an unsubscribed contact's
consent is never replaced by a subscribing row, and a row carrying no new consent leaves it.

Lookups by email on PostgreSQL pass the emails as ONE array parameter (`= ANY(:norms)`): the
statement text never changes, and the generic plan psycopg's automatic prepared statements
switch to after five uses still probes the unique (list_id, email_norm) index. With an
`IN (…)` list of thousands of parameters that generic plan scans the whole list instead.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, and_, any_, bindparam, case, cast, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import String, Text, TypeDecorator

from ..models import ConsentEvent, Contact, ImportRunSeen, RejectedRow
from ..prepared import built_once
from .seen import SeenHashes

contacts = Contact.__table__

# Columns the pipeline reads to classify a page's rows against what is stored.
EXISTING_COLUMNS = (
    contacts.c.id, contacts.c.email_norm, contacts.c.name, contacts.c.custom,
    contacts.c.status, contacts.c.unsubscribed_locally, contacts.c.consent_state,
    contacts.c.consent_source, contacts.c.consent_at, contacts.c.consent_run_id,
)

CHUNK = 5000
_BUCKETS = (32, 128, 512, 2048, CHUNK)


def padded(values: list[str]) -> list[str]:
    """`values` repeated up to a bucket size, so an `IN (…)` list has one of a few lengths.

    Each distinct length is another SQL text, and the database driver keeps a prepared
    statement per text (SQLite: 128 of them, ~0.3 MB each at 2,000 parameters)."""
    size = next(b for b in _BUCKETS if b >= len(values))
    return values + values[-1:] * (size - len(values)) if values else values


def _among(dialect: str):
    """The clause "email_norm is one of :norms": one array parameter on PostgreSQL, an
    expanding `IN (…)` on SQLite (which has no arrays)."""
    if dialect == "postgresql":
        return contacts.c.email_norm == any_(cast(bindparam("norms"), postgresql.ARRAY(Text)))
    return contacts.c.email_norm.in_(bindparam("norms", expanding=True))


def _chunks(dialect: str, norms: list[str]):
    """`norms` in chunks of at most CHUNK, as bind values for `_among` (SQLite: padded)."""
    for start in range(0, len(norms), CHUNK):
        chunk = norms[start:start + CHUNK]
        yield chunk if dialect == "postgresql" else padded(chunk)


def _existing(dialect: str):
    return (select(*EXISTING_COLUMNS)
            .where(contacts.c.list_id == bindparam("list_id"), _among(dialect)))


_EXISTING = {name: _existing(name) for name in ("postgresql", "sqlite")}


def _created(dialect: str):
    return (select(func.count())
            .where(contacts.c.list_id == bindparam("list_id"), _among(dialect),
                   contacts.c.created_run_id == bindparam("run_id")))


_CREATED = {name: _created(name) for name in ("postgresql", "sqlite")}


def existing_contacts(session: Session, list_id: int, norms: Iterable[str]) -> dict[str, Any]:
    """Stored contacts of the list among `norms`, by normalised email (one query)."""
    norms = list(norms)
    dialect = session.get_bind().dialect.name
    found: dict[str, Any] = {}
    for chunk in _chunks(dialect, norms):
        for row in session.execute(_EXISTING[dialect], {"list_id": list_id, "norms": chunk}):
            found[row.email_norm] = row
    return found


def created_by_run(session: Session, list_id: int, run_id: int, norms: list[str]) -> int:
    """How many of `norms` this run created (after its write, in the same transaction).

    A run meets each email once, so this counts the rows its upsert inserted rather than
    updated, even when another run inserted some of them after this one read."""
    dialect = session.get_bind().dialect.name
    total = 0
    for chunk in _chunks(dialect, norms):
        total += session.execute(_CREATED[dialect], {"list_id": list_id, "run_id": run_id,
                                                     "norms": chunk}).scalar_one()
    return total


def _statement(dialect: str, source=None):
    if dialect == "postgresql":
        stmt = postgresql.insert(contacts)
        if source is not None:
            stmt = stmt.from_select(CONTACT_KEYS, source)
        merged = contacts.c.custom.op("||")(stmt.excluded.custom)
    elif dialect == "sqlite":
        stmt = sqlite.insert(contacts)
        merged = func.json_patch(contacts.c.custom, stmt.excluded.custom)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    ex, stored = stmt.excluded, contacts.c
    keep_consent = or_(
        # The row carries the consent it read, not one this run recorded.
        ex.consent_run_id.is_distinct_from(ex.updated_run_id),
        and_(ex.consent_state == "unknown", stored.consent_state != "unknown"),
        and_(stored.status == "unsubscribed", ex.status != "unsubscribed"),
    )

    def consent(column: str):
        return case((keep_consent, stored[column]), else_=ex[column])

    return stmt.on_conflict_do_update(
        index_elements=[contacts.c.list_id, contacts.c.email_norm],
        set_={
            "name": case((ex.name != "", ex.name), else_=contacts.c.name),
            "custom": merged,
            "status": case(
                (contacts.c.status == "unsubscribed", "unsubscribed"), else_=ex.status
            ),
            "unsubscribed_at": func.coalesce(contacts.c.unsubscribed_at, ex.unsubscribed_at),
            "consent_state": consent("consent_state"),
            "consent_source": consent("consent_source"),
            "consent_at": consent("consent_at"),
            "consent_run_id": consent("consent_run_id"),
            "updated_at": ex.updated_at,
            "updated_run_id": ex.updated_run_id,
        },
    )


def _defaults_of(table, names) -> dict[str, Any]:
    """The Python-side column defaults among `names` (columns a statement leaves out)."""
    return {k: table.c[k].default for k in names
            if k in table.c and table.c[k].default is not None}


def _default_values(defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults' values for one statement run (callables called once), JSON as text."""
    out = {}
    for key, default in defaults.items():
        value = default.arg if default.is_scalar else default.arg(None)
        out[key] = json.dumps(value) if isinstance(value, dict | list) else value
    return out


class BulkStatement:
    """A statement compiled once for the connection's dialect and run as one DBAPI
    executemany, with bind values converted once per distinct value (a page shares its
    timestamps) instead of SQLAlchemy's per-row parameter processing."""

    def __init__(self, connection, stmt, table, keys: list[str]):
        dialect = connection.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=keys)
        self.sql = compiled.string
        self.template = compiled.construct_params(dict.fromkeys(keys))
        self.positional = compiled.positiontup
        self.defaults = _defaults_of(table, [k for k in self.template if k not in keys])
        self.processors = {}
        for key in keys:
            proc = table.c[key].type._cached_bind_processor(dialect)
            if proc is not None:
                self.processors[key] = proc

    def execute(self, connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        template, procs = {**self.template, **_default_values(self.defaults)}, self.processors
        memo: dict[tuple, Any] = {}

        def convert(name: str, row: dict[str, Any]) -> Any:
            if name not in row:
                return template[name]
            value = row[name]
            proc = procs.get(name)
            if proc is None or value is None:
                return value
            if isinstance(value, dict | list):
                return proc(value)
            slot = (name, value)
            if slot not in memo:
                memo[slot] = proc(value)
            return memo[slot]

        if self.positional:
            names = self.positional
            params: list[Any] = [tuple([convert(n, r) for n in names]) for r in rows]
        else:
            names = list(template)
            params = [{n: convert(n, r) for n in names} for r in rows]
        connection.exec_driver_sql(self.sql, params)


def _bulk(session: Session, name: str, build, table, keys: list[str]) -> tuple:
    connection = session.connection()
    dialect = connection.dialect
    return built_once("bulk", name, dialect, lambda: BulkStatement(
        connection, build(dialect.name), table, keys)), connection


CONTACT_KEYS = [
    "list_id", "email", "email_norm", "name", "custom", "origin", "status", "unsubscribed_at",
    "unsubscribed_locally", "consent_state", "consent_source", "consent_at", "consent_run_id",
    "cycle_id", "cycle_day", "enrolled_at", "created_at", "updated_at", "created_run_id",
    "updated_run_id", "note",
]


# What the PostgreSQL upsert hands back per row: the page's ledgers come from it instead of
# probing the page's emails again.
WRITTEN = ("id", "email_norm", "created_run_id", "consent_run_id", "consent_state",
           "consent_source", "consent_at")


def upsert_contacts(session: Session, rows: list[dict[str, Any]]) -> list | None:
    """Write `rows` (dicts with CONTACT_KEYS) in one batched INSERT … ON CONFLICT. On
    PostgreSQL, returns each written row's WRITTEN columns (as they are after the write);
    on SQLite (an executemany, which returns nothing) None."""
    if not rows:
        return [] if session.get_bind().dialect.name == "postgresql" else None
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _upsert_unnest(connection, rows)
    statement, connection = _bulk(session, "contacts", _statement, contacts, CONTACT_KEYS)
    statement.execute(connection, rows)
    return None


def _element_type(column):
    """The array element type for a column: plain text for strings (a cast to varchar(n)
    would cut long values silently; the insert into the column still checks them) and for
    JSON values, which go as JSON text and are cast to jsonb in the statement."""
    type_ = column.type
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl
    if isinstance(type_, String | JSON):
        return Text()
    return type_


class ArrayStatement:
    """PostgreSQL: INSERT … SELECT FROM unnest(one array per column). One statement and one
    small parameter set per page (no executemany round trips, one plan); the arrays go in
    psycopg's binary format (`%(key)b`), in which timestamps and JSON dump several times
    faster than as text. A column holding one value in every row (the page's run, time,
    list) goes as one scalar instead of an array: dumping the arrays is most of the cost.
    Each set of such columns is its own statement text, compiled once."""

    def __init__(self, dialect, table, keys: list[str], build=None):
        self.dialect, self.table, self.keys, self.build = dialect, table, keys, build
        self.json = [k for k in keys if isinstance(table.c[k].type, JSON)]
        self.converted = [k for k in keys if isinstance(table.c[k].type, TypeDecorator)]
        self.variants: dict[tuple[str, ...], tuple[str, dict, dict]] = {}

    def _compile(self, shared: tuple[str, ...]) -> tuple[str, dict, dict]:
        table, keys = self.table, self.keys
        listed = [k for k in keys if k not in shared]
        arrays = [cast(bindparam(k), postgresql.ARRAY(_element_type(table.c[k])))
                  for k in listed]
        rows = func.unnest(*arrays).table_valued(*listed).render_derived(name="page")
        columns = []
        for k in keys:
            if k in shared:
                columns.append(cast(bindparam(k), _element_type(table.c[k])))
            elif isinstance(table.c[k].type, JSON):
                columns.append(cast(rows.c[k], table.c[k].type))
            else:
                columns.append(rows.c[k])
        source = select(*columns)
        stmt = self.build(source) if self.build else table.insert().from_select(keys, source)
        compiled = stmt.compile(dialect=self.dialect)
        literals = compiled.construct_params(dict.fromkeys(keys))  # the statement's constants
        constants = {k: v for k, v in literals.items() if k not in keys}
        defaults = _defaults_of(table, constants)  # columns left out: their defaults
        sql = compiled.string
        for key in keys:
            placeholder = f"%({key})s"
            if sql.count(placeholder) != 1:  # pragma: no cover - a change to the statement
                raise RuntimeError(f"the insert should name {placeholder} once")
            sql = sql.replace(placeholder, f"%({key})b")
        return sql, constants, defaults

    def execute(self, connection, rows: list[dict[str, Any]]):
        return self.execute_columns(connection, {k: [row[k] for row in rows]
                                                 for k in self.keys})

    def execute_columns(self, connection, columns: dict[str, list]):
        """Insert the rows given column by column (lists of one length, keyed by `keys`)."""
        params: dict[str, Any] = dict(columns)
        n = len(params[self.keys[0]])
        shared = tuple(k for k in self.keys if k not in self.json
                       and params[k].count(params[k][0]) == n)
        for key in shared:
            params[key] = params[key][0]
        for key in self.json:
            params[key] = [json.dumps(value) for value in params[key]]
        for key in self.converted:  # e.g. UTCDateTime: aware values only, sent as UTC
            convert = self.table.c[key].type.process_bind_param
            params[key] = (convert(params[key], connection.dialect) if key in shared
                           else [convert(value, connection.dialect) for value in params[key]])
        variant = self.variants.get(shared)
        if variant is None:
            variant = self.variants[shared] = self._compile(shared)
        sql, constants, defaults = variant
        return connection.exec_driver_sql(sql, {**constants, **params,
                                                **_default_values(defaults)})


def _arrays(connection, name: str, table, keys: list[str], build=None) -> ArrayStatement:
    dialect = connection.dialect
    return built_once("arrays", name, dialect,
                      lambda: ArrayStatement(dialect, table, keys, build))


def _upsert_unnest(connection, rows: list[dict[str, Any]]) -> list:
    statement = _arrays(connection, "contacts", contacts, CONTACT_KEYS, lambda source: (
        _statement("postgresql", source).returning(*[contacts.c[k] for k in WRITTEN])))
    return statement.execute(connection, rows).all()


def insert_rows(session: Session, model, rows: list[dict[str, Any]]) -> None:
    """Plain batched INSERT of rows with the same keys (rejects, seen hashes, ledgers): one
    array INSERT on PostgreSQL, one executemany on SQLite."""
    if rows:
        table = model.__table__
        keys = list(rows[0])
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            _arrays(connection, f"{table.name}:{','.join(keys)}", table, keys).execute(
                connection, rows)
            return
        statement, connection = _bulk(session, f"{table.name}:{','.join(keys)}",
                                      lambda _d: table.insert(), table, keys)
        statement.execute(connection, rows)


_LEDGER: dict[str, Any] = {}


def record_consent(session: Session, list_id: int, run_id: int, norms: list[str],
                   now) -> None:
    """Consent ledger rows for the contacts whose consent this run recorded, copied
    set-based from the contacts just written (INSERT … SELECT)."""
    ledger = ConsentEvent.__table__
    dialect = session.get_bind().dialect.name
    statement = _LEDGER.get(dialect)
    if statement is None:
        source = (
            select(contacts.c.id, contacts.c.consent_state, contacts.c.consent_source,
                   contacts.c.consent_at, contacts.c.consent_run_id,
                   bindparam("recorded_at", type_=ledger.c.recorded_at.type))
            .where(contacts.c.list_id == bindparam("list_id"),
                   contacts.c.consent_run_id == bindparam("run_id"), _among(dialect))
        )
        statement = _LEDGER[dialect] = ledger.insert().from_select(
            ["contact_id", "state", "source", "at", "run_id", "recorded_at"], source)
    for chunk in _chunks(dialect, norms):
        session.execute(statement, {"list_id": list_id, "run_id": run_id, "norms": chunk,
                                    "recorded_at": now})


def insert_columns(session: Session, model, columns: dict[str, list]) -> None:
    """PostgreSQL: insert rows given column by column (one array INSERT)."""
    keys = list(columns)
    if columns[keys[0]]:
        table, connection = model.__table__, session.connection()
        _arrays(connection, f"{table.name}:{','.join(keys)}", table, keys).execute_columns(
            connection, columns)


def ledger_from_written(session: Session, run_id: int, norms: list[str], written: list,
                        now) -> None:
    """PostgreSQL: record_consent's ledger rows taken from what the upsert returned (the
    consent as it stands after the write) instead of probing the page's emails again."""
    wanted = set(norms)
    ids, states, sources, ats = [], [], [], []
    for contact_id, norm, _created, consent_run, state, source, at in written:
        if consent_run == run_id and norm in wanted:
            ids.append(contact_id)
            states.append(state)
            sources.append(source)
            ats.append(at)
    insert_columns(session, ConsentEvent, {
        "contact_id": ids, "state": states, "source": sources, "at": ats,
        "run_id": [run_id] * len(ids), "recorded_at": [now] * len(ids)})


ANALYZE_AFTER = 10_000
# The columns the engine's lookups filter on: ANALYZE of these alone costs a third of a
# whole-table ANALYZE (no statistics for names, custom values and timestamps).
ANALYZED = "contacts (list_id, email_norm, status, created_run_id, consent_run_id)"


def keep_statistics(session: Session, written: int) -> bool:
    """PostgreSQL: ANALYZE the looked-up columns of contacts once `written` rows since the
    last check reach what the planner believes the table holds (the table doubled), or it
    never counted. Without statistics even custom plans scan a young list by list_id;
    autovacuum comes minutes too late."""
    if written < ANALYZE_AFTER or session.get_bind().dialect.name != "postgresql":
        return False
    known = session.execute(text(
        "SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass")).scalar()
    if known is not None and known >= 0 and written < known:
        return False
    session.execute(text(f"ANALYZE {ANALYZED}"))
    session.commit()
    return True


def insert_rejects(session: Session, rows: list[dict[str, Any]]) -> None:
    insert_rows(session, RejectedRow, rows)


def insert_seen(session: Session, run_id: int, page: int, hashes: Iterable[int]) -> None:
    """One row per page: the page's email hashes packed as signed 64-bit integers."""
    packed = array("q", hashes).tobytes()
    if packed:
        insert_rows(session, ImportRunSeen, [{"run_id": run_id, "page": page, "hashes": packed}])


def load_seen(session: Session, run_id: int) -> SeenHashes:
    seen = SeenHashes()
    for (blob,) in session.execute(select(ImportRunSeen.hashes)
                                   .where(ImportRunSeen.run_id == run_id)):
        values = array("q")
        values.frombytes(blob)
        seen.update(values)
    return seen
