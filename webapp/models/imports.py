"""Recurring imports, their runs, rejected rows, the consent and overage ledgers, notices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Choice, JSONType, UTCDateTime, one_of, utcnow
from .integrations import Integration
from .lists import ConsentState, ContactList, Cycle
from .users import User


class Criteria(Choice):
    ADD_UPDATE = "add_update"
    ADD_ONLY = "add_only"
    UPDATE_ONLY = "update_only"


class ImportState(Choice):
    ACTIVE = "active"
    STOPPED = "stopped"
    NEEDS_ATTENTION = "needs_attention"


class Trigger(Choice):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    PREVIEW = "preview"


class RunStatus(Choice):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    CAPPED = "capped"
    FAILED = "failed"
    CANCELED = "canceled"


class ConsentFilter(Choice):
    """Who an import takes: everyone who has not opted out, or only people subscribed to
    marketing at the source (a person the source reports as opted out is never taken)."""

    EVERYONE = "everyone"
    SUBSCRIBED = "subscribed"


class NoticeLevel(Choice):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


CRITERIA = Criteria.values()
IMPORT_STATES = ImportState.values()
TRIGGERS = Trigger.values()
RUN_STATUSES = RunStatus.values()
LIVE_STATUSES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
REJECT_REASONS = (
    "syntax_error", "invalid_domain", "already_in_queue", "blacklisted", "policy_failure",
    "opted_out_at_source", "no_marketing_consent", "mismatched_criteria",
)
# Kept with the rejects (same table, so the run page and CSV list them) but counted as
# skipped, not rejected: a record with no email address at the source.
SKIP_REASONS = ("no_email",)
ROW_REASONS = REJECT_REASONS + SKIP_REASONS
CONSENT_FILTERS = ConsentFilter.values()

# One live (queued or running) non-preview run per import: double clicks on "Import now",
# a scheduled run racing a manual one and two dispatchers all collide on this index.
LIVE_RUN_WHERE = f"{one_of('status', LIVE_STATUSES)} AND trigger_kind != '{Trigger.PREVIEW}'"


class RecurringImport(db.Model):
    """Integration × target list, with its mapping, schedule, state and incremental cursor.

    `mapping` is {source field: target} with target "email", "name" or a custom field
    (its id as an int, or its name); the virtual source "Full name" is first + last name.
    """

    __tablename__ = "recurring_imports"
    __table_args__ = (
        Criteria.check("criteria"),
        ImportState.check("state"),
        ConsentFilter.check("consent_filter"),
        CheckConstraint("cycle_start_day >= 0", name="cycle_start_day"),
        CheckConstraint("run_hour IS NULL OR (run_hour >= 0 AND run_hour <= 23)",
                        name="run_hour"),
        Index("ix_recurring_imports_state_next_run_at", "state", "next_run_at"),
        Index("ix_recurring_imports_integration_id", "integration_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE")
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id", ondelete="SET NULL"))
    cycle_start_day: Mapped[int] = mapped_column(default=0)
    group: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255))
    criteria: Mapped[str] = mapped_column(String(16), default="add_update")
    consent_confirmed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    consent_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_filter: Mapped[str] = mapped_column(String(16), default="everyone")
    # A CRM import's boolean source field meaning "subscribed to marketing" ("" = none).
    consent_field: Mapped[str] = mapped_column(String(255), default="")
    mapping: Mapped[dict] = mapped_column(JSONType, default=dict)
    ignore_unmapped: Mapped[bool] = mapped_column(default=False)
    # Schedule: at run_hour in time_zone (DST-correct), or 24 h after the last scheduled run.
    run_hour: Mapped[int | None] = mapped_column()
    time_zone: Mapped[str | None] = mapped_column(String(64))
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="active")
    state_reason: Mapped[str] = mapped_column(String(500), default="")
    # Resume point inside an unfinished walk (capped / failed run), else None.
    cursor: Mapped[dict | None] = mapped_column(JSONType)
    # Largest source updated_at of the last finished walk: the next walk's `since`.
    high_water: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    integration: Mapped[Integration] = relationship()
    list: Mapped[ContactList] = relationship()
    cycle: Mapped[Cycle | None] = relationship()


class ImportRun(db.Model):
    """One execution of an import. This row is the truth (pages read it, not Redis); the
    RQ job only carries its id."""

    __tablename__ = "import_runs"
    __table_args__ = (
        Trigger.check("trigger_kind"),
        RunStatus.check("status"),
        UniqueConstraint("import_id", "scheduled_for"),
        Index(
            "uq_import_runs_live", "import_id", unique=True,
            sqlite_where=text(LIVE_RUN_WHERE), postgresql_where=text(LIVE_RUN_WHERE),
        ),
        Index("ix_import_runs_import_id_id", "import_id", "id"),
        Index("ix_import_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("recurring_imports.id", ondelete="CASCADE"))
    trigger_kind: Mapped[str] = mapped_column(String(10), default="manual")
    status: Mapped[str] = mapped_column(String(24), default="queued")
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # counts
    fetched: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    rejected_by_reason: Mapped[dict] = mapped_column(JSONType, default=dict)
    warnings: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int] = mapped_column(default=0)
    # the source's own count of the records this run walks (progress %); None: not known
    source_total: Mapped[int | None] = mapped_column()
    # timings and liveness
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timings: Mapped[dict] = mapped_column(JSONType, default=dict)  # seconds per stage
    # plain-words error, and its kind (auth, rate_limited, unavailable, schema, …)
    error: Mapped[str] = mapped_column(Text, default="")
    error_kind: Mapped[str] = mapped_column(String(32), default="")
    # the walk: where this run started and the resume cursor after its last committed page
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start_cursor: Mapped[dict | None] = mapped_column(JSONType)
    cursor: Mapped[dict | None] = mapped_column(JSONType)
    high_water: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # job bookkeeping: the RQ job id, attempts (re-enqueues by the sweep), the lease token
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    lease: Mapped[str | None] = mapped_column(String(32))
    preview: Mapped[dict | None] = mapped_column(JSONType)  # dry-run result

    recurring_import: Mapped[RecurringImport] = relationship()

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def written(self) -> int:
        return self.added + self.updated


class ImportRunSeen(db.Model):
    """The 64-bit hashes of the normalised emails one committed page of a run held, packed
    (8 bytes each) in one row per page, so a resumed run still counts a later duplicate as
    already_in_queue. Deleted when the run ends."""

    __tablename__ = "import_run_seen"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("import_runs.id", ondelete="CASCADE"), primary_key=True
    )
    page: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class RejectedRow(db.Model):
    __tablename__ = "rejected_rows"
    __table_args__ = (
        CheckConstraint(one_of("reason", ROW_REASONS), name="reason"),
        Index("ix_rejected_rows_run_id_id", "run_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    source_id: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(512), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500), default="")


class ConsentEvent(db.Model):
    """The per-contact consent ledger: every consent state an import recorded, and when;
    a change made by a team member names them (`user_id`) and its reason (`note`)."""

    __tablename__ = "consent_ledger"
    __table_args__ = (
        ConsentState.check("state"),
        Index("ix_consent_ledger_contact_id_at", "contact_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    run_id: Mapped[int | None] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User | None] = relationship()


class OverageEntry(db.Model):
    """List-extension ledger: the peak subscriber count over the plan limit in one 30-day
    billing cycle and the fee it costs (price × started blocks of 1,000)."""

    __tablename__ = "overage_ledger"
    __table_args__ = (UniqueConstraint("cycle_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_start: Mapped[datetime] = mapped_column(UTCDateTime)
    cycle_end: Mapped[datetime] = mapped_column(UTCDateTime)
    subscriber_limit: Mapped[int] = mapped_column()
    peak_count: Mapped[int] = mapped_column()
    over: Mapped[int] = mapped_column()
    blocks: Mapped[int] = mapped_column()
    price: Mapped[float] = mapped_column(Numeric(10, 2))
    fee: Mapped[float] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    last_run_id: Mapped[int | None] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkspaceNotice(db.Model):
    """A banner for the whole team (reconnect needed, repeated failures…). `key` de-duplicates
    open notices: one per key until dismissed (dismissing clears the key)."""

    __tablename__ = "workspace_notices"
    __table_args__ = (
        UniqueConstraint("key"),
        NoticeLevel.check("level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(8), default="warning")
    message: Mapped[str] = mapped_column(String(1000))
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE")
    )
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("recurring_imports.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
