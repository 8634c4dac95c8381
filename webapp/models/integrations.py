"""Connected provider accounts (Shopify store, Zoho org, Magento store, Salesforce org)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Choice, JSONType, UTCDateTime, utcnow


class IntegrationStatus(Choice):
    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"
    DISCONNECTED = "disconnected"


INTEGRATION_STATUSES = IntegrationStatus.values()


class Integration(db.Model):
    """One connected account. Credentials are one Fernet token of the whole credentials
    dict (JSON); they are never shown back. `status_reason` says in plain words why."""

    __tablename__ = "integrations"
    __table_args__ = (
        IntegrationStatus.check("status"),
        Index("ix_integrations_provider", "provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255), default="")  # shop domain, org name…
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="connected")
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    credentials_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
