"""Salesforce: the client (read side), its OAuth sign-in with PKCE and its field mapping."""

from .client import BATCH_MAX, BATCH_MIN, Salesforce
from .oauth import (
    API_VERSION,
    HOST_PATTERNS,
    LOGIN_HOSTS,
    MY_DOMAIN_RE,
    SCOPE,
    authorize_url,
    exchange_code,
    host_policy,
    instance_base,
    login_base,
    make_pkce,
    new_state,
    verify_callback,
)
from .schema import CORE_FIELDS, GROUPS, build_soql, soql_datetime, soql_string

__all__ = [
    "API_VERSION", "BATCH_MAX", "BATCH_MIN", "CORE_FIELDS", "GROUPS", "HOST_PATTERNS",
    "LOGIN_HOSTS", "MY_DOMAIN_RE", "SCOPE", "Salesforce", "authorize_url", "build_soql",
    "exchange_code", "host_policy", "instance_base", "login_base", "make_pkce", "new_state",
    "soql_datetime", "soql_string", "verify_callback",
]
