"""Request hardening: ids that fit a database integer, security headers, plain-words errors.

Registered from create_app before the blueprints, so every `<int:…>` in a route is bounded."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_login import current_user
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """A row id: 1 … 2^63-1 digits only; anything else does not match the route (404)
    instead of reaching the database as an out-of-range integer."""

    regex = r"\d{1,19}"

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_hardening(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["id"] = IdConverter

    @app.after_request
    def _no_store_when_signed_in(response):
        """Pages of a signed-in user may hold contact data: never keep them in a cache."""
        if request.endpoint != "static" and current_user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(500)
    def _server_error(_error):
        return render_template("errors.html", code=500,
                               message="Something went wrong on our side. "
                                       "Try again in a moment."), 500
