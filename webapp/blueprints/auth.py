"""Sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from sqlalchemy import select

from ..extensions import db
from ..models import User
from ..models.base import utcnow
from ..security import clear_failures, record_failure, too_many_failures, verify_password

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
        email = request.form.get("email", "").strip().lower()[:254]  # the column holds 254
        password = request.form.get("password", "")
        address = request.remote_addr or "unknown"
        if too_many_failures(email, address):
            error = "Too many failed sign-ins. Wait 15 minutes and try again."
            status = 429
        else:
            user = db.session.scalar(select(User).where(User.email == email))
            if verify_password(user, password) and user.is_active:
                clear_failures(email)
                user.last_login_at = utcnow()
                db.session.commit()
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
            record_failure(email, address)
            error = "Wrong email or password."
            status = 401
    return render_template("auth/login.html", error=error, email=email), status


@bp.post("/logout")
def logout():
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
