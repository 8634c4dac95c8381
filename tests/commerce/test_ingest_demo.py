"""The demo history: revenue, a cart abandoned then recovered, one still abandoned,
recommendations with evidence; a second seeding changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.commerce.helpers import make_source, state
from webapp.commerce import stats
from webapp.commerce.demo import seed_history
from webapp.commerce.recommend import for_contact
from webapp.extensions import db
from webapp.models import Cart, Contact

pytestmark = pytest.mark.usefixtures("app")


def test_demo_history_shows_revenue_recovery_and_recommendations():
    source = make_source()
    result = seed_history(source.id)
    assert result["events"] > 100
    figures = stats.dashboard("30d")
    assert figures["revenue"] > 1000 and figures["recovered"] == 1
    statuses = dict(db.session.execute(select(Cart.external_id, Cart.status)).all())
    assert statuses == {"demo-cart-1": "recovered", "demo-cart-2": "abandoned"}
    shopper = db.session.scalar(select(Contact).where(
        Contact.email_norm == "shopper3@example.com"))
    recs = for_contact(shopper.id)
    assert recs and all(r.evidence for r in recs)
    before = state()
    assert seed_history(source.id) == {"events": 0}
    assert state() == before
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 12
