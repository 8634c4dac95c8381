"""Real RQ workers on the real Redis: kill -9 the processing worker at random moments while
events are processed; every event is processed exactly once (contacts, ledger, visitor ids
and activity exact, no event's effects twice). SQLite and PostgreSQL."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter

import pytest
from redis import Redis
from sqlalchemy import func, select

from tests.factories import make_list
from tests.imports import workers
from tests.plugins import factories as f
from webapp.extensions import db
from webapp.models import ConsentEvent, Contact, PluginEvent, VisitorIdentity
from webapp.plugins import nudge

pytestmark = pytest.mark.redis
PEOPLE = 3000  # 12,000 events


def _count(*where, model=PluginEvent) -> int:
    db.session.expire_all()
    value = db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    db.session.commit()
    return value


def _start(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "worker.py", "plugins"], cwd=workers.ROOT, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _queue(redis: Redis) -> None:
    """What the sweep does for a job its killed worker took along, once the dead worker's
    heartbeat key has expired (deleted here rather than waited for): queue it again."""
    import psutil

    for key in redis.scan_iter("rq:worker:*"):
        pid = redis.hget(key, "pid") if redis.type(key) == b"hash" else None
        if pid and not psutil.pid_exists(int(pid)):
            redis.delete(key)
    assert nudge.nudge_now(redis, repair=True)


def test_kill_9_while_processing_processes_every_event_exactly_once(app, app_config,
                                                                    database_url, redis_url):
    lst = make_list()
    source = f.make_source(lst)
    f.insert_rows(f.bulk_rows(source.id, range(PEOPLE)))
    total = 4 * PEOPLE
    env = workers.worker_env(database_url, redis_url, app_config,
                             TRIBUTARY_QUEUE_NAMES="plugins")
    redis = Redis.from_url(redis_url)
    rng = random.Random(11)
    kills, worker = 0, _start(env)
    try:
        _queue(redis)
        deadline = time.monotonic() + 240
        while _count(PluginEvent.status == "pending") and time.monotonic() < deadline:
            before = _count(PluginEvent.status == "pending")
            if kills < 6:
                # Let it get going, then kill it at a random moment inside its batches.
                while _count(PluginEvent.status == "pending") == before and \
                        time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.25))
                workers.kill9(worker)
                kills += 1
                worker = _start(env)
                _queue(redis)
            else:
                time.sleep(0.2)
    finally:
        workers.kill9(worker)
    assert kills >= 4  # all but the last batches were processed by restarted workers
    assert _count(PluginEvent.status == "pending") == 0, "events left unprocessed"
    assert _count(PluginEvent.status == "processed") == total
    # Each event's effects were committed once: attempts count only committed batches.
    assert _count(PluginEvent.attempts != 1) == 0
    assert _count(model=Contact) == PEOPLE
    assert _count(model=ConsentEvent) == PEOPLE  # one consent record per sign-up
    assert _count(model=VisitorIdentity) == PEOPLE
    assert _count(PluginEvent.contact_id.is_not(None)) == total  # visits stitched too
    per_contact = db.session.execute(select(PluginEvent.contact_id, func.count())
                                     .group_by(PluginEvent.contact_id)).all()
    assert {n for _c, n in per_contact} == {4}


def test_two_workers_at_once_keep_each_contacts_order_and_process_once(app, app_config,
                                                                     database_url, redis_url):
    lst = make_list()
    source = f.make_source(lst)
    people = 3000
    f.insert_rows(f.bulk_rows(source.id, range(people), chunk=7))
    env = workers.worker_env(database_url, redis_url, app_config,
                             TRIBUTARY_QUEUE_NAMES="plugins")
    redis = Redis.from_url(redis_url)
    pair = [_start(env), _start(env)]
    try:
        from rq import Worker

        deadline = time.monotonic() + 60
        while len(Worker.all(connection=redis)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in pair:  # two jobs, one per worker, working at the same time
            _queue(redis)
        deadline = time.monotonic() + 180
        while _count(PluginEvent.status == "pending") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for worker in pair:
            workers.kill9(worker)
    assert _count(PluginEvent.status == "pending") == 0
    assert _count(PluginEvent.attempts != 1) == 0
    # Each person's sign-up came before their view and order: none was judged before it
    # (it would be kept as an anonymous visitor's, without the contact), so no event was
    # processed ahead of an earlier one of the same person.
    assert _count(PluginEvent.status == "ignored") == 0
    assert _count(PluginEvent.contact_id.is_(None)) == 0
    verdicts = Counter(v.get("outcome") for v in db.session.scalars(select(PluginEvent.verdict)))
    assert verdicts == {"anonymous": people, "created": people, "activity": 2 * people}
    assert _count(model=Contact) == people and _count(model=ConsentEvent) == people
