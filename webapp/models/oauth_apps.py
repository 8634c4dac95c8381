"""OAuth app credentials (client id and secret) per provider, entered on the settings page.

The environment (TRIBUTARY_<PROVIDER>_CLIENT_ID / _SECRET) is the other source; a row here
takes precedence. The secret is one Fernet token and is never shown back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class OAuthApp(db.Model):
    """The team's registered OAuth app at one provider (shopify, zoho, salesforce)."""

    __tablename__ = "oauth_apps"
    __table_args__ = (UniqueConstraint("provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
