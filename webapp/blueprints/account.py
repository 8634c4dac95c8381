"""The signed-in user's own account: sessions, password change, sign out everywhere."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import user_sessions
from ..extensions import db
from ..security import hash_password, password_problem, verify_password

bp = Blueprint("account", __name__, url_prefix="/account")


def _render(error: str | None = None, status: int = 200):
    return render_template(
        "account/index.html", sessions=user_sessions.active_for(current_user),
        this_session=user_sessions.current_session_id(), error=error,
    ), status


@bp.get("/")
def index():
    return _render()


@bp.post("/password")
def change_password():
    """Current password plus the new one twice; other sessions end, this one stays."""
    form = request.form
    if not verify_password(current_user, form.get("current_password", "")):
        return _render("The current password is wrong.", 422)
    problem = password_problem(form.get("new_password", ""), form.get("new_password_again", ""))
    if problem:
        return _render(problem, 422)
    current_user.password_hash = hash_password(form["new_password"])
    db.session.commit()
    user_sessions.end_others(current_user)
    flash("Password changed. Your other sessions are signed out.", "success")
    return redirect(url_for("account.index"))


@bp.post("/sign-out-everywhere")
def sign_out_everywhere():
    user_sessions.end_all(current_user)
    flash("You are signed out everywhere.", "info")
    return redirect(url_for("auth.login"))
