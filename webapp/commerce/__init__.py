"""E-commerce from plugin events: ingest, carts, recommendations, statistics, the shop
pages, segments and automations. `erase_contact_data` is the privacy module's entry point."""

from __future__ import annotations

from .privacy import erase_contact_data

__all__ = ["erase_contact_data"]
