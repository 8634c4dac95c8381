"""Plugin imports: sources that push events, their keys, the stored events, visitor ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import JSONType, UTCDateTime, utcnow
from .lists import ContactList, Cycle

SOURCE_KINDS = ("shopify", "woocommerce", "website")
SOURCE_STATUSES = ("enabled", "disabled")
KEY_KINDS = ("server", "public", "signing")
# Where a stored event came in: a Shopify or WooCommerce webhook, the tracking API with the
# server key, or the browser snippet with the public key.
CHANNELS = ("shopify", "woocommerce", "api", "browser")
EVENT_STATUSES = ("pending", "processed", "failed", "ignored")
# Event kinds the processor understands; anything else is kept as "custom".
EVENT_KINDS = (
    "signed_up", "form_submitted", "identify", "page", "product_viewed", "product_added",
    "product_removed", "cart_viewed", "checkout_started", "order_completed", "order_paid",
    "order_refunded", "order_cancelled", "customer_updated", "consent_updated",
    "data_request", "redact", "shop_redact", "uninstalled", "ping", "custom",
)
# Bigint ids on PostgreSQL (events grow past 2**31), plain INTEGER PRIMARY KEY on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class PluginSource(db.Model):
    """One store or site that pushes events into one list. `add_events`
    names the event kinds allowed to create contacts; `subscriptions` keeps what was
    registered at the provider (Shopify webhook ids) so disabling removes exactly that."""

    __tablename__ = "plugin_sources"
    __table_args__ = (
        CheckConstraint(_in("kind", SOURCE_KINDS), name="kind"),
        CheckConstraint(_in("status", SOURCE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id", ondelete="SET NULL"))
    cycle_day: Mapped[int | None] = mapped_column()
    add_events: Mapped[list] = mapped_column(
        JSONType, default=lambda: ["signed_up", "form_submitted"]
    )
    allow_unconsented_subscribe: Mapped[bool] = mapped_column(default=False)
    allowed_origins: Mapped[list] = mapped_column(JSONType, default=list)
    require_signature: Mapped[bool] = mapped_column(default=False)
    # Fernet token of the HMAC secret for webhooks (WooCommerce secret, Shopify custom-app
    # API secret key) when it is not the OAuth app's secret; never shown back.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    subscriptions: Mapped[list] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(10), default="enabled")
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    bad_signatures: Mapped[int] = mapped_column(default=0)
    last_bad_signature_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    list: Mapped[ContactList] = relationship()
    cycle: Mapped[Cycle | None] = relationship()


class PluginKey(db.Model):
    """A source's key: `server` (tracking API Basic auth), `public` (browser snippet) or
    `signing` (Standard Webhooks secret). Stored as a SHA-256 digest (server, public) or a
    Fernet token (signing, which must be read back to verify); two valid per kind while
    rotating, the older one revoked by the team or after its grace period."""

    __tablename__ = "plugin_keys"
    __table_args__ = (
        CheckConstraint(_in("kind", KEY_KINDS), name="kind"),
        Index("ix_plugin_keys_digest", "digest", unique=True),
        Index("ix_plugin_keys_source_id_kind", "source_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("plugin_sources.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, shown to tell keys apart
    digest: Mapped[str | None] = mapped_column(String(64))  # sha256 hex of the whole key
    secret_encrypted: Mapped[str | None] = mapped_column(Text)  # signing keys only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    source: Mapped[PluginSource] = relationship()


class PluginEvent(db.Model):
    """One received event, committed before the 2xx (acknowledged = durable). `body` is the
    event's raw JSON as received (one element of a batch); `dedup_key` is the provider's
    idempotency key (Shopify event id, WooCommerce resource id + modified time, messageId),
    unique per source. Processing fills `status`, `contact_id`, `verdict` and `error`."""

    __tablename__ = "plugin_events"
    __table_args__ = (
        UniqueConstraint("source_id", "dedup_key"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("status", EVENT_STATUSES), name="status"),
        Index("ix_plugin_events_status_id", "status", "id"),
        Index("ix_plugin_events_source_id_id", "source_id", "id"),
        Index("ix_plugin_events_contact_id_occurred_at", "contact_id", "occurred_at"),
        Index("ix_plugin_events_anonymous_id", "source_id", "anonymous_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("plugin_sources.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(12))
    topic: Mapped[str] = mapped_column(String(64))  # Shopify/Woo topic or identify/track/page
    kind: Mapped[str] = mapped_column(String(24), default="custom")  # one of EVENT_KINDS
    name: Mapped[str] = mapped_column(String(200), default="")  # track event name as sent
    dedup_key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    email_norm: Mapped[str | None] = mapped_column(String(254))
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    verdict: Mapped[dict] = mapped_column(JSONType, default=dict)  # what processing changed
    error: Mapped[str] = mapped_column(String(500), default="")

    source: Mapped[PluginSource] = relationship()


class VisitorIdentity(db.Model):
    """An anonymous id (browser snippet, Segment `anonymousId`) stitched to the contact it
    identified as; earlier events of that id are attached to the contact."""

    __tablename__ = "visitor_identities"
    __table_args__ = (
        UniqueConstraint("source_id", "anonymous_id"),
        # Deleting or erasing contacts looks their visitor ids up by contact.
        Index("ix_visitor_identities_contact_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("plugin_sources.id", ondelete="CASCADE"))
    anonymous_id: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    stitched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PluginFormToken(db.Model):
    """A one-time token of a form that shows a key once (set-up, rotate), stored as a digest
    when used: a re-post of that form (a reload) finds it and changes nothing."""

    __tablename__ = "plugin_form_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    # The source the form made or re-keyed: where a re-post is sent.
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("plugin_sources.id", ondelete="CASCADE"), index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
