"""Schedules: DST-correct run hours, 24-hour default, and dispatchers racing each other."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from webapp.background import PERIODIC, make_scheduler, register_periodic
from webapp.extensions import db
from webapp.imports.schedule import dispatch_due, enable, next_at_hour
from webapp.models import ImportRun, RecurringImport

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def test_run_hour_is_dst_correct():
    # Berlin leaves summer time on 2026-10-25: 06:00 local is 04:00 UTC before, 05:00 after.
    before = next_at_hour(datetime(2026, 10, 24, 12, tzinfo=UTC), 6, BERLIN)
    after = next_at_hour(before, 6, BERLIN)
    assert before == datetime(2026, 10, 25, 5, tzinfo=UTC)
    assert next_at_hour(datetime(2026, 10, 23, 12, tzinfo=UTC), 6, BERLIN) == datetime(
        2026, 10, 24, 4, tzinfo=UTC)
    assert after - before == timedelta(hours=24)
    # New York springs forward on 2026-03-08: 02:30 does not exist; 02:00 runs at 03:00 EDT.
    gap = next_at_hour(datetime(2026, 3, 7, 12, tzinfo=UTC), 2, NEW_YORK)
    assert gap.astimezone(ZoneInfo(NEW_YORK)).hour == 3
    # …and falls back on 2026-11-01: 01:00 happens twice, the run happens once.
    first = next_at_hour(datetime(2026, 10, 31, 12, tzinfo=UTC), 1, NEW_YORK)
    second = next_at_hour(first, 1, NEW_YORK)
    assert (second - first) == timedelta(hours=25)


def test_default_schedule_is_24_hours_after_the_first_run(make_import):
    imp = make_import()
    start = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    enable(imp, start)
    assert imp.next_run_at == start + timedelta(hours=24)


def test_two_dispatchers_over_a_week_run_each_import_once_a_day(app, make_import):
    start = datetime(2026, 10, 22, 0, 0, tzinfo=UTC)  # a week over both DST changes
    daily = make_import(provider="shopify")
    berlin = make_import(provider="zoho", run_hour=6, time_zone=BERLIN)
    new_york = make_import(provider="salesforce", run_hour=1, time_zone=NEW_YORK)
    for imp in (daily, berlin, new_york):
        enable(imp, start)
    db.session.commit()
    ids = {daily.id: "daily", berlin.id: "berlin", new_york.id: "new_york"}

    clock = {"now": start}
    barrier = threading.Barrier(3)
    stop = threading.Event()
    errors: list[BaseException] = []

    def dispatcher():
        with app.app_context():
            while True:
                barrier.wait()
                if stop.is_set():
                    return
                try:
                    dispatch_due(clock["now"], enqueue=lambda run_id: None)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                barrier.wait()
            db.session.remove()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    step = timedelta(minutes=20)
    while clock["now"] < start + timedelta(days=7, hours=1):
        barrier.wait()  # both dispatch at this instant
        barrier.wait()  # both done
        db.session.execute(update(ImportRun).where(ImportRun.status == "queued")
                           .values(status="completed"))  # the worker ran them
        db.session.commit()
        clock["now"] += step
    stop.set()
    barrier.wait()
    for t in threads:
        t.join()
    assert not errors, errors

    runs = db.session.scalars(select(ImportRun).order_by(ImportRun.scheduled_for)).all()
    per_import = defaultdict(list)
    for run in runs:
        per_import[ids[run.import_id]].append(run.scheduled_for)
    assert {k: len(v) for k, v in per_import.items()} == {"daily": 7, "berlin": 7,
                                                          "new_york": 7}
    for name, slots in per_import.items():
        days = [s.astimezone(ZoneInfo(NEW_YORK if name == "new_york" else BERLIN)).date()
                for s in slots]
        assert len(set(days)) == 7, (name, slots)
    assert all(s.astimezone(ZoneInfo(BERLIN)).hour == 6 for s in per_import["berlin"])
    assert all(s.astimezone(ZoneInfo(NEW_YORK)).hour == 1 for s in per_import["new_york"])
    assert per_import["daily"][1] - per_import["daily"][0] == timedelta(hours=24)
    assert all(r.trigger_kind == "scheduled" for r in runs)
    db.session.expire_all()
    assert db.session.get(RecurringImport, daily.id).next_run_at > clock["now"] - step


def test_periodic_jobs_register_once_across_two_schedulers(app, redis_url):
    from redis import Redis

    conn = Redis.from_url(redis_url)
    first = register_periodic(make_scheduler(conn))
    second = register_periodic(make_scheduler(conn))
    assert first == len(PERIODIC) and second == 0
    ids = {job.id for job in make_scheduler(conn).get_jobs()}
    assert {"tributary-imports-dispatch", "tributary-imports-sweep"} <= ids
