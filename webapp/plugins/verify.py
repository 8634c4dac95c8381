"""Inbound signatures, one verifier per scheme, all constant-time and over the raw body
before anything is parsed: Shopify and WooCommerce (base64 HMAC-SHA256 of the body) and
Standard Webhooks (HMAC-SHA256 of id.timestamp.body, 300 s tolerance)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable

TOLERANCE_SECONDS = 300


def _b64_hmac(secret: bytes, body: bytes) -> bytes:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())


def body_hmac_ok(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """Shopify's X-Shopify-Hmac-Sha256 / WooCommerce's X-WC-Webhook-Signature: does the
    header match the body signed with any of the valid secrets (two while rotating)?"""
    if not header:
        return False
    given = header.strip().encode("ascii", "replace")
    ok = False
    for secret in secrets:
        # No early exit: every candidate is compared, so timing says nothing about which.
        ok |= hmac.compare_digest(_b64_hmac(secret.encode("utf-8"), body), given)
    return ok


def signing_key(secret: str) -> bytes:
    """The raw key of a Standard Webhooks secret ("whsec_" + base64)."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return encoded.encode("utf-8")


class SignatureProblem(Exception):
    """Why a Standard Webhooks signature was refused (plain words for the JSON error)."""


def standard_webhooks_ok(body: bytes, headers, secrets: Iterable[str],
                         now: float | None = None) -> str:
    """Check webhook-id, webhook-timestamp and webhook-signature against the secrets; returns
    the webhook id, or raises SignatureProblem (missing, stale or not matching)."""
    msg_id = headers.get("webhook-id") or ""
    stamp = headers.get("webhook-timestamp") or ""
    signature = headers.get("webhook-signature") or ""
    if not (msg_id and stamp and signature):
        raise SignatureProblem("This source requires signed requests (webhook-id, "
                               "webhook-timestamp and webhook-signature headers).")
    if not stamp.isdecimal() or len(stamp) > 12:
        raise SignatureProblem("webhook-timestamp must be whole seconds since 1970.")
    now = time.time() if now is None else now
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureProblem("webhook-timestamp is more than 300 seconds away from now.")
    content = msg_id.encode("utf-8", "replace") + b"." + stamp.encode("ascii") + b"." + body
    given = [part.partition(",")[2].encode("ascii", "replace")
             for part in signature.split(" ") if part.startswith("v1,")][:8]
    ok = False
    for secret in secrets:
        expected = _b64_hmac(signing_key(secret), content)
        for candidate in given:
            ok |= hmac.compare_digest(expected, candidate)
    if not ok:
        raise SignatureProblem("The request signature does not match.")
    return msg_id
