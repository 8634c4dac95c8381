"""Erasing a person from the commerce data (called by the plugin privacy module inside its
transaction): orders keep their amounts for the shop's totals but lose every personal
field, and stop counting in the co-purchase evidence; carts and page visits go."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from ..extensions import db
from ..models import AutomationEntry, Cart, Contact, Order, PageVisit
from ..models.base import utcnow


def erase_contact_data(contact_ids: list[int] | set[int]) -> dict:
    """Remove the people `contact_ids` from orders' personal fields, carts, page visits,
    automation entries and the recommendation counts. No commit."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {"orders": 0, "carts": 0, "visits": 0}
    emails = set(db.session.scalars(select(Order.email_norm).where(
        Order.contact_id.in_(ids), Order.email_norm.is_not(None))))
    emails |= set(db.session.scalars(select(Cart.email_norm).where(
        Cart.contact_id.in_(ids), Cart.email_norm.is_not(None))))
    emails |= set(db.session.scalars(select(Contact.email_norm).where(Contact.id.in_(ids))))
    emails.discard(None)
    person = Order.contact_id.in_(ids)
    if emails:
        person = person | Order.email_norm.in_(sorted(emails))
    orders = db.session.execute(
        update(Order).where(person).values(
            contact_id=None, email_norm=None, customer_name="", cart_token=None,
            erased_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    cart_person = Cart.contact_id.in_(ids)
    if emails:
        cart_person = cart_person | Cart.email_norm.in_(sorted(emails))
    carts = db.session.execute(delete(Cart).where(cart_person)
                               .execution_options(synchronize_session=False)).rowcount
    visits = db.session.execute(delete(PageVisit).where(PageVisit.contact_id.in_(ids))
                                .execution_options(synchronize_session=False)).rowcount
    db.session.execute(delete(AutomationEntry).where(AutomationEntry.contact_id.in_(ids))
                       .execution_options(synchronize_session=False))
    if orders:
        from .recommend import rebuild

        rebuild()  # the pair counts no longer hold the erased person's orders
    return {"orders": orders, "carts": carts, "visits": visits}
