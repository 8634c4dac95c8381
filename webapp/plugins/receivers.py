"""Public receivers (no sign-in, no CSRF, no session): Shopify and WooCommerce webhooks and
the Segment-compatible tracking API. Each authenticates first on the raw, size-capped body,
commits the events (intake.store), and only then answers 2xx. Errors are JSON.

They are served by `Receivers`, a WSGI layer in front of the Flask app: a receiver needs no
session, sign-in, CSRF or page machinery, and that machinery cost two thirds of each
acknowledgement. The blueprint keeps the routes for building URLs only (`url_for`)."""

from __future__ import annotations

import base64
import binascii
import logging
import re

from flask import Blueprint, Request, current_app, has_app_context, jsonify, make_response
from werkzeug.exceptions import RequestEntityTooLarge

from ..extensions import db
from . import intake, keys, sources, verify
from .intake import Refused

log = logging.getLogger(__name__)
bp = Blueprint("receivers", __name__)

PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact",
                  "app/uninstalled")
WOO_PING = re.compile(r"^webhook_id=\d{1,20}$")
CORS_MAX_AGE = "600"
HSTS = "max-age=31536000; includeSubDomains"


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


# ------------------------------------------------------------------------ webhooks


def _webhook_source(source_id: int, kind: str):
    source = sources.for_receiving(source_id)
    if source is None or source.kind != kind:
        raise Refused(404, "There is no such source.")
    return source


def shopify(request: Request, source_id: int):
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


def woocommerce(request: Request, source_id: int):
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


def _basic_user(request: Request) -> str | None:
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


def _preflight(request: Request):
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


def _track(request: Request, event_type: str | None):
    """One tracking API call: `event_type` None for /v1/batch, else the single event's."""
    if request.method == "OPTIONS":
        return _preflight(request)
    origin = request.headers.get("Origin")
    cors = None
    try:
        cap = intake.MAX_BATCH_BYTES if event_type is None else intake.MAX_EVENT_BYTES
        what = "per batch" if event_type is None else "per event"
        signed = intake.read_capped(request.stream, request.content_length, cap, what)
        raw = signed
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = intake.inflate(signed, cap, what)
        presented = _basic_user(request)
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


# ------------------------------------------------------------------- serving

# path -> (endpoint, what it serves, methods); /hooks/<kind>/<id> are matched by pattern.
TRACKING = {"/v1/batch": ("batch", None), "/v1/identify": ("identify", "identify"),
            "/v1/track": ("track", "track"), "/v1/page": ("page", "page")}
HOOK = re.compile(r"^/hooks/(shopify|woocommerce)/([0-9]{1,18})$")
LIMITS = {"batch": (intake.MAX_BATCH_BYTES, "per batch"),
          "shopify": (intake.MAX_WEBHOOK_BYTES, "per delivery"),
          "woocommerce": (intake.MAX_WEBHOOK_BYTES, "per delivery")}

for _path, (_endpoint, _) in TRACKING.items():
    bp.add_url_rule(_path, _endpoint, build_only=True, methods=["POST", "OPTIONS"])
bp.add_url_rule("/hooks/shopify/<int:source_id>", "shopify", build_only=True,
                methods=["POST"])
bp.add_url_rule("/hooks/woocommerce/<int:source_id>", "woocommerce", build_only=True,
                methods=["POST"])


def _route(path: str):
    """(endpoint, handler taking the request) for a receiver path, else None."""
    if path in TRACKING:
        endpoint, event_type = TRACKING[path]
        return endpoint, ("POST", "OPTIONS"), lambda r: _track(r, event_type)
    match = HOOK.match(path)
    if match:
        kind, source_id = match.group(1), int(match.group(2))
        handler = shopify if kind == "shopify" else woocommerce
        return kind, ("POST",), lambda r: handler(r, source_id)
    return None


def _respond(request: Request, endpoint: str, methods: tuple, handler):
    if request.method not in methods:
        response = _error(Refused(405, f"Use {' or '.join(methods)}."))
        response.headers["Allow"] = ", ".join(methods)
        return response
    try:
        return handler(request)
    except RequestEntityTooLarge:  # the body limit tripped while reading a form
        cap, what = LIMITS.get(endpoint, (intake.MAX_EVENT_BYTES, "per event"))
        return _error(Refused(413, f"Too large: the limit is {intake._size(cap)} {what}."))


def install(app) -> None:
    """Serve the receivers in front of the Flask app, behind the trusted-proxy fix."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    outer = app.wsgi_app
    if isinstance(outer, ProxyFix):
        outer.app = Receivers(app, outer.app)
    else:
        app.wsgi_app = Receivers(app, outer)


class Receivers:
    """WSGI layer serving the receiver paths itself (in the app's context, with its own
    database session) and handing every other request to the Flask app behind it."""

    def __init__(self, app, inner):
        self.app, self.inner = app, inner

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        route = _route(path) if path.startswith(("/v1/", "/hooks/")) else None
        if route is None:
            return self.inner(environ, start_response)
        if has_app_context() and current_app._get_current_object() is self.app:
            return self._serve(environ, start_response, path, route)  # as Flask would (tests)
        with self.app.app_context():
            try:
                return self._serve(environ, start_response, path, route)
            finally:
                db.session.remove()

    def _serve(self, environ, start_response, path: str, route):
        request = self.app.request_class(environ)
        try:
            response = _respond(request, *route)
        except Exception:  # noqa: BLE001 - a receiver answers JSON, never a trace
            log.exception("receiver %s failed", path)
            db.session.rollback()
            response = _error(Refused(500, "The event could not be received; send it again."))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = HSTS
        return response(environ, start_response)
