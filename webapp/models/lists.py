"""Lists, custom fields, autoresponder cycles and contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Choice, JSONType, UTCDateTime, one_of, utcnow

FIELD_TYPES = (
    "text", "number", "date", "datetime", "country", "currency",
    "phone", "gender", "ip", "url",
)
FIELD_FORMATS = ("text", "textarea", "checkbox", "radio", "single_select", "multi_select")
CHOICE_FORMATS = ("checkbox", "radio", "single_select", "multi_select")


class Origin(Choice):
    """How a contact came onto its list."""

    IMPORT = "import"
    PLUGIN = "plugin"
    FORM = "form"
    API = "api"
    MANUAL = "manual"


class ContactStatus(Choice):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class ConsentState(Choice):
    """What the source (or a team member) says about a person's marketing consent."""

    SUBSCRIBED = "subscribed"
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"


ORIGINS = Origin.values()


class ContactList(db.Model):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cycles: Mapped[list[Cycle]] = relationship(
        back_populates="list", cascade="all, delete-orphan", order_by="Cycle.name"
    )


class CustomField(db.Model):
    """Workspace-wide custom field; values live in Contact.custom under `name`."""

    __tablename__ = "custom_fields"
    __table_args__ = (
        CheckConstraint(one_of("type", FIELD_TYPES), name="type"),
        CheckConstraint(one_of("format", FIELD_FORMATS), name="format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(16), default="text")
    format: Mapped[str] = mapped_column(String(16), default="text")
    allowed_values: Mapped[list] = mapped_column(JSONType, default=list)
    hidden: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Cycle(db.Model):
    """Autoresponder cycle of a list; Tributary records enrolment, it sends nothing."""

    __tablename__ = "cycles"
    __table_args__ = (
        UniqueConstraint("list_id", "name"),
        CheckConstraint("length_days >= 1", name="length_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    length_days: Mapped[int] = mapped_column(default=30)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    list: Mapped[ContactList] = relationship(back_populates="cycles")


class Contact(db.Model):
    """A person on one list. Unique on (list, normalised email); custom values in one JSON
    column so a batch upsert of thousands of rows is a single INSERT … ON CONFLICT."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("list_id", "email_norm"),
        Index("ix_contacts_list_id_id", "list_id", "id"),
        # SQLite: a search walks this instead of the rows (list order, with what a term
        # matches). PostgreSQL's planner scans the table for these searches anyway (measured),
        # so there the index holds no rows and costs the import's writes nothing.
        Index("ix_contacts_list_search", "list_id", "id", "email_norm", "name",
              postgresql_where=text("false")),
        Origin.check("origin"),
        ContactStatus.check("status"),
        ConsentState.check("consent_state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))  # as given
    email_norm: Mapped[str] = mapped_column(String(254))  # trimmed, lower-cased
    name: Mapped[str] = mapped_column(String(255), default="")
    custom: Mapped[dict] = mapped_column(JSONType, default=dict)
    origin: Mapped[str] = mapped_column(String(10), default="manual")
    status: Mapped[str] = mapped_column(String(12), default="subscribed")
    # Set when unsubscribed in Tributary itself: sticky, no import re-subscribes.
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_locally: Mapped[bool] = mapped_column(default=False)
    consent_state: Mapped[str] = mapped_column(String(10), default="unknown")
    consent_source: Mapped[str] = mapped_column(String(64), default="")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_run_id: Mapped[int | None] = mapped_column()
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id", ondelete="SET NULL"))
    cycle_day: Mapped[int | None] = mapped_column()
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_run_id: Mapped[int | None] = mapped_column()
    updated_run_id: Mapped[int | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")

    list: Mapped[ContactList] = relationship()
    cycle: Mapped[Cycle | None] = relationship()
