"""E-commerce pages: the dashboard (figures and a server-drawn chart per period),
products, orders, abandoned carts with revenue recovered, a detail page for each order,
product and cart, and the workspace API keys (administrators). The contact page's
commerce card is a template global."""

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
from sqlalchemy import or_, select

from .. import authz
from ..models import Cart, Order, Product
from ..services.paging import keyset, parse_cursor
from ..views_common import wants_partial
from . import apikeys, details, stats
from .recommend import for_contact

bp = Blueprint("commerce", __name__, url_prefix="/shop")

CART_STATUSES = (("", "Abandoned, recovered and lost"), ("abandoned", "Abandoned"),
                 ("recovered", "Recovered"), ("lost", "Lost"))


def _cursors() -> dict:
    return {"after": parse_cursor(request.args.get("after")),
            "before": parse_cursor(request.args.get("before"))}


@bp.get("/")
def dashboard():
    period = stats.parse_period(request.args.get("period"))
    figures = stats.dashboard(period, request.args.get("currency"))
    return render_template("commerce/dashboard.html", figures=figures,
                           periods=stats.PERIODS, latest=details.latest_orders(),
                           states=details.ORDER_STATES)


@bp.get("/products")
def products():
    q = " ".join(request.args.get("q", "").split())[:100]
    stmt = select(Product)
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Product.title.ilike(like), Product.external_id.ilike(like)))
    page = keyset(stmt, Product.id, **_cursors())
    params = {"q": q} if q else {}
    template = "commerce/_products.html" if wants_partial() else "commerce/products.html"
    return render_template(template, page=page, q=q, params=params)


@bp.get("/orders")
def orders():
    status = request.args.get("status", "")
    stmt = select(Order)
    if status in ("pending", "paid", "partially_refunded", "refunded", "cancelled"):
        stmt = stmt.where(Order.status == status)
    else:
        status = ""
    page = keyset(stmt, Order.id, descending=True, **_cursors())
    params = {"status": status} if status else {}
    template = "commerce/_orders.html" if wants_partial() else "commerce/orders.html"
    return render_template(template, page=page, status=status, params=params,
                           currency=stats.main_currency())


@bp.get("/carts")
def carts():
    period = stats.parse_period(request.args.get("period"))
    status = request.args.get("status", "")
    status = status if status in dict(CART_STATUSES) else ""
    stmt, summary = stats.carts_page(status, period)
    page = keyset(stmt, Cart.id, descending=True, **_cursors())
    params = {k: v for k, v in (("status", status), ("period", period)) if v}
    template = "commerce/_carts.html" if wants_partial() else "commerce/carts.html"
    return render_template(template, page=page, status=status, period=period,
                           periods=stats.PERIODS, statuses=CART_STATUSES, summary=summary,
                           params=params)


def _or_404(found):
    """A detail that was found, or the plain 404 page."""
    if found is None:
        abort(404)
    return found


@bp.get("/orders/<int:order_id>")
def order(order_id: int):
    found = _or_404(details.order_detail(order_id))
    return render_template("commerce/order.html", d=found, o=found.order,
                           states=details.ORDER_STATES, cart_states=details.CART_STATES)


@bp.get("/products/<int:product_id>")
def product(product_id: int):
    found = _or_404(details.product_detail(product_id))
    response = make_response(render_template("commerce/product.html", d=found,
                                             p=found.product))
    if found.image_origin:  # let the product's image (and nothing else) in from its host
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; img-src 'self' data: {found.image_origin}; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; "
            "base-uri 'none'")
    return response


@bp.get("/carts/<int:cart_id>")
def cart(cart_id: int):
    found = _or_404(details.cart_detail(cart_id))
    return render_template("commerce/cart.html", d=found, c=found.cart,
                           states=details.CART_STATES, order_states=details.ORDER_STATES)


@bp.route("/api-keys", methods=["GET", "POST"])
@authz.admin_required
def api_keys():
    """Issue a workspace API key (shown once) or list the live ones."""
    new_key = None
    if request.method == "POST":
        name = " ".join(request.form.get("name", "").split())[:120] or "Sending system"
        _row, new_key = apikeys.issue(name)
    return render_template("commerce/api_keys.html", keys=apikeys.active(), new_key=new_key)


@bp.post("/api-keys/revoke")
@authz.admin_required
def revoke_api_key():
    key_id = parse_cursor(request.form.get("key_id"))
    if key_id is not None and apikeys.revoke(key_id):
        flash("The key was revoked; requests with it are refused from now on.", "success")
    else:
        flash("That key was revoked already or does not exist.", "info")
    return redirect(url_for("commerce.api_keys"))


@bp.app_template_global("commerce_for_contact")
def commerce_for_contact(contact) -> dict:
    """The contact page's commerce card: orders, carts, lifetime value, recommendations."""
    if contact is None or getattr(contact, "id", None) is None:
        abort(404)
    figures = stats.for_contact(contact.id)
    figures["recommendations"] = for_contact(contact.id, limit=5)
    return figures
