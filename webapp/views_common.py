"""App-wide request rules: sign-in everywhere, Vary on HX-Request, errors, template helpers."""

from __future__ import annotations

from flask import Flask, redirect, render_template, request
from flask_htmx.responses import HTMXResponseClientRedirect
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape

from . import customfields, timezones
from .extensions import htmx, login_manager

PUBLIC_ENDPOINTS = {"auth.login", "static", "team.set_password"}


def wants_partial() -> bool:
    """An htmx request that is not a history restore: render the partial, not the page."""
    return bool(htmx) and not htmx.history_restore_request


def redirect_after_post(target: str):
    """After a successful POST: htmx follows HX-Redirect (204, no body), a plain form a 303."""
    if wants_partial():
        return HTMXResponseClientRedirect(target, status=204)
    return redirect(target, code=303)


def register_common(app: Flask) -> None:
    @app.before_request
    def _require_sign_in():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    @app.after_request
    def _headers(response):
        response.vary.add("HX-Request")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        return render_template("errors.html", code=400, message=error.description), 400

    @app.errorhandler(404)
    def _not_found(_error):
        return render_template("errors.html", code=404, message="Page not found."), 404

    app.jinja_env.globals.update(zone_groups=timezones.grouped,
                                 type_labels=customfields.TYPE_LABELS,
                                 format_labels=customfields.FORMAT_LABELS)

    @app.template_filter("dt")
    def _format_dt(value):
        """A UTC moment as a <time> element (CSS keeps it on one line in narrow columns)."""
        if value is None:
            return "—"
        # Built directly: Markup.format goes through string.Formatter, about a tenth of a
        # list page's render time at 50 rows.
        return Markup(f'<time datetime="{escape(value.isoformat())}">'
                      f'{escape(value.strftime("%Y-%m-%d %H:%M UTC"))}</time>')
