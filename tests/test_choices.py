"""Choices people can read: canonical time zones grouped by region (browser zone preselected
by static/choices.js), currencies with their names, custom-field types and formats in words."""

from __future__ import annotations

import re

from tests.factories import make_field
from webapp import timezones
from webapp.extensions import db
from webapp.models import WorkspaceSettings


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _zone_select(html: str) -> str:
    return re.search(r'<select id="f-time_zone".*?</select>', html, re.S).group(0)


def test_time_zones_are_canonical_grouped_and_readable(signed_in):
    html = _zone_select(_text(signed_in.get("/settings/")))
    values = re.findall(r'<option value="([^"]+)"', html)
    assert len(values) == len(set(values)) and 300 < len(values) < 450
    for alias in ("Factory", "W-SU", "US/Pacific", "Etc/GMT+5", "Asia/Calcutta", "GB"):
        assert alias not in values, alias
    for zone in ("UTC", "Europe/Berlin", "Europe/Amsterdam", "Asia/Kolkata",
                 "America/New_York", "America/Argentina/Buenos_Aires"):
        assert zone in values, zone
    groups = re.findall(r'<optgroup label="([^"]+)">', html)
    assert groups[0] == "Universal" and {"Europe", "Americas", "Asia", "Africa",
                                         "Pacific Ocean"} <= set(groups)
    assert '<option value="America/Argentina/Buenos_Aires">Argentina / Buenos Aires</option>' \
        in html
    europe = re.search(r'<optgroup label="Europe">(.*?)</optgroup>', html, re.S).group(1)
    assert '<option value="Europe/Berlin">Berlin</option>' in europe
    assert 'data-searchable=' in html


def test_browser_zone_preselect_only_while_the_zone_is_the_default(signed_in):
    assert "data-browser-zone" in _zone_select(_text(signed_in.get("/settings/")))
    WorkspaceSettings.get().time_zone = "Europe/Berlin"
    db.session.commit()
    html = _zone_select(_text(signed_in.get("/settings/")))
    assert "data-browser-zone" not in html
    assert '<option value="Europe/Berlin" selected>Berlin</option>' in html


def test_a_zone_saved_earlier_under_an_old_name_is_kept_and_accepted(signed_in):
    WorkspaceSettings.get().time_zone = "US/Pacific"
    db.session.commit()
    html = _zone_select(_text(signed_in.get("/settings/")))
    assert '<optgroup label="Saved earlier">' in html
    assert '<option value="US/Pacific" selected>US/Pacific</option>' in html
    resp = signed_in.post("/settings/", {"name": "Acme", "subscriber_limit": "2500",
                                         "extension_price": "15", "currency": "USD",
                                         "time_zone": "US/Pacific"})
    assert resp.status_code == 302
    assert timezones.label("America/Indiana/Indianapolis") == "Indiana / Indianapolis"


def test_currencies_have_their_names(signed_in):
    html = _text(signed_in.get("/settings/"))
    select = re.search(r'<select id="f-currency".*?</select>', html, re.S).group(0)
    assert '<option value="EUR">EUR · Euro</option>' in select
    assert '<option value="USD" selected>USD · US dollar</option>' in select
    assert "JPY · Japanese yen" in select and "CHF · Swiss franc" in select
    codes = re.findall(r'<option value="([A-Z]{3})"', select)
    assert len(codes) > 150 and codes == sorted(codes)


def test_field_types_and_formats_in_words(signed_in):
    make_field("tier", format="single_select", allowed_values=["Gold", "Silver"])
    make_field("visited", type="datetime", format="multi_select", allowed_values=["a", "b"])
    html = _text(signed_in.get("/fields/"))
    assert '<option value="single_select">Single choice</option>' in html
    assert '<option value="multi_select">Multiple choice</option>' in html
    assert '<option value="datetime">Date and time</option>' in html
    table = html.split('id="all-fields"')[1]
    assert "<td>Single choice</td>" in table and "<td>Date and time</td>" in table
    assert "single_select" not in table and "multi_select" not in table


def test_fee_forecast_counts_blocks_in_words(app):
    from tests.factories import make_contacts, make_list
    from webapp.imports.forecast import forecast

    make_contacts(make_list("Full"), 2400)
    one = forecast(600).message  # 3,000 against 2,500: one started block
    assert "1 started block of 1,000 ×" in one and "block(s)" not in one
    assert "2 started blocks of 1,000 ×" in forecast(1200).message
