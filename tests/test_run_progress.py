"""The run progress bar with a percentage when the source total is known, and where Import
lands the user (issue 9 item 7)."""

from __future__ import annotations

import re

from tests.test_recurring_actions import _html, _ready_import, _row, _run
from webapp.extensions import db


def test_progress_shows_n_of_total_and_the_percentage(signed_in):
    imp = _ready_import()
    run = _run(imp, status="running", fetched=1234, added=1000, updated=200, source_total=5000)
    html = _html(signed_in.htmx_get(f"/imports/runs/{run.id}/progress?at=row"))
    assert "Running: 1,234 of 5,000 · 25 % (1,200 written)" in html
    assert re.search(r'<progress id="run-progress-\d+-bar"[^>]* value="25" max="100"', html)
    page = _html(signed_in.get(f"/imports/runs/{run.id}"))  # the run page's bar too
    assert "1,234 of 5,000 · 25 %" in page
    row = _row(_html(signed_in.get("/integrations/shopify")), imp.id)
    assert "1,234 of 5,000 · 25 %" in row and 'value="25" max="100"' in row


def test_progress_never_claims_100_before_the_end_nor_more_than_all(signed_in):
    imp = _ready_import()
    run = _run(imp, status="running", fetched=4999, added=4999, source_total=5000)
    html = _html(signed_in.htmx_get(f"/imports/runs/{run.id}/progress"))
    assert "4,999 of 5,000 · 99 %" in html
    run.fetched = run.added = 5100  # the source grew after it was counted
    db.session.commit()
    html = _html(signed_in.htmx_get(f"/imports/runs/{run.id}/progress"))
    assert "5,100 of 5,100 · 100 %" in html


def test_progress_without_a_total_has_no_percentage(signed_in):
    imp = _ready_import()
    run = _run(imp, status="running", fetched=120, added=120)
    html = _html(signed_in.htmx_get(f"/imports/runs/{run.id}/progress"))
    assert "Running: 120 fetched, 120 written so far" in html and " %" not in html
    assert not re.search(r"<progress[^>]* value=", html)


def test_the_import_row_is_an_anchor_that_takes_focus(signed_in):
    imp = _ready_import()
    html = _html(signed_in.get("/integrations/shopify"))
    assert re.search(rf'<li class="import-row[^"]*" id="import-row-{imp.id}"[^>]*tabindex="-1"',
                     html)
    assert "operations.js" in html
