"""The streaming pipeline: fetch → map → validate → consent/suppression → criteria →
duplicates → set-based upsert, page by page.

Each page's contacts, ledger rows, rejects, the run's counts and its resume cursor are
committed in ONE transaction that also checks the run's lease, so a run resumed by another
worker neither loses nor repeats a page. Nothing holds the whole source in memory: the only
state that grows is the 64-bit email hashes of duplicate detection (8 bytes each, one bit
of which says the email's opt-out was applied), persisted.
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..models import ConsentEvent, ImportRun, ImportRunSeen, RecurringImport, Suppression
from ..models.base import utcnow
from ..providers.base import Page, Record
from . import journal, upsert
from .rules import (
    Mapping,
    check_email,
    custom_values,
    email_hash,
    normalise_email,
    record_consent,
    record_email,
    record_name,
)
from .seen import SETTLED, SeenHashes

PREVIEW_LIMIT = 1000
SAMPLES_PER_OUTCOME = 10


class LeaseLost(RuntimeError):
    """Another worker took this run over (the sweep judged this one dead): stop quietly."""


@dataclass(slots=True)
class Context:
    """What one run needs to judge rows, fixed for the run."""

    run_id: int
    list_id: int
    criteria: str
    mapping: Mapping
    consent_source: str
    consent_filter: str = "everyone"  # or "subscribed": only people subscribed at the source
    consent_field: str = ""  # a CRM import's boolean "subscribed to marketing" source field
    cycle_id: int | None = None
    cycle_day: int | None = None
    suppressed_emails: frozenset[str] = frozenset()
    suppressed_domains: frozenset[str] = frozenset()
    collect_samples: bool = False
    journal: bool = True  # write the undo journal (imports/journal.py) with each page


@dataclass(slots=True)
class PagePlan:
    """The outcome of one page, computed before anything is written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    consent: list[tuple[str, str, datetime]] = field(default_factory=list)  # norm, state, at
    rejects: list[dict[str, Any]] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)  # emails planned as new contacts

    @property
    def written(self) -> int:
        return self.counts["added"] + self.counts["updated"]


def load_suppressions(session: Session) -> tuple[frozenset[str], frozenset[str]]:
    emails, domains = set(), set()
    for kind, value in session.execute(select(Suppression.kind, Suppression.value)):
        (emails if kind == "email" else domains).add(value.strip().lower())
    return frozenset(emails), frozenset(domains)


def load_seen(session: Session, run_id: int) -> SeenHashes:
    return upsert.load_seen(session, run_id)


def plan_page(session: Session, ctx: Context, records: list[Record], seen: SeenHashes,
              now: datetime) -> PagePlan:
    """Judge a page's records against the rules and what is stored (reads only)."""
    plan = PagePlan()
    counts, mapping = plan.counts, ctx.mapping

    def keep(rec: Record, email: str, reason: str, detail: str) -> None:
        plan.rejects.append({"run_id": ctx.run_id, "source_id": str(rec.source_id)[:255],
                             "email": (email or "")[:512], "reason": reason,
                             "name": record_name(rec, mapping)[0], "detail": detail[:500]})

    def reject(rec: Record, email: str, reason: str, detail: str) -> None:
        plan.reasons[reason] += 1
        keep(rec, email, reason, detail)
        _sample(plan, ctx, "reject", rec, email, reason=reason, detail=detail)

    # Pass 1: which record of each email goes on. The first one, unless a later record of
    # the same email (this page or pages apart) is an opt-out the run has not applied yet:
    # an opt-out in any record wins (seen's SETTLED flag says it was applied).
    walked: list[tuple[Record, str, str, int | None, Any, str]] = []
    winner: dict[int, int] = {}  # digest -> index in walked of the record that goes on
    earlier: dict[int, int | None] = {}  # digest -> its flag in seen before this page
    for rec in records:
        counts["fetched"] += 1
        raw = record_email(rec, mapping)
        raw = str(raw).strip() if raw is not None else ""
        if not raw:
            walked.append((rec, "", "", None, None, ""))
            continue
        norm = normalise_email(raw)
        bad = check_email(norm)
        if bad:
            walked.append((rec, raw, norm, None, bad, ""))
            continue
        digest = email_hash(norm)
        consent = record_consent(rec, ctx.consent_field)
        index = len(walked)
        walked.append((rec, raw, norm, digest, None, consent))
        out = consent == "opted_out"
        if digest not in earlier:
            flag = earlier[digest] = seen.flag(digest)
            if flag is None or (out and not flag):
                winner[digest] = index
            continue
        current = winner.get(digest)
        if out and not earlier[digest] and (current is None or walked[current][5] != "opted_out"):
            winner[digest] = index
    for digest, flag in earlier.items():
        chosen = winner.get(digest)
        settled = SETTLED if flag or (chosen is not None and
                                      walked[chosen][5] == "opted_out") else 0
        if flag is None or settled != flag:
            plan.seen.append(digest | settled)

    # Pass 2, in source order: skips, bad emails, duplicates, suppression.
    candidates: list[tuple[Record, str, str, str]] = []
    for index, (rec, raw, norm, digest, bad, consent) in enumerate(walked):
        if not raw:
            counts["skipped"] += 1
            keep(rec, "", "no_email", "no email address at the source")
            _sample(plan, ctx, "skip", rec, "", detail="no email address at the source")
            continue
        if bad:
            reject(rec, raw, *bad)
            continue
        if winner.get(digest) != index:
            reject(rec, raw, "already_in_queue", "the same email came earlier in this run")
            continue
        if norm in ctx.suppressed_emails or norm.rpartition("@")[2] in ctx.suppressed_domains:
            reject(rec, raw, "blacklisted", "on the workspace suppression list")
            continue
        candidates.append((rec, raw, norm, consent))

    existing = upsert.existing_contacts(session, ctx.list_id, [c[2] for c in candidates])
    withdrawn = _withdrawals(session, ctx, candidates, existing)
    for rec, email, norm, consent in candidates:
        old = existing.get(norm)
        consent_at = rec.consent_at or now
        if consent == "opted_out" or norm in withdrawn:
            if old is None:
                reject(rec, email, "opted_out_at_source",
                       "opted out of email at the source; never added")
                continue
            # An opt-out at the source always unsubscribes, whatever the criteria.
            if old.status == "unsubscribed" and old.consent_state == "opted_out":
                counts["unchanged"] += 1
                _sample(plan, ctx, "unchanged", rec, email)
                continue
            plan.rows.append(_row(ctx, email, norm, "", {}, now, status="unsubscribed",
                                  consent=("opted_out", ctx.consent_source, consent_at,
                                           ctx.run_id)))
            plan.consent.append((norm, "opted_out", consent_at))
            counts["updated"] += 1
            detail = ("unsubscribed: opted out at source" if consent == "opted_out" else
                      "unsubscribed: withdrew marketing consent at source")
            _sample(plan, ctx, "update", rec, email, detail=detail)
            continue
        if old is not None and old.status == "unsubscribed":
            why = ("unsubscribed in Tributary" if old.unsubscribed_locally
                   else "unsubscribed") + "; an import never re-subscribes"
            reject(rec, email, "policy_failure", why)
            continue
        if ctx.criteria == "add_only" and old is not None:
            reject(rec, email, "mismatched_criteria", "already on the list (add new only)")
            continue
        if ctx.criteria == "update_only" and old is None:
            reject(rec, email, "mismatched_criteria", "not on the list (update existing only)")
            continue
        counts["consent_" + ("subscribed" if consent == "subscribed" else "other")] += 1
        if ctx.consent_filter == "subscribed" and consent != "subscribed":
            reject(rec, email, "no_marketing_consent",
                   "not subscribed to marketing at the source (the import takes only "
                   "subscribed people)")
            continue
        # "Not subscribed" is stored as unknown: no consent given, none refused.
        consent = "unknown" if consent == "not_subscribed" else consent

        name, clipped = record_name(rec, mapping)
        custom, warnings = custom_values(rec, mapping)
        counts["warnings"] += len(warnings) + (1 if clipped else 0)
        if old is None:
            plan.rows.append(_row(ctx, email, norm, name, custom, now, status="subscribed",
                                  consent=(consent, ctx.consent_source, consent_at, ctx.run_id),
                                  new=True))
            plan.consent.append((norm, consent, consent_at))
            plan.added.append(norm)
            counts["added"] += 1
            _sample(plan, ctx, "add", rec, email, name=name, custom=custom, warnings=warnings)
            continue
        stored = old.custom or {}
        merged = {**stored, **custom}
        consent_changes = consent != "unknown" and consent != old.consent_state
        if (not name or name == old.name) and merged == stored and not consent_changes:
            counts["unchanged"] += 1
            _sample(plan, ctx, "unchanged", rec, email)
            continue
        if consent_changes:
            record = (consent, ctx.consent_source, consent_at, ctx.run_id)
            plan.consent.append((norm, consent, consent_at))
        else:
            record = (old.consent_state, old.consent_source, old.consent_at, old.consent_run_id)
        plan.rows.append(_row(ctx, email, norm, name, custom, now, status="subscribed",
                              consent=record))
        counts["updated"] += 1
        _sample(plan, ctx, "update", rec, email, name=name, custom=custom, warnings=warnings)
    return plan


def _withdrawals(session: Session, ctx: Context, candidates: list[tuple[Record, str, str, str]],
                 existing: dict[str, Any]) -> set[str]:
    """Emails whose source now says "not subscribed" after this same source recorded them
    as subscribed: consent withdrawn. The contact's consent record answers when it came
    from this source; otherwise the ledger's latest entry from this source (one query)."""
    withdrawn: set[str] = set()
    ask: dict[int, str] = {}
    for _rec, _email, norm, consent in candidates:
        old = existing.get(norm)
        if consent != "not_subscribed" or old is None:
            continue
        if old.consent_source == ctx.consent_source:
            if old.consent_state == "subscribed":
                withdrawn.add(norm)
        elif not (old.status == "unsubscribed" and old.consent_state == "opted_out"):
            ask[old.id] = norm
    if ask:
        latest: dict[int, str] = {}
        rows = session.execute(
            select(ConsentEvent.contact_id, ConsentEvent.state)
            .where(ConsentEvent.contact_id.in_(list(ask)),
                   ConsentEvent.source == ctx.consent_source)
            .order_by(ConsentEvent.contact_id, ConsentEvent.at, ConsentEvent.id))
        for contact_id, state in rows:
            latest[contact_id] = state
        withdrawn.update(ask[c] for c, state in latest.items() if state == "subscribed")
    return withdrawn


def _row(ctx: Context, email: str, norm: str, name: str, custom: dict, now: datetime, *,
         status: str, consent: tuple, new: bool = False) -> dict[str, Any]:
    state, source, at, run = consent
    return {
        "list_id": ctx.list_id, "email": email[:254], "email_norm": norm, "name": name,
        "custom": custom, "origin": "import", "status": status,
        "unsubscribed_at": now if status == "unsubscribed" else None,
        "unsubscribed_locally": False,
        "consent_state": state, "consent_source": source, "consent_at": at,
        "consent_run_id": run,
        "cycle_id": ctx.cycle_id if new else None,
        "cycle_day": ctx.cycle_day if new and ctx.cycle_id else None,
        "enrolled_at": now if new and ctx.cycle_id else None,
        "created_at": now, "updated_at": now,
        "created_run_id": ctx.run_id, "updated_run_id": ctx.run_id, "note": "",
    }


def _sample(plan: PagePlan, ctx: Context, outcome: str, rec: Record, email: str,
            **extra: Any) -> None:
    if not ctx.collect_samples:
        return
    bucket = plan.samples.setdefault(outcome, [])
    if len(bucket) < SAMPLES_PER_OUTCOME:
        bucket.append({"source_id": str(rec.source_id), "email": email, **{
            k: v for k, v in extra.items() if v not in (None, "", [], {})}})


def _journal_and_upsert(session: Session, ctx: Context, plan: PagePlan) -> list | None:
    """The journal's "changed" entries (the values this page replaces, read under the
    write's own locks), then the upsert. On PostgreSQL the rows planned as new are not read
    first: the upsert returns who created each row, and if another run created one of them
    since this run read (the write then updated it), the page goes back to a savepoint and
    is written again with every row read."""
    if ctx.journal and plan.added and session.get_bind().dialect.name == "postgresql":
        new = set(plan.added)
        savepoint = session.begin_nested()
        journal.write_changed(session, journal.changed_entries(
            session, ctx.run_id, ctx.list_id, [r for r in plan.rows if r["email_norm"] not in new]))
        written = upsert.upsert_contacts(session, plan.rows)
        if not any(row[2] != ctx.run_id and row[1] in new for row in written):
            savepoint.commit()
            return written
        savepoint.rollback()  # a race with another run: read every row this time
    if ctx.journal:
        journal.write_changed(session, journal.changed_entries(session, ctx.run_id,
                                                               ctx.list_id, plan.rows))
    return upsert.upsert_contacts(session, plan.rows)


def write_page(session: Session, ctx: Context, plan: PagePlan, now: datetime,
               page_no: int) -> None:
    """Write a planned page (inside the caller's transaction) and recount added/updated from
    what the write did. Rows go in email order: the unique (list, email) index is walked
    once, and two runs writing one list take its row locks in the same order."""
    plan.rows.sort(key=itemgetter("email_norm"))
    written = _journal_and_upsert(session, ctx, plan)  # PostgreSQL: the rows as written
    if plan.added:  # another run may have added some "new" rows since this one read
        # Only the rows planned as new: a contact this run added on an earlier page and now
        # updates (an opt-out pages apart) was created by this run too, but is an update.
        if written is not None:
            planned = set(plan.added)
            mine = [(row[0], row[1]) for row in written
                    if row[2] == ctx.run_id and row[1] in planned]  # id, email, created by
            if ctx.journal:
                journal.write_added_rows(session, ctx.run_id, mine,
                                         {row["email_norm"]: row for row in plan.rows})
            created = len(mine)
        elif ctx.journal:  # journaling what it created counts it too
            created = journal.write_added(session, ctx.run_id, ctx.list_id, plan.added)
        else:
            created = upsert.created_by_run(session, ctx.list_id, ctx.run_id, plan.added)
        plan.counts["updated"] += plan.counts["added"] - created
        plan.counts["added"] = created
    consented = [c[0] for c in plan.consent]
    if written is not None:
        upsert.ledger_from_written(session, ctx.run_id, consented, written, now)
    else:
        upsert.record_consent(session, ctx.list_id, ctx.run_id, consented, now)
    upsert.insert_rejects(session, plan.rejects)
    upsert.insert_seen(session, ctx.run_id, page_no, plan.seen)


@dataclass(slots=True)
class Progress:
    """The run's counters, kept in memory by the lease holder and saved with each page."""

    fetched: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    warnings: int = 0
    pages: int = 0
    reasons: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    unanalysed: int = 0  # rows written since the table's statistics were last checked

    @classmethod
    def of(cls, run: ImportRun) -> Progress:
        return cls(run.fetched, run.added, run.updated, run.unchanged, run.skipped,
                   run.warnings, run.pages, Counter(run.rejected_by_reason or {}),
                   dict(run.timings or {}))

    @property
    def written(self) -> int:
        return self.added + self.updated

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def add(self, plan: PagePlan) -> None:
        c = plan.counts
        self.fetched += c["fetched"]
        self.added += c["added"]
        self.updated += c["updated"]
        self.unchanged += c["unchanged"]
        self.skipped += c["skipped"]
        self.warnings += c["warnings"]
        self.pages += 1
        self.reasons.update(plan.reasons)

    def time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds, 4)

    def values(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched, "added": self.added, "updated": self.updated,
            "unchanged": self.unchanged, "skipped": self.skipped, "warnings": self.warnings,
            "pages": self.pages, "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.reasons.items())),
            "timings": dict(self.timings),
        }


def commit_page(session: Session, ctx: Context, plan: PagePlan, page: Page,
                progress: Progress, *, import_id: int, lease: str,
                high_water_floor: datetime | None = None) -> None:
    """One transaction: contacts, ledgers, rejects, lease check + run counters + cursor, and
    the import's resume point. Raises LeaseLost (all rolled back) if the lease is gone."""
    now = utcnow()
    started = time.perf_counter()
    written_before = progress.written
    write_page(session, ctx, plan, now, progress.pages + 1)  # settles the page's counts
    progress.add(plan)
    values = progress.values()
    result = session.execute(
        update(ImportRun)
        .where(ImportRun.id == ctx.run_id, ImportRun.lease == lease,
               ImportRun.status == "running")
        .values(heartbeat_at=now, cursor=page.cursor, high_water=page.high_water, **values)
    )
    if result.rowcount != 1:
        session.rollback()
        raise LeaseLost(f"run {ctx.run_id} was taken over")
    imp_values: dict[str, Any] = {"cursor": None if page.done else page.cursor}
    if page.done and page.high_water is not None and (
        high_water_floor is None or page.high_water > high_water_floor
    ):
        imp_values["high_water"] = page.high_water
    session.execute(update(RecurringImport).where(RecurringImport.id == import_id)
                    .values(**imp_values))
    session.commit()
    # Written: let the page's records and rows go now, not when the next page has been
    # fetched and decoded (two pages alive at once is the work horse's peak).
    plan.rows.clear()
    plan.rejects.clear()
    plan.consent.clear()
    page.records.clear()
    _trim()
    progress.unanalysed += progress.written - written_before
    if upsert.keep_statistics(session, progress.unanalysed):
        progress.unanalysed = 0
    progress.time("write", time.perf_counter() - started)


def _trim() -> None:
    """Hand the freed heap back to the system (glibc) so the next page's fetch reuses it
    rather than growing the process: the peak stays one page, not one page plus residue."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def forget_seen(session: Session, run_id: int) -> None:
    session.execute(delete(ImportRunSeen).where(ImportRunSeen.run_id == run_id))
