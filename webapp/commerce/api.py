"""The JSON API for the sending system: a contact's recommendations, authenticated with a
workspace API key (`Authorization: Bearer tk_…`); no session, no CSRF (GET only)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..extensions import db
from ..models import Contact
from ..views_common import PUBLIC_ENDPOINTS
from . import apikeys
from .recommend import for_contact

bp = Blueprint("commerce_api", __name__, url_prefix="/api")
bp.record_once(lambda _state: PUBLIC_ENDPOINTS.add("commerce_api.recommendations"))


def _key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if request.authorization and request.authorization.type == "basic":
        return request.authorization.username or request.authorization.password
    return None


def _error(status: int, message: str):
    resp = jsonify({"error": message})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="tributary"'
    return resp


@bp.get("/contacts/<int:contact_id>/recommendations")
def recommendations(contact_id: int):
    """Up to `limit` (1–50, default 10) products for the contact, each with its evidence."""
    if apikeys.verify(_key()) is None:
        return _error(401, "A valid workspace API key is needed (Authorization: Bearer ...).")
    if db.session.get(Contact, contact_id) is None:
        return _error(404, "No contact with that id.")
    raw = request.args.get("limit", "10")
    limit = min(50, max(1, int(raw))) if raw.isdigit() and len(raw) < 4 else 10
    recs = for_contact(contact_id, limit=limit)
    resp = jsonify({"contact_id": contact_id,
                    "recommendations": [r.as_json() for r in recs]})
    resp.headers["Cache-Control"] = "no-store"
    return resp
