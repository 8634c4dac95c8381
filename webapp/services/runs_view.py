"""Read side of the operations pages: the details page's per-list rows, the workspace-wide
run history (filterable, keyset pages), one run's page and its rejected rows. The per-list
actions (stop, resume, import now) are the engine's: webapp/imports/actions.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..imports import runs as engine_runs
from ..imports.actions import blocked_reason
from ..imports.schedule import local_and_utc
from ..models import ContactList, ImportRun, Integration, RecurringImport, RejectedRow
from ..models.base import utcnow
from ..models.imports import (
    LIVE_STATUSES,
    REJECT_REASONS,
    ROW_REASONS,
    RUN_STATUSES,
    SKIP_REASONS,
    TRIGGERS,
)
from ..providers import label_of
from .paging import Page, keyset

STATUS_LABELS = {
    "queued": "Queued", "running": "Running", "completed": "Completed",
    "completed_with_errors": "Completed with errors", "capped": "Capped",
    "failed": "Failed", "canceled": "Canceled",
}
STATUS_TONES = {
    "completed": "ok", "completed_with_errors": "warn", "capped": "warn", "failed": "bad",
    "canceled": "", "queued": "", "running": "",
}
TRIGGER_LABELS = {"scheduled": "Scheduled", "manual": "Import now", "preview": "Preview"}
STATE_LABELS = {"active": "Active", "stopped": "Stopped", "needs_attention": "Needs attention"}
REASON_LABELS = {
    "syntax_error": "Invalid email address",
    "invalid_domain": "Email domain cannot receive mail",
    "already_in_queue": "Duplicate email in this run (already in queue)",
    "blacklisted": "On the suppression list",
    "policy_failure": "Unsubscribed in Tributary (never re-subscribed)",
    "opted_out_at_source": "Opted out at the source",
    "no_marketing_consent": "Not subscribed to marketing at the source",
    "mismatched_criteria": "Did not match the import's criteria",
    "no_email": "Skipped: no email address at the source",
}
ERROR_KIND_LABELS = {
    "auth": "Credentials refused", "rate_limited": "Rate limited",
    "unavailable": "Source unavailable", "schema": "Mapped field missing",
    "mapping": "Mapping broken", "internal": "Unexpected error",
}



# ------------------------------------------------------------------ formatting helpers


def duration_words(seconds: float | None) -> str:
    """'2 h 5 min', '3 min 4 s', '12 s', '0.4 s'."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def run_duration(run: ImportRun, now: datetime | None = None) -> float | None:
    """Seconds from start (or queueing) to finish; up to now while live."""
    start = run.started_at or run.queued_at
    end = run.finished_at or (now or utcnow() if run.live else None)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def integration_label(integration: Integration) -> str:
    label = label_of(integration.provider)
    return f"{label} · {integration.name}" if integration.name else label


# ------------------------------------------------------------------ the details-page rows


@dataclass
class ImportRow:
    """Everything one list row of the details page shows."""

    imp: RecurringImport
    integration: Integration
    list_name: str
    last_run: ImportRun | None
    live_run: ImportRun | None
    next_run: tuple[str, str] | None
    blocked: str = ""  # why "Import now" is refused right now ("" when allowed)
    message: str = ""  # the outcome of the action that re-rendered the row
    message_tone: str = "ok"

    @property
    def state(self) -> str:
        return self.imp.state

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.imp.state, self.imp.state)

    @property
    def state_reason(self) -> str:
        if self.integration.status == "needs_reconnect" and self.imp.state != "stopped":
            return "Paused until the integration is reconnected."
        return self.imp.state_reason or ""


def _last_and_live(import_ids: list[int]) -> tuple[dict[int, ImportRun], dict[int, ImportRun]]:
    """The newest finished non-preview run and the live run of each import (3 queries)."""
    if not import_ids:
        return {}, {}
    newest = (
        select(func.max(ImportRun.id))
        .where(ImportRun.import_id.in_(import_ids), ImportRun.trigger_kind != "preview",
               ImportRun.status.not_in(LIVE_STATUSES))
        .group_by(ImportRun.import_id)
    )
    last = {r.import_id: r for r in db.session.scalars(
        select(ImportRun).where(ImportRun.id.in_(newest)))}
    live = {r.import_id: r for r in db.session.scalars(
        select(ImportRun).where(ImportRun.import_id.in_(import_ids),
                                ImportRun.trigger_kind != "preview",
                                ImportRun.status.in_(LIVE_STATUSES)))}
    return last, live


def last_runs(import_ids: list[int]) -> dict[int, ImportRun]:
    """The newest finished non-preview run of each import."""
    return _last_and_live(import_ids)[0]


def rows_for(integration: Integration) -> list[ImportRow]:
    """The integration's recurring imports as details-page rows, ordered by list name."""
    imports = list(db.session.scalars(
        select(RecurringImport).join(ContactList, ContactList.id == RecurringImport.list_id)
        .where(RecurringImport.integration_id == integration.id)
        .options(joinedload(RecurringImport.list))
        .order_by(ContactList.name, RecurringImport.id)
    ))
    last, live = _last_and_live([imp.id for imp in imports])
    return [_row(imp, integration, last.get(imp.id), live.get(imp.id)) for imp in imports]


def row_for(imp: RecurringImport, message: str = "", tone: str = "ok") -> ImportRow:
    last, live = _last_and_live([imp.id])
    row = _row(imp, imp.integration, last.get(imp.id), live.get(imp.id))
    row.message, row.message_tone = message, tone
    return row


def _row(imp, integration, last_run, live_run) -> ImportRow:
    next_run = local_and_utc(imp.next_run_at, imp.time_zone) if imp.state == "active" else None
    return ImportRow(imp=imp, integration=integration, list_name=imp.list.name,
                     last_run=last_run, live_run=live_run, next_run=next_run,
                     blocked=blocked_reason(imp))


def run_query(run_id: int):
    """The query for one run with its import, list and integration (one round trip)."""
    return select(ImportRun).where(ImportRun.id == run_id).options(
        joinedload(ImportRun.recurring_import).joinedload(RecurringImport.list),
        joinedload(ImportRun.recurring_import).joinedload(RecurringImport.integration),
    )


# ------------------------------------------------------------------ progress


@dataclass
class ProgressInfo:
    """A run's progress bar and label: "1,234 of 5,000 · 24 %" when the source counted its
    records at the start of the run, else the counts so far."""

    run: ImportRun
    total: int | None = None  # records the source holds, when the run knows it

    @property
    def live(self) -> bool:
        return self.run.live

    @property
    def of(self) -> int | None:
        """The total to show: never below what was fetched (the source may have grown)."""
        return None if self.total is None else max(self.total, self.run.fetched)

    @property
    def percent(self) -> int | None:
        if self.of is None:
            return None
        fetched, of = self.run.fetched, self.of
        if fetched >= of:
            return 100
        return min(99, (fetched * 200 + of) // (2 * of))  # rounded; 100 only when all are in

    @property
    def label(self) -> str:
        run = self.run
        if run.status == "queued":
            return "Queued: waiting for a worker…"
        if run.status == "running":
            if self.of is not None:
                return (f"Running: {run.fetched:,} of {self.of:,} · {self.percent} % "
                        f"({run.written:,} written)")
            return f"Running: {run.fetched:,} fetched, {run.written:,} written so far"
        return f"{STATUS_LABELS.get(run.status, run.status)}: {summary(run)}"


def progress_info(run: ImportRun) -> ProgressInfo:
    return ProgressInfo(run, run.source_total)


def summary(run: ImportRun) -> str:
    """'300 fetched · 280 added · 10 updated · 5 skipped · 5 rejected'."""
    parts = [f"{run.fetched:,} fetched", f"{run.added:,} added", f"{run.updated:,} updated"]
    if run.unchanged:
        parts.append(f"{run.unchanged:,} unchanged")
    if run.skipped:
        parts.append(f"{run.skipped:,} skipped")
    parts.append(f"{run.rejected:,} rejected")
    return " · ".join(parts)


# ------------------------------------------------------------------ the run history


@dataclass
class HistoryFilters:
    integration: int | None = None
    list: int | None = None
    status: str = ""
    trigger: str = ""

    @classmethod
    def parse(cls, args) -> HistoryFilters:
        def number(name: str) -> int | None:
            raw = (args.get(name) or "").strip()
            return int(raw) if raw.isdigit() and len(raw) < 19 else None

        status = args.get("status") or ""
        trigger = args.get("trigger") or ""
        return cls(integration=number("integration"), list=number("list"),
                   status=status if status in RUN_STATUSES else "",
                   trigger=trigger if trigger in TRIGGERS else "")

    def params(self) -> dict:
        values = {"integration": self.integration, "list": self.list,
                  "status": self.status, "trigger": self.trigger}
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.params())


@dataclass
class FilterChoices:
    integrations: list[tuple[int, str]] = field(default_factory=list)
    lists: list[tuple[int, str]] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)
    triggers: list[tuple[str, str]] = field(default_factory=list)


def filter_choices() -> FilterChoices:
    integrations = [(row.id, integration_label(row)) for row in db.session.scalars(
        select(Integration).order_by(Integration.provider, Integration.name, Integration.id))]
    lists = [(row.id, row.name) for row in db.session.execute(
        select(ContactList.id, ContactList.name)
        .where(ContactList.id.in_(select(RecurringImport.list_id)))
        .order_by(ContactList.name))]
    return FilterChoices(
        integrations=integrations, lists=lists,
        statuses=[(s, STATUS_LABELS[s]) for s in RUN_STATUSES],
        triggers=[(t, TRIGGER_LABELS[t]) for t in TRIGGERS],
    )


def history_page(filters: HistoryFilters, *, after: int | None = None,
                 before: int | None = None, size: int = 50) -> Page:
    """Runs newest first, filtered, one keyset page (with their import, list, integration)."""
    stmt = (
        select(ImportRun).join(RecurringImport, RecurringImport.id == ImportRun.import_id)
        .options(joinedload(ImportRun.recurring_import).joinedload(RecurringImport.list),
                 joinedload(ImportRun.recurring_import).joinedload(RecurringImport.integration))
    )
    if filters.integration:
        stmt = stmt.where(RecurringImport.integration_id == filters.integration)
    if filters.list:
        stmt = stmt.where(RecurringImport.list_id == filters.list)
    if filters.status:
        stmt = stmt.where(ImportRun.status == filters.status)
    if filters.trigger:
        stmt = stmt.where(ImportRun.trigger_kind == filters.trigger)
    else:  # previews wrote nothing: they are listed only when asked for
        stmt = stmt.where(ImportRun.trigger_kind != "preview")
    return keyset(stmt, ImportRun.id, after=after, before=before, size=size, descending=True)


# ------------------------------------------------------------------ one run's page


@dataclass
class RunDetails:
    run: ImportRun
    reasons: list[tuple[str, str, int]]  # (reason, label, count), non-zero, in rule order
    outcomes: list[tuple[str, int]]
    duration: float | None
    rate: float | None
    cap: int
    note: str
    stage_timings: list[tuple[str, float]]


def run_details(run: ImportRun) -> RunDetails:
    reasons = run_details_reasons(run)
    outcomes = [("Fetched from the source", run.fetched), ("Added", run.added),
                ("Updated", run.updated), ("Unchanged", run.unchanged),
                ("Skipped", run.skipped), ("Rejected", run.rejected)]
    duration = run_duration(run)
    rate = run.fetched / duration if duration and run.fetched else None
    cap = int(engine_runs.setting("IMPORT_RUN_CAP"))
    return RunDetails(run=run, reasons=reasons, outcomes=outcomes, duration=duration,
                      rate=rate, cap=cap, note=_cursor_note(run, cap),
                      stage_timings=sorted((run.timings or {}).items()))


def _cursor_note(run: ImportRun, cap: int) -> str:
    if run.trigger_kind == "preview":
        return "A preview (dry run): nothing was written; the next run starts as if it " \
               "never happened."
    if run.status == "capped":
        return (f"Stopped at the {cap:,} cap; the next run continues where this one "
                "stopped.")
    if run.status == "failed" and run.cursor:
        return "The next run continues from the last page this run saved."
    if run.status in ("completed", "completed_with_errors"):
        return "Walked everything that changed; the next run fetches only newer changes."
    return ""


def clean_reason(raw: str | None) -> str:
    """A reason filter from the query string: a known reason, else "" (all rows)."""
    return raw if raw in ROW_REASONS else ""


def reason_choices(run: ImportRun) -> list[tuple[str, str, int]]:
    """(reason, label, rows) the run page can filter by: the rejects by reason, then the
    skipped rows (no email), from the run's counters (no scan of the rows)."""
    choices = [(r, label, n) for r, label, n in run_details_reasons(run)]
    if run.skipped:
        choices += [(r, REASON_LABELS[r], int(run.skipped)) for r in SKIP_REASONS]
    return choices


def run_details_reasons(run: ImportRun) -> list[tuple[str, str, int]]:
    by_reason = run.rejected_by_reason or {}
    reasons = [(r, REASON_LABELS[r], int(by_reason[r])) for r in REJECT_REASONS
               if by_reason.get(r)]
    reasons += [(r, r.replace("_", " "), int(n)) for r, n in sorted(by_reason.items())
                if r not in REASON_LABELS and n]
    return reasons


def rejects_page(run_id: int, reason: str = "", *, after: int | None = None,
                 before: int | None = None, size: int = 50) -> Page:
    """One keyset page of a run's kept rows (rejected and skipped), optionally of one reason."""
    stmt = select(RejectedRow).where(RejectedRow.run_id == run_id)
    if reason:
        stmt = stmt.where(RejectedRow.reason == reason)
    return keyset(stmt, RejectedRow.id, after=after, before=before, size=size)


def run_source_label(run: ImportRun) -> str:
    """'Shopify · shop.example · customers / All customers': where a run's rows came from."""
    imp = run.recurring_import
    return f"{integration_label(imp.integration)} · {imp.group} / {imp.source}"
