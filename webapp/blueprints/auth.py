"""Sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from .. import user_sessions
from ..extensions import db
from ..models import User
from ..security import attempt_failed, attempt_succeeded, reserve_attempt, verify_password

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        if not urlsplit(target).netloc:
            return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    status = 200
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()[:254]  # the longest address
        password = request.form.get("password", "")
        attempt = reserve_attempt(email, request.remote_addr or "unknown")
        if attempt is None:
            minutes = max(1, current_app.config["LOGIN_WINDOW_SECONDS"] // 60)
            error = f"Too many failed sign-ins. Wait {minutes} minutes and try again."
            status = 429
        else:
            user = db.session.scalar(select(User).where(User.email == email))
            if verify_password(user, password):
                attempt_succeeded(attempt)
                if not user.is_active:
                    error = "This account is switched off. Ask an admin of your team."
                    status = 403
                else:
                    user_sessions.start(user)
                    return redirect(_safe_next(request.args.get("next")))
            else:
                attempt_failed(attempt)
                error = "Wrong email or password."
                status = 401
    return render_template("auth/login.html", error=error, email=email), status


@bp.post("/logout")
def logout():
    user_sessions.end()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
