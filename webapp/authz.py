"""Roles: admins manage the team, OAuth apps and workspace settings; members do the rest.

`admin_required` guards a view; `require_admin` is the same check as a blueprint's
`before_request`. Members get a plain-words 403 page."""

from __future__ import annotations

from functools import wraps

from flask import Flask, abort, render_template
from flask_login import current_user

FORBIDDEN_MESSAGE = ("This page is for workspace administrators. "
                     "Ask an administrator of your team if something here needs changing.")


def is_admin() -> bool:
    return bool(current_user.is_authenticated and current_user.is_admin)


def require_admin() -> None:
    """Before-request hook: stop a signed-in member (sign-in itself is checked app-wide)."""
    if current_user.is_authenticated and not current_user.is_admin:
        abort(403)


def admin_required(view):
    """Decorator form of `require_admin` for a single view."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        require_admin()
        return view(*args, **kwargs)

    return wrapper


def register_authz(app: Flask) -> None:
    @app.errorhandler(403)
    def _forbidden(_error):
        return render_template("errors.html", code=403, message=FORBIDDEN_MESSAGE), 403
