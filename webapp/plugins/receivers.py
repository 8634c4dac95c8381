"""Public receivers (no sign-in, no CSRF): Shopify and WooCommerce webhooks and the
Segment-compatible tracking API. Each authenticates first on the raw, size-capped body,
commits the events (intake.store), and only then answers 2xx. Errors are JSON."""

from __future__ import annotations

import base64
import binascii
import logging
import re

from flask import Blueprint, jsonify, make_response, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..extensions import csrf
from . import intake, keys, sources, verify
from .intake import Refused

log = logging.getLogger(__name__)
bp = Blueprint("receivers", __name__)
csrf.exempt(bp)

PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact",
                  "app/uninstalled")
WOO_PING = re.compile(r"^webhook_id=\d{1,20}$")
CORS_MAX_AGE = "600"


def _error(exc: Refused, cors_origin: str | None = None):
    response = make_response(jsonify(exc.body()), exc.status)
    if cors_origin:
        _cors(response, cors_origin)
    return response


def _ok(cors_origin: str | None = None):
    response = make_response(jsonify({"success": True}), 200)
    if cors_origin:
        _cors(response, cors_origin)
    return response


def _cors(response, origin: str):
    response.headers["Access-Control-Allow-Origin"] = origin
    response.vary.add("Origin")
    return response


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    """The app-wide body limit tripped before the view ran: the same JSON 413 it gives."""
    limits = {"receivers.batch": (intake.MAX_BATCH_BYTES, "per batch"),
              "receivers.shopify": (intake.MAX_WEBHOOK_BYTES, "per delivery"),
              "receivers.woocommerce": (intake.MAX_WEBHOOK_BYTES, "per delivery")}
    cap, what = limits.get(request.endpoint, (intake.MAX_EVENT_BYTES, "per event"))
    return _error(Refused(413, f"Too large: the limit is {intake._size(cap)} {what}."))


# ------------------------------------------------------------------------ webhooks


def _webhook_source(source_id: int, kind: str):
    source = sources.for_receiving(source_id)
    if source is None or source.kind != kind:
        raise Refused(404, "There is no such source.")
    return source


@bp.post("/hooks/shopify/<int:source_id>")
def shopify(source_id: int):
    """A Shopify webhook: X-Shopify-Hmac-Sha256 over the raw body, de-duplicated on the
    event id (else webhook id). 401 for a bad signature, counted and not stored."""
    try:
        source = _webhook_source(source_id, "shopify")
        raw = intake.read_capped(request.stream, request.content_length,
                                 intake.MAX_WEBHOOK_BYTES, "per delivery")
        if not verify.body_hmac_ok(raw, request.headers.get("X-Shopify-Hmac-Sha256"),
                                   sources.webhook_secrets(source)):
            intake.count_bad_signature(source.id)
            raise Refused(401, "The signature does not match.")
        topic = request.headers.get("X-Shopify-Topic", "")
        if source.status != "enabled" and topic not in PRIVACY_TOPICS:
            raise Refused(403, "This source is disabled.")
        payload = intake.decode_json(raw)
        row = intake.shopify_row(source.id, request.headers, raw.decode("utf-8"), payload)
        new = intake.store(source.id, [row])
    except Refused as exc:
        return _error(exc)
    if new and row["kind"] == "uninstalled":
        sources.app_uninstalled(source_id)
    return _ok()


@bp.post("/hooks/woocommerce/<int:source_id>")
def woocommerce(source_id: int):
    """A WooCommerce webhook: X-WC-Webhook-Signature over the raw body, de-duplicated on
    resource id + modification time. The unsigned ping sent on creation is answered 200."""
    try:
        source = _webhook_source(source_id, "woocommerce")
        signature = request.headers.get("X-WC-Webhook-Signature")
        if not signature and request.mimetype == "application/x-www-form-urlencoded":
            form = request.form  # the ping: `webhook_id=N`, nothing to store or verify
            if list(form.keys()) == ["webhook_id"] and WOO_PING.match(
                    f"webhook_id={form['webhook_id']}"):
                return _ok()
        raw = intake.read_capped(request.stream, request.content_length,
                                 intake.MAX_WEBHOOK_BYTES, "per delivery")
        if not signature and WOO_PING.match(raw.decode("ascii", "replace")):
            return _ok()
        if not verify.body_hmac_ok(raw, signature, sources.webhook_secrets(source)):
            intake.count_bad_signature(source.id)
            raise Refused(401, "The signature does not match.")
        if source.status != "enabled":
            raise Refused(403, "This source is disabled.")
        payload = intake.decode_json(raw)
        row = intake.woocommerce_row(source.id, request.headers, raw.decode("utf-8"), payload)
        intake.store(source.id, [row])
    except Refused as exc:
        return _error(exc)
    return _ok()


# ------------------------------------------------------------------- tracking API


def _basic_user() -> str | None:
    """The user name of `Authorization: Basic` (Segment's write key; password empty)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value or len(value) > 400:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[0] or None


def _preflight():
    origin = request.headers.get("Origin")
    if not sources.allowed_origin(origin):
        return make_response(jsonify({"success": False,
                                      "error": "This origin is not allowed."}), 403)
    response = make_response("", 204)
    _cors(response, origin)
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def _track(event_type: str | None):
    """One tracking API call: `event_type` None for /v1/batch, else the single event's."""
    if request.method == "OPTIONS":
        return _preflight()
    origin = request.headers.get("Origin")
    cors = None
    try:
        cap = intake.MAX_BATCH_BYTES if event_type is None else intake.MAX_EVENT_BYTES
        what = "per batch" if event_type is None else "per event"
        signed = intake.read_capped(request.stream, request.content_length, cap, what)
        raw = signed
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = intake.inflate(signed, cap, what)
        presented = _basic_user()
        payload = None
        if presented is None:  # sendBeacon cannot set headers: the key rides in the body
            try:
                payload = intake.decode_json(raw)
            except Refused:
                payload = None  # no key anywhere: the 401 below
            presented = payload.get("writeKey") if isinstance(payload, dict) else None
        found = keys.lookup(presented) if isinstance(presented, str) else None
        if found is None:
            raise Refused(401, "Unknown or revoked key: send the source's server key as the "
                               "Basic auth user name.")
        if found.source_kind != "website":
            raise Refused(401, "Unknown or revoked key.")
        source_id = found.source_id
        browser = found.kind == "public"
        if browser:
            if not origin or origin not in found.allowed_origins:
                raise Refused(403, "This origin is not allowed to use the browser key.",
                              "Origin")
            cors = origin
        elif found.require_signature:
            try:
                verify.standard_webhooks_ok(signed, request.headers,
                                            keys.signing_secrets(source_id))
            except verify.SignatureProblem as problem:
                intake.count_bad_signature(source_id)
                raise Refused(401, str(problem)) from None
        if found.source_status != "enabled":
            raise Refused(403, "This source is disabled.")
        if payload is None:
            payload = intake.decode_json(raw)
        if event_type is None:
            if not isinstance(payload, dict):
                raise Refused(400, "The body must be an object with a batch array.", "body")
            events = payload.get("batch")
            rows = intake.segment_rows(source_id, "browser" if browser else "api", events,
                                       browser=browser)
        else:
            rows = intake.segment_rows(source_id, "browser" if browser else "api", [payload],
                                       browser=browser, forced_type=event_type)
        intake.store(source_id, rows, key_id=found.key_id)
    except Refused as exc:
        return _error(exc, cors)
    return _ok(cors)


@bp.route("/v1/batch", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def batch():
    return _track(None)


@bp.route("/v1/identify", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def identify():
    return _track("identify")


@bp.route("/v1/track", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def track():
    return _track("track")


@bp.route("/v1/page", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def page():
    return _track("page")
