"""E-commerce data from plugin events: shops, products, orders, carts, co-purchase pairs,
segments and automations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import JSONType, UTCDateTime, utcnow
from .plugins import BigId

ORDER_STATUSES = ("pending", "paid", "partially_refunded", "refunded", "cancelled")
CART_STATUSES = ("open", "abandoned", "recovered", "converted", "emptied", "lost")
Money = Numeric(12, 2)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Shop(db.Model):
    """The store behind one plugin source; carries the abandoned-cart delay."""

    __tablename__ = "shops"
    __table_args__ = (
        UniqueConstraint("source_id"),
        CheckConstraint(
            "abandon_after_minutes BETWEEN 10 AND 1440", name="abandon_after_minutes"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("plugin_sources.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    domain: Mapped[str] = mapped_column(String(255), default="")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    abandon_after_minutes: Mapped[int] = mapped_column(default=60)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Product(db.Model):
    """A product of a shop. An order naming an unknown product creates it as a stub
    (`stub`), filled in later; `source_updated_at` keeps a late older event from
    overwriting newer state."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(2000), default="")
    image_url: Mapped[str] = mapped_column(String(2000), default="")
    price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="")
    available: Mapped[bool] = mapped_column(default=True)
    stub: Mapped[bool] = mapped_column(default=False)
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProductVariant(db.Model):
    __tablename__ = "product_variants"
    __table_args__ = (UniqueConstraint("product_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(120))
    sku: Mapped[str] = mapped_column(String(120), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    price: Mapped[Decimal | None] = mapped_column(Money)
    available: Mapped[bool] = mapped_column(default=True)
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Order(db.Model):
    """An order. Only paid orders count as revenue: `revenue` = total − refunded while
    paid or partially refunded, 0 otherwise; kept in the row so sums are plain SQL."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        Index("ix_orders_contact_id_placed_at", "contact_id", "placed_at"),
        Index("ix_orders_shop_id_placed_at", "shop_id", "placed_at"),
        Index("ix_orders_email_norm", "email_norm"),
        Index("ix_orders_shop_id_cart_token", "shop_id", "cart_token"),  # recovery (000e)
        # Segments' "purchased within N days, at least X" probe, answered from the index
        # alone (no table row per order): migration 000f.
        Index("ix_orders_contact_id_placed_at_paid", "contact_id", "placed_at", "status",
              "revenue", "backfill"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(120))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    email_norm: Mapped[str | None] = mapped_column(String(254))
    customer_name: Mapped[str] = mapped_column(String(255), default="")
    cart_token: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    total: Mapped[Decimal] = mapped_column(Money, default=0)
    refunded: Mapped[Decimal] = mapped_column(Money, default=0)
    revenue: Mapped[Decimal] = mapped_column(Money, default=0)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    backfill: Mapped[bool] = mapped_column(default=False)
    event_id: Mapped[int | None] = mapped_column(BigId)  # the plugin event that made it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Lifecycle facts kept apart so any arrival order gives the same status (000e).
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # person erased


class OrderRefund(db.Model):
    """One refund of an order, keyed by the provider's refund id (or the event's key), so a
    replayed refund never counts twice; `amount` None means "the whole order"."""

    __tablename__ = "order_refunds"
    __table_args__ = (UniqueConstraint("order_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrderLine(db.Model):
    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_product_id", "product_id"),
        Index("ix_order_lines_order_id", "order_id"),  # an order's lines, cascades (000e)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL")
    )
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(300), default="")
    quantity: Mapped[int] = mapped_column(default=1)
    price: Mapped[Decimal] = mapped_column(Money, default=0)


class Cart(db.Model):
    """A cart or checkout, keyed by the shop's cart/checkout token (or the snippet's
    anonymous id). Guest carts keep `anonymous_id` and get `contact_id` on identify."""

    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        CheckConstraint(_in("status", CART_STATUSES), name="status"),
        Index("ix_carts_status_last_activity_at", "status", "last_activity_at"),
        Index("ix_carts_contact_id", "contact_id"),
        Index("ix_carts_shop_id_anonymous_id", "shop_id", "anonymous_id"),
        Index("ix_carts_email_norm", "email_norm"),  # an order's carts by email (000e)
        Index("ix_carts_status_abandoned_at", "status", "abandoned_at"),  # lost, pages (000e)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    email_norm: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(12), default="open")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    total: Mapped[Decimal] = mapped_column(Money, default=0)
    cart_url: Mapped[str] = mapped_column(String(2000), default="")
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CartLine(db.Model):
    __tablename__ = "cart_lines"
    __table_args__ = (UniqueConstraint("cart_id", "product_id", "variant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE")
    )
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(300), default="")
    quantity: Mapped[int] = mapped_column(default=1)
    price: Mapped[Decimal] = mapped_column(Money, default=0)
    # Last event that set this line; quantity 0 is a removal kept so a late older
    # "added" cannot bring the line back (000e).
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProductPair(db.Model):
    """Co-purchase evidence: `orders` is how many paid orders held both products; `score`
    the normalised strength (so best-sellers do not dominate). Rebuilt by a job."""

    __tablename__ = "product_pairs"
    __table_args__ = (
        UniqueConstraint("product_id", "other_id"),
        Index("ix_product_pairs_product_id_score", "product_id", "score"),
        # The popular-products list kept on the diagonal (product_id = other_id) (000e).
        Index("ix_product_pairs_popular", "score",
              sqlite_where=text("product_id = other_id"),
              postgresql_where=text("product_id = other_id")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    other_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    orders: Mapped[int] = mapped_column()
    score: Mapped[float] = mapped_column()
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Segment(db.Model):
    """A named set of conditions (JSON tree of AND/OR groups), evaluated as SQL."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    definition: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Automation(db.Model):
    """When a contact newly matches `segment_id`, run `action` (JSON: add to a list, enrol
    on a cycle at a day, set a custom field); once per contact unless `rerun_after_days`."""

    __tablename__ = "automations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    action: Mapped[dict] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(default=False)
    rerun_after_days: Mapped[int | None] = mapped_column()
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AutomationEntry(db.Model):
    """One contact entering one automation. The unique key (automation, contact, round)
    makes "exactly once" a database rule; `round` grows only with rerun_after_days."""

    __tablename__ = "automation_entries"
    __table_args__ = (
        UniqueConstraint("automation_id", "contact_id", "round"),
        Index("ix_automation_entries_automation_id_entered_at", "automation_id", "entered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    automation_id: Mapped[int] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(default=0)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[dict] = mapped_column(JSONType, default=dict)  # which events/conditions
    note: Mapped[str] = mapped_column(Text, default="")


class PageVisit(db.Model):
    """A page call of a known contact (or a stitched visitor), kept apart from the raw
    events so "visited URL … within N days" is an indexed query."""

    __tablename__ = "page_visits"
    __table_args__ = (
        Index("ix_page_visits_contact_id_visited_at", "contact_id", "visited_at"),
        Index("ix_page_visits_visited_at", "visited_at"),
        Index("ix_page_visits_event_id", "event_id", unique=True),  # replay-safe (000e)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("plugin_sources.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE")
    )
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_id: Mapped[int | None] = mapped_column(BigId)


class WorkspaceApiKey(db.Model):
    """A server key of the workspace for the JSON API (recommendations for the sending
    system): stored as a SHA-256 digest, shown once when issued."""

    __tablename__ = "workspace_api_keys"
    __table_args__ = (Index("ix_workspace_api_keys_digest", "digest", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
