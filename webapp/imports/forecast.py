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
class Forecast:
    now: Overage  # where the workspace stands
    after: Overage  # with the estimated new contacts
    extra_fee: Decimal  # what enabling the import would add this cycle

    @property
    def message(self) -> str:
        if self.after.over <= 0:
            return (f"Within your plan: about {self.after.count:,} of "
                    f"{self.after.limit:,} subscribers.")
        return (f"About {self.after.over:,} contacts over your plan limit of "
                f"{self.after.limit:,}: {self.after.blocks} extension "
                f"block{'s' if self.after.blocks != 1 else ''}, "
                f"{self.after.currency} {self.after.fee:.2f} this cycle "
                f"({self.after.currency} {self.extra_fee:.2f} more than now).")


def forecast(estimated_new: int, now: datetime | None = None) -> Forecast:
    """What enabling an import that adds about `estimated_new` contacts would cost."""
    settings = WorkspaceSettings.get()
    count = subscriber_count()
    here = overage_for(count, settings, now)
    there = overage_for(count + max(0, int(estimated_new)), settings, now)
    recorded = cycle_fee(now)
    base = max(here.fee, recorded)
    return Forecast(here, there, max(Decimal("0"), there.fee - base))
