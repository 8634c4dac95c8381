"""Zoho CRM: the client (read side), its OAuth sign-in and its field mapping."""

from .client import API_VERSION, GROUPS, MAX_FIELDS, PER_PAGE, Zoho
from .oauth import (
    ACCOUNTS_HOSTS,
    API_HOSTS,
    DATA_CENTRE_LABELS,
    DATA_CENTRES,
    SCOPES,
    Callback,
    authorize_url,
    exchange_code,
    host_policy,
    verify_callback,
)
from .schema import DISCRETE_LIMIT, TYPE_MAP

__all__ = [
    "ACCOUNTS_HOSTS", "API_HOSTS", "API_VERSION", "DATA_CENTRES", "DATA_CENTRE_LABELS",
    "DISCRETE_LIMIT", "GROUPS", "MAX_FIELDS", "PER_PAGE", "SCOPES", "TYPE_MAP", "Callback",
    "Zoho", "authorize_url", "exchange_code", "host_policy", "verify_callback",
]
