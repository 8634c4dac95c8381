"""Statements compiled once per dialect and run straight through the connection
(`exec_driver_sql`), their bind values converted by their types' own processors: no
compile, cache lookup or ORM step per call. For the hottest paths only (receiving plugin
events), where that machinery cost more than the database work."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection


class Prepared:
    """One statement for one dialect: its SQL text, default (constant) binds, and the bind
    processors of its typed parameters."""

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup  # positional paramstyles (SQLite); else None
        self.defaults = compiled.construct_params(_check=False)
        self.processors = {}
        for name, bind in compiled.binds.items():
            proc = bind.type._cached_bind_processor(dialect)
            if proc is not None:
                self.processors[name] = proc

    def run(self, connection: Connection, values: dict[str, Any]):
        """Execute with `values` (by bind name); returns the DBAPI-level result (rows as
        the driver gives them: no result processing)."""
        params = {**self.defaults, **values}
        for name, proc in self.processors.items():
            value = params.get(name)
            if value is not None:
                params[name] = proc(value)
        if self.order is not None:
            return connection.exec_driver_sql(self.sql, tuple(params[n] for n in self.order))
        return connection.exec_driver_sql(self.sql, params)


_BUILT: dict[tuple[str, str, str], Any] = {}


def built_once(kind: str, name: str, dialect, make):
    """The compiled statement object `name` of `kind` (a Prepared, or the imports' bulk and
    array statements) for `dialect`: made by `make()` the first time, then reused."""
    slot = (kind, name, dialect.name)
    found = _BUILT.get(slot)
    if found is None:
        found = _BUILT[slot] = make()
    return found


def prepared(name: str, build, connection: Connection) -> Prepared:
    """The Prepared statement `name` for the connection's dialect (built once)."""
    dialect = connection.dialect
    return built_once("prepared", name, dialect, lambda: Prepared(build(), dialect))
