"""Import statistics: the run history (filters, htmx, keyset pages), a run's page (counts by
reason, warnings, timings, the cap note, rejected rows paginated and escaped) and the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import insert

from tests.test_integrations_support import make_import, make_integration
from webapp.extensions import db
from webapp.models import ImportRun, RejectedRow
from webapp.models.base import utcnow

XSS = "<img src=x onerror=alert(1)>"


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _run(imp, status="completed", trigger="manual", **kw) -> ImportRun:
    now = utcnow()
    values = {"queued_at": now - timedelta(seconds=75), "started_at": now - timedelta(seconds=70),
              "finished_at": None if status in ("queued", "running") else now}
    values.update(kw)
    run = ImportRun(import_id=imp.id, trigger_kind=trigger, status=status, **values)
    db.session.add(run)
    db.session.commit()
    return run


def _history_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="run-(\d+)">', html)]


def _setup():
    shop = make_integration("shopify", "acme.myshopify.com")
    zoho = make_integration("zoho", "Acme CRM", settings={"data_centre": "eu"})
    news = make_import(shop, "Newsletter")
    vip = make_import(zoho, "VIP")
    return shop, zoho, news, vip


# ------------------------------------------------------------------ history


def test_history_lists_runs_newest_first_with_columns(signed_in):
    shop, zoho, news, vip = _setup()
    first = _run(news, fetched=300, added=250, updated=30, skipped=5, rejected=15)
    second = _run(vip, trigger="scheduled", status="failed", error="Source down.")
    third = _run(news, trigger="preview", fetched=50, added=45)
    resp = signed_in.get("/imports/runs/")
    assert resp.status_code == 200
    html = _html(resp)
    assert re.search(r'href="/imports/runs/"\s+aria-current="page">Import statistics</a>', html)
    assert _history_ids(html) == [second.id, first.id]  # a preview wrote nothing: left out
    assert _history_ids(_html(signed_in.get("/imports/runs/?trigger=preview"))) == [third.id]
    row = re.search(rf'<tr id="run-{first.id}">.*?</tr>', html, re.S).group(0)
    for text in ("Newsletter", "Shopify · acme.myshopify.com", "Import now", ">300<", ">250<",
                 ">30<", ">5<", ">15<", "Completed", "1 min 10 s"):
        assert text in row, text
    previews = _html(signed_in.get("/imports/runs/?trigger=preview"))
    row = re.search(rf'<tr id="run-{third.id}">.*?</tr>', previews, re.S).group(0)
    assert "Preview" in row and "dry run: nothing written" in row
    assert re.search(r"would add</span> 45<", row)
    row = re.search(rf'<tr id="run-{second.id}">.*?</tr>', html, re.S).group(0)
    assert "Scheduled" in row and "Failed" in row and "Zoho CRM · Acme CRM" in row


def test_history_filters_full_page_and_htmx(signed_in):
    shop, zoho, news, vip = _setup()
    a = _run(news)
    b = _run(vip, status="failed")
    c = _run(news, trigger="scheduled", status="capped")
    d = _run(news, trigger="preview")
    get = signed_in.get
    assert _history_ids(_html(get(f"/imports/runs/?integration={shop.id}"))) == [c.id, a.id]
    assert _history_ids(_html(get(f"/imports/runs/?list={vip.list_id}"))) == [b.id]
    assert _history_ids(_html(get("/imports/runs/?status=capped"))) == [c.id]
    assert _history_ids(_html(get("/imports/runs/?trigger=preview"))) == [d.id]
    assert _history_ids(_html(get(
        f"/imports/runs/?integration={shop.id}&trigger=scheduled"))) == [c.id]
    # the full page keeps the choices selected; filters form is a GET with htmx live filter
    html = _html(get(f"/imports/runs/?integration={shop.id}&status=capped"))
    assert f'<option value="{shop.id}" selected>' in html
    assert '<option value="capped" selected>' in html
    assert 'hx-push-url="true"' in html and 'hx-trigger="change"' in html
    assert 'method="get"' in html
    # htmx: only the results element
    resp = signed_in.htmx_get("/imports/runs/?status=failed")
    html = _html(resp)
    assert html.lstrip().startswith('<section id="run-history"')
    assert "<html" not in html and _history_ids(html) == [b.id]
    assert "HX-Request" in resp.headers.get("Vary", "")
    # nothing matches
    assert "No run matches these filters." in _html(get("/imports/runs/?status=canceled"))


def test_history_ignores_bad_filter_values(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news)
    for query in ("status=bogus", "trigger=<script>", "integration=abc", "list=-1",
                  "after=xyz", "before=1;drop"):
        resp = signed_in.get(f"/imports/runs/?{query}")
        assert resp.status_code == 200, query
        assert _history_ids(_html(resp)) == [run.id], query
    assert "<script>" not in _html(signed_in.get("/imports/runs/?trigger=<script>"))


def test_history_keyset_pages_of_50(signed_in):
    shop, zoho, news, vip = _setup()
    now = utcnow()
    db.session.execute(insert(ImportRun), [
        {"import_id": news.id, "trigger_kind": "scheduled", "status": "completed",
         "queued_at": now, "finished_at": now, "rejected_by_reason": {}, "timings": {}}
        for _ in range(120)])
    db.session.commit()
    html = _html(signed_in.get("/imports/runs/?trigger=scheduled"))
    ids = _history_ids(html)
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    match = re.search(r'href="(/imports/runs/\?after=(\d+)[^"]*)"[^>]*rel="next"', html)
    assert match and int(match.group(2)) == ids[-1]
    assert "trigger=scheduled" in match.group(1)
    assert 'rel="prev"' not in html
    page2 = _html(signed_in.htmx_get(match.group(1).replace("&amp;", "&")))
    ids2 = _history_ids(page2)
    assert len(ids2) == 50 and ids2[0] == ids[-1] - 1
    page3 = _html(signed_in.get(f"/imports/runs/?after={ids2[-1]}&trigger=scheduled"))
    ids3 = _history_ids(page3)
    assert len(ids3) == 20 and 'rel="next"' not in page3
    back = re.search(r'href="(/imports/runs/\?before=(\d+)[^"]*)"', page3)
    assert int(back.group(2)) == ids3[0]
    assert _history_ids(_html(signed_in.get(back.group(1).replace("&amp;", "&")))) == ids2


def test_history_empty(signed_in):
    html = _html(signed_in.get("/imports/runs/"))
    assert "No import has run yet." in html


# ------------------------------------------------------------------ run page


def _rejects(run, n, **row):
    db.session.execute(insert(RejectedRow), [
        {"run_id": run.id, "source_id": f"src-{i}", "email": f"bad{i}@", "reason": "syntax_error",
         "detail": "no domain", **row} for i in range(n)])
    db.session.commit()


def test_run_page_counts_by_reason_warnings_timings(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, status="completed_with_errors", fetched=400, added=300, updated=40,
               unchanged=20, skipped=2, rejected=38, warnings=7, pages=4,
               rejected_by_reason={"syntax_error": 3, "already_in_queue": 5,
                                   "opted_out_at_source": 30},
               timings={"fetch": 12.5, "write": 3.25})
    resp = signed_in.get(f"/imports/runs/{run.id}")
    assert resp.status_code == 200
    html = _html(resp)
    assert f"Import run #{run.id}: Newsletter" in html
    assert "Completed with errors" in html
    reasons = re.search(r'<table class="counts" id="reject-reasons">.*?</table>', html, re.S)[0]
    # in the order of the rules, with plain words, only non-zero
    assert re.findall(r'data-reason="(\w+)"', reasons) == [
        "syntax_error", "already_in_queue", "opted_out_at_source"]
    assert "Invalid email address" in reasons and ">30<" in reasons
    assert "blacklisted" not in reasons
    for label, count in (("Fetched from the source", "400"), ("Added", "300"),
                         ("Updated", "40"), ("Unchanged", "20"), ("Skipped", "2"),
                         ("Rejected", "38")):
        assert re.search(rf"<th scope=\"row\">{label}</th><td class=\"num\">{count}</td>", html)
    assert "<strong>7</strong> field warnings" in html and "clipped" in html
    assert "1 min 10 s" in html  # duration
    assert "Pages</dt><dd>4" in html
    assert "6 records a second" in html  # 400 / 70 s
    assert "Fetch time</dt><dd>12 s" in html
    assert "Walked everything that changed" in html
    assert "hx-trigger" not in html  # not live: no polling


def test_run_page_capped_failed_and_live(signed_in):
    shop, zoho, news, vip = _setup()
    capped = _run(news, status="capped", added=10_000, cursor={"page": 3})
    assert "Stopped at the 10,000 cap; the next run continues" in _html(
        signed_in.get(f"/imports/runs/{capped.id}"))
    failed = _run(vip, status="failed", error_kind="rate_limited",
                  error="zoho kept limiting our requests (429). The next run continues.")
    html = _html(signed_in.get(f"/imports/runs/{failed.id}"))
    assert "Rate limited." in html and "zoho kept limiting our requests (429)" in html
    live = _run(vip, status="running", fetched=10)
    html = _html(signed_in.get(f"/imports/runs/{live.id}"))
    assert f'hx-get="/imports/runs/{live.id}/progress"' in html
    assert 'hx-trigger="every 1s"' in html
    preview = _run(news, trigger="preview", status="completed")
    assert "A preview (dry run)" in _html(signed_in.get(f"/imports/runs/{preview.id}"))


def test_run_page_unknown_run_is_404(signed_in):
    assert signed_in.get("/imports/runs/4242").status_code == 404
    assert signed_in.get("/imports/runs/4242/rejects.csv").status_code == 404
    assert signed_in.get("/imports/runs/abc").status_code == 404


def test_run_page_rejects_paginated(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, rejected=120, rejected_by_reason={"syntax_error": 120})
    _rejects(run, 120)
    html = _html(signed_in.get(f"/imports/runs/{run.id}"))
    sources = re.findall(r"<code>(src-\d+)</code>", html)
    assert sources[:2] == ["src-0", "src-1"] and len(sources) == 50
    nxt = re.search(r'href="([^"]*after=(\d+)[^"]*)"[^>]*rel="next"', html)
    assert nxt and "part=rejects" in nxt.group(1)
    resp = signed_in.htmx_get(nxt.group(1).replace("&amp;", "&"))
    page2 = _html(resp)
    assert page2.lstrip().startswith('<section id="run-rejects"')
    assert re.findall(r"<code>(src-\d+)</code>", page2)[0] == "src-50"
    # the same URL without htmx renders the whole page
    full = _html(signed_in.get(nxt.group(1).replace("&amp;", "&")))
    assert "<html" in full and re.findall(r"<code>(src-\d+)</code>", full)[0] == "src-50"
    assert f'href="/imports/runs/{run.id}/rejects.csv"' in html


def test_rejected_rows_are_escaped(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, rejected=1, rejected_by_reason={"syntax_error": 1})
    _rejects(run, 1, email=XSS, detail=f"bad {XSS}", source_id="<b>x</b>")
    for resp in (signed_in.get(f"/imports/runs/{run.id}"),
                 signed_in.htmx_get(f"/imports/runs/{run.id}?part=rejects")):
        html = _html(resp)
        assert XSS not in html and "<b>x</b>" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "bad &lt;img src=x onerror=alert(1)&gt;" in html


# ------------------------------------------------------------------ CSV


def test_rejects_csv_download_neutralises_formulas(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, rejected=4)
    db.session.add_all([
        RejectedRow(run_id=run.id, source_id="1", email="=HYPERLINK(\"http://x\")",
                    reason="syntax_error", detail="+cmd|' /C calc'!A0"),
        RejectedRow(run_id=run.id, source_id="-2", email="@SUM(A1)", reason="syntax_error",
                    name="=Ann", detail="plain"),
        RejectedRow(run_id=run.id, source_id="3", email=XSS, reason="invalid_domain",
                    detail=f"detail {XSS}"),
        RejectedRow(run_id=run.id, source_id="4", email="ok@example.com",
                    reason="already_in_queue", detail="duplicate, with \"quotes\""),
    ])
    db.session.commit()
    resp = signed_in.get(f"/imports/runs/{run.id}/rejects.csv")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == \
        f'attachment; filename="import-run-{run.id}-rejects.csv"'
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    src = "Shopify · acme.myshopify.com · customers / all"
    assert rows[0] == ["source_id", "email", "name", "reason", "detail", "source"]
    assert rows[1] == ["1", "'=HYPERLINK(\"http://x\")", "", "syntax_error",
                       "'+cmd|' /C calc'!A0", src]
    assert rows[2] == ["'-2", "'@SUM(A1)", "'=Ann", "syntax_error", "plain", src]
    assert rows[3] == ["3", XSS, "", "invalid_domain", f"detail {XSS}", src]
    assert rows[4] == ["4", "ok@example.com", "", "already_in_queue",
                       'duplicate, with "quotes"', src]
    assert len(rows) == 5


def test_rejects_csv_streams_many_rows(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news)
    _rejects(run, 4500)
    resp = signed_in.get(f"/imports/runs/{run.id}/rejects.csv")
    assert resp.is_streamed
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 4501 and rows[-1][0] == "src-4499"


def _mixed_rows(run):
    db.session.execute(insert(RejectedRow), [
        {"run_id": run.id, "source_id": "s1", "email": "bad@", "name": "Bea Bad",
         "reason": "syntax_error", "detail": "no domain"},
        {"run_id": run.id, "source_id": "s2", "email": "", "name": "Nora Nomail",
         "reason": "no_email", "detail": "no email address at the source"},
        {"run_id": run.id, "source_id": "s3", "email": "dup@example.com", "name": "",
         "reason": "already_in_queue", "detail": "the same email came earlier in this run"},
        {"run_id": run.id, "source_id": "s4", "email": "", "name": "Ned Nomail",
         "reason": "no_email", "detail": "no email address at the source"},
    ])
    db.session.commit()


def _reject_sources(html: str) -> list[str]:
    return re.findall(r'<tr data-reason="[a-z_]+">\s*<td class="wrap"><code>([^<]+)</code>', html)


def test_run_page_lists_skipped_rows_and_filters_by_reason(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, status="completed", fetched=4, skipped=2, rejected=2,
               rejected_by_reason={"syntax_error": 1, "already_in_queue": 1})
    _mixed_rows(run)
    html = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert _reject_sources(html) == ["s1", "s2", "s3", "s4"]
    assert "Nora Nomail" in html and "Skipped: no email address at the source (2)" in html
    assert '<option value="">All reasons (4)</option>' in html
    assert "Invalid email address (1)" in html

    resp = signed_in.htmx_get(f"/imports/runs/{run.id}?part=rejects&reason=no_email")
    part = _html(resp)
    assert part.lstrip().startswith("<section id=\"run-rejects\"")
    assert _reject_sources(part) == ["s2", "s4"]
    assert '<option value="no_email" selected>' in part
    assert f"/imports/runs/{run.id}/rejects.csv?reason=no_email" in part
    # An unknown reason shows every row rather than an error.
    everything = _html(signed_in.get(f"/imports/runs/{run.id}?reason=bogus"))
    assert _reject_sources(everything) == ["s1", "s2", "s3", "s4"]


def test_reason_filter_keeps_keyset_paging(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, skipped=60, rejected=60, rejected_by_reason={"syntax_error": 60})
    _rejects(run, 60)
    _rejects(run, 60, reason="no_email", email="", source_id="skip")
    first = _html(signed_in.get(f"/imports/runs/{run.id}?reason=no_email"))
    assert set(_reject_sources(first)) == {"skip"} and len(_reject_sources(first)) == 50
    nxt = re.search(r'href="([^"]*after=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    assert "reason=no_email" in nxt
    second = _html(signed_in.htmx_get(nxt))
    assert len(_reject_sources(second)) == 10 and set(_reject_sources(second)) == {"skip"}


def test_rejects_csv_of_one_reason_has_name_and_source(signed_in):
    shop, zoho, news, vip = _setup()
    run = _run(news, skipped=2, rejected=2)
    _mixed_rows(run)
    resp = signed_in.get(f"/imports/runs/{run.id}/rejects.csv?reason=no_email")
    assert resp.headers["Content-Disposition"] == \
        f'attachment; filename="import-run-{run.id}-no-email.csv"'
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    src = "Shopify · acme.myshopify.com · customers / all"
    assert rows == [["source_id", "email", "name", "reason", "detail", "source"],
                    ["s2", "", "Nora Nomail", "no_email", "no email address at the source", src],
                    ["s4", "", "Ned Nomail", "no_email", "no email address at the source", src]]
    everything = list(csv.reader(io.StringIO(
        signed_in.get(f"/imports/runs/{run.id}/rejects.csv").get_data(as_text=True))))
    assert [r[0] for r in everything[1:]] == ["s1", "s2", "s3", "s4"]


def test_run_pages_need_sign_in(client):
    for url in ("/imports/runs/", "/imports/runs/1", "/imports/runs/1/progress",
                "/imports/runs/1/rejects.csv"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url


# ------------------------------------------------------------------ cancel


def test_a_queued_run_can_be_canceled_from_its_progress(signed_in):
    shop, _zoho, news, _vip = _setup()
    run = _run(news, status="queued", started_at=None)
    page = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert f'hx-post="/imports/runs/{run.id}/cancel"' in page
    resp = signed_in.post(f"/imports/runs/{run.id}/cancel", {"at": "row"}, htmx=True)
    assert resp.status_code == 200
    html = _html(resp)
    assert 'data-status="canceled"' in html and "hx-trigger" not in html
    db.session.expire_all()
    assert db.session.get(ImportRun, run.id).status == "canceled"


def test_a_running_run_is_not_canceled(signed_in):
    shop, _zoho, news, _vip = _setup()
    run = _run(news, status="running")
    assert "/cancel" not in _html(signed_in.get(f"/imports/runs/{run.id}"))
    resp = signed_in.post(f"/imports/runs/{run.id}/cancel")
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(ImportRun, run.id).status == "running"
    page = _html(signed_in.get(f"/imports/runs/{run.id}"))
    assert "can no longer be canceled" in page


def test_cancel_needs_csrf_and_a_known_run(signed_in):
    shop, _zoho, news, _vip = _setup()
    run = _run(news, status="queued", started_at=None)
    assert signed_in.client.post(f"/imports/runs/{run.id}/cancel").status_code == 400
    assert signed_in.post("/imports/runs/999999/cancel").status_code == 404
    db.session.expire_all()
    assert db.session.get(ImportRun, run.id).status == "queued"
