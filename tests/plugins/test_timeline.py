"""The contact page's activity timeline: sign-up, visits, product views, carts, orders and
custom events, newest first, each with its source; text shown escaped."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.factories import make_list
from tests.plugins import factories as f
from webapp.extensions import db
from webapp.models import Contact
from webapp.plugins.process import process_pending


def test_the_timeline_lists_the_contacts_activity_with_its_source(app, signed_in):
    lst = make_list()
    shop = f.make_source(lst, kind="shopify", name="Main shop")
    site = f.make_source(lst, name="Shop site")
    f.store_segment(site, f.page("anon-1", "/shoes", title="Shoes <b>sale</b>"),
                    channel="browser")
    f.store_segment(site, f.track("Product Viewed", "anon-1", name="Red shoe"),
                    channel="browser")
    f.store_segment(site, f.track("Product Added", "anon-1", name="Red shoe"),
                    channel="browser")
    f.store_segment(site, f.track("Form Submitted", "anon-1", email="cy@example.com",
                                  consent=True), channel="browser")
    f.store_shopify(shop, "orders/create", f.shopify_order("cy@example.com", total="42.00"))
    f.store_segment(site, f.track("Gift Card Redeemed", email="cy@example.com"))
    process_pending()
    cy = db.session.scalar(select(Contact).where(Contact.email_norm == "cy@example.com"))
    html = signed_in.get(f"/contacts/{cy.id}").get_data(as_text=True)
    section = html.split('id="activity"', 1)[1].split("</section>", 1)[0]
    lines = re.findall(r'<li id="timeline-\d+" data-kind="(\w+)">', section)
    assert lines == ["custom", "order_completed", "form_submitted", "product_added",
                     "product_viewed", "page"]
    text = " ".join(section.split())
    assert "Visited Shoes &lt;b&gt;sale&lt;/b&gt;" in text
    assert "Viewed product Red shoe" in text and "Added Red shoe to the cart" in text
    assert "Placed order" in text and "42.00 USD" in text
    assert "Custom event Gift Card Redeemed" in text
    assert "from Main shop (shopify)" in text and "from Shop site (browser)" in text
