"""Shop figures for the pages: revenue, orders, average order value, abandoned and
recovered carts, top products, revenue per day (drawn as an SVG bar chart on the server),
and a contact's orders, carts and lifetime value. Sums are SQL over indexed columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Select, func, select

from ..extensions import db
from ..models import Cart, Order, OrderLine, Product
from ..models.base import utcnow

PERIODS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
DEFAULT_PERIOD = "30d"
REVENUE = ("paid", "partially_refunded")


def parse_period(raw: str | None) -> str:
    return raw if raw in PERIODS else DEFAULT_PERIOD


def since(period: str, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=PERIODS[period])


def _day(column):
    """The UTC calendar day of a timestamp column as 'YYYY-MM-DD' text."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def currencies() -> list[str]:
    """The currencies orders were placed in, the most used first. Money is never summed
    across currencies: each figure of the pages is for one of them."""
    return list(db.session.scalars(select(Order.currency).group_by(Order.currency)
                                   .order_by(func.count().desc(), Order.currency))) or ["USD"]


def main_currency() -> str:
    return currencies()[0]


def parse_currency(raw: str | None, known: list[str] | None = None) -> str:
    known = known if known is not None else currencies()
    return raw if raw in known else known[0]


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: Decimal


@dataclass
class Chart:
    """Bars in a 600×160 viewBox, computed here so the template only draws rectangles."""

    bars: list[Bar] = field(default_factory=list)
    maximum: Decimal = Decimal(0)
    width: int = 600
    height: int = 160
    first: str = ""
    last: str = ""


def chart(series: list[tuple[str, Decimal]], width: int = 600, height: int = 160) -> Chart:
    top = max((v for _, v in series), default=Decimal(0))
    if not series:
        return Chart(width=width, height=height)
    step = width / len(series)
    bars = []
    for i, (label, value) in enumerate(series):
        h = float(value / top) * (height - 10) if top else 0.0
        bars.append(Bar(round(i * step + step * 0.1, 2), round(height - h, 2),
                        round(step * 0.8, 2), round(h, 2), label, value))
    return Chart(bars, top, width, height, series[0][0], series[-1][0])


def dashboard(period: str, currency: str | None = None, now: datetime | None = None) -> dict:
    """Everything the e-commerce dashboard shows for `period`: order figures in one currency
    (the most used unless `currency` names another one orders were placed in); carts are
    counted in all, their recovered revenue given per currency."""
    now = now or utcnow()
    start = since(period, now)
    known = currencies()
    currency = parse_currency(currency, known)
    in_period = (Order.placed_at >= start, Order.placed_at <= now, Order.currency == currency)
    revenue, paid_orders = db.session.execute(
        select(func.coalesce(func.sum(Order.revenue), 0), func.count())
        .where(*in_period, Order.status.in_(REVENUE))).one()
    all_orders = db.session.scalar(select(func.count()).select_from(Order).where(*in_period))
    abandoned = db.session.scalar(select(func.count()).select_from(Cart).where(
        Cart.abandoned_at >= start, Cart.abandoned_at <= now))
    recovered, recovered_revenue = recovery(start, now)
    day = _day(Order.placed_at)
    per_day = dict(db.session.execute(
        select(day, func.sum(Order.revenue)).where(*in_period, Order.status.in_(REVENUE))
        .group_by(day)).all())
    days = [(start.date() + timedelta(days=i)).isoformat()
            for i in range((now.date() - start.date()).days + 1)]
    series = [(d, Decimal(per_day.get(d) or 0)) for d in days]
    return {
        "period": period, "currency": currency, "currencies": known,
        "revenue": Decimal(revenue),
        "orders": all_orders, "paid_orders": paid_orders,
        "aov": (Decimal(revenue) / paid_orders).quantize(Decimal("0.01"))
        if paid_orders else Decimal(0),
        "abandoned": abandoned, "recovered": recovered,
        "recovered_revenue": recovered_revenue, "chart": chart(series),
        "top_products": top_products(start, now, currency),
    }


def _per_currency(rows) -> list[tuple[str, Decimal]]:
    return [(cur, Decimal(value or 0)) for cur, value in rows]


def recovery(start: datetime, now: datetime) -> tuple[int, list[tuple[str, Decimal]]]:
    """Carts recovered in the window and the revenue of the orders that recovered them,
    per currency (largest first)."""
    count = db.session.scalar(select(func.count()).select_from(Cart).where(
        Cart.status == "recovered", Cart.recovered_at >= start, Cart.recovered_at <= now))
    value = func.sum(Order.revenue)
    rows = db.session.execute(
        select(Order.currency, value).select_from(Cart).join(Order, Order.id == Cart.order_id)
        .where(Cart.status == "recovered", Cart.recovered_at >= start,
               Cart.recovered_at <= now)
        .group_by(Order.currency).order_by(value.desc(), Order.currency)).all()
    return count or 0, _per_currency(rows)


def top_products(start: datetime, now: datetime, currency: str, limit: int = 10) -> list[dict]:
    amount = func.sum(OrderLine.price * OrderLine.quantity)
    rows = db.session.execute(
        select(Product.id, Product.title, Product.external_id, func.sum(OrderLine.quantity),
               amount)
        .join(OrderLine, OrderLine.product_id == Product.id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.placed_at >= start, Order.placed_at <= now, Order.status.in_(REVENUE),
               Order.currency == currency)
        .group_by(Product.id, Product.title, Product.external_id)
        .order_by(amount.desc(), Product.id).limit(limit)).all()
    return [{"id": pid, "title": title or f"Product {ext}", "quantity": int(qty or 0),
             "amount": Decimal(value or 0)} for pid, title, ext, qty, value in rows]


def carts_page(status: str, period: str, now: datetime | None = None) -> tuple[Select, dict]:
    """The carts statement for the abandoned-carts page and its summary figures (counts of
    carts; amounts per currency, never added across currencies)."""
    now = now or utcnow()
    start = since(period, now)
    counts = dict(db.session.execute(
        select(Cart.status, func.count()).where(Cart.abandoned_at >= start)
        .group_by(Cart.status)).all())
    recovered, recovered_revenue = recovery(start, now)
    stmt = select(Cart).where(Cart.abandoned_at.is_not(None), Cart.abandoned_at >= start)
    if status in ("abandoned", "recovered", "lost"):
        stmt = stmt.where(Cart.status == status)
    total = func.sum(Cart.total)
    at_risk = db.session.execute(
        select(Cart.currency, total).where(Cart.status == "abandoned", Cart.abandoned_at >= start)
        .group_by(Cart.currency).order_by(total.desc(), Cart.currency)).all()
    summary = {"abandoned": counts.get("abandoned", 0), "lost": counts.get("lost", 0),
               "recovered": recovered, "recovered_revenue": recovered_revenue,
               "at_risk": _per_currency(at_risk), "currency": main_currency(),
               "rate": (recovered / sum(counts.values())) if counts else 0.0}
    return stmt, summary


def for_contact(contact_id: int) -> dict:
    """A contact's orders (latest 10), carts (latest 5) and lifetime value per currency
    (the most used first)."""
    orders = db.session.scalars(select(Order).where(Order.contact_id == contact_id)
                                .order_by(Order.placed_at.desc(), Order.id.desc()).limit(10)).all()
    carts = db.session.scalars(select(Cart).where(Cart.contact_id == contact_id)
                               .order_by(Cart.last_activity_at.desc()).limit(5)).all()
    values = db.session.execute(
        select(Order.currency, func.sum(Order.revenue), func.count())
        .where(Order.contact_id == contact_id, Order.status.in_(REVENUE))
        .group_by(Order.currency).order_by(func.count().desc(), Order.currency)).all()
    # The shop's main currency (a scan of every order) only labels a zero lifetime value.
    return {"orders": orders, "carts": carts,
            "lifetime_value": [(cur, Decimal(value or 0)) for cur, value, _ in values],
            "paid_orders": sum(n for _, _, n in values),
            "currency": values[0][0] if values else main_currency()}
