"""Runs: cap and carry-over, overage, preview, rejects CSV, failures, locks, secrets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from tests.factories import make_contacts, make_field
from tests.imports.fakes import FakeProvider, people, rec
from webapp.csvsafe import neutralise
from webapp.extensions import db
from webapp.imports import credentials, forecast, rejects
from webapp.imports.preview import preview_now
from webapp.imports.runs import cancel_run, create_run, start, start_run
from webapp.models import (
    Contact,
    ImportRun,
    ImportRunSeen,
    Integration,
    OverageEntry,
    RecurringImport,
    WorkspaceNotice,
    WorkspaceSettings,
)
from webapp.providers.base import AuthError, RateLimited, SourceUnavailable


def count_contacts(imp) -> int:
    return db.session.scalar(select(func.count(Contact.id)).where(Contact.list_id == imp.list_id))


@pytest.fixture
def small_cap(app):
    app.config["IMPORT_RUN_CAP"] = 4
    yield 4
    app.config.pop("IMPORT_RUN_CAP")


def test_cap_stops_as_capped_and_the_next_run_carries_over(make_import, run_import, small_cap):
    imp = make_import()
    source = people(11)
    runs = [run_import(imp, FakeProvider(source, page_size=2)) for _ in range(3)]
    assert [r.status for r in runs] == ["capped", "capped", "completed"]
    assert [r.added for r in runs] == [4, 4, 3]
    assert all(r.written <= small_cap for r in runs)
    assert count_contacts(imp) == 11
    db.session.refresh(imp)
    assert imp.cursor is None and imp.high_water is not None


def test_cap_never_exceeded_when_a_page_would_cross_it(make_import, run_import, small_cap):
    imp = make_import()
    source = people(9)
    first = run_import(imp, FakeProvider(source, page_size=3))  # 3 + 3 > 4: stops after 3
    assert (first.status, first.added) == ("capped", 3)
    second = run_import(imp, FakeProvider(source, page_size=3))
    assert second.start_cursor == {"offset": 3}
    third = run_import(imp, FakeProvider(source, page_size=3))
    assert (second.added, third.added, third.status) == (3, 3, "completed")


def test_overage_is_recorded_with_the_fee(make_import, run_import):
    settings = WorkspaceSettings.get()
    settings.subscriber_limit, settings.extension_price = 10, 15
    db.session.commit()
    imp = make_import()
    run = run_import(imp, FakeProvider(people(25), page_size=10))
    entry = db.session.scalar(select(OverageEntry))
    assert (entry.peak_count, entry.over, entry.blocks) == (25, 15, 1)
    assert Decimal(str(entry.fee)) == Decimal("15") and entry.last_run_id == run.id
    make_contacts(imp.list, 1000, prefix="bulk")  # 1,025 → over 1,015 → 2 blocks
    forecast.record_overage()
    db.session.refresh(entry)
    assert (entry.blocks, Decimal(str(entry.fee))) == (2, Decimal("30"))
    assert forecast.cycle_fee() == Decimal("30")


def test_forecast_tells_what_enabling_would_cost(app):
    settings = WorkspaceSettings.get()
    settings.subscriber_limit, settings.extension_price = 2500, Decimal("12.50")
    db.session.commit()
    assert forecast.forecast(2000).extra_fee == 0
    ahead = forecast.forecast(2501)
    assert (ahead.after.over, ahead.after.blocks, ahead.extra_fee) == (1, 1, Decimal("12.50"))
    assert ahead.headline == "12.50 USD more this billing cycle"
    assert "1 over the limit of 2,500: 1 started block of 1,000" in ahead.detail
    assert forecast.forecast(4501).after.blocks == 3


def test_preview_counts_and_samples_and_writes_nothing(make_import):
    imp = make_import(criteria="add_update")
    make_contacts(imp.list, 1, prefix="person")  # person0 exists
    records = [rec(0, "person0@example.com", first="Changed")] + people(1200) + [
        rec(9999, "bad@")]
    summary = preview_now(imp.id, provider_factory=FakeProvider(records, page_size=250))
    assert summary["records"] == 1000
    assert summary["would_add"] == 999 and summary["would_update"] == 1
    assert summary["samples"]["add"][0]["email"] == "person1@example.com"
    assert len(summary["samples"]["add"]) == 10
    assert count_contacts(imp) == 1
    db.session.refresh(imp)
    assert imp.cursor is None and imp.high_water is None


def test_rejects_csv_neutralises_formulas(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider([
        rec("=HYPERLINK(1)", "bob@"), rec("+1", "-x@"), rec("@a", "@x"),
        rec(4, "ok@example.com", consent="opted_out")]))
    text = rejects.rejects_csv(run.id)
    lines = text.splitlines()
    assert lines[0] == "source_id,email,name,reason,detail,source"
    assert lines[1].startswith("'=HYPERLINK(1),bob@,,syntax_error,")
    assert lines[2].startswith("'+1,'-x@,,syntax_error")
    assert lines[3].startswith("'@a,'@x,,syntax_error")
    assert neutralise("\tcmd") == "'\tcmd" and neutralise("ok") == "ok"
    assert "opted_out_at_source" in lines[4]


def test_mapping_drift_sets_needs_attention_and_writes_nothing(make_import, run_import):
    make_field("tier")
    imp = make_import(mapping={"email": "email", "Loyalty": "tier"})
    provider = FakeProvider(people(5), known_fields={"Other"})
    run = run_import(imp, provider)
    db.session.refresh(imp)
    assert run.status == "failed" and run.error_kind == "schema"
    assert imp.state == "needs_attention" and "Loyalty" in imp.state_reason
    assert count_contacts(imp) == 0


def test_auth_failure_needs_reconnect_one_notice_no_retry(make_import, run_import):
    imp = make_import()
    provider = FakeProvider(people(5), fail_at={0: AuthError("token revoked")})
    run = run_import(imp, provider)
    integration = db.session.get(Integration, imp.integration_id)
    assert run.status == "failed" and "Reconnect" in run.error
    assert integration.status == "needs_reconnect" and "token revoked" in integration.status_reason
    again = run_import(imp, FakeProvider(people(5), fail_at={0: AuthError("token revoked")}))
    assert again.status == "failed" and again.error_kind == "auth"
    notices = db.session.scalars(select(WorkspaceNotice)).all()
    assert len(notices) == 1 and notices[0].integration_id == integration.id


def test_rate_limited_run_fails_keeps_cursor_and_next_run_resumes(make_import, run_import):
    imp = make_import()
    source = people(10)
    first = run_import(imp, FakeProvider(source, page_size=3,
                                         fail_at={2: RateLimited("429 beyond budget")}))
    assert first.status == "failed" and first.error_kind == "rate_limited"
    assert "continues where" in first.error and first.added == 6
    db.session.refresh(imp)
    assert imp.cursor == {"offset": 6}
    provider = FakeProvider(source, page_size=3)
    second = run_import(imp, provider)
    assert provider.calls[0]["cursor"] == {"offset": 6}
    assert (second.status, second.added, count_contacts(imp)) == ("completed", 4, 10)


def test_three_failures_in_a_row_open_a_notice(make_import, run_import):
    imp = make_import()
    for _ in range(3):
        run_import(imp, FakeProvider(people(2), fail_at={0: SourceUnavailable("HTTP 503")}))
    db.session.refresh(imp)
    assert imp.consecutive_failures == 3
    notice = db.session.scalar(select(WorkspaceNotice))
    assert notice.import_id == imp.id and "3 times" in notice.message
    run_import(imp, FakeProvider(people(2)))
    db.session.refresh(imp)
    assert imp.consecutive_failures == 0


def test_import_now_twice_makes_one_run(make_import):
    imp = make_import()
    first = start_run(imp.id, queue=False)
    second = start_run(imp.id, queue=False)
    assert first.id == second.id
    assert db.session.scalar(select(func.count(ImportRun.id))) == 1
    preview, created = create_run(imp.id, "preview")  # previews do not take the lock
    assert created and preview.id != first.id


def test_start_says_whether_it_created_the_run_and_queued_its_job(make_import):
    imp = make_import()
    first = start(imp.id, queue=False)
    assert first.created and not first.queued and first.run.status == "queued"
    again = start(imp.id)  # a double click: the live run back, nothing enqueued
    assert (again.run.id, again.created, again.queued) == (first.run.id, False, False)


def test_queued_run_can_be_cancelled(make_import):
    imp = make_import()
    run = start_run(imp.id, queue=False)
    assert cancel_run(run.id)
    db.session.refresh(run)
    assert run.status == "canceled"
    assert not cancel_run(run.id)
    assert start_run(imp.id, queue=False).id != run.id  # the lock is free again


def test_seen_hashes_survive_until_the_run_ends(make_import, run_import):
    imp = make_import()
    run = run_import(imp, FakeProvider(people(4)))
    assert db.session.scalar(select(func.count()).select_from(ImportRunSeen)
                             .where(ImportRunSeen.run_id == run.id)) == 0


def test_refreshed_credentials_are_saved_encrypted_at_once(make_import, app):
    imp = make_import(secrets={"access_token": "old", "refresh_token": "r1"})
    credentials.save_now(imp.integration_id, {"access_token": "new", "refresh_token": "r2"})
    db.session.expire_all()
    integration = db.session.get(Integration, imp.integration_id)
    assert "new" not in integration.credentials_encrypted
    assert credentials.load(integration) == {"access_token": "new", "refresh_token": "r2"}


def test_secrets_rotate_re_encrypts_under_the_first_key(make_import, app):
    imp = make_import(secrets={"access_token": "s3cret"})
    old_key = app.config["ENCRYPTION_KEY"]
    new_key = Fernet.generate_key().decode()
    app.config["ENCRYPTION_KEY"] = f"{new_key},{old_key}"
    try:
        result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
        assert "Re-encrypted 1" in result.output, result.output
        token = db.session.scalar(select(Integration.credentials_encrypted))
        assert Fernet(new_key.encode()).decrypt(token.encode())
        app.config["ENCRYPTION_KEY"] = new_key  # the old key can now be dropped
        assert credentials.load(db.session.get(Integration, imp.integration_id)) == {
            "access_token": "s3cret"}
    finally:
        app.config["ENCRYPTION_KEY"] = old_key


def test_cli_list_and_history(make_import, run_import, app):
    imp = make_import()
    run_import(imp, FakeProvider(people(3)))
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["imports", "list"])
    assert f"{imp.id}\tshopify" in listed.output
    history = runner.invoke(args=["imports", "history", str(imp.id)])
    assert "completed" in history.output and "added 3" in history.output
    assert db.session.get(RecurringImport, imp.id) is not None
