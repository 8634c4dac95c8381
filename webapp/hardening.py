"""Request hardening: ids that fit a database integer, security headers, plain-words errors.

Registered from create_app before the blueprints, so every `<int:…>` in a route is bounded."""

from __future__ import annotations

from flask import Flask, abort, render_template, request
from flask_login import current_user
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1


def _up_to(limit: int) -> str:
    """A regex matching exactly the decimal numbers 1 … limit, without leading zeros."""
    digits = str(limit)
    alternatives = [rf"[1-9]\d{{0,{len(digits) - 2}}}"]  # the shorter numbers
    for i, d in enumerate(digits):
        low, rest = (1 if i == 0 else 0), len(digits) - i - 1
        if int(d) > low:
            alternatives.append(digits[:i] + f"[{low}-{int(d) - 1}]"
                                + (rf"\d{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


class IdConverter(IntegerConverter):
    """A row id: 1 … 2^63-1. Anything else does not match the route (404) instead of
    reaching the database as an out-of-range integer. The range is in the regex itself, so
    a sibling rule for another method cannot turn the miss into a 405."""

    regex = _up_to(MAX_ID)

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_hardening(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["id"] = IdConverter

    @app.before_request
    def _refuse_nul_bytes():
        """No form or link of ours sends a NUL byte, and PostgreSQL cannot store one."""
        for values in (request.args, request.form):
            for key, value in values.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    abort(400)

    @app.errorhandler(400)
    def _bad_request(_error):
        return render_template("errors.html", code=400,
                               message="The request contained characters that cannot be "
                                       "used here. Check what you typed and try again."), 400

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


def parse_id(raw) -> int | None:
    """A row id from a query string or form (1 … 2^63-1), or None for anything else, so an
    out-of-range number is "not found" rather than a database error."""
    text = str(raw).strip() if raw is not None else ""
    if not text.isdecimal() or not text.isascii() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None
