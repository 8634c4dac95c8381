"""The Team page (admins): members, roles, deactivation, password resets; and the public
set-password page a single-use link opens."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from ..authz import require_admin
from ..extensions import db
from ..models import User
from ..services import team as service
from ..services.errors import FormError
from ..services.paging import parse_cursor

bp = Blueprint("team", __name__)

PUBLIC = {"team.set_password"}


@bp.before_request
def _admins_only():
    if request.endpoint not in PUBLIC:
        require_admin()


def _index(errors=None, form=None, status=200):
    page = service.users_page(after=parse_cursor(request.args.get("after")),
                              before=parse_cursor(request.args.get("before")))
    return render_template("team/index.html", page=page, state_of=service.state_of,
                           errors=errors or {}, form=form or {},
                           min_length=service.PASSWORD_MIN), status


def _shown_once(credential, action: str):
    link = None
    if credential.token:
        link = url_for("team.set_password", token=credential.token, _external=True)
    return render_template("team/credential.html", credential=credential, link=link,
                           action=action, hours=int(service.LINK_LIFETIME.total_seconds() // 3600))


@bp.get("/team/")
def index():
    return _index()


@bp.post("/team/")
def add():
    try:
        credential = service.add_member(request.form)
    except FormError as exc:
        form = {"email": request.form.get("email", ""), "role": request.form.get("role", ""),
                "how": request.form.get("how", "")}
        return _index({exc.field: exc.message}, form, 422)
    return _shown_once(credential, "added")


@bp.post("/team/<int:user_id>/reset")
def reset(user_id: int):
    user = db.get_or_404(User, user_id)
    try:
        credential = service.reset_password(user, request.form)
    except FormError as exc:
        flash(exc.message, "error")
        return redirect(url_for("team.index"), code=303)
    return _shown_once(credential, "reset")


def _change(user_id: int, change, done: str):
    user = db.get_or_404(User, user_id)
    try:
        change(user)
    except FormError as exc:
        flash(exc.message, "error")
    else:
        flash(done.format(email=user.email), "success")
    if not current_user.is_authenticated or not current_user.is_admin:
        return redirect(url_for("dashboard.index"), code=303)  # removed their own admin role
    return redirect(url_for("team.index"), code=303)


@bp.post("/team/<int:user_id>/deactivate")
def deactivate(user_id: int):
    return _change(user_id, lambda u: service.set_active(u, False, current_user),
                   "{email} is deactivated and signed out.")


@bp.post("/team/<int:user_id>/reactivate")
def reactivate(user_id: int):
    return _change(user_id, lambda u: service.set_active(u, True, current_user),
                   "{email} can sign in again.")


@bp.post("/team/<int:user_id>/make-admin")
def make_admin(user_id: int):
    return _change(user_id, lambda u: service.set_admin(u, True),
                   "{email} is now an administrator.")


@bp.post("/team/<int:user_id>/remove-admin")
def remove_admin(user_id: int):
    return _change(user_id, lambda u: service.set_admin(u, False),
                   "{email} is now a member.")


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Where a set-password link lands: choose a password, then sign in."""
    user = service.user_for_token(token)
    if user is None:
        return render_template(
            "errors.html", code=404,
            message="This link has expired or was already used. "
                    "Ask an administrator of your team for a new one."), 404
    errors = {}
    if request.method == "POST":
        try:
            service.use_token(user, request.form.get("password", ""),
                              request.form.get("confirm", ""))
        except FormError as exc:
            errors = {exc.field: exc.message}
        else:
            flash("Your password is set. Sign in with it.", "success")
            return redirect(url_for("auth.login"), code=303)
    response = make_response(render_template(
        "team/set_password.html", user=user, errors=errors, min_length=service.PASSWORD_MIN),
        422 if errors else 200)
    response.headers["Cache-Control"] = "no-store"  # the link's token is in the address
    return response
