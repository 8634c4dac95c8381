"""Workspace-wide settings, the suppression list and process heartbeats."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Numeric, String, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Choice, UTCDateTime, utcnow


def insert_or_nothing(table: Table, values: dict, conflict: list[str]) -> int:
    """INSERT … ON CONFLICT (conflict) DO NOTHING in the session's transaction (SQLite and
    PostgreSQL): two processes creating the same row never raise. Returns rows inserted."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return db.session.execute(stmt).rowcount


class WorkspaceSettings(db.Model):
    """The single settings row (id 1) of this self-hosted workspace."""

    __tablename__ = "workspace_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="Tributary")
    subscriber_limit: Mapped[int] = mapped_column(default=2500)
    # Amount charged per started block of 1,000 contacts over the limit, per 30-day cycle.
    extension_price: Mapped[float] = mapped_column(Numeric(10, 2), default=15)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    billing_cycle_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def get(cls) -> WorkspaceSettings:
        """The settings row, created with the defaults on first use (race-free)."""
        row = db.session.get(cls, 1)
        if row is None:
            insert_or_nothing(cls.__table__, {"id": 1}, ["id"])
            row = db.session.get(cls, 1)  # ours, or the one a concurrent process created
        return row


class SuppressionKind(Choice):
    EMAIL = "email"
    DOMAIN = "domain"


class Suppression(db.Model):
    """A suppressed email or whole domain: imports reject matching rows as blacklisted."""

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        SuppressionKind.check("kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(254))  # normalised: trimmed, lower-case
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Heartbeat(db.Model):
    """Last time a background process reported in (e.g. the scheduler's tick)."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
