"""The set-up page's fee forecast of a first run: the source asked for its own count (one
request) and at most a few pages read within a couple of seconds. Exact when those pages are
the whole source; else the share of new emails in them (against the target list) is applied
to the count; without a count it says "at least"."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..imports.forecast import Forecast, NewContacts, forecast
from ..imports.pipeline import load_suppressions
from ..imports.rules import check_email, normalise_email
from ..models import Contact, Integration
from ..providers.base import AuthError, ProviderError, RecordCount
from . import import_source


@dataclass(frozen=True, slots=True)
class SourceSample:
    """What the forecast learns from the source (cached): its own count when it can give
    one, and the first records' normalised emails ("" for none) with their consent state."""

    total: RecordCount | None
    emails: tuple[tuple[str, str], ...]  # (normalised email or "", consent state)
    done: bool  # the walk ended inside the sample: it holds every record


def _sample_source(group: str, source: str, max_pages: int, max_seconds: float):
    """The provider call that counts the source and reads its first pages (for `_ask`)."""

    def call(provider) -> SourceSample:
        counter = getattr(provider, "count_records", None)
        try:
            total = counter(group, source) if counter else None
        except AuthError:
            raise
        except ProviderError:  # the count is a help, not a must: go on from the sample
            total = None
        started, emails, done = time.monotonic(), [], False
        with closing(provider.iter_pages(group, source, fields=[])) as pages:
            for n, page in enumerate(pages, start=1):
                for r in page.records:
                    emails.append((normalise_email(str(r.email)) if r.email else "",
                                   r.consent))
                if page.done:
                    done = True
                    break
                if n >= max_pages or time.monotonic() - started > max_seconds:
                    break
            else:
                done = True
        return SourceSample(total, tuple(emails), done)
    return call


def _on_list(list_id: int | None, norms: list[str]) -> set[str]:
    """Which of the normalised emails the list holds already (in chunks of 500)."""
    if not list_id or not norms:
        return set()
    found: set[str] = set()
    for start in range(0, len(norms), 500):
        found.update(db.session.scalars(select(Contact.email_norm).where(
            Contact.list_id == list_id, Contact.email_norm.in_(norms[start:start + 500]))))
    return found


def new_contacts(sample: SourceSample, list_id: int | None, what: str, *,
                 only_subscribed: bool = False) -> NewContacts:
    """The new contacts of a first run on `list_id`: the sample's emails that would be added
    (a usable email, not opted out, not suppressed, not yet on the list, counted once; with
    `only_subscribed`, only people subscribed at the source), exact when the sample is the
    whole source, else extrapolated to the source's count."""
    emails, domains = load_suppressions(db.session)
    usable = [(norm, consent) for norm, consent in sample.emails
              if norm and not check_email(norm)]
    on_list = _on_list(list_id, sorted({norm for norm, _ in usable}))
    why: Counter = Counter()
    why["without a usable email"] = len(sample.emails) - len(usable)
    fresh: set[str] = set()
    for norm, consent in usable:
        if norm in fresh:
            why["repeated"] += 1
        elif norm in on_list:
            why["already on the list"] += 1
        elif consent == "opted_out":
            why["opted out at the source"] += 1
        elif norm in emails or norm.rpartition("@")[2] in domains:
            why["suppressed"] += 1
        elif only_subscribed and consent != "subscribed":
            why["not subscribed at the source"] += 1
        else:
            fresh.add(norm)
    read, new = len(sample.emails), len(fresh)
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in why.items() if n)
    judged = f"{new:,} would be new" + (f" ({reasons})" if reasons else "")
    if sample.done:
        return NewContacts.exactly(new, f"{what} holds {read:,} records, all read: {judged}.")
    if sample.total is None:
        return NewContacts(new, new, None, f"{what} cannot count this source; its first "
                                           f"pages hold {read:,} records: {judged}.")
    total = max(sample.total.total, read)
    rest = total - read
    expected = new + (round(rest * new / read) if read else rest)
    kind = "counts" if sample.total.exact else "counts at least"
    basis = (f"{what} {kind} {total:,} records. Of the first {read:,} read, {judged}; the "
             f"other {rest:,} are estimated at the same share.")
    return NewContacts(new, expected, new + rest if sample.total.exact else None, basis)


SAMPLE_SECONDS = 2.5  # the sample stops reading pages after this (the page is waiting)


def estimate(integration: Integration, group: str, source: str, criteria: str,
             *, list_id: int | None = None, only_subscribed: bool = False, max_pages: int = 4,
             max_seconds: float | None = None) -> Forecast:
    """The fee forecast of a first run: the source's count (one request), its first pages
    compared with the target list, and the fee at the expected, fewest and most additions.
    `only_subscribed` is the import's consent filter "only people subscribed at the source"."""
    if criteria == "update_only":
        return forecast(NewContacts.exactly(0, "Update existing only adds no contacts."))
    sample = import_source._ask(integration, f"sample:{group}:{source}",
                                _sample_source(group, source, max_pages,
                                               SAMPLE_SECONDS if max_seconds is None
                                               else max_seconds))
    return forecast(new_contacts(sample, list_id, import_source.label(integration),
                                 only_subscribed=only_subscribed))


def forecast_only_subscribed(integration: Integration, consent_filter: str | None) -> bool:
    """Whether the fee forecast leaves out people not subscribed at the source: the stores'
    records say so; a CRM's consent field is not in the sample, so its forecast stays the
    larger "everyone" figure (an upper bound of the fee)."""
    return consent_filter == "subscribed" and integration.provider in import_source.STORES
