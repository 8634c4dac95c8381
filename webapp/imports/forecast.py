"""Plan limit: the list-extension overage ledger and the fee forecast.

Imports may take the workspace past its subscriber limit. The fee is the extension price
× started blocks of 1,000 contacts over the limit, per 30-day billing cycle; the ledger keeps
each cycle's peak. Subscribers are subscribed contacts, counted per list (the same email on
two lists counts twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from ..extensions import db
from ..models import Contact, OverageEntry, WorkspaceSettings
from ..models.base import utcnow
from ..models.workspace import insert_or_nothing

CYCLE_DAYS = 30
BLOCK = 1000


@dataclass(frozen=True, slots=True)
class Overage:
    count: int
    limit: int
    over: int
    blocks: int
    price: Decimal
    fee: Decimal
    currency: str
    cycle_start: datetime
    cycle_end: datetime


def current_cycle(settings: WorkspaceSettings, now: datetime | None = None) -> tuple[datetime,
                                                                                     datetime]:
    now = now or utcnow()
    anchor = settings.billing_cycle_start
    cycles = max(0, math.floor((now - anchor) / timedelta(days=CYCLE_DAYS)))
    start = anchor + timedelta(days=CYCLE_DAYS * cycles)
    return start, start + timedelta(days=CYCLE_DAYS)


def subscriber_count() -> int:
    return db.session.scalar(
        select(func.count(Contact.id)).where(Contact.status == "subscribed")) or 0


def overage_for(count: int, settings: WorkspaceSettings, now: datetime | None = None) -> Overage:
    limit = int(settings.subscriber_limit)
    over = max(0, count - limit)
    blocks = math.ceil(over / BLOCK)
    price = Decimal(str(settings.extension_price))
    start, end = current_cycle(settings, now)
    return Overage(count, limit, over, blocks, price, price * blocks, settings.currency,
                   start, end)


def record_overage(run_id: int | None = None, now: datetime | None = None) -> Overage:
    """Record the current cycle's peak overage (and fee) in the ledger; returns it."""
    settings = WorkspaceSettings.get()
    current = overage_for(subscriber_count(), settings, now)
    if current.over <= 0:
        db.session.commit()
        return current
    # Insert-or-nothing, then raise the peak only if higher: two runs finishing at once
    # never collide on the cycle's unique row, and the larger count wins.
    insert_or_nothing(OverageEntry.__table__, {
        "cycle_start": current.cycle_start, "cycle_end": current.cycle_end,
        "subscriber_limit": current.limit, "peak_count": 0, "over": 0, "blocks": 0,
        "price": current.price, "fee": 0, "currency": current.currency,
        "recorded_at": utcnow(),
    }, ["cycle_start"])
    db.session.execute(
        update(OverageEntry)
        .where(OverageEntry.cycle_start == current.cycle_start,
               OverageEntry.peak_count < current.count)
        .values(subscriber_limit=current.limit, peak_count=current.count, over=current.over,
                blocks=current.blocks, price=current.price, fee=current.fee,
                currency=current.currency, last_run_id=run_id, recorded_at=utcnow())
    )
    db.session.commit()
    return current


def cycle_fee(now: datetime | None = None) -> Decimal:
    """The fee recorded for the current cycle (settings page, banner)."""
    settings = WorkspaceSettings.get()
    start, _ = current_cycle(settings, now)
    fee = db.session.scalar(select(OverageEntry.fee).where(OverageEntry.cycle_start == start))
    return Decimal(str(fee)) if fee is not None else Decimal("0")


@dataclass(frozen=True, slots=True)
class NewContacts:
    """How many contacts an import would add: surely `low`, most likely `expected`, at most
    `high` (None when nothing bounds it), and in plain words how that is known."""

    low: int
    expected: int
    high: int | None
    basis: str

    @classmethod
    def exactly(cls, count: int, basis: str = "") -> NewContacts:
        count = max(0, int(count))
        return cls(count, count, count, basis)

    @property
    def exact(self) -> bool:
        return self.high is not None and self.high == self.low


@dataclass(frozen=True, slots=True)
class Forecast:
    """The fee box: every figure and both sentences come from this one computation."""

    new: NewContacts
    now: Overage  # where the workspace stands
    after: Overage  # with the expected new contacts
    already_due: Decimal  # this cycle's fee before the import (the larger of now and recorded)
    extra_fee: Decimal  # what the import adds this cycle, at the expected count
    extra_low: Decimal  # ... at the surely-added count
    extra_high: Decimal | None  # ... at the most it can add (None: unbounded)
    headline: str
    detail: str

    @property
    def message(self) -> str:
        """Headline and detail as one sentence pair (for places without the fee box)."""
        return f"{self.headline}. {self.detail}"


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _blocks(n: int) -> str:
    return f"{n} started block{'s' if n != 1 else ''} of 1,000"


def _headline(new: NewContacts, already: Decimal, extra: Decimal, low: Decimal,
              high: Decimal | None, currency: str) -> str:
    if high is not None and low == high:
        if extra > 0:
            return f"{_money(extra, currency)} more this billing cycle"
        if already > 0:
            return (f"No extra fee this billing cycle: the {_money(already, currency)} already "
                    "due covers this import")
        return "No extra fee this billing cycle"
    if high is None:
        if low > 0:
            return f"At least {_money(low, currency)} more this billing cycle"
        return (f"No extra fee for the {new.low:,} new contacts counted so far; the source may "
                "hold more, which could cost more")
    if extra > 0:
        return (f"About {_money(extra, currency)} more this billing cycle (between "
                f"{_money(low, currency)} and {_money(high, currency)})")
    return f"Probably no extra fee this billing cycle (at most {_money(high, currency)} more)"


def _detail(new: NewContacts, now: Overage, after: Overage, already: Decimal,
            adds_words: str = "This import adds") -> str:
    if new.exact:
        adds = f"{new.expected:,} new contact{'s' if new.expected != 1 else ''}"
    elif new.high is None:
        adds = f"at least {new.low:,} new contacts"
    else:
        adds = f"about {new.expected:,} new contacts ({new.low:,} to {new.high:,})"
    text = f"Now {now.count:,} of {now.limit:,} subscribers"
    if already > 0:
        text += f"; {_money(already, now.currency)} already due this cycle"
    text += f". {adds_words} {adds}: "
    about = "" if new.exact else "about "
    if after.over <= 0:
        text += f"{about}{after.count:,} of {after.limit:,}, within the plan."
    else:
        text += (f"{about}{after.count:,} subscribers, {after.over:,} over the limit of "
                 f"{after.limit:,}: {_blocks(after.blocks)} × {_money(after.price, after.currency)}"
                 f" = {_money(after.fee, after.currency)} this cycle.")
    return text


def forecast(new: NewContacts | int, now: datetime | None = None, *,
             adds_words: str = "This import adds") -> Forecast:
    """What enabling an import that adds `new` contacts (a count, or a range with the
    expected figure) would cost this billing cycle; headline and detail included.
    `adds_words` starts the detail's second sentence (the dashboard speaks of several runs)."""
    if not isinstance(new, NewContacts):
        new = NewContacts.exactly(new)
    settings = WorkspaceSettings.get()
    count = subscriber_count()
    here = overage_for(count, settings, now)
    already = max(here.fee, cycle_fee(now))

    def extra(n: int) -> tuple[Overage, Decimal]:
        there = overage_for(count + max(0, n), settings, now)
        return there, max(Decimal("0"), there.fee - already)

    after, extra_fee = extra(new.expected)
    _, extra_low = extra(new.low)
    extra_high = None if new.high is None else extra(new.high)[1]
    return Forecast(
        new, here, after, already, extra_fee, extra_low, extra_high,
        _headline(new, already, extra_fee, extra_low, extra_high, settings.currency),
        _detail(new, here, after, already, adds_words),
    )
