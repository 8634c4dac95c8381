"""Plan usage against the workspace subscriber limit, and the list-extension fee."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from ..extensions import db
from ..models import Contact, WorkspaceSettings

BLOCK = 1000


@dataclass(frozen=True)
class Usage:
    subscribed: int
    limit: int
    blocks: int  # started blocks of 1,000 over the limit
    price: Decimal
    currency: str
    fee: Decimal

    @property
    def over(self) -> int:
        return max(0, self.subscribed - self.limit)

    @property
    def over_limit(self) -> bool:
        return self.subscribed > self.limit

    @property
    def level(self) -> str:
        """The plan bar's colour: "ok" (green) below 90 %, "warn" (amber) from 90 % up to
        the limit, "over" (red) past it. Exact integer comparisons, no rounding."""
        if self.subscribed > self.limit:
            return "over"
        if self.subscribed * 10 >= self.limit * 9:
            return "warn"
        return "ok"

    @property
    def warn_from(self) -> int:
        """The first count that turns the bar amber (90 % of the limit, rounded up)."""
        return -(-max(0, self.limit) * 9 // 10)

    @property
    def percent(self) -> int:
        """Rounded down, so the figure never reaches 90 or 100 before the bar's colour does."""
        if self.limit <= 0:
            return 100 if self.subscribed else 0
        return 100 * self.subscribed // self.limit


def extension_blocks(subscribed: int, limit: int) -> int:
    """Started blocks of 1,000 over the limit: limit 2,500 and 3,700 contacts give 2."""
    over = max(0, subscribed - max(0, limit))
    return -(-over // BLOCK)


def current_usage() -> Usage:
    """Subscribed contacts over all lists (an email on two lists counts twice) and the fee."""
    settings = WorkspaceSettings.get()
    subscribed = db.session.scalar(
        select(func.count()).select_from(Contact).where(Contact.status == "subscribed")
    ) or 0
    blocks = extension_blocks(subscribed, settings.subscriber_limit)
    price = Decimal(str(settings.extension_price or 0))
    return Usage(
        subscribed=subscribed,
        limit=settings.subscriber_limit,
        blocks=blocks,
        price=price,
        currency=settings.currency,
        fee=(price * blocks).quantize(Decimal("0.01")),
    )
