"""Plugin source fixtures: a source of each kind with its keys, and signers for deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from flask import current_app
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from tests.factories import make_list
from webapp.extensions import db
from webapp.models.plugins import PluginEvent, PluginSource
from webapp.plugins import sources

SHOPIFY_SECRET = "shpss_custom_app_secret_for_tests"
ORIGIN = "https://shop.example"
BASE_URL = "https://tributary.example"


def make_source(kind: str = "website", **form) -> tuple[PluginSource, dict[str, str]]:
    """A source made through the service as the set-up page does; returns it and its keys."""
    lst = make_list(f"Plugin list {kind} {db.session.scalar(select(func.count(PluginSource.id)))}")
    data = MultiDict({"name": f"{kind} source", "list_id": str(lst.id),
                      "allowed_origins": ORIGIN, **form})
    data.setlist("add_events", ["signed_up", "form_submitted"])
    with current_app.test_request_context(base_url=BASE_URL):  # delivery URLs are absolute
        made = sources.create(kind, data)
    return made.source, {k.kind: k.secret for k in made.new_keys}


def stored(source_id: int | None = None) -> list[PluginEvent]:
    db.session.expire_all()
    query = select(PluginEvent).order_by(PluginEvent.id)
    if source_id is not None:
        query = query.where(PluginEvent.source_id == source_id)
    return list(db.session.scalars(query))


def b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def compact(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def website(app):
    return make_source("website")
