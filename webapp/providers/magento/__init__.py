"""Magento 2 / Adobe Commerce: the client (read side), its connect form and OAuth 1.0a
signing, and its attribute mapping."""

from .client import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Magento
from .oauth import STORE_CODE_RE, encode_query, host_policy, oauth1_header
from .schema import GROUP, TIME_FORMAT, format_time

__all__ = [
    "DEFAULT_PAGE_SIZE", "GROUP", "MAX_PAGE_SIZE", "STORE_CODE_RE", "TIME_FORMAT", "Magento",
    "encode_query", "format_time", "host_policy", "oauth1_header",
]
