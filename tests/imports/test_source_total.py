"""A run records the source's own count when it starts its walk (issue 9 item 7), so its
progress can say "n of total · %"; a source that cannot count, or fails to, changes
nothing else."""

from __future__ import annotations

from sqlalchemy import select

from tests.imports.fakes import FakeProvider, people
from webapp.extensions import db
from webapp.imports.preview import preview_now
from webapp.models import ImportRun
from webapp.providers.base import OutcomeUnknown, RecordCount, SourceUnavailable
from webapp.services.runs_view import progress_info


class Counting(FakeProvider):
    """A fake source that counts its records and notes what a page saw mid-walk."""

    def __init__(self, *args, fail_count: Exception | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail_count = fail_count
        self.count_calls: list[dict] = []
        self.labels_mid_walk: list[str] = []

    def count_records(self, group, source, *, since=None):
        self.count_calls.append({"group": group, "source": source, "since": since})
        if self.fail_count:
            raise self.fail_count
        return RecordCount(len([r for r in self.records
                                if since is None or r.updated_at >= since]))

    def iter_pages(self, *args, **kwargs):
        for page in super().iter_pages(*args, **kwargs):
            run = db.session.scalars(select(ImportRun).order_by(ImportRun.id.desc())).first()
            db.session.refresh(run)
            self.labels_mid_walk.append(progress_info(run).label)
            yield page


def test_the_run_records_the_source_total_and_shows_a_percentage(make_import, run_import):
    imp = make_import()
    provider = Counting(people(8), page_size=3)
    run = run_import(imp, provider)
    assert run.status == "completed" and run.source_total == 8
    assert provider.count_calls == [{"group": "customers", "source": "all", "since": None}]
    assert provider.labels_mid_walk == [
        "Running: 0 of 8 · 0 % (0 written)",
        "Running: 3 of 8 · 38 % (3 written)",
        "Running: 6 of 8 · 75 % (6 written)",
    ]


def test_an_incremental_run_counts_only_what_changed(make_import, run_import):
    imp = make_import()
    run_import(imp, Counting(people(8), page_size=3))
    db.session.refresh(imp)
    provider = Counting(people(8), page_size=3)
    second = run_import(imp, provider)
    assert provider.count_calls[0]["since"] == imp.high_water
    assert second.source_total == 1  # the inclusive high-water record comes again


def test_a_count_that_fails_leaves_the_total_unknown_and_the_run_goes_on(make_import,
                                                                         run_import):
    imp = make_import()
    provider = Counting(people(5), page_size=2,
                        fail_count=SourceUnavailable("the count endpoint is down"))
    run = run_import(imp, provider)
    assert run.status == "completed" and run.added == 5 and run.source_total is None
    assert provider.labels_mid_walk[1] == "Running: 2 fetched, 2 written so far"


def test_a_count_whose_token_refresh_was_lost_stops_the_run(make_import, run_import):
    """A refresh POST that may have rotated the token must not be followed by another one
    in the same run: the run fails plainly and the next run tries again."""
    imp = make_import()
    provider = Counting(people(5), page_size=2, fail_count=OutcomeUnknown(
        "The connection broke off; the request may have been processed."))
    run = run_import(imp, provider)
    assert run.status == "failed" and run.error_kind == "unavailable"
    assert run.fetched == 0 and provider.labels_mid_walk == []


def test_a_resumed_walk_and_a_preview_ask_no_count(make_import, run_import):
    imp = make_import()
    imp.cursor = {"offset": 2}
    db.session.commit()
    provider = Counting(people(5), page_size=2)
    run = run_import(imp, provider)
    assert run.added == 3 and provider.count_calls == [] and run.source_total is None
    other = make_import()
    preview = Counting(people(5), page_size=2)
    preview_now(other.id, provider_factory=preview)
    assert preview.count_calls == []
