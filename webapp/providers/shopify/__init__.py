"""Shopify: the client (read side), its connect flow and its field mapping."""

from .client import MAX_GRAPHQL_COST, MAX_PAGE_SIZE, Shopify
from .oauth import (
    DEFAULT_API_VERSION,
    DEFAULT_SCOPES,
    HOST_PATTERNS,
    SHOP_RE,
    CallbackError,
    authorize_url,
    callback_hmac,
    exchange_code,
    normalize_shop,
    verify_callback,
)
from .schema import CONSENT, METAFIELD_TYPES, STANDARD_FIELDS

__all__ = [
    "CONSENT", "DEFAULT_API_VERSION", "DEFAULT_SCOPES", "HOST_PATTERNS", "MAX_GRAPHQL_COST",
    "MAX_PAGE_SIZE", "METAFIELD_TYPES", "SHOP_RE", "STANDARD_FIELDS", "CallbackError",
    "Shopify", "authorize_url", "callback_hmac", "exchange_code", "normalize_shop",
    "verify_callback",
]
