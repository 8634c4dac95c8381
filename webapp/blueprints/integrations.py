"""Integrations: a tile per provider, its details page, connecting (forms and OAuth sign-in),
reconnecting and disconnecting accounts."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ..hardening import parse_id
from ..models import Integration
from ..services import integrations as service
from ..services.errors import FormError
from ..views_common import redirect_after_post, wants_partial

bp = Blueprint("integrations", __name__, url_prefix="/integrations")

# The app-wide policy (views_common) with the provider's sign-in hosts added to form-action.
CSP_TEMPLATE = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self' {}; base-uri 'none'"
)


def _info_or_404(provider: str) -> service.ProviderInfo:
    info = service.provider_info(provider)
    if info is None:
        abort(404)
    return info


def _integration_or_404(provider: str, integration_id: int) -> Integration:
    row = service.get_integration(provider, integration_id)
    if row is None:
        abort(404)
    return row


def _reconnect_target(provider: str, raw) -> Integration | None:
    integration_id = parse_id(raw)
    return service.get_integration(provider, integration_id) if integration_id else None


def _connect_context(info, reconnect, form=None, errors=None, connect_error=None):
    return {
        "active": [r for r in service.integrations_of(info.slug) if r.status != "disconnected"],
        "info": info, "reconnect": reconnect, "form": form or {}, "errors": errors or {},
        "connect_error": connect_error, "app": service.app_credentials(info.slug),
        "loopback": service.allow_loopback(), "provider": service.provider_class(info.slug),
    }


def _details(info, *, reconnect=None, form=None, errors=None, connect_error=None,
             oauth_error=None, status=200):
    rows = service.integrations_of(info.slug)
    page = render_template(
        "integrations/show.html",
        disconnected=[r for r in rows if r.status == "disconnected"],
        lists_fed={r.id: service.lists_fed(r) for r in rows},
        hints={r.id: service.credentials_hint(r) for r in rows},
        oauth_error=oauth_error,
        **_connect_context(info, reconnect, form, errors, connect_error),
    )
    return _allow_sign_in_forms(make_response(page, status), info.slug)


def _allow_sign_in_forms(response, provider: str):
    """The OAuth start forms post here and are redirected to the provider's sign-in page;
    browsers check that redirect against CSP form-action, so this page names those hosts."""
    hosts = service.sign_in_origins(provider)
    if hosts:
        response.headers["Content-Security-Policy"] = CSP_TEMPLATE.format(" ".join(hosts))
    return response


def _connected(info, row, existed: bool):
    verb = "reconnected" if existed else "connected"
    flash(f"{info.label} {row.name} {verb}. The connection test passed.", "success")
    target = url_for("integrations.show", provider=info.slug)
    if not existed:  # a new connection lands on "Set up recurring imports"
        target = url_for("imports_setup.new", integration_id=row.id)
    return redirect_after_post(target)


@bp.get("/")
def index():
    return render_template("integrations/index.html", tiles=service.tiles())


@bp.get("/<provider>")
def show(provider: str):
    info = _info_or_404(provider)
    reconnect = _reconnect_target(provider, request.args.get("reconnect"))
    return _details(info, reconnect=reconnect)


@bp.get("/<provider>/connect")
def connect_form(provider: str):
    """The connect forms alone (htmx), or the details page scrolled to them."""
    info = _info_or_404(provider)
    reconnect = _reconnect_target(provider, request.args.get("reconnect"))
    if wants_partial():
        return render_template("integrations/_connect.html",
                               **_connect_context(info, reconnect))
    return redirect(url_for("integrations.show", provider=provider,
                            reconnect=reconnect.id if reconnect else None) + "#connect")


@bp.post("/<provider>/connect")
def connect(provider: str):
    """The pasted-credentials form (Shopify token, Magento): validate, test, save."""
    info = _info_or_404(provider)
    if "form" not in info.connect_kinds:
        abort(404)
    reconnect = _reconnect_target(provider, request.form.get("integration_id"))
    form = {k: v for k, v in request.form.items() if k in info.form_keys}
    try:
        row, existed = service.connect_with_form(provider, request.form, reconnect)
    except FormError as exc:
        return _failed(info, reconnect, form, errors={exc.field: exc.message})
    except service.ConnectError as exc:
        return _failed(info, reconnect, form, connect_error=exc.message)
    return _connected(info, row, existed)


def _failed(info, reconnect, form, errors=None, connect_error=None):
    if wants_partial():  # 200 so htmx swaps the forms with the error in
        return render_template("integrations/_connect.html", **_connect_context(
            info, reconnect, form, errors, connect_error))
    return _details(info, reconnect=reconnect, form=form, errors=errors,
                    connect_error=connect_error, status=422)


@bp.post("/<provider>/oauth/start")
def oauth_start(provider: str):
    """Remember the pending sign-in and send the browser to the provider."""
    info = _info_or_404(provider)
    if "oauth" not in info.connect_kinds:
        abort(404)
    reconnect = _reconnect_target(provider, request.form.get("integration_id"))
    form = {k: v for k, v in request.form.items() if k in info.form_keys}
    try:
        url = service.start_oauth(provider, request.form, reconnect)
    except FormError as exc:
        return _failed(info, reconnect, form, errors={exc.field: exc.message})
    except service.ConnectError as exc:
        return _failed(info, reconnect, form, connect_error=exc.message)
    return redirect_after_post(url)


@bp.get("/<provider>/oauth/callback")
def oauth_callback(provider: str):
    """Where the provider sends the browser back: verify, trade the code, test, save."""
    info = _info_or_404(provider)
    if "oauth" not in info.connect_kinds:
        abort(404)
    try:
        row, existed = service.finish_oauth(provider, request.args)
    except service.ConnectError as exc:
        return _details(info, oauth_error=exc.message, status=400)
    return _connected(info, row, existed)


@bp.get("/<provider>/<int:integration_id>/disconnect")
def confirm_disconnect(provider: str, integration_id: int):
    info = _info_or_404(provider)
    row = _integration_or_404(provider, integration_id)
    template = ("integrations/_confirm_disconnect.html" if wants_partial()
                else "integrations/confirm_disconnect.html")
    return render_template(template, info=info, integration=row,
                           lists=service.lists_fed(row))


@bp.post("/<provider>/<int:integration_id>/disconnect")
def disconnect(provider: str, integration_id: int):
    info = _info_or_404(provider)
    row = _integration_or_404(provider, integration_id)
    if row.status == "disconnected":
        flash(f"{info.label} {row.name} was already disconnected.", "info")
    else:
        from ..plugins.sources import integration_disconnecting  # webhooks off, token alive
        integration_disconnecting(row.id)
        stopped = service.disconnect(row)
        plural = "s" if stopped != 1 else ""
        flash(f"{info.label} {row.name} disconnected: its credentials were erased and "
              f"{stopped} import{plural} stopped. Contacts and run history stay.", "success")
    target = url_for("integrations.show", provider=provider)
    return redirect_after_post(target)
