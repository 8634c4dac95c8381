"""E-commerce from plugin events (PRODUCT.md §7.4–7.5): ingest, carts, recommendations,
statistics and the shop pages. `erase_contact_data` is the privacy module's entry point."""

from __future__ import annotations

from .privacy import erase_contact_data

__all__ = ["erase_contact_data"]
