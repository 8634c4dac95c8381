"""Privacy requests: erasures and data exports of one person (Shopify or a team member)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow
from .plugins import BigId

PRIVACY_KINDS = ("erase", "export", "shop_erase")


class PrivacyRequest(db.Model):
    """The anonymised audit line of an erasure (a digest of the email, never the email) or
    a built export. `export_json` holds a Shopify data request's export for a team member
    to download from the event page; it is removed with the person if they are erased."""

    __tablename__ = "privacy_requests"
    __table_args__ = (CheckConstraint("kind IN ('erase', 'export', 'shop_erase')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    email_digest: Mapped[str] = mapped_column(String(64), default="")  # sha256 hex
    requested_by: Mapped[str] = mapped_column(String(120), default="")  # "shopify" or a user
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("plugin_sources.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(BigId)
    contacts_removed: Mapped[int] = mapped_column(default=0)
    events_removed: Mapped[int] = mapped_column(default=0)
    export_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
