"""Commerce rows for the segment and automation tests, inserted directly (the ingest of
events is another module's): a shop, products, paid orders, carts and page visits."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

from webapp.extensions import db
from webapp.models import ContactList, PluginSource
from webapp.models.base import utcnow
from webapp.models.commerce import Cart, Order, OrderLine, PageVisit, Product, Shop

_ids = count(1)


def make_shop(contact_list: ContactList, name: str = "Demo shop") -> Shop:
    source = PluginSource(kind="shopify", name=name, list_id=contact_list.id)
    db.session.add(source)
    db.session.flush()
    shop = Shop(source_id=source.id, name=name, domain="demo.example.com")
    db.session.add(shop)
    db.session.commit()
    return shop


def make_product(shop: Shop, title: str = "Mug", category: str = "Kitchen",
                 price: str = "12.00") -> Product:
    row = Product(shop_id=shop.id, external_id=f"p{next(_ids)}", title=title,
                  category=category, price=Decimal(price), currency="USD")
    db.session.add(row)
    db.session.commit()
    return row


def make_order(shop: Shop, contact_id: int | None, *, total: str = "40.00",
               placed_at: datetime | None = None, status: str = "paid",
               products: list[Product] = (), backfill: bool = False,
               event_id: int | None = None) -> Order:
    amount = Decimal(total)
    paid = status in ("paid", "partially_refunded")
    row = Order(shop_id=shop.id, external_id=f"o{next(_ids)}", contact_id=contact_id,
                status=status, total=amount, revenue=amount if paid else Decimal(0),
                placed_at=placed_at or utcnow(), backfill=backfill, event_id=event_id)
    db.session.add(row)
    db.session.flush()
    for product in products:
        db.session.add(OrderLine(order_id=row.id, product_id=product.id, title=product.title,
                                 quantity=1, price=product.price or 0))
    db.session.commit()
    return row


def make_cart(shop: Shop, contact_id: int | None, *, status: str = "abandoned",
              abandoned_at: datetime | None = None, total: str = "25.00") -> Cart:
    now = utcnow()
    row = Cart(shop_id=shop.id, external_id=f"c{next(_ids)}", contact_id=contact_id,
               status=status, total=Decimal(total),
               last_activity_at=(abandoned_at or now) - timedelta(hours=1),
               abandoned_at=(abandoned_at or now) if status != "open" else None,
               recovered_at=now if status == "recovered" else None)
    db.session.add(row)
    db.session.commit()
    return row


def make_visit(shop: Shop, contact_id: int | None, url: str,
               visited_at: datetime | None = None, event_id: int | None = None) -> PageVisit:
    row = PageVisit(source_id=shop.source_id, contact_id=contact_id, url=url,
                    visited_at=visited_at or utcnow(), event_id=event_id)
    db.session.add(row)
    db.session.commit()
    return row
